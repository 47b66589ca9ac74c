"""Timing, agreement, the benchmark grid (:func:`run_benchmark`) and its Markdown report."""

from __future__ import annotations

import gc
import importlib.metadata
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from spacy_infnet.bench import cpu_model
from spacy_infnet.core.crf import sequence_score

from .peers import PEERS, OursDecoder, PeerSkipped, make_decoder
from .problems import (
    MIN_LENGTH,
    Problem,
    load_tagger,
    load_test_sentences,
    pipeline_problem,
    random_problem,
    sample_lengths,
    twitter_train_lengths,
)

__all__ = [
    "TIE_RTOL",
    "agreement",
    "bench_cell",
    "environment",
    "markdown",
    "run_benchmark",
    "time_decoder",
]

logger = logging.getLogger("spacy.infnet")

TIE_RTOL = 1e-4
# A first run extrapolated past this multiple of the budget is "clearly" over it.
_CLEAR_MARGIN = 1.2


# --------------------------------------------------------------------------
# timing and agreement
# --------------------------------------------------------------------------
class _OverBudget(Exception):
    pass


def time_decoder(decoder, repeats: int, budget_s: float | None = None) -> dict:
    """Time ``decoder``: one guarded warm-up run, then ``repeats`` timed runs of the whole batch.

    Args:
        decoder: a callable ``decoder(progress) -> [B, T] tags`` with ``problem`` and ``chunks``.
        repeats: timed runs (≥ 1).
        budget_s: seconds allowed for the first run (see the package docstring); ``None`` = no
            limit.

    Returns:
        ``{"seconds": median (s), "times": [s, ...], "warmup_seconds": s, "tags": [B, T]}``.

    Raises:
        PeerSkipped: the first run is over the time budget (the reason names how far it got).
    """
    B = decoder.problem.batch_size
    start = time.perf_counter()

    def guard(done: int, frac: float) -> None:
        elapsed = time.perf_counter() - start
        estimate = elapsed / max(frac, 1e-12)
        if elapsed > budget_s or (frac < 1.0 and estimate > _CLEAR_MARGIN * budget_s):
            raise _OverBudget(done, elapsed, estimate)

    try:
        tags = decoder(guard if budget_s is not None else None)
    except _OverBudget as over:
        done, elapsed, estimate = over.args
        raise PeerSkipped(
            f"skipped: over time budget (first {done} of {B} sentences took {elapsed:.1f} s)",
            sentences_done=done,
            elapsed_seconds=elapsed,
            extrapolated_seconds=estimate,
            budget_seconds=budget_s,
        ) from None
    warmup = time.perf_counter() - start
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        tags = decoder(None)
        times.append(time.perf_counter() - t0)
    return {
        "seconds": statistics.median(times),
        "times": times,
        "warmup_seconds": warmup,
        "tags": tags,
    }


