"""Decode speed and F1 of one pipeline under several decoders, through ``nlp.pipe``, on the
same documents in the same process (decoders interleaved pass by pass; median of passes).

    python recipes/pipe_speed.py runs/ner_trf/model-best runs/ner_trf/test.spacy \
        --decoders viterbi,infnet --output runs/ner_trf/speed.json

Documents are rebuilt from their words for every pass (no tokenizer), so the time is the
pipeline's: encoding, the decoder (for Viterbi the transformer energy, for the inference
network only its own network), and writing the annotations.  Prints sentences/s, words/s, F1
(spaCy's entity scorer) and the speed relative to the first decoder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import spacy
import torch
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from spacy_infnet.pipeline.registry import decoder_block


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pipeline")
    ap.add_argument("data", help=".spacy file with gold annotations")
    ap.add_argument("--decoders", default="viterbi,infnet")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--output", default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    decoders = [d.strip() for d in args.decoders.split(",") if d.strip()]
    pipes = {}
    for name in decoders:
        block = decoder_block(name)
        pipes[name] = spacy.load(
            args.pipeline, config={"components": {"infnet_tagger": {"decoder": block}}}
        )
    first = pipes[decoders[0]]
    gold = list(DocBin().from_disk(args.data).get_docs(first.vocab))
    words = [[t.text for t in doc] for doc in gold]
    n_words = sum(map(len, words))
    # documents (convert --documents) hold several sentences: sentences/s counts sentences
    n_sents = sum(
        sum(1 for _ in doc.sents) if doc.has_annotation("SENT_START") else 1 for doc in gold
    )
    seconds: dict[str, list[float]] = {d: [] for d in decoders}
    predicted: dict[str, list[Doc]] = {}
    for name, nlp in pipes.items():  # warm-up
        list(nlp.pipe([Doc(nlp.vocab, words=w) for w in words[: args.batch_size]]))
    for _ in range(args.repeats):
        for name, nlp in pipes.items():
            docs = [Doc(nlp.vocab, words=w) for w in words]
            start = time.perf_counter()
            out = list(nlp.pipe(docs, batch_size=args.batch_size))
            seconds[name].append(time.perf_counter() - start)
            predicted[name] = out
    rows = []
    for name in decoders:
        examples = [Example(p, g) for p, g in zip(predicted[name], gold)]
        scores = pipes[name].get_pipe("infnet_tagger").score(examples)
        s = statistics.median(seconds[name])
        rows.append(
            {
                "decoder": name,
                "ents_f": scores.get("ents_f"),
                "tag_acc": scores.get("tag_acc"),
                "seconds": s,
                "seconds_all": seconds[name],
                "sentences_per_s": n_sents / s,
                "words_per_s": n_words / s,
            }
        )
    base = rows[0]["sentences_per_s"]
    print(
        f"{args.pipeline} on {args.data}: {len(words):,} docs, {n_sents:,} sentences, "
        f"{n_words:,} words, batch "
        f"{args.batch_size}, {torch.get_num_threads()} torch threads, median of {args.repeats}"
    )
    print("| decoder | F1 / acc | sentences/s | words/s | × first |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        metric = r["ents_f"] if r["ents_f"] is not None else r["tag_acc"]
        print(
            f"| {r['decoder']} | {100 * metric:.2f} | {r['sentences_per_s']:,.0f} | "
            f"{r['words_per_s']:,.0f} | {r['sentences_per_s'] / base:.1f} |"
        )
    if args.output:
        Path(args.output).write_text(
            json.dumps(
                {
                    "pipeline": args.pipeline,
                    "data": args.data,
                    "docs": len(words),
                    "sentences": n_sents,
                    "batch_size": args.batch_size,
                    "torch_threads": torch.get_num_threads(),
                    "rows": rows,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
