"""Where an NER inference network loses F1 to Viterbi: ill-formed BIOES output.

For each trained pipeline (and Viterbi on the first one's energy), decodes CoNLL-2003 testb and
prints: conlleval F1 (seqeval's default mode, the paper's metric and the pipeline's own span
reading), strict F1 (seqeval strict IOBES mode: ill-formed chunks count as nothing), token
accuracy against the gold BIOES tags, and the number of sentences whose output breaks a BIOES
constraint (a forbidden bigram, first or last label).

    python recipes/ner_gap.py runs/table1_ner_v2/blstm_e_energy/model-best \
        --data ../shared/data/conll2003 --out results/ner_gap.md
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import spacy
import torch
from seqeval.metrics import f1_score
from seqeval.scheme import IOBES

from spacy_infnet.core.constraints import transition_constraints
from spacy_infnet.data.schemes import spans_to_tags
from spacy_infnet.pipeline.readers import dataset_examples

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("pipelines", nargs="+", type=Path, help="trained pipelines (model-best)")
    ap.add_argument("--data", required=True, help="CoNLL-2003 directory")
    ap.add_argument("--out", type=Path, help="also write the table (markdown) here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    first = spacy.load(args.pipelines[0], config=VITERBI)
    examples = list(dataset_examples(first, "conll2003", "test", path=args.data, task="ner"))
    gold = []
    for eg in examples:
        spans = [(e.start, e.end, e.label_) for e in eg.reference.ents]
        gold.append(spans_to_tags(len(eg.reference), spans, scheme="bioes"))
    rows = [(f"Viterbi ({args.pipelines[0]})", measure(first, examples, gold))]
    for path in args.pipelines:
        rows.append((str(path), measure(spacy.load(path), examples, gold)))
        print(path, rows[-1][1], file=sys.stderr)

    lines = [
        (
            "CoNLL-2003 testb; conlleval F1 = seqeval default mode; strict F1 = seqeval strict "
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
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
