"""The inference network of a pipeline run by onnxruntime against PyTorch: (a) whether the tags
are the same on a whole dataset split, (b) the latency of decoding one sentence at a time,
(c) the latency of ``nlp(text)`` for one sentence with the infnet decoder's two backends.

    python recipes/onnx_speed.py runs/pos/model-best --dataset twitter_pos --output \
        runs/pos/onnx_speed.json
    python recipes/onnx_speed.py runs/ner/model-best --dataset conll2003 \
        --path ../shared/data/conll2003

The network is exported (:func:`spacy_infnet.serving.export_infnet`) to ``--onnx`` or to a
temporary file.  (a) decodes the split in batches of ``--batch-size`` with the pipeline's
inference-network decoder (its rounding, or ``--rounding``) and with the ONNX graph plus the same rounding, and
counts the real tokens whose tags differ.  (b) decodes each of the first ``--singles`` sentences
of the split alone, ``--repeats`` times, PyTorch and ONNX alternating, timing encode + network +
rounding (after ``--warmup`` untimed ones), and reports the median (p50) and p90 of the
per-sentence times in milliseconds, with the network + rounding part alone beside them.  Both
run on ``--threads`` threads (torch intra-op threads and onnxruntime's).  (c) runs the whole
pipeline (tokenizer, tagger, annotations) on the same sentences joined by spaces, loaded twice:
``backend = "torch"`` and ``backend = "onnx"`` (which exports Ψ on its first call, a warm-up).
The two pipelines take turns in blocks of ``--block`` consecutive sentences (the first block
torch then ONNX, the next ONNX then torch, ...), so that both see the same sentences, each
sentence new to each pipeline's tokenizer cache, and drift over the run cancels.  With
``--block 1`` they alternate on every sentence; then each call finds the CPU caches holding the
other backend's working set, which no server running one backend sees (and which costs the
faster backend relatively more).
"""

from __future__ import annotations

import json
import logging
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import spacy
import torch
import typer

from spacy_infnet.cli import _util as cli
from spacy_infnet.core.decoders import InferenceNetworkDecoder
from spacy_infnet.pipeline.files import atomic_write
from spacy_infnet.serving import OnnxInfnet, export_infnet, tags_from_logits

logger = logging.getLogger("spacy.infnet")


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


