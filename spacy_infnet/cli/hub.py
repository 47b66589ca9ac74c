"""``export`` and ``push``: a trained pipeline as a Hugging Face Hub model repository (spaCy
pipeline, ``config.json`` with checksums, model card), written locally or uploaded; see
:mod:`spacy_infnet.hub`.  Benchmark results for the card must be those of the exported
pipeline (their recorded weights checksum is checked)."""

from pathlib import Path
from typing import Annotated

from wasabi import msg

from ._util import Arg, Opt, check_pipeline, user_errors

PIPELINE_HELP = "trained pipeline directory, e.g. runs/ner/model-best"
OUTPUT_HELP = "new or empty directory (or an earlier export, which is replaced)"
BENCH_HELP = "results JSON of `bench` on THIS pipeline, for the model card's metrics"
PRIVATE_HELP = "visibility of a new repository (default: the Hub's)"

PipelineArg = Annotated[Path, Arg(help=PIPELINE_HELP, show_default=False)]
BenchOpt = Annotated[Path | None, Opt(help=BENCH_HELP, show_default=False)]
LicenseOpt = Annotated[
    str | None, Opt(help="Hub license id for the card, e.g. mit", show_default=False)
]
WheelOpt = Annotated[bool, Opt(help="also build the `spacy package` wheel")]


@user_errors("export")
def export_cli(
    pipeline: PipelineArg,
    output: Annotated[Path, Arg(help=OUTPUT_HELP, show_default=False)],
    bench: BenchOpt = None,
    name: Annotated[
        str | None, Opt(help="model name (card title, wheel name)", show_default=False)
    ] = None,
    repo_id: Annotated[
        str | None, Opt(help="Hub id shown in the card's usage snippet", show_default=False)
    ] = None,
    license: LicenseOpt = None,
    wheel: WheelOpt = False,
    onnx: Annotated[
        bool, Opt(help="decode with the inference network on onnxruntime (writes infnet.onnx)")
    ] = False,
) -> None:
    """Write a Hugging Face Hub model repository of a trained pipeline."""
    from ..hub import build_wheel, save_pretrained

    check_pipeline(pipeline)
    out = save_pretrained(
        pipeline,
        output,
        bench=bench,
        model_name=name,
        repo_id=repo_id,
        license=license,
        onnx=onnx,
    )
    if wheel:
        msg.good(f"wrote {build_wheel(out, out, name=name)}")
    msg.good(
        f"wrote {out} (config.json, README.md, spaCy pipeline); load it with "
        f"spacy_infnet.from_pretrained({str(out)!r})"
    )


@user_errors("push")
def push_cli(
    pipeline: PipelineArg,
    repo_id: Annotated[str, Arg(help="ORG/NAME on the Hub (created if missing)")],
    bench: BenchOpt = None,
    private: Annotated[
        bool | None, Opt("--private/--public", help=PRIVATE_HELP, show_default=False)
    ] = None,
    token: Annotated[
        str | None, Opt(help="Hub token (default: `hf auth login`'s)", show_default=False)
    ] = None,
    revision: Annotated[str | None, Opt(help="branch to commit to", show_default=False)] = None,
    license: LicenseOpt = None,
    wheel: WheelOpt = False,
) -> None:
    """Export a trained pipeline and upload it to the Hugging Face Hub."""
    from ..hub import push_to_hub

    check_pipeline(pipeline)
    info = push_to_hub(
        pipeline,
        repo_id,
        token=token,
        private=private,
        revision=revision,
        bench=bench,
        license=license,
        wheel=wheel,
    )
    msg.good(f"uploaded to {getattr(info, 'commit_url', info)}")
