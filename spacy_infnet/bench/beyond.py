"""Beyond the paper: the hybrid decoder's speed–accuracy curve, the calibration of entity and
token confidence, and the oracle score of k-best lists, on one trained pipeline
(``python -m spacy_infnet bench-beyond``).

* :func:`hybrid_curve` — F1 / accuracy against sentences/s through ``nlp.pipe`` for Viterbi,
  the inference network (argmax and constrained rounding) and the hybrid decoder
  (:mod:`spacy_infnet.core.decoders.hybrid`) at each threshold τ, on the same docs in the same
  process, passes interleaved, the median of ``repeats`` passes.
* :func:`calibration` — expected calibration error (ECE, Guo et al. 2017) of the confidence
  the pipeline writes (``confidence = true``): per predicted entity for NER (correct = an exact
  gold span and type), per token otherwise, with a reliability diagram.
* :func:`oracle` — for each k, the score of the best of the k best Viterbi sequences per
  sentence (NER: by the sentence's entity F1 counts; tags: by correct tokens), micro-averaged.
"""

from __future__ import annotations

import logging
import math
import statistics
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from ..fileio import atomic_write
from ..pipeline.registry import decoder_block

logger = logging.getLogger("spacy.infnet")

#: thresholds τ of the hybrid curve (0: re-decode ill-formed outputs only; above 1: all)
DEFAULT_THRESHOLDS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999)


def _use(nlp: Language, block: dict, **component: Any) -> None:
    """Switch the tagger of ``nlp`` to the decoder ``block`` (and component settings)."""
    pipe = nlp.get_pipe("infnet_tagger")
    pipe.decoder = registry.resolve({"d": block})["d"]
    for key, value in component.items():
        setattr(pipe, key, value)


def _metric(nlp: Language, predicted: Sequence[Doc], gold: Sequence[Doc]) -> float:
    """Entity F1 (NER) or tag accuracy (%) by the component's scorer."""
    pipe = nlp.get_pipe("infnet_tagger")
    scores = pipe.score([Example(p, g) for p, g in zip(predicted, gold)])
    value = scores.get("ents_f") if pipe.task == "ner" else scores.get("tag_acc")
    return 100.0 * float(value or 0.0)


def _annotations(doc: Doc, task: str) -> list:
    """What the tagger wrote on ``doc``: its entities (NER) or its tags."""
    if task == "ner":
        return [(e.start, e.end, e.label_) for e in doc.ents]
    return [t.tag_ for t in doc]


def hybrid_curve(
    nlp: Language,
    gold: Sequence[Doc],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    batch_size: int = 10,
    repeats: int = 3,
) -> list[dict[str, Any]]:
    """One row per decoder: ``decoder``, ``threshold`` (hybrid only), ``score`` (F1 or
    accuracy, %), ``sentences_per_s`` (median over ``repeats`` passes through ``nlp.pipe``
    at ``batch_size``), ``seconds_all``, ``differs`` (the share of sentences whose
    annotations, entities or tags, are not Viterbi's: for the inference network, the fewest
    sentences a hybrid must re-decode to give Viterbi's output) and, for the hybrid rows,
    ``redecoded`` (the share of sentences Viterbi decoded again, measured on one untimed
    pass).

    Raises:
        ValueError: the pipeline has no trained inference network.
    """
    pipe = nlp.get_pipe("infnet_tagger")
    if pipe.infnet is None or pipe.stage != "infnet":
        raise ValueError("hybrid_curve needs a pipeline with a trained inference network")
    words = [[t.text for t in doc] for doc in gold]
    runs: list[tuple[str, float | None, dict]] = [
        ("viterbi", None, decoder_block("viterbi")),
        ("infnet", None, decoder_block("infnet")),
        ("infnet_constrained", None, decoder_block("infnet_constrained")),
    ]
    runs += [("hybrid", t, {**decoder_block("hybrid"), "threshold": t}) for t in thresholds]
    seconds: list[list[float]] = [[] for _ in runs]
    predicted: list[list[Doc]] = [[] for _ in runs]
    for block in (r[2] for r in runs):  # warm-up
        _use(nlp, block)
        list(nlp.pipe([Doc(nlp.vocab, words=w) for w in words[: 3 * batch_size]]))
    for i in range(repeats):
        for k, (name, tau, block) in enumerate(runs):
            _use(nlp, block)
            docs = [Doc(nlp.vocab, words=w) for w in words]
            start = time.perf_counter()
            predicted[k] = list(nlp.pipe(docs, batch_size=batch_size))
            seconds[k].append(time.perf_counter() - start)
            logger.info("hybrid curve: pass %d, %s %s: %.2f s", i + 1, name, tau, seconds[k][-1])
    rows = []
    exact = [_annotations(doc, pipe.task) for doc in predicted[0]]  # runs[0] is Viterbi
    for k, (name, tau, block) in enumerate(runs):
        s = statistics.median(seconds[k])
        ours = (_annotations(doc, pipe.task) for doc in predicted[k])
        row = {
            "decoder": name,
            "threshold": tau,
            "score": _metric(nlp, predicted[k], gold),
            "sentences_per_s": len(words) / s,
            "seconds_all": seconds[k],
            "differs": sum(a != b for a, b in zip(ours, exact)) / max(len(exact), 1),
        }
        if name == "hybrid":
            row["redecoded"] = _redecoded_share(nlp, words, block, batch_size)
        rows.append(row)
    _use(nlp, decoder_block("viterbi"))
    return rows


