"""Where an NER pipeline's decoders err: token accuracy (against the gold BIO labels of the
entities) split by whether the token is an entity token and whether its word is in the
pipeline's training vocabulary (its encoder's normalised word list).

    python recipes/ner_oov.py runs/ner_trf/model-best runs/ner_trf/test.spacy \
        --decoders viterbi,infnet

Prints one markdown row per decoder; ``--output`` also writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import spacy
import torch
from spacy.tokens import Doc, DocBin

from spacy_infnet.pipeline.registry import decoder_block

GROUPS = ("entity, in vocabulary", "entity, unseen", "O, in vocabulary", "O, unseen")


def token_label(token) -> str:
    return f"{token.ent_iob_}-{token.ent_type_}" if token.ent_type_ else "O"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pipeline")
    ap.add_argument("data", help=".spacy file with gold entities")
    ap.add_argument("--decoders", default="viterbi,infnet")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--output", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    gold_bin = DocBin().from_disk(args.data)
    for name in [d.strip() for d in args.decoders.split(",") if d.strip()]:
        nlp = spacy.load(
            args.pipeline,
            config={"components": {"infnet_tagger": {"decoder": decoder_block(name)}}},
        )
        encoder = nlp.get_pipe("infnet_tagger").encoder
        gold = list(gold_bin.get_docs(nlp.vocab))
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
    print(f"{args.pipeline} on {args.data}: token accuracy (BIO label of the entity) by group")
    print("| decoder | " + " | ".join(f"{g} (n)" for g in GROUPS) + " |")
    print("|---|" + "---:|" * len(GROUPS))
    for row in rows:
        cells = [f"{row[g]['accuracy']:.1f} ({row[g]['tokens']:,})" for g in GROUPS]
        print(f"| {row['decoder']} | " + " | ".join(cells) + " |")
    if args.output:
        Path(args.output).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
