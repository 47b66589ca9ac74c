"""``bench``: speed, accuracy / F1, average energy and search error of every decoder of one or
more trained pipelines on a dataset split (Tu & Gimpel 2019, Tables 3 and 6, Figures 1 and 2),
with Markdown and PNG figures; see :mod:`spacy_infnet.bench.harness`."""

from pathlib import Path
from typing import Annotated

import typer
from wasabi import msg

from ._util import (
    DECODER_HELP,
    Arg,
    Dataset,
    Opt,
    check_decoder,
    check_pipeline,
    dataset_options,
    parse_decoder_settings,
    parse_int_list,
    parse_names,
    user_errors,
)

PIPELINES_HELP = "trained pipeline directories (several: Figure 1)"
DECODERS_HELP = (
    f"comma-separated; {DECODER_HELP} (default: the paper's five, all but infnet_constrained)"
)
SET_HELP = "override a decoder setting, e.g. gd.learning_rate=100; repeatable"
TUNE_HELP = "pick η of gd (per N), tailored and warm_gd by validation score over the paper's grid"
LIKELIHOOD_HELP = "§6.2: Spearman ρ of search error vs LSTM-LM perplexity (trains two small LMs)"


@user_errors("bench")
@dataset_options(required=True)
def bench_cli(
    pipelines: Annotated[list[Path], Arg(help=PIPELINES_HELP, show_default=False)],
    dataset: Dataset,
    decoders: Annotated[str | None, Opt(help=DECODERS_HELP, show_default=False)] = None,
    batch_size: Annotated[int, Opt("--batch-size", "-b", help="sentences per predict call")] = 10,
    device: Annotated[str, Opt(help="cpu or cuda")] = "cpu",
    output: Annotated[Path, Opt(help="JSON; the .md and .png are written beside it")] = Path(
        "results.json"
    ),
    repeats: Annotated[int, Opt(help="timed passes (the median is reported)")] = 3,
    warmup: Annotated[int, Opt(help="untimed batches first")] = 3,
    limit: Annotated[int, Opt(help="first N sentences only (0: all)")] = 0,
    gd_steps: Annotated[
        str | None, Opt(help="GD curve, e.g. 5,10,20,50", show_default=False)
    ] = None,
    set_: Annotated[
        list[str] | None,
        Opt("--set", metavar="DECODER.SETTING=VALUE", help=SET_HELP, show_default=False),
    ] = None,
    tune_learning_rates: Annotated[bool, Opt(help=TUNE_HELP)] = False,
    tune_limit: Annotated[int, Opt(help="validation sentences for tuning")] = 500,
    threads: Annotated[
        int | None, Opt(help="torch threads (default: torch's)", show_default=False)
    ] = None,
    likelihood: Annotated[bool, Opt(help=LIKELIHOOD_HELP)] = False,
) -> None:
    """Speed, accuracy, energy and search error of every decoder (Tables 3 and 6)."""
    from ..bench.harness import BenchSettings, markdown, run_bench, write_outputs

    data = dataset
    names = parse_names(decoders)
    for name in names:
        check_decoder(name)
    settings = BenchSettings(
        dataset=data.name,
        path=data.path,
        dataset_options=data.options,
        split=data.split,
        batch_size=batch_size,
        device=device,
        repeats=repeats,
        warmup=warmup,
        limit=limit,
        gd_steps=parse_int_list(gd_steps, "--gd-steps"),
        options=parse_decoder_settings(set_),
        tune_learning_rates=tune_learning_rates,
        tune_limit=tune_limit,
        threads=threads,
        scheme=data.scheme,
        likelihood=likelihood,
    )
    if names:
        settings.decoders = names
    settings.check()
    for pipeline in pipelines:
        check_pipeline(pipeline)
    results = run_bench([str(p) for p in pipelines], settings)
    paths = write_outputs(results, output)
    typer.echo(markdown(results))
    msg.good("wrote " + ", ".join(str(p) for p in paths))