def agreement(
    problem: Problem, ours: Tensor, peers: dict[str, Tensor], rtol: float = TIE_RTOL
) -> dict:
    """Compare the peers' paths with ours, counting score ties.

    Args:
        problem: the potentials.
        ours: ``[B, T]`` our tags.
        peers: peer name → ``[B, T]`` tags (only real positions are compared).
        rtol: paths whose scores (float64 ``sequence_score``) differ by at most
            ``rtol · max(|a|, |b|, 1)`` count as ties.

    Returns:
        ``{"compared": [names], "batch": B, "identical": k, "ties": t, "disagree": d,
        "all_agree": bool | None (None when no peer ran), "rtol": rtol,
        "per_peer": {name: {"identical", "ties", "disagree", "max_rel_gap"}}}`` where a row is
        identical when every peer returned our path, a tie when every differing path is a tie.
    """
    p = problem
    B = p.batch_size
    dt = torch.float64
    pot = (p.emissions.to(dt), p.transitions.to(dt))
    ends = (p.start_transitions.to(dt), p.end_transitions.to(dt))

    def score(tags: Tensor) -> Tensor:
        return sequence_score(pot[0], pot[1], tags, p.mask, ends[0], ends[1])

    ours_score = score(ours)
    all_same = torch.ones(B, dtype=torch.bool)
    all_ok = torch.ones(B, dtype=torch.bool)
    per_peer = {}
    for name, tags in peers.items():
        same = ((tags == ours) | ~p.mask).all(dim=1)
        peer_score = score(tags)
        scale = torch.maximum(peer_score.abs(), ours_score.abs()).clamp_min(1.0)
        gap = (peer_score - ours_score).abs() / scale
        ok = same | (gap <= rtol)
        all_same &= same
        all_ok &= ok
        per_peer[name] = {
            "identical": int(same.sum()),
            "ties": int((ok & ~same).sum()),
            "disagree": int((~ok).sum()),
            "max_rel_gap": float(gap.max()) if B else 0.0,
        }
    disagree = int((~all_ok).sum())
    return {
        "compared": list(peers),
        "batch": B,
        "identical": int(all_same.sum()),
        "ties": int((all_ok & ~all_same).sum()),
        "disagree": disagree,
        "all_agree": (disagree == 0) if peers else None,
        "rtol": rtol,
        "per_peer": per_peer,
    }


def bench_cell(
    problem: Problem,
    repeats: int = 3,
    peers: Sequence[str] = PEERS,
    peer_time_budget: float | None = 120.0,
    torch_struct_max_gib: float = 2.0,
) -> dict:
    """Time ours and the peers on one problem and check that they agree.

    Returns:
        a row: ``source``, ``labels`` (L), ``batch`` (B), ``max_length``, ``tokens``, then
        ``ours`` and one entry per peer, each ``{"status": "ok", "seconds", "times",
        "warmup_seconds", "chunks"}`` (peers also ``"ratio"`` = peer s / ours s) or
        ``{"status": "skipped", "reason", ...}``, ``agreement`` (see :func:`agreement`) and
        ``cell_seconds`` (wall time of the whole cell, timing and agreement check included).
    """
    start = time.perf_counter()
    row = {
        "source": problem.source,
        "labels": problem.num_labels,
        "batch": problem.batch_size,
        "max_length": problem.max_length,
        "tokens": int(problem.lengths.sum()),
    }
    ours_timing = time_decoder(OursDecoder(problem), repeats)
    ours_tags = ours_timing.pop("tags")
    row["ours"] = {"status": "ok", **ours_timing, "chunks": 1}
    peer_tags = {}
    for name in peers:
        try:
            decoder = make_decoder(name, problem, torch_struct_max_gib)
            timing = time_decoder(decoder, repeats, peer_time_budget)
        except PeerSkipped as skip:
            row[name] = {"status": "skipped", "reason": skip.reason, **skip.details}
        else:
            peer_tags[name] = timing.pop("tags")
            row[name] = {
                "status": "ok",
                **timing,
                "ratio": timing["seconds"] / ours_timing["seconds"],
                "chunks": decoder.chunks,
            }
        decoder = None
        gc.collect()
    row["agreement"] = agreement(problem, ours_tags, peer_tags)
    row["cell_seconds"] = time.perf_counter() - start
    return row


# --------------------------------------------------------------------------
# the grid
# --------------------------------------------------------------------------
def environment() -> dict:
    """Torch version, threads, CPU model (``/proc/cpuinfo`` if present), platform, peers."""
    versions = {}
    for dist in ("pytorch-crf", "torch-struct"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "peer_versions": versions,
        "numba_kernel": _numba_version(),
    }


def _numba_version() -> str | None:
    """numba's version when our compiled CPU Viterbi kernel is available, else None."""
    from spacy_infnet.core import viterbi_cpu

    return importlib.metadata.version("numba") if viterbi_cpu.available() else None


def _pipeline_label(directory: str) -> str:
    path = Path(directory)
    return path.parent.name if path.name in ("model-best", "model-last") else path.name


