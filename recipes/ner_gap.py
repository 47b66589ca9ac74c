"""Where an NER inference network loses F1 to Viterbi: ill-formed BIOES output.

For each trained pipeline (and Viterbi on the first one's energy), decodes CoNLL-2003 testb and
prints: conlleval F1 (seqeval's default mode, the paper's metric and the pipeline's own span
reading), strict F1 (seqeval strict IOBES mode: ill-formed chunks count as nothing), token
accuracy against the gold BIOES tags, and the number of sentences whose output breaks a BIOES
constraint (a forbidden bigram, first or last label).

    python recipes/ner_gap.py runs/table1_ner/blstm_e_energy/model-best \
        --dataset conll2003 --path ../shared/data/conll2003 --output results/ner_gap.md

(``spacy project run bioes-gap`` runs it as the project does.)
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Annotated

import spacy
import torch
import typer
from seqeval.metrics import f1_score
from seqeval.scheme import IOBES

from spacy_infnet.cli import _util as cli
from spacy_infnet.core.constraints import transition_constraints
from spacy_infnet.core.schemes import spans_to_tags

logger = logging.getLogger("spacy.infnet")

VITERBI = {"components": {"infnet_tagger": {"decoder": {"@decoders": "spacy_infnet.Viterbi.v1"}}}}


def ill_formed(seq: list[int], allowed) -> bool:
    """True when ``seq`` (label indices) breaks a scheme constraint."""
    if not seq:
        return False
    if not allowed.start[seq[0]] or not allowed.end[seq[-1]]:
        return True
    return any(not allowed.transitions[a, b] for a, b in itertools.pairwise(seq))


def measure(nlp, examples, gold: list[list[str]], batch_size: int = 256) -> dict:
    comp = nlp.get_pipe("infnet_tagger")
    docs = [eg.predicted for eg in examples]
    pred: list[list[int]] = []
    for i in range(0, len(docs), batch_size):
        pred += comp.predict(docs[i : i + batch_size])
    allowed = transition_constraints(comp.labels, "bioes")
    names = [[comp.labels[i] for i in seq] for seq in pred]
    n_tokens = sum(map(len, gold))
    correct = sum(a == b for p, g in zip(names, gold) for a, b in zip(p, g))
    return {
        "conlleval_f1": 100 * f1_score(gold, names),
        "strict_f1": 100 * f1_score(gold, names, mode="strict", scheme=IOBES),
        "token_accuracy": 100 * correct / n_tokens,
        "ill_formed": sum(ill_formed(seq, allowed) for seq in pred),
        "sentences": len(pred),
    }


@cli.user_errors("ner_gap")
@cli.dataset_options(required=True)
def main(
    pipelines: Annotated[
        list[Path], cli.Arg(help="trained NER pipelines (model-best)", show_default=False)
    ],
    dataset: cli.Dataset,
    output: Annotated[
        Path | None, cli.Opt("--output", "--out", help="also write the table (markdown) here")
    ] = None,
) -> None:
    """Ill-formed BIOES output: conlleval and strict F1, token accuracy, broken sentences."""
    data = dataset
    for pipeline in pipelines:
        cli.check_pipeline(pipeline)
    torch.set_num_threads(1)

    first = spacy.load(pipelines[0], config=VITERBI)
    if "infnet_tagger" not in first.pipe_names:
        raise ValueError(
            f"{pipelines[0]} has no infnet_tagger component: it has {first.pipe_names}"
        )
    comp = first.get_pipe("infnet_tagger")
    if comp.task != "ner" or comp.scheme != "bioes":
        raise ValueError(
            f"{pipelines[0]} is not a BIOES NER pipeline (task {comp.task!r}, scheme "
            f"{comp.scheme!r}): this analysis counts broken BIOES constraints"
        )
    examples = cli.load_examples(first, "ner", data)
    gold = []
    for eg in examples:
        spans = [(e.start, e.end, e.label_) for e in eg.reference.ents]
        gold.append(spans_to_tags(len(eg.reference), spans, scheme="bioes"))
    rows = [(f"Viterbi ({pipelines[0]})", measure(first, examples, gold))]
    logger.info("ner_gap: %s %s", rows[0][0], rows[0][1])
    for pipeline in pipelines:
        rows.append((str(pipeline), measure(spacy.load(pipeline), examples, gold)))
        logger.info("ner_gap: %s %s", pipeline, rows[-1][1])

    lines = [
        (
            f"{caption(data)}; conlleval F1 = seqeval default mode; strict F1 = seqeval strict "
            "IOBES mode; ill-formed = sentences whose output breaks a BIOES constraint."
        ),
        "",
        "| decoder | conlleval F1 | strict F1 | token accuracy | ill-formed sentences |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['conlleval_f1']:.2f} | {r['strict_f1']:.2f} | "
            f"{r['token_accuracy']:.2f} | {r['ill_formed']} / {r['sentences']} |"
        )
    table = "\n".join(lines) + "\n"
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(table)
        logger.info("ner_gap: wrote %s", output)
    typer.echo(table)


def caption(data: cli.Dataset) -> str:
    """The data's name in the caption: CoNLL-2003 testb, or NAME SPLIT for other data."""
    if data.name == "conll2003" and data.split == "test":
        return "CoNLL-2003 testb"
    return f"{data.name} {data.split}"


if __name__ == "__main__":
    cli.run_script(main, "ner_gap")
