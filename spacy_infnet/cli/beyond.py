"""``bench-beyond``: what the paper does not measure, on one trained pipeline — the hybrid
decoder's speed–accuracy curve through ``nlp.pipe``, the calibration of its confidence scores
(ECE and a reliability diagram) and the oracle score of k-best Viterbi lists; see
:mod:`spacy_infnet.bench.beyond`."""

import json
from pathlib import Path
from typing import Annotated

import typer
from wasabi import msg

from ._util import (
    Arg,
    Dataset,
    Opt,
    check_pipeline,
    dataset_options,
    load_examples,
    parse_int_list,
    user_errors,
)

THRESHOLDS_HELP = "hybrid thresholds τ, comma-separated (empty: no curve)"
KS_HELP = "k of the k-best oracle, comma-separated (empty: none)"
CALIBRATE_HELP = "decoders whose confidence is calibrated, comma-separated (empty: none)"


@user_errors("bench-beyond")
@dataset_options(required=True)
def bench_beyond_cli(
    pipeline: Annotated[Path, Arg(help="trained pipeline directory", show_default=False)],
    dataset: Dataset,
    thresholds: Annotated[str, Opt(help=THRESHOLDS_HELP)] = "0,0.5,0.7,0.8,0.9,0.95,0.99,0.999",
    ks: Annotated[str, Opt("--ks", help=KS_HELP)] = "1,5,10",
    calibrate: Annotated[str, Opt(help=CALIBRATE_HELP)] = "viterbi,infnet",
    batch_size: Annotated[int, Opt("--batch-size", "-b", help="nlp.pipe batch size")] = 10,
    repeats: Annotated[int, Opt(help="timed passes of the curve (median)")] = 3,
    limit: Annotated[int, Opt(help="first N sentences only (0: all)")] = 0,
    threads: Annotated[int, Opt(help="torch threads")] = 1,
    fit_temperature: Annotated[
        bool, Opt(help="also calibrate at the temperature fit on the validation split")
    ] = False,
    output: Annotated[Path, Opt(help="JSON; .md and .png beside it")] = Path("beyond.json"),
) -> None:
    """Hybrid curve, confidence calibration and k-best oracle of one pipeline."""
    import torch

    from ..bench import beyond, cpu_model
    from ..pipeline.files import atomic_write

    check_pipeline(pipeline)
    torch.set_num_threads(threads)
    nlp = beyond.load(pipeline)
    task = nlp.get_pipe("infnet_tagger").task
    gold = [eg.reference for eg in load_examples(nlp, task, dataset)]
    if limit:
        gold = gold[:limit]
    output.parent.mkdir(parents=True, exist_ok=True)
    env = (
        f"{cpu_model()}, {torch.get_num_threads()} torch thread(s), nlp.pipe batch {batch_size}, "
        f"{len(gold):,} sentences, median of {repeats} passes"
    )
    where = f"{dataset.name}:{dataset.path}" if dataset.path else dataset.name
    results = {"pipeline": str(pipeline), "data": f"{where}/{dataset.split}", "environment": env}
    taus = [float(t) for t in thresholds.split(",") if t.strip()]
    written = [output, output.with_suffix(".md")]
    if taus:
        results["hybrid_curve"] = beyond.hybrid_curve(nlp, gold, taus, batch_size, repeats)
        png = output.with_name(f"{output.stem}_hybrid.png")
        written.append(beyond.curve_figure(results["hybrid_curve"], png, f"{pipeline}: {env}"))
    results["calibration"] = []
    if fit_temperature:
        results["temperatures"] = []
    for name in [d.strip() for d in calibrate.split(",") if d.strip()]:
        png = output.with_name(f"{output.stem}_reliability_{name}.png")
        results["calibration"].append(beyond.calibration(nlp, gold, name, diagram=png))
        written.append(png)
        if fit_temperature:
            dev = Dataset(dataset.name, dataset.path, "validation", dataset.options, dataset.scheme)
            dev_gold = [eg.reference for eg in load_examples(nlp, task, dev)]
            fit = beyond.fit_temperature(nlp, dev_gold, name)
            results["temperatures"].append(fit)
            png = output.with_name(f"{output.stem}_reliability_{name}_fit.png")
            cal = beyond.calibration(nlp, gold, name, diagram=png, temperature=fit["temperature"])
            results["calibration"].append(cal)
            written.append(png)
    k_list = parse_int_list(ks, "--ks")
    if k_list:
        results["oracle"] = beyond.oracle(nlp, gold, k_list)
    atomic_write(output, json.dumps(results, indent=2).encode("utf8"))
    text = beyond.markdown(results)
    atomic_write(output.with_suffix(".md"), text.encode("utf8"))
    typer.echo(text)
    msg.good("wrote " + ", ".join(str(p) for p in written))
