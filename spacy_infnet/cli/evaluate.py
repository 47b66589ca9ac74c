"""``evaluate``: spaCy's scores of a trained pipeline on a DocBin or on a dataset split, with
the decoder of its ``infnet_tagger`` swapped at load time (no retraining)."""

import json
from pathlib import Path
from typing import Annotated

import typer
from wasabi import msg

from ._util import (
    Arg,
    Dataset,
    DatasetOpt,
    DecoderOpt,
    DocumentsOpt,
    GpuOpt,
    Opt,
    OptionOpt,
    PathOpt,
    SchemeOpt,
    SplitOpt,
    check_file,
    check_pipeline,
    user_errors,
)

DATA_HELP = ".spacy file (see convert); or name a dataset with --dataset"


@user_errors("evaluate")
def evaluate_cli(
    pipeline: Annotated[Path, Arg(help="trained pipeline directory", show_default=False)],
    data: Annotated[Path | None, Arg(help=DATA_HELP, show_default=False)] = None,
    dataset: DatasetOpt = None,
    path: PathOpt = None,
    option: OptionOpt = None,
    split: SplitOpt = "test",
    scheme: SchemeOpt = None,
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
    from spacy.training import Corpus

    from ..pipeline.readers import dataset_examples
    from ..pipeline.registry import decoder_block

    overrides = {}
    if decoder is not None:
        overrides = {"components": {component: {"decoder": decoder_block(decoder)}}}
    if data is not None and dataset is not None:
        raise ValueError("pass a .spacy file or --dataset NAME, not both")
    if data is None and dataset is None:
        raise ValueError("nothing to evaluate on: pass a .spacy file (see convert) or --dataset")
    ds = Dataset.from_cli(dataset, path, option, split) if dataset is not None else None
    check_pipeline(pipeline)
    if data is not None:
        check_file(data, hint=" (write one with `python -m spacy_infnet convert`)")
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(pipeline, config=overrides)
    if component not in nlp.pipe_names:
        raise ValueError(f"{pipeline} has no component {component!r}: it has {nlp.pipe_names}")
    if ds is None:
        examples = list(Corpus(data)(nlp))
    else:
        comp = nlp.get_pipe(component)
        examples = list(
            dataset_examples(
                nlp,
                ds.name,
                ds.split,
                path=ds.path,
                task=comp.task,
                scheme=ds.scheme(scheme) if comp.task == "ner" else "bioes",
                options=ds.options,
                documents=documents,
            )
        )
    scores = nlp.evaluate(examples)
    text = json.dumps(scores, indent=2)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        msg.good(f"wrote {output}")
    typer.echo(text)
