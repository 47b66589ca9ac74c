"""Where an NER pipeline's decoders err: token accuracy (against the gold BIO labels of the
entities) split by whether the token is an entity token and whether its word is in the
pipeline's training vocabulary (its encoder's normalised word list).

    python recipes/ner_oov.py runs/ner_trf/model-best --dataset conll2003 \
        --path ../shared/data/conll2003 --decoders viterbi,infnet
    python recipes/ner_oov.py runs/ner_trf/model-best runs/ner_trf/test.spacy

The gold entities come from a DocBin (``.spacy``) or a dataset split (``--dataset``,
``--path``, ``--option``, ``--split``, as ``evaluate`` takes them).  Prints one markdown row per
decoder; ``--output`` also writes them as JSON.  (``spacy project run unseen-words`` runs it as
the project does.)
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Annotated

import spacy
import torch
import typer
from spacy.tokens import Doc

from spacy_infnet.cli import _util as cli
from spacy_infnet.pipeline.registry import decoder_block

logger = logging.getLogger("spacy.infnet")
GROUPS = ("entity, in vocabulary", "entity, unseen", "O, in vocabulary", "O, unseen")
DATA_HELP = ".spacy file with gold entities; or name a dataset with --dataset"


def token_label(token) -> str:
    return f"{token.ent_iob_}-{token.ent_type_}" if token.ent_type_ else "O"


@cli.user_errors("ner_oov")
@cli.dataset_options()
def main(
    pipeline: Annotated[Path, cli.Arg(help="trained NER pipeline directory", show_default=False)],
    data: Annotated[Path | None, cli.Arg(help=DATA_HELP, show_default=False)] = None,
    dataset: cli.Dataset | None = None,
    decoders: Annotated[
        str, cli.Opt(help=f"comma-separated; {cli.DECODER_HELP}")
    ] = "viterbi,infnet",
    threads: Annotated[int, cli.Opt(help="torch threads")] = 1,
    output: Annotated[
        Path | None, cli.Opt(help="also write the rows as JSON", show_default=False)
    ] = None,
) -> None:
    """Token accuracy by entity / O and seen / unseen word, for each decoder."""
    names = cli.check_decoders(decoders)
    cli.check_source(dataset, data)
    cli.check_pipeline(pipeline)
    torch.set_num_threads(threads)
    source = str(data) if data is not None else f"{dataset.name}/{dataset.split}"
    rows = []
    for name in names:
        nlp = spacy.load(
            pipeline,
            config={"components": {"infnet_tagger": {"decoder": decoder_block(name)}}},
        )
        comp = nlp.get_pipe("infnet_tagger")
        if comp.task != "ner":
            raise ValueError(f"{pipeline} is not an NER pipeline (task {comp.task!r})")
        encoder = comp.encoder
        gold = [eg.reference for eg in cli.load_examples(nlp, "ner", dataset, data)]
        docs = [Doc(nlp.vocab, words=[t.text for t in g]) for g in gold]
        counts: Counter = Counter()
        for g, p in zip(gold, nlp.pipe(docs, batch_size=256)):
            for gt, pt in zip(g, p):
                seen = encoder.normalize(gt.text) in encoder.word_index
                entity = gt.ent_type_ != ""
                group = f"{'entity' if entity else 'O'}, {'in vocabulary' if seen else 'unseen'}"
                counts[group, "n"] += 1
                counts[group, "right"] += token_label(gt) == token_label(pt)
        row = {"decoder": name}
        for group in GROUPS:
            n = counts[group, "n"]
            row[group] = {"tokens": n, "accuracy": 100 * counts[group, "right"] / max(n, 1)}
        rows.append(row)
        logger.info("ner_oov: %s done", name)
    typer.echo(f"{pipeline} on {source}: token accuracy (BIO label of the entity) by group")
    typer.echo("| decoder | " + " | ".join(f"{g} (n)" for g in GROUPS) + " |")
    typer.echo("|---|" + "---:|" * len(GROUPS))
    for row in rows:
        cells = [f"{row[g]['accuracy']:.1f} ({row[g]['tokens']:,})" for g in GROUPS]
        typer.echo(f"| {row['decoder']} | " + " | ".join(cells) + " |")
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(rows, indent=2))
        logger.info("ner_oov: wrote %s", output)


if __name__ == "__main__":
    cli.run_script(main, "ner_oov")