@cli.user_errors("onnx_speed")
@cli.dataset_options(required=True)
def main(
    pipeline: Annotated[Path, cli.Arg(help="trained pipeline directory", show_default=False)],
    dataset: cli.Dataset | None = None,
    onnx: Annotated[
        Path | None,
        cli.Opt(help="write the ONNX graph here (default: a temporary file)", show_default=False),
    ] = None,
    rounding: Annotated[
        str | None,
        cli.Opt(
            help="argmax or constrained (default: the pipeline's decoder's)", show_default=False
        ),
    ] = None,
    threads: Annotated[int, cli.Opt(help="torch and onnxruntime threads")] = 1,
    batch_size: Annotated[int, cli.Opt(help="sentences per batch in the agreement pass")] = 256,
    singles: Annotated[int, cli.Opt(help="sentences decoded one at a time for latency")] = 500,
    repeats: Annotated[int, cli.Opt(help="timed decodes of each single sentence")] = 1,
    warmup: Annotated[int, cli.Opt(help="untimed single decodes first")] = 20,
    block: Annotated[
        int, cli.Opt(help="(c): consecutive sentences per pipeline before the other's turn")
    ] = 50,
    output: Annotated[
        Path | None, cli.Opt(help="also write the figures as JSON", show_default=False)
    ] = None,
) -> None:
    """Tag agreement and single-sentence latency of a pipeline's inference network, ONNX vs
    PyTorch."""
    cli.check_pipeline(pipeline)
    if block < 1:
        raise ValueError(f"--block must be ≥ 1, got {block}")
    torch.set_num_threads(threads)
    nlp = spacy.load(pipeline)
    component = nlp.get_pipe("infnet_tagger")
    model = component.torch_model
    if model is None or model.infnet is None or model.stage != "infnet":
        raise ValueError(f"{pipeline} has no trained inference network")
    model.eval()
    if rounding is None:
        rounding = getattr(component.decoder, "rounding", "argmax")
    decoder = InferenceNetworkDecoder(rounding=rounding)
    chars = model.reads_chars(decoder)
    examples = dataset.examples(nlp, component.task)
    words = [[t.text for t in eg.reference] for eg in examples]
    words = [w for w in words if w]
    with tempfile.TemporaryDirectory() as tmp:
        path = onnx if onnx is not None else Path(tmp) / "infnet.onnx"
        start = time.perf_counter()
        export_infnet(model, path)
        export_s = time.perf_counter() - start
        network = OnnxInfnet(path, threads=threads)
        network.check(model)
        size = path.stat().st_size
        logger.info("onnx_speed: exported %s (%.1f MB) in %.1f s", path, size / 1e6, export_s)

        # (a) agreement on the whole split, in batches
        n_tokens = mismatched = bad_sentences = 0
        max_gap = 0.0
        for i in range(0, len(words), batch_size):
            batch = model.encode(words[i : i + batch_size], chars=chars)
            with torch.no_grad():
                reference = model.infnet(batch)
                ours = decoder.decode(model, batch).tags
            logits = network.logits(batch)
            theirs = tags_from_logits(logits, batch.mask, rounding, model.energy)
            mask = batch.mask
            differ = (ours != theirs) & mask
            n_tokens += int(mask.sum())
            mismatched += int(differ.sum())
            bad_sentences += int(differ.any(dim=1).sum())
            gap = (torch.from_numpy(logits) - reference).abs()[mask]
            max_gap = max(max_gap, float(gap.max()) if gap.numel() else 0.0)

        # (b) one sentence at a time, PyTorch and ONNX alternating
        def run_torch(sentence: list[str]) -> tuple[list[int], float]:
            batch = model.encode([sentence], chars=chars)
            mid = time.perf_counter()
            tags = decoder.decode(model, batch).tags[0].tolist()
            return tags, mid

        def run_onnx(sentence: list[str]) -> tuple[list[int], float]:
            batch = model.encode([sentence], chars=chars)
            mid = time.perf_counter()
            logits = network.logits(batch)
            tags = tags_from_logits(logits, batch.mask, rounding, model.energy)[0].tolist()
            return tags, mid

        runners = {"torch": run_torch, "onnx": run_onnx}
        picked = words[:singles]
        for sentence in picked[:warmup]:
            for run in runners.values():
                run(sentence)
        total: dict[str, list[float]] = {name: [] for name in runners}
        network_s: dict[str, list[float]] = {name: [] for name in runners}
        single_mismatches = 0
        for k in range(repeats):
            for j, sentence in enumerate(picked):
                order = list(runners) if (j + k) % 2 == 0 else list(runners)[::-1]
                got = {}
                for name in order:
                    start = time.perf_counter()
                    tags, mid = runners[name](sentence)
                    end = time.perf_counter()
                    total[name].append(end - start)
                    network_s[name].append(end - mid)
                    got[name] = tags
                if k == 0:
                    single_mismatches += sum(a != b for a, b in zip(got["torch"], got["onnx"]))

    # (c) nlp(text) on one sentence, the whole pipeline (tokenizer, tagger, annotations), with
    # the infnet decoder on each backend; the two pipelines alternate
    decoder_cfg = {"@decoders": "spacy_infnet.InferenceNetwork.v1", "rounding": rounding}
    pipes = {
        name: spacy.load(
            pipeline,
            config={"components": {"infnet_tagger": {"decoder": {**decoder_cfg, "backend": name}}}},
        )
        for name in ("torch", "onnx")
    }
    texts = [" ".join(sentence) for sentence in picked]
    for text in texts[:warmup]:
        for nlp_b in pipes.values():
            nlp_b(text)
    whole: dict[str, list[float]] = {name: [] for name in pipes}
    for k in range(repeats):
        for j, lo in enumerate(range(0, len(texts), block)):
            order = list(pipes) if (j + k) % 2 == 0 else list(pipes)[::-1]
            for name in order:
                for text in texts[lo : lo + block]:
                    start = time.perf_counter()
                    pipes[name](text)
                    whole[name].append(time.perf_counter() - start)
    latency = {
        name: {
            "nlp_p50_ms": 1e3 * statistics.median(whole[name]),
            "p50_ms": 1e3 * statistics.median(total[name]),
            "p90_ms": 1e3 * _percentile(total[name], 90),
            "mean_ms": 1e3 * statistics.fmean(total[name]),
            "network_p50_ms": 1e3 * statistics.median(network_s[name]),
        }
        for name in runners
    }
    where = f"{dataset.name}:{dataset.path}" if dataset.path else dataset.name
    source = f"{where}/{dataset.split}"
    report = {
        "pipeline": str(pipeline),
        "data": source,
        "rounding": rounding,
        "threads": threads,
        "torch_threads": torch.get_num_threads(),
        "onnx_bytes": size,
        "export_seconds": export_s,
        "agreement": {
            "sentences": len(words),
            "tokens": n_tokens,
            "mismatched_tokens": mismatched,
            "mismatched_sentences": bad_sentences,
            "max_abs_logit_diff": max_gap,
            "batch_size": batch_size,
        },
        "latency": {
            "sentences": len(picked),
            "repeats": repeats,
            "warmup": warmup,
            "block": block,
            "mean_tokens": statistics.fmean(map(len, picked)) if picked else 0.0,
            "single_mismatched_tokens": single_mismatches,
            **latency,
            "speedup_p50": latency["torch"]["p50_ms"] / latency["onnx"]["p50_ms"],
            "nlp_speedup_p50": latency["torch"]["nlp_p50_ms"] / latency["onnx"]["nlp_p50_ms"],
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": __import__("onnxruntime").__version__,
        },
    }
    agreement = report["agreement"]
    typer.echo(
        f"{pipeline} on {source}, rounding {rounding}, {threads} thread(s): "
        f"{agreement['mismatched_tokens']} of {agreement['tokens']:,} tokens differ "
        f"({agreement['mismatched_sentences']} of {agreement['sentences']:,} sentences), "
        f"max |Δlogit| {agreement['max_abs_logit_diff']:.1e}"
    )
    typer.echo(
        f"one sentence at a time ({len(picked)} sentences × {repeats}, "
        f"{report['latency']['mean_tokens']:.1f} tokens on average):"
    )
    typer.echo(
        "| runtime | nlp(text) p50 ms | encode + network + rounding: p50 ms | p90 ms | mean ms "
        "| network + rounding p50 ms |"
    )
    typer.echo("|---|---:|---:|---:|---:|---:|")
    for name, row in latency.items():
        typer.echo(
            f"| {name} | {row['nlp_p50_ms']:.3f} | {row['p50_ms']:.3f} | {row['p90_ms']:.3f} | "
            f"{row['mean_ms']:.3f} | {row['network_p50_ms']:.3f} |"
        )
    typer.echo(
        f"p50 speed-up of ONNX: nlp(text) {report['latency']['nlp_speedup_p50']:.2f}×, "
        f"encode + network + rounding {report['latency']['speedup_p50']:.2f}×"
    )
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(output, json.dumps(report, indent=2).encode("utf8"))
        logger.info("onnx_speed: wrote %s", output)


if __name__ == "__main__":
    cli.run_script(main, "onnx_speed")
