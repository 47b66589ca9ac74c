"""``evaluate``: spaCy's scores of a trained pipeline on a DocBin or on a dataset split, with
the decoder of its ``infnet_tagger`` swapped at load time (no retraining)."""

import json
from pathlib import Path
from typing import Annotated

import typer
from wasabi import msg

from ..pipeline.files import atomic_write
from ._util import (
    Arg,
    Dataset,
    DecoderOpt,
    DocumentsOpt,
    GpuOpt,
    Opt,
    check_pipeline,
    dataset_options,
    load_examples,
    user_errors,
)

DATA_HELP = ".spacy file (see convert); or name a dataset with --dataset"


@user_errors("evaluate")
@dataset_options()
def evaluate_cli(
    pipeline: Annotated[Path, Arg(help="trained pipeline directory", show_default=False)],
    data: Annotated[Path | None, Arg(help=DATA_HELP, show_default=False)] = None,
    dataset: Dataset | None = None,
    documents: DocumentsOpt = False,
    decoder: DecoderOpt = None,
    component: Annotated[str, Opt(help="name of the infnet_tagger component")] = "infnet_tagger",
    gpu_id: GpuOpt = -1,
    output: Annotated[
        Path | None, Opt(help="also write the scores as JSON", show_default=False)
    ] = None,
) -> None:
    """Score a pipeline on a DocBin or a dataset split, optionally with another decoder."""
    import spacy

    from ..pipeline.registry import decoder_block

    overrides = {}
    if decoder is not None:
        overrides = {"components": {component: {"decoder": decoder_block(decoder)}}}
    check_pipeline(pipeline)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(pipeline, config=overrides)
    if component not in nlp.pipe_names:
        raise ValueError(f"{pipeline} has no component {component!r}: it has {nlp.pipe_names}")
    task = nlp.get_pipe(component).task
    examples = load_examples(nlp, task, dataset, data, documents=documents)
    scores = nlp.evaluate(examples)
    text = json.dumps(scores, indent=2)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(output, text.encode("utf8"))
        msg.good(f"wrote {output}")
    typer.echo(text)