def _redecoded_share(
    nlp: Language, words: Sequence[Sequence[str]], block: dict, batch_size: int
) -> float:
    """The share of sentences the hybrid decoder ``block`` sends to Viterbi (one pass)."""
    model = nlp.get_pipe("infnet_tagger").torch_model
    decoder = registry.resolve({"d": block})["d"]
    sent = redone = 0
    for i in range(0, len(words), batch_size):
        chunk = [w for w in words[i : i + batch_size] if w]
        if not chunk:
            continue
        batch = model.encode(chunk)
        model.eval()
        out = decoder.decode(model, batch)
        sent += len(chunk)
        redone += int(out.extra["redecoded"].sum())
    return redone / max(sent, 1)


def _decode(nlp: Language, gold: Sequence[Doc], block: dict, batch_size: int, **component):
    """``gold``'s words through ``nlp.pipe`` with the decoder ``block`` (then Viterbi again)."""
    _use(nlp, block, **component)
    try:
        docs = [Doc(nlp.vocab, words=[t.text for t in g]) for g in gold]
        return list(nlp.pipe(docs, batch_size=batch_size))
    finally:
        _use(nlp, decoder_block("viterbi"), confidence=False, confidence_temperature=1.0)


def calibration(
    nlp: Language,
    gold: Sequence[Doc],
    decoder: str = "viterbi",
    n_bins: int = 10,
    batch_size: int = 256,
    diagram: str | Path | None = None,
    temperature: float = 1.0,
) -> dict[str, Any]:
    """ECE of the confidence the pipeline writes under ``decoder`` (``confidence = true``,
    ``confidence_temperature = temperature``).

    NER: one point per predicted entity (``doc.spans["infnet_ents"]``, its probability),
    correct when the gold doc has the same span and type; tagging: one point per token
    (``token._.infnet_confidence``), correct when its tag is gold's.  Returns ``units``
    ("entities" or "tokens"), ``n``, ``accuracy``, ``mean_confidence``, ``ece`` and the
    reliability ``bins``; with ``diagram``, writes the reliability diagram PNG there.
    """
    from ..pipeline.outputs import SPANS_KEY
    from .calibration import expected_calibration_error, reliability_diagram, reliability_table

    task = nlp.get_pipe("infnet_tagger").task
    docs = _decode(
        nlp,
        gold,
        decoder_block(decoder),
        batch_size,
        confidence=True,
        confidence_temperature=temperature,
    )
    conf: list[float] = []
    correct: list[bool] = []
    for doc, ref in zip(docs, gold):
        if task == "ner":
            truth = {(e.start, e.end, e.label_) for e in ref.ents}
            group = doc.spans.get(SPANS_KEY, [])
            scores = group.attrs["scores"] if len(group) else []
            for span, p in zip(group, scores):
                conf.append(float(p))
                correct.append((span.start, span.end, span.label_) in truth)
        else:
            for tok, ref_tok in zip(doc, ref):
                conf.append(float(tok._.infnet_confidence))
                correct.append(tok.tag_ == ref_tok.tag_)
    units = "entities" if task == "ner" else "tokens"
    ece = expected_calibration_error(conf, correct, n_bins)
    out = {
        "decoder": decoder,
        "temperature": temperature,
        "units": units,
        "n": len(conf),
        "accuracy": sum(correct) / max(len(conf), 1),
        "mean_confidence": sum(conf) / max(len(conf), 1),
        "ece": ece,
        "bins": reliability_table(conf, correct, n_bins),
    }
    if diagram is not None:
        title = f"{units} confidence ({decoder}, T = {temperature:g})"
        out["diagram"] = str(reliability_diagram(conf, correct, diagram, title, n_bins))
    return out


