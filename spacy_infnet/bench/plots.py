"""Figures of the benchmark (matplotlib, written as PNG without a display).

* :func:`figure2` — Tu & Gimpel (2019) Figure 2: accuracy / F1 against total decode time of the
  split (seconds, log scale): gradient descent as a curve with each point labelled by its N, and
  one marker each for the inference network, instance-tailored infnet, warm-started GD and
  Viterbi.
* :func:`figure1` — Figure 1: accuracy / F1 against the inference network's hidden size H, one
  line per decoder, over several pipelines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MARKERS = {"viterbi": "*", "infnet": "o", "tailored": "s", "warm_gd": "^", "gd": "o"}
COLORS = {
    "viterbi": "black",
    "infnet": "tab:orange",
    "tailored": "tab:green",
    "warm_gd": "tab:red",
    "gd": "tab:blue",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _title(results: dict[str, Any], extra: str = "") -> str:
    env = results["environment"]
    return (
        f"{results['dataset']}/{results['split']}{extra} — {env['device']}, "
        f"batch {env['batch_size']}"
    )


def _finish(plt, fig, ax, xlabel: str, metric: str, title: str, path: str | Path) -> Path:
    """Label, grid and legend the axes, save the figure as PNG at ``path`` and close it."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric + " (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def figure2(pipeline: dict[str, Any], results: dict[str, Any], path: str | Path) -> Path:
    """Accuracy vs total decode time for one pipeline's rows; returns ``path``."""
    plt = _pyplot()
    rows = pipeline["rows"]
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    gd = sorted((r for r in rows if r["decoder"] == "gd"), key=lambda r: r["settings"]["steps"])
    if gd:
        ax.plot(
            [r["seconds"] for r in gd],
            [r["metric"] for r in gd],
            "o-.",
            markersize=4,
            color=COLORS["gd"],
            label="gradient descent",
        )
        for i, r in enumerate(gd):  # labels alternate below / above the curve
            ax.annotate(
                f"N={r['settings']['steps']}",
                (r["seconds"], r["metric"]),
                textcoords="offset points",
                xytext=(4, -11 if i % 2 == 0 else 5),
                fontsize=8,
                color="tab:blue",
            )
    for r in rows:
        if r["decoder"] == "gd":
            continue
        ax.plot(
            r["seconds"],
            r["metric"],
            MARKERS.get(r["decoder"], "x"),
            color=COLORS.get(r["decoder"]),
            markersize=12 if r["decoder"] == "viterbi" else 8,
            label=r["method"],
        )
    ax.set_xscale("log")
    xlabel = f"total decode time of {pipeline['sentences']:,} sentences (s, log scale)"
    return _finish(plt, fig, ax, xlabel, rows[0]["metric_name"], _title(results), path)


def figure1(results: dict[str, Any], path: str | Path) -> Path | None:
    """Accuracy vs inference-network hidden size over the pipelines; None when fewer than two
    pipelines have an inference network."""
    points: dict[str, list[tuple[int, float]]] = {}
    for p in results["pipelines"]:
        if p["infnet"] is None:
            continue
        for r in p["rows"]:
            points.setdefault(r["method"], []).append((p["infnet"]["hidden_size"], r["metric"]))
    if sum(1 for p in results["pipelines"] if p["infnet"] is not None) < 2:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for method, pts in points.items():
        pts.sort()
        ax.plot([h for h, _ in pts], [m for _, m in pts], "o-", label=method)
    ax.set_xscale("log", base=2)
    xlabel = "inference network hidden size H (log scale)"
    metric = results["pipelines"][0]["rows"][0]["metric_name"]
    return _finish(plt, fig, ax, xlabel, metric, _title(results), path)
