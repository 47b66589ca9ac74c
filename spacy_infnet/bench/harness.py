"""``python -m spacy_infnet bench``: every inference method on one trained energy.

Tu & Gimpel (2019) compare decoders of the same energy E_Θ on accuracy, speed, average energy
and search error (Tables 3 and 6, Figure 2; Figure 1 varies the inference network's hidden
size).  For each decoder this harness measures, on one split of a dataset:

* **speed** — examples/s and tokens/s of ``InfnetTagger.predict`` (token encoding + decoding,
  as in ``nlp.pipe`` without tokenisation and annotation), over the whole split in batches of
  ``batch_size``: ``warmup`` batches first, then ``repeats`` timed passes, the median pass
  reported; CUDA is synchronised before every clock read;
* **accuracy / F1** — token accuracy (tag tasks) or conlleval entity F1 (NER) by the seqeval
  ``evaluate`` module shipped in :mod:`spacy_infnet.bench.metrics`;
* **average energy** — mean over sentences of E_Θ(x, ŷ) for the discrete output, computed here
  for every decoder from its tags, with the energy's hard tag-scheme constraints;
* **search error** — per sentence E_Θ(x, ŷ) − E_Θ(x, ŷ_Viterbi) ≥ 0 (§6), by
  :func:`spacy_infnet.core.search_error.search_errors`: its mean and the share of sentences
  with none; sentences *below* Viterbi's energy are counted too, and would be a bug.

Each pipeline entry of the JSON records ``"weights_sha256"``, the SHA-256 of the pipeline's
``infnet_tagger`` weights file (``<pipeline>/<component>/model.safetensors``), so that an export
(:func:`spacy_infnet.hub.save_pretrained`) can refuse figures measured on another pipeline.

Outputs: a JSON file with the raw figures (per-sentence search errors included) and the
environment, a Markdown table (one per pipeline), ``<stem>_figure2.png`` (accuracy vs total
decode time: the GD curve labelled by N, inference network, instance-tailored, warm-started GD,
Viterbi) and, for several pipelines, ``<stem>_figure1.png`` (accuracy vs inference-network
hidden size).  With ``likelihood=True`` it also trains the two §6.2 language models and reports
Spearman's ρ between perplexity and search error (:mod:`spacy_infnet.bench.likelihood`).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..core.schemes import convert_scheme, detect_scheme
from ..core.search_error import search_errors
from ..pipeline.checksum import weights_sha256
from ..pipeline.files import atomic_write
from ..pipeline.registry import DECODERS

logger = logging.getLogger("spacy.infnet")

#: Decoders run when none are named: the paper's five methods of :data:`DECODERS` with their
#: registry defaults; variants such as "infnet_constrained" and methods beyond the paper
#: ("hybrid": ``bench-beyond``) run on request.
BEYOND_THE_PAPER = ("hybrid",)
DEFAULT_DECODERS = tuple(
    name for name, entry in DECODERS.items() if not entry.settings and name not in BEYOND_THE_PAPER
)
#: Decoders whose learning rate ``tune_learning_rates`` picks on the validation split.
TUNABLE = ("gd", "tailored", "warm_gd")
#: The unknown-supertag label, always wrong (CCG, §5).
UNKNOWN_LABELS = {"ccgbank": "*"}


@dataclass
class BenchSettings:
    """Settings of one benchmark run (the CLI flags of ``bench``).

    Attributes:
        dataset: dataset name for :func:`spacy_infnet.data.load_dataset`.
        path: its data folder (None for the embedded Twitter POS data).
        dataset_options: keyword arguments of the loader, e.g. the file names of the
            ``conll`` loader (``{"train": "a.tsv", "validation": None, "test": "b.tsv"}``).
        split: the split decoded ("test", "validation" or "train").
        decoders: short decoder names, keys of
            :data:`spacy_infnet.pipeline.registry.DECODERS` (default:
            :data:`DEFAULT_DECODERS`).
        batch_size: sentences per ``predict`` call.
        device: "cpu" or "cuda".
        repeats: timed passes over the split (the median is reported).
        warmup: untimed batches before the timed passes.
        limit: decode only the first ``limit`` sentences (0: all).
        gd_steps: step counts N for the GD curve (empty: the configured N only).
        options: per decoder, settings overriding the pipeline's or the registry's defaults,
            e.g. ``{"gd": {"learning_rate": 100}}``.
        tune_learning_rates: pick η of GD (per N), tailoring and warm-started GD by dev score
            on the first ``tune_limit`` validation sentences, over the paper's grids.
        tune_limit: validation sentences used for tuning.
        threads: ``torch.set_num_threads`` (None: leave torch's default).
        scheme: the dataset's NER scheme ("bioes", "iob2"; None: detected from its labels).
        likelihood: run the §6.2 search-error-vs-likelihood analysis.
    """

    dataset: str
    path: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    split: str = "test"
    decoders: list[str] = field(default_factory=lambda: list(DEFAULT_DECODERS))
    batch_size: int = 10
    device: str = "cpu"
    repeats: int = 3
    warmup: int = 3
    limit: int = 0
    gd_steps: list[int] = field(default_factory=list)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    tune_learning_rates: bool = False
    tune_limit: int = 500
    threads: int | None = None
    scheme: str | None = None
    likelihood: bool = False

    def check(self) -> None:
        """Raises ValueError naming the offending setting."""
        unknown = [d for d in self.decoders if d not in DECODERS]
        if unknown:
            raise ValueError(
                f"unknown decoder(s) {unknown}: choose from {', '.join(DECODERS)} "
                "(comma-separated, e.g. --decoders viterbi,gd,infnet)"
            )
        for name in self.options:
            if name not in DECODERS:
                raise ValueError(f"--set {name}.…: unknown decoder {name!r}")
        if self.batch_size < 1 or self.repeats < 1 or self.warmup < 0 or self.limit < 0:
            raise ValueError(
                "batch_size and repeats must be ≥ 1, warmup and limit ≥ 0; got "
                f"batch_size={self.batch_size}, repeats={self.repeats}, warmup={self.warmup}, "
                f"limit={self.limit}"
            )
        if any(n < 0 for n in self.gd_steps):
            raise ValueError(f"gd_steps must be ≥ 0, got {self.gd_steps}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("device 'cuda' asked for, but torch sees no CUDA device")


# -- data -------------------------------------------------------------------------------------
def load_split(
    name: str,
    path: str | None,
    split: str,
    limit: int = 0,
    options: dict[str, Any] | None = None,
) -> tuple[list[list[str]], list[list[str]]]:
    """(words, gold label names) per non-empty sentence of
    ``load_dataset(name, path, **options)[split]``.

    Raises:
        ValueError: unknown dataset or split (the message lists the splits there are), or
            what the loader raises for its files.
        FileNotFoundError: a data file the loader looks for does not exist.
        TypeError: an option the loader does not take.
    """
    from ..data import load_dataset

    data = load_dataset(name, path, **(options or {}))
    if split not in data:
        raise ValueError(f"dataset {name!r} has no split {split!r}; it has {list(data)}")
    part = data[split]
    names = part.features["tags"].feature.names
    words, gold = [], []
    for tokens, tags in zip(part["tokens"], part["tags"]):
        if not tokens:
            continue
        words.append(list(tokens))
        gold.append([names[t] for t in tags])
        if limit and len(words) == limit:
            break
    return words, gold


def to_pipeline_scheme(gold: list[list[str]], source: str | None, target: str) -> list[list[str]]:
    """NER gold labels converted from the dataset's scheme (None: detected) to the pipeline's."""
    source = source or detect_scheme({lab for sent in gold for lab in sent})
    if source == target:
        return gold
    return [convert_scheme(sent, source, target) for sent in gold]


# -- pipelines --------------------------------------------------------------------------------
def load_tagger(pipeline: str | Path, device: str = "cpu"):
    """``(nlp, component)``: the spaCy pipeline in ``pipeline`` and its ``infnet_tagger``, with
    the energy and inference network moved to ``device`` and in eval mode (a freshly loaded
    energy is in training mode, dropout on).

    Raises:
        OSError: ``spacy.load`` cannot read the directory.
        ValueError: the pipeline has no ``infnet_tagger`` component.
    """
    import spacy

    nlp = spacy.load(pipeline)
    comps = [name for name, c in nlp.pipeline if c.__class__.__name__ == "InfnetTagger"]
    if not comps:
        raise ValueError(f"{pipeline}: no infnet_tagger component in {nlp.pipe_names}")
    comp = nlp.get_pipe(comps[0])
    comp.torch_model.to(torch.device(device)).eval()
    return nlp, comp


# -- decoders ---------------------------------------------------------------------------------
def decoder_settings(comp, name: str, steps: int | None, options: dict[str, Any]) -> dict:
    """Settings of decoder ``name`` (a key of :data:`DECODERS`): the pipeline's configured
    decoder's when it is the same registered method, else the registry defaults; then the
    table's settings of ``name`` (e.g. ``rounding="constrained"``), then ``options``, then
    ``steps``."""
    settings: dict[str, Any] = {}
    configured = DECODERS.get(comp.decoder.name)
    if configured is not None and configured.registered == DECODERS[name].registered:
        settings = {k: v for k, v in comp.decoder.config().items() if k != "name"}
    settings.update(DECODERS[name].settings)
    settings.update(options)
    if steps is not None:
        settings["steps"] = steps
    return settings


def build_decoder(name: str, settings: dict[str, Any]):
    """A decoder from its short name (a key of :data:`DECODERS`) and its complete settings
    (:func:`decoder_settings`), through spaCy's registry.

    Raises:
        ValueError: unknown name or invalid settings (``confection.ConfigValidationError``,
            a ValueError naming the field).
    """
    from spacy.util import registry

    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r}: choose from {', '.join(DECODERS)}")
    resolved = registry.resolve({"d": {"@decoders": DECODERS[name].registered, **settings}})
    return resolved["d"]


# -- measuring --------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_predict(
    comp,
    decoder,
    docs: list,
    batch_size: int,
    repeats: int,
    warmup: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[list[int]], list[float]]:
    """Run ``comp.predict`` with ``decoder`` over ``docs`` in batches.

    Returns:
        (label indices per doc from the first timed pass, seconds of each timed pass).
    """
    batches = [docs[i : i + batch_size] for i in range(0, len(docs), batch_size)]
    original = comp.decoder
    comp.decoder = decoder
    try:
        for batch in batches[:warmup]:
            comp.predict(batch)
        seconds, first = [], None
        for _ in range(repeats):
            preds: list[list[int]] = []
            _sync(comp.device)
            start = time.perf_counter()
            for batch in batches:
                preds += comp.predict(batch)
                if progress:
                    progress(1)
            _sync(comp.device)
            seconds.append(time.perf_counter() - start)
            first = first if first is not None else preds
    finally:
        comp.decoder = original
    return first, seconds


def encode_batches(comp, words: list[list[str]], size: int = 256) -> list:
    """The model's batches (characters included) of ``size`` sentences, on its device."""
    return [comp.torch_model.encode(words[i : i + size]) for i in range(0, len(words), size)]


def tune_learning_rate(comp, decoder, batches, dev_gold, score) -> float:
    """η with the best dev score for ``decoder`` at its N over the paper's grid
    (:data:`~spacy_infnet.core.tuning.PAPER_LEARNING_RATES`; instance tailoring:
    :data:`~spacy_infnet.core.tuning.TAILORED_LEARNING_RATES`).

    ``batches`` are the validation sentences encoded by :func:`encode_batches`, ``dev_gold``
    their gold label names; ``score(pred_names, gold_names)`` returns a dict with ``"metric"`` (see
    :func:`spacy_infnet.bench.metrics.score_labels`); ties go to the smaller η.
    """
    from ..core.tuning import (
        PAPER_LEARNING_RATES,
        TAILORED_LEARNING_RATES,
        dev_tuned,
        sweep,
    )

    grid = TAILORED_LEARNING_RATES if decoder.name == "tailored" else PAPER_LEARNING_RATES
    model = comp.torch_model.eval()
    results = sweep(decoder, model, batches, [decoder.steps], grid)
    labels = comp.labels

    def dev_score(tags: list[list[int]]) -> float:
        return score([[labels[i] for i in t] for t in tags], dev_gold)["metric"]

    (_, lr), _ = dev_tuned(results, dev_score)
    return lr


def environment(settings: BenchSettings) -> dict[str, Any]:
    """Device, library versions and run settings, for the JSON output."""
    import spacy

    from .. import __version__
    from . import cpu_model

    device = settings.device
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(device))
    else:
        name = cpu_model()
    return {
        "device": device,
        "device_name": name,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "spacy": spacy.__version__,
        "spacy_infnet": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "batch_size": settings.batch_size,
        "repeats": settings.repeats,
        "warmup_batches": settings.warmup,
    }