def run_benchmark(
    labels: Sequence[int] = (17, 25, 321, 400),
    batch_sizes: Sequence[int] = (1, 10, 100, 1000),
    repeats: int = 3,
    seed: int = 0,
    pipelines: Sequence[tuple[str, str, str | None]] = (),
    random: bool = True,
    peers: Sequence[str] = PEERS,
    peer_time_budget: float | None = 120.0,
    torch_struct_max_gib: float = 2.0,
    progress: bool = True,
) -> dict:
    """Run the grid: random potentials for every ``L × B``, then every pipeline for every ``B``.

    Args:
        labels: label counts for the random potentials.
        batch_sizes: sentences per batch.
        repeats: timed runs per decoder and cell (after one warm-up).
        seed: seed of the lengths and random potentials.
        pipelines: ``(directory, data set name, data path or None)`` triples.
        random: include the random potentials.
        peers: which peers to run (subset of :data:`PEERS`).
        peer_time_budget: seconds for a peer's first run of a cell (``None`` = no limit).
        torch_struct_max_gib: torch-struct's memory cap per chunk (GiB).
        progress: show a tqdm bar over the cells (stderr).

    Returns:
        ``{"environment": ..., "settings": ..., "rows": [row, ...], "wall_seconds": s}``
        (JSON-serialisable), rows as in :func:`bench_cell`.

    Raises:
        ValueError: an unknown peer; whatever loading a pipeline or data set raises.
    """
    from tqdm.auto import tqdm

    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise ValueError(f"unknown peer(s) {unknown}; known: {', '.join(PEERS)}")
    cells: list[tuple] = []
    if random:
        cells += [("random", L, B) for L in labels for B in batch_sizes]
    cells += [("pipeline", i, B) for i in range(len(pipelines)) for B in batch_sizes]
    settings = {
        "labels": list(labels),
        "batch_sizes": list(batch_sizes),
        "repeats": repeats,
        "warmup_runs": 1,
        "seed": seed,
        "threads": torch.get_num_threads(),
        "random": random,
        "pipelines": [
            {"directory": str(d), "data": name, "data_path": path} for d, name, path in pipelines
        ],
        "peers": list(peers),
        "peer_time_budget_s": peer_time_budget,
        "torch_struct_max_gib": torch_struct_max_gib,
        "min_length": MIN_LENGTH,
        "lengths": "random: sampled from the Twitter POS training set; pipelines: first B test "
        "sentences (cycled); only sentences of >= 2 tokens (torch-struct needs an edge)",
        "tie_rtol": TIE_RTOL,
    }
    logger.info(
        "Viterbi vs %s: %d cell(s), %d timed run(s) each, %d torch thread(s)",
        ", ".join(peers) or "no peer",
        len(cells),
        repeats,
        torch.get_num_threads(),
    )
    start = time.perf_counter()
    rows = []
    pool = None
    loaded: dict[int, tuple] = {}
    bar = tqdm(cells, desc="bench-viterbi", unit="cell", disable=not progress, file=sys.stderr)
    for kind, key, B in bar:
        if kind == "random":
            bar.set_postfix_str(f"random L={key} B={B}")
            if pool is None:
                pool = twitter_train_lengths()
            lengths = sample_lengths(pool, B, seed * 1_000_003 + B)
            problem = random_problem(key, lengths, seed * 1_000_003 + key * 10_007 + B)
        else:
            directory, name, path = pipelines[key]
            bar.set_postfix_str(f"{_pipeline_label(directory)} B={B}")
            if key not in loaded:
                logger.debug("loading pipeline %s and %s test sentences", directory, name)
                loaded[key] = (load_tagger(directory), load_test_sentences(name, path))
            comp, sentences = loaded[key]
            batch = [sentences[i % len(sentences)] for i in range(B)]
            source = f"pipeline {_pipeline_label(directory)} ({name} test)"
            problem = pipeline_problem(comp, batch, source)
        rows.append(bench_cell(problem, repeats, peers, peer_time_budget, torch_struct_max_gib))
        problem = None
        gc.collect()
    bar.close()
    return {
        "environment": environment(),
        "settings": settings,
        "rows": rows,
        "wall_seconds": time.perf_counter() - start,
    }


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------
def _fmt_seconds(s: float) -> str:
    return f"{s:.3g}" if s < 100 else f"{s:.0f}"


