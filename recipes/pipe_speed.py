"""Decode speed and F1 of one pipeline under several decoders, through ``nlp.pipe``, on the
same documents in the same process (decoders interleaved pass by pass; median of passes).

    python recipes/pipe_speed.py runs/ner_trf/model-best --dataset conll2003 \
        --path ../shared/data/conll2003 --decoders viterbi,infnet --output runs/ner_trf/speed.json
    python recipes/pipe_speed.py runs/ner_trf/model-best runs/ner_trf/test.spacy

The documents come from a DocBin (``.spacy``, see ``python -m spacy_infnet convert``) or from a
dataset split (``--dataset``, ``--path``, ``--option``, ``--split``, as ``evaluate`` takes
them).  They are rebuilt from their words for every pass (no tokenizer), so the time is the
pipeline's: encoding, the decoder (for Viterbi the transformer energy, for the inference
network only its own network), and writing the annotations.  Prints sentences/s, words/s, F1
(spaCy's entity scorer) or tag accuracy and the speed relative to the first decoder.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from pathlib import Path
from typing import Annotated

import spacy
import torch
import typer
from spacy.tokens import Doc
from spacy.training import Example

from spacy_infnet.cli import _util as cli
from spacy_infnet.pipeline.registry import decoder_block

logger = logging.getLogger("spacy.infnet")
DATA_HELP = ".spacy file with gold annotations; or name a dataset with --dataset"


@cli.user_errors("pipe_speed")
@cli.dataset_options()
def main(
    pipeline: Annotated[Path, cli.Arg(help="trained pipeline directory", show_default=False)],
    data: Annotated[Path | None, cli.Arg(help=DATA_HELP, show_default=False)] = None,
    dataset: cli.Dataset | None = None,
    documents: cli.DocumentsOpt = False,
    decoders: Annotated[
        str, cli.Opt(help=f"comma-separated; {cli.DECODER_HELP}")
    ] = "viterbi,infnet",
    batch_size: Annotated[int, cli.Opt(help="nlp.pipe batch size")] = 256,
    repeats: Annotated[int, cli.Opt(help="timed passes (the median is reported)")] = 3,
    threads: Annotated[
        int | None, cli.Opt(help="torch threads (default: torch's)", show_default=False)
    ] = None,
    output: Annotated[
        Path | None, cli.Opt(help="also write the figures as JSON", show_default=False)
    ] = None,
) -> None:
    """Speed and F1 / accuracy of several decoders of one pipeline through nlp.pipe."""
    names = cli.check_decoders(decoders)
    cli.check_source(dataset, data)
    cli.check_pipeline(pipeline)
    if threads:
        torch.set_num_threads(threads)
    pipes = {}
    for name in names:
        block = decoder_block(name)
        pipes[name] = spacy.load(
            pipeline, config={"components": {"infnet_tagger": {"decoder": block}}}
        )
    first = pipes[names[0]]
    task = first.get_pipe("infnet_tagger").task
    examples = cli.load_examples(first, task, dataset, data, documents=documents)
    gold = [eg.reference for eg in examples]
    source = str(data) if data is not None else describe(dataset)
    words = [[t.text for t in doc] for doc in gold]
    n_words = sum(map(len, words))
    # documents (convert --documents) hold several sentences: sentences/s counts sentences
    n_sents = sum(
        sum(1 for _ in doc.sents) if doc.has_annotation("SENT_START") else 1 for doc in gold
    )
    seconds: dict[str, list[float]] = {d: [] for d in names}
    predicted: dict[str, list[Doc]] = {}
    for name, nlp in pipes.items():  # warm-up
        list(nlp.pipe([Doc(nlp.vocab, words=w) for w in words[:batch_size]]))
    for i in range(repeats):
        for name, nlp in pipes.items():
            docs = [Doc(nlp.vocab, words=w) for w in words]
            start = time.perf_counter()
            out = list(nlp.pipe(docs, batch_size=batch_size))
            seconds[name].append(time.perf_counter() - start)
            predicted[name] = out
            logger.info("pipe_speed: pass %d, %s: %.2f s", i + 1, name, seconds[name][-1])
    rows = []
    for name in names:
        pairs = [Example(p, g) for p, g in zip(predicted[name], gold)]
        scores = pipes[name].get_pipe("infnet_tagger").score(pairs)
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
    typer.echo(
        f"{pipeline} on {source}: {len(words):,} docs, {n_sents:,} sentences, "
        f"{n_words:,} words, batch "
        f"{batch_size}, {torch.get_num_threads()} torch threads, median of {repeats}"
    )
    typer.echo("| decoder | F1 / acc | sentences/s | words/s | × first |")
    typer.echo("|---|---:|---:|---:|---:|")
    for r in rows:
        metric = r["ents_f"] if r["ents_f"] is not None else r["tag_acc"]
        typer.echo(
            f"| {r['decoder']} | {100 * metric:.2f} | {r['sentences_per_s']:,.0f} | "
            f"{r['words_per_s']:,.0f} | {r['sentences_per_s'] / base:.1f} |"
        )
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(
            json.dumps(
                {
                    "pipeline": str(pipeline),
                    "data": source,
                    "docs": len(words),
                    "sentences": n_sents,
                    "batch_size": batch_size,
                    "torch_threads": torch.get_num_threads(),
                    "rows": rows,
                },
                indent=2,
            )
        )
        logger.info("pipe_speed: wrote %s", output)


def describe(ds: cli.Dataset) -> str:
    """``NAME[:PATH]/SPLIT`` of a dataset split, as the JSON's ``data``."""
    where = f"{ds.name}:{ds.path}" if ds.path else ds.name
    return f"{where}/{ds.split}"


if __name__ == "__main__":
    cli.run_script(main, "pipe_speed")