def bench_pipeline(
    pipeline: str | Path,
    settings: BenchSettings,
    data: tuple[list[list[str]], list[list[str]]],
    dev: tuple[list[list[str]], list[list[str]]] | None = None,
    log: Callable[[str], None] = logger.info,
) -> dict[str, Any]:
    """Benchmark every decoder of ``settings`` on one trained pipeline.

    Args:
        pipeline: a trained spaCy pipeline directory with an ``infnet_tagger``.
        settings: see :class:`BenchSettings`.
        data: (words, gold label names) of the benchmarked split.
        dev: the same for the validation split (needed when tuning learning rates).
        log: receives one line per decoder run (default: the "spacy.infnet" logger, INFO).

    Returns:
        {"pipeline", "weights_sha256" (hex SHA-256 of the component's weights file, see
        :func:`spacy_infnet.pipeline.checksum.weights_sha256`), "task", "labels", "infnet"
        (architecture and hidden size; None when the pipeline has no trained inference network),
        "rows": [one dict per decoder run], "skipped": {decoder: reason}}.  Each row has
        "decoder", "method", "settings", "metric" (%), "scores" (the seqeval output without
        per-type entries), "examples_per_s", "tokens_per_s", "seconds" (median pass),
        "seconds_all", "avg_energy", "search_error" (see :func:`search_errors`).

    Raises:
        ValueError: the pipeline has no ``infnet_tagger`` component.
        FileNotFoundError: its component directory has no weights file to checksum.
    """
    from spacy.tokens import Doc
    from tqdm.auto import tqdm

    from .metrics import score_labels

    nlp, comp = load_tagger(pipeline, settings.device)
    component = next(name for name, pipe in nlp.pipeline if pipe is comp)
    digest = weights_sha256(pipeline, component)
    words, gold = data
    if comp.task == "ner":
        gold = to_pipeline_scheme(gold, settings.scheme, comp.scheme)
    unknown = UNKNOWN_LABELS.get(settings.dataset.lower())
    docs = [Doc(nlp.vocab, words=w) for w in words]
    n_tokens = sum(map(len, words))
    labels = comp.labels

    def score(pred_names, gold_names):
        return score_labels(pred_names, gold_names, comp.task, unknown)

    has_infnet = comp.infnet is not None and comp.stage == "infnet"
    runs: list[tuple[str, int | None]] = []
    for name in settings.decoders:
        if name == "gd" and settings.gd_steps:
            runs += [("gd", n) for n in settings.gd_steps]
        else:
            runs.append((name, None))
    if not any(name == "viterbi" for name, _ in runs):
        runs.insert(0, ("viterbi", None))  # the search-error reference
    runs.sort(key=lambda r: r[0] != "viterbi")

    skipped: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    viterbi_energy: list[float] | None = None
    dev_batches = dev_gold = None
    n_batches = -(-len(docs) // settings.batch_size)
    for name, steps in runs:
        config = decoder_settings(comp, name, steps, settings.options.get(name, {}))
        decoder = build_decoder(name, config)
        if decoder.needs_infnet and not has_infnet:
            skipped[name] = "the pipeline has no trained inference network"
            continue
        if settings.tune_learning_rates and name in TUNABLE and dev is not None:
            if dev_batches is None:  # encoded once, for every tuned decoder and N
                dev_batches = encode_batches(comp, dev[0])
                dev_gold = dev[1]
                if comp.task == "ner":
                    dev_gold = to_pipeline_scheme(dev_gold, settings.scheme, comp.scheme)
            config["learning_rate"] = tune_learning_rate(
                comp, decoder, dev_batches, dev_gold, score
            )
            decoder = build_decoder(name, config)
        label = DECODERS[name].method + (f" N={decoder.steps}" if name in TUNABLE else "")
        bar = tqdm(total=n_batches * settings.repeats, desc=label, leave=False, file=sys.stderr)
        try:
            tags, seconds = time_predict(
                comp,
                decoder,
                docs,
                settings.batch_size,
                settings.repeats,
                settings.warmup,
                bar.update,
            )
        finally:
            bar.close()
        energies = comp.torch_model.energies(words, tags)
        if name == "viterbi" and viterbi_energy is None:
            viterbi_energy = energies
        scores = score([[labels[i] for i in t] for t in tags], gold)
        median = statistics.median(seconds)
        row = {
            "decoder": name,
            "method": label,
            "settings": decoder.config(),
            "metric": scores["metric"],
            "metric_name": scores["metric_name"],
            "scores": {k: v for k, v in scores.items() if not isinstance(v, dict)},
            "examples_per_s": len(docs) / median,
            "tokens_per_s": n_tokens / median,
            "seconds": median,
            "seconds_all": seconds,
            "avg_energy": statistics.fmean(energies),
            "search_error": search_errors(energies, viterbi_energy),
        }
        rows.append(row)
        log(
            f"{label}: {row['metric']:.2f} {row['metric_name']}, "
            f"{row['examples_per_s']:,.0f} examples/s, avg energy {row['avg_energy']:.2f}, "
            f"mean search error {row['search_error']['mean']:.3f}"
        )
    cfg = comp.infnet_config
    return {
        "pipeline": str(pipeline),
        "weights_sha256": digest,
        "task": comp.task,
        "n_labels": len(labels),
        "sentences": len(docs),
        "tokens": n_tokens,
        "infnet": None  # none configured, or never trained (stage 1 only)
        if cfg is None or not has_infnet
        else {"architecture": cfg.architecture, "hidden_size": cfg.hidden_size},
        "rows": rows,
        "skipped": skipped,
    }


def run_bench(pipelines: Sequence[str | Path], settings: BenchSettings) -> dict[str, Any]:
    """Benchmark each pipeline (see :func:`bench_pipeline`); returns the JSON document.

    Raises:
        ValueError: invalid settings, dataset or pipeline (the message names it).
    """
    settings.check()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    data = load_split(
        settings.dataset, settings.path, settings.split, settings.limit, settings.dataset_options
    )
    dev = None
    if settings.tune_learning_rates:
        dev = load_split(
            settings.dataset,
            settings.path,
            "validation",
            settings.tune_limit,
            settings.dataset_options,
        )
    results: dict[str, Any] = {
        "dataset": settings.dataset,
        "split": settings.split,
        "settings": asdict(settings),
        "environment": environment(settings),
        "pipelines": [],
    }
    for pipeline in pipelines:
        result = bench_pipeline(pipeline, settings, data, dev)
        if settings.likelihood:
            result["likelihood"] = likelihood_analysis(settings, result, data)
        results["pipelines"].append(result)
    return results


def likelihood_analysis(settings: BenchSettings, result: dict, data) -> dict[str, Any]:
    """§6.2: Spearman's ρ between LM perplexity and the search errors of ``result``'s
    inference-network and GD rows (LMs trained on the dataset's train split)."""
    from .likelihood import search_error_vs_likelihood

    train_words, train_gold = load_split(
        settings.dataset, settings.path, "train", options=settings.dataset_options
    )
    errors = {
        row["method"]: row["search_error"]["per_sentence"]
        for row in result["rows"]
        if row["decoder"] in ("infnet", "gd")
    }
    return search_error_vs_likelihood(train_words, train_gold, data[0], data[1], errors)


# -- reporting --------------------------------------------------------------------------------
def _fmt(x, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def markdown(results: dict[str, Any]) -> str:
    """One table per pipeline in the layout of Tu & Gimpel's Tables 3 and 6."""
    env = results["environment"]
    out = []
    for p in results["pipelines"]:
        metric = p["rows"][0]["metric_name"] if p["rows"] else "metric"
        infnet = p["infnet"]
        arch = (
            "" if infnet is None else f", infnet {infnet['architecture']} H={infnet['hidden_size']}"
        )
        out += [
            f"### {p['pipeline']} on {results['dataset']}/{results['split']}",
            "",
            (
                f"{p['sentences']:,} sentences, {p['tokens']:,} tokens, {p['n_labels']} labels"
                f"{arch}; {env['device_name']} ({env['device']}, {env['torch_threads']} torch "
                f"threads), batch size {env['batch_size']}, median of {env['repeats']} passes "
                f"after {env['warmup_batches']} warm-up batches; torch {env['torch']}, spaCy "
                f"{env['spacy']}.  Search error = E(ŷ) − E(ŷ_Viterbi) per sentence."
            ),
            "",
            (
                f"| method | η | {metric} | examples/s | tokens/s | decode time (s) | avg energy "
                "| mean search error | zero search error |"
            ),
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in p["rows"]:
            se = r["search_error"]
            out.append(
                f"| {r['method']} | {_fmt(r['settings'].get('learning_rate'), 'g')} | "
                f"{r['metric']:.2f} | {r['examples_per_s']:,.0f} | {r['tokens_per_s']:,.0f} | "
                f"{r['seconds']:.2f} | {r['avg_energy']:.2f} | {se['mean']:.3f} | "
                f"{100 * se['zero_share']:.1f}% |"
            )
        below = sum(r["search_error"]["below_viterbi"] for r in p["rows"])
        out += ["", f"Sentences with an energy below Viterbi's (a bug if any): {below}."]
        for name, why in p["skipped"].items():
            out.append(f"Skipped {name}: {why}.")
        if "likelihood" in p:
            from .likelihood import markdown as lm_markdown

            out += ["", "Search error vs likelihood (§6.2):", "", lm_markdown(p["likelihood"])]
        out.append("")
    return "\n".join(out)


def write_outputs(results: dict[str, Any], output: str | Path) -> list[Path]:
    """Write ``output`` (JSON), the Markdown next to it and the figures; returns the paths."""
    from .plots import figure1, figure2

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(output, json.dumps(results, indent=2).encode("utf8"))
    md = output.with_suffix(".md")
    atomic_write(md, markdown(results).encode("utf8"))
    written = [output, md]
    several = len(results["pipelines"]) > 1
    for i, p in enumerate(results["pipelines"]):
        if not p["rows"]:
            continue
        suffix = f"_{i}" if several else ""
        written.append(figure2(p, results, output.with_name(f"{output.stem}_figure2{suffix}.png")))
    if several:
        path = figure1(results, output.with_name(f"{output.stem}_figure1.png"))
        if path is not None:
            written.append(path)
    return written