def _fmt_ratio(r: float) -> str:
    return f"×{r:.2f}" if r < 10 else f"×{r:.1f}" if r < 100 else f"×{r:.0f}"


def _peer_cell(entry: dict | None) -> str:
    if entry is None:
        return "not run"
    if entry["status"] != "ok":
        return entry["reason"].replace("|", "/")
    extra = f"; {entry['chunks']} chunks" if entry.get("chunks", 1) > 1 else ""
    return f"{_fmt_seconds(entry['seconds'])} ({_fmt_ratio(entry['ratio'])}{extra})"


def _agreement_cell(agree: dict) -> str:
    if not agree["compared"]:
        return "n/a (no peer ran)"
    text = f"identical paths {agree['identical']}/{agree['batch']}, ties {agree['ties']}"
    if agree["disagree"]:
        text += f", DISAGREE {agree['disagree']}"
    return text


def markdown(results: dict) -> str:
    """A Markdown report of :func:`run_benchmark`'s results: a header and one table row per cell.

    Columns: potentials source, L, B, ours s, pytorch-crf s (×ratio), torch-struct s (×ratio),
    agreement.  Seconds are medians per whole batch; ratio = peer s / ours s.
    """
    env, st = results["environment"], results["settings"]
    versions = ", ".join(f"{k} {v or 'not installed'}" for k, v in env["peer_versions"].items())
    budget = st["peer_time_budget_s"]
    budget = "no limit" if budget is None else f"{budget:g} s"
    lines = [
        "# Viterbi: ours vs pytorch-crf vs torch-struct",
        "",
        (
            f"- Environment: torch {env['torch']}, {env['threads']} thread(s), CPU "
            f"{env['cpu'] or 'unknown'} ({env['cpu_count']} cores), {env['platform']}; "
            f"{versions}."
        ),
        (
            f"- Seconds: median of {st['repeats']} timed runs of the whole batch after 1 "
            "warm-up (float32, CPU); ratio = peer seconds / our seconds (×5: ours is 5 times "
            "faster)."
        ),
        f"- Sentence lengths: {st['lengths']}; seed {st['seed']}.",
        f"- Wall time of the whole benchmark: {results.get('wall_seconds', float('nan')):.0f} s.",
        (
            "- torch-struct: where the batch would exceed the memory cap of "
            f"{st['torch_struct_max_gib']:g} GiB (--torch-struct-max-gib) it is sorted by "
            "length and chunked (time = sum over the chunks; the number of chunks is shown); "
            "a sentence alone over the cap skips the cell."
        ),
        (
            "- Time budget: a peer whose first run of a cell took, or was extrapolated to take, "
            f"more than {budget} (--peer-time-budget) is stopped on that cell and shown as "
            "skipped; no extrapolated figure is in the table."
        ),
        (
            "- Agreement: identical paths = all peers that ran returned our path; ties = a "
            f"different path with a score equal to ours within {st['tie_rtol']:g} relative."
        ),
        "",
        (
            "| potentials | L | B | ours s | pytorch-crf s (×ratio) | torch-struct s (×ratio) "
            "| ours, torch path s (×ratio) | agreement |"
        ),
        "|---|---:|---:|---:|---|---|---|---|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| {row['source']} | {row['labels']} | {row['batch']} "
            f"| {_fmt_seconds(row['ours']['seconds'])} "
            f"| {_peer_cell(row.get('pytorch-crf'))} | {_peer_cell(row.get('torch-struct'))} "
            f"| {_peer_cell(row.get('ours-torch'))} | {_agreement_cell(row['agreement'])} |"
        )
    return "\n".join(lines) + "\n"