#: temperatures tried by :func:`fit_temperature`
TEMPERATURES = tuple(round(0.5 + 0.1 * i, 2) for i in range(26))  # 0.5 … 3.0


def fit_temperature(
    nlp: Language,
    gold: Sequence[Doc],
    decoder: str = "viterbi",
    temperatures: Sequence[float] = TEMPERATURES,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Temperature scaling (Guo et al. 2017) of the confidence under ``decoder``, fit on
    ``gold`` (a validation split): the T of ``temperatures`` with the lowest negative
    log-likelihood (nats per point) of the points' correctness — entities for NER (exact span
    and type), tokens otherwise — given their probabilities at T.  The labels are decoded once
    (T does not change them).  Returns ``temperature``, ``nll`` (per T), ``n``.
    """
    from ..core.prediction import confidence_of

    pipe = nlp.get_pipe("infnet_tagger")
    model = pipe.torch_model
    block = registry.resolve({"d": decoder_block(decoder)})["d"]
    scheme = pipe.scheme if pipe.task == "ner" else None
    runs = []
    for i in range(0, len(gold), batch_size):
        docs = [g for g in gold[i : i + batch_size] if len(g)]
        if not docs:
            continue
        active = model.active_decoder(block)
        batch = model.encode([[t.text for t in d] for d in docs], chars=model.reads_chars(active))
        model.eval()
        with torch.no_grad():
            decoded = active.decode(model, batch)
        runs.append((docs, batch, decoded))
    labels = list(model.labels)
    nll: dict[float, float] = {}
    n = 0
    for t in temperatures:
        total, n = 0.0, 0
        for docs, batch, decoded in runs:
            tokens, entities = confidence_of(model, batch, decoded, scheme, t)
            tags = decoded.tags.cpu().tolist()
            for b, ref in enumerate(docs):
                if scheme is not None:
                    truth = {(e.start, e.end, e.label_) for e in ref.ents}
                    points = [((s, e, y) in truth, p) for s, e, y, p in entities[b]]
                else:
                    names = [labels[k] for k in tags[b][: len(ref)]]
                    points = [
                        (y == tok.tag_, p) for y, tok, p in zip(names, ref, tokens[b][: len(ref)])
                    ]
                for ok, p in points:
                    p = min(max(p, 1e-12), 1 - 1e-12)
                    total -= math.log(p if ok else 1 - p)
                    n += 1
        nll[t] = total / max(n, 1)
    best = min(nll, key=nll.get)
    return {"decoder": decoder, "temperature": best, "nll": nll, "n": n}


def oracle(
    nlp: Language, gold: Sequence[Doc], ks: Sequence[int] = (1, 5, 10), batch_size: int = 256
) -> list[dict[str, Any]]:
    """Oracle score of k-best Viterbi lists: for each k of ``ks``, each sentence keeps the
    analysis among its k best (lowest energy) with the fewest errors against gold (NER: false
    positive plus false negative entities; tagging: wrong tokens; ties: the lower energy), and
    the component's scorer scores the corpus of those.  One row per k: ``k``, ``score`` (F1 or
    accuracy, %).
    """
    from ..core.schemes import tags_to_spans
    from ..pipeline.annotations import set_labels

    pipe = nlp.get_pipe("infnet_tagger")
    k_max = max(ks)
    docs = _decode(nlp, gold, {**decoder_block("viterbi"), "k": k_max}, batch_size)
    rows = []
    for k in ks:
        chosen = []
        for doc, ref in zip(docs, gold):
            best, errors = None, None
            for analysis in (doc._.infnet_kbest or [])[:k]:
                labels = analysis["labels"]
                if pipe.task == "ner":
                    spans = set(tags_to_spans(labels, pipe.scheme))
                    truth = {(e.start, e.end, e.label_) for e in ref.ents}
                    wrong = len(spans ^ truth)
                else:
                    wrong = sum(a != t.tag_ for a, t in zip(labels, ref))
                if errors is None or wrong < errors:
                    best, errors = labels, wrong
            out = Doc(nlp.vocab, words=[t.text for t in ref])
            if best:
                set_labels(out, best, pipe.task, pipe.scheme)
            chosen.append(out)
        rows.append({"k": k, "score": _metric(nlp, chosen, gold)})
    return rows


def curve_figure(rows: Sequence[dict[str, Any]], path: str | Path, title: str) -> Path:
    """The hybrid curve: score (%) against sentences/s (log scale), the hybrid rows as a line
    labelled by τ, one marker per other decoder; a PNG at ``path``, written atomically."""
    from .plots import COLORS, MARKERS, _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    hybrid = [r for r in rows if r["decoder"] == "hybrid"]
    if hybrid:
        xs = [r["sentences_per_s"] for r in hybrid]
        ys = [r["score"] for r in hybrid]
        ax.plot(xs, ys, "-o", color="tab:purple", label="hybrid (τ)")
        for r in hybrid:
            ax.annotate(f"{r['threshold']:g}", (r["sentences_per_s"], r["score"]), fontsize=7)
    for r in rows:
        if r["decoder"] != "hybrid":
            name = r["decoder"]
            marker = MARKERS.get(name.split("_")[0], "D")
            color = COLORS.get(name, "tab:gray")
            ax.plot(r["sentences_per_s"], r["score"], marker, color=color, ms=9, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("sentences/s (nlp.pipe)")
    ax.set_ylabel("F1 / accuracy (%)")
    ax.set_title("\n".join(textwrap.wrap(title, 80)), fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    path = Path(path)
    atomic_write(path, buf.getvalue())
    return path


def markdown(results: dict[str, Any]) -> str:
    """The results of ``bench-beyond`` as Markdown tables."""
    lines = [f"# {results['pipeline']} on {results['data']}", "", results["environment"], ""]
    curve = results.get("hybrid_curve")
    if curve:
        base = next(r for r in curve if r["decoder"] == "viterbi")
        lines += [
            "| decoder | τ | F1 / acc | sentences/s | × Viterbi | re-decoded | ≠ Viterbi |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in curve:
            tau = "" if r["threshold"] is None else f"{r['threshold']:g}"
            redo = "" if "redecoded" not in r else f"{100 * r['redecoded']:.1f}%"
            differs = "" if "differs" not in r else f"{100 * r['differs']:.1f}%"
            lines.append(
                f"| {r['decoder']} | {tau} | {r['score']:.2f} | {r['sentences_per_s']:,.0f} | "
                f"{r['sentences_per_s'] / base['sentences_per_s']:.2f} | {redo} | {differs} |"
            )
        lines.append("")
    for cal in results.get("calibration", []):
        lines.append(
            f"Calibration ({cal['decoder']}, T = {cal.get('temperature', 1.0):g}, "
            f"{cal['n']:,} {cal['units']}): ECE "
            f"{cal['ece']:.4f}, accuracy {100 * cal['accuracy']:.2f}%, mean confidence "
            f"{100 * cal['mean_confidence']:.2f}%"
        )
    if results.get("oracle"):
        lines += ["", "| k | oracle F1 / acc |", "|---:|---:|"]
        lines += [f"| {r['k']} | {r['score']:.2f} |" for r in results["oracle"]]
    return "\n".join(lines) + "\n"


def load(pipeline: str | Path) -> Language:
    """The pipeline at ``pipeline`` (``spacy.load``)."""
    return spacy.load(pipeline)
