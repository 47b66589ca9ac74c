"""Tu & Gimpel (2019) Table 6: every inference method on one trained energy.

Rows: gradient descent at N steps (learning rate dev-tuned per N, and the per-sentence oracle),
the inference network (energy of its relaxed output) and its discretized output, instance-
tailored inference networks and warm-started GD at N ∈ {3, 5, 10} (learning rate dev-tuned per
N), and Viterbi.  Columns: test accuracy / F1, average energy of the discrete output, average
energy of the relaxed output, examples/s of the test run.  Checks printed with the table:
sentences whose energy is below Viterbi's (a bug if any), and non-finite values after 1,000
GD steps at η = 1e4 on 500 test sentences.

    python recipes/table6.py runs/table1_ner/cnn13_energy/model-best --dataset conll2003 \
        --path ../shared/data/conll2003
    python recipes/table6.py runs/table1_pos/cnn13_energy/model-best --dataset twitter_pos

(``spacy project run methods-pos`` / ``methods-ner`` run it as the project does.)  Learning
rates are tuned on the dataset's validation split, the table is made on ``--split``.
Writes ``results/table6_<task>.json`` and ``.md`` (task: pos, ner, or the dataset's name).
"""

from __future__ import annotations

import logging
import math
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import spacy
import torch
import typer
from seqeval.metrics import f1_score

from spacy_infnet.cli import _util as cli
from spacy_infnet.core.decoders import (
    Decoded,
    GradientDescentDecoder,
    InferenceNetworkDecoder,
    InstanceTailoredDecoder,
    ViterbiDecoder,
    WarmStartGDDecoder,
)
from spacy_infnet.core.schemes import spans_to_tags
from spacy_infnet.core.search_error import search_errors
from spacy_infnet.core.tuning import (
    PAPER_LEARNING_RATES,
    TAILORED_LEARNING_RATES,
    dev_tuned,
    oracle,
    sweep,
)
from spacy_infnet.data import dataset_key

ROOT = Path(__file__).resolve().parent.parent
logger = logging.getLogger("spacy.infnet")
#: dataset: (name in the results' file names, metric label on the test split)
DATASETS = {
    "twitter_pos": ("pos", "DAILY547 accuracy"),
    "conll2003": ("ner", "testb F1"),
}
#: the component's task: metric name for other datasets / splits
METRICS = {"tag": "accuracy", "ner": "F1"}
GD_STEPS = (10, 20, 30, 40, 50)
LARGE_STEPS = (100, 500, 1000)
FEW_STEPS = (3, 5, 10)


def gold_tags(
    examples, labels: list[str], spacy_task: str, scheme: str = "bioes"
) -> list[list[int]]:
    index = {name: i for i, name in enumerate(labels)}
    out = []
    for eg in examples:
        ref = eg.reference
        if spacy_task == "tag":
            out.append([index.get(t.tag_, -1) for t in ref])
        else:
            spans = [(e.start, e.end, e.label_) for e in ref.ents]
            out.append([index[t] for t in spans_to_tags(len(ref), spans, scheme=scheme)])
    return out


def make_metric(labels: list[str], spacy_task: str):
    """score(pred, gold) in %: token accuracy (POS) or conlleval F1 (NER, seqeval default)."""

    def score(pred: list[list[int]], gold: list[list[int]]) -> float:
        if spacy_task == "tag":
            n = sum(map(len, gold))
            return 100 * sum(a == b for p, g in zip(pred, gold) for a, b in zip(p, g)) / n
        names = [[labels[i] for i in p] for p in pred]
        return 100 * f1_score([[labels[i] for i in g] for g in gold], names)

    return score


def encode(comp, examples, batch_size: int) -> list:
    words = [[t.text for t in eg.predicted] for eg in examples]
    return [
        comp.encoder.encode(words[i : i + batch_size], chars=True)
        for i in range(0, len(words), batch_size)
    ]


def decode_all(fn, batches) -> tuple[list[list[int]], list[float], list[float] | None, float]:
    """Run ``fn(batch) -> Decoded`` over batches: tags, energies, relaxed energies, seconds."""
    tags, energies, relaxed = [], [], []
    start = time.perf_counter()
    for batch in batches:
        out = fn(batch)
        lengths = batch.mask.sum(dim=1).tolist()
        tags += [row[:k] for row, k in zip(out.tags.tolist(), lengths)]
        energies += out.energy.tolist()
        if "relaxed_energy" in out.extra:
            relaxed += out.extra["relaxed_energy"].tolist()
    return tags, energies, (relaxed or None), time.perf_counter() - start


def mean(xs) -> float | None:
    return None if xs is None else sum(xs) / len(xs)


@cli.user_errors("table6")
@cli.dataset_options(required=True)
def main(
    pipeline: Annotated[
        Path, cli.Arg(help="trained pipeline: energy + inference network", show_default=False)
    ],
    dataset: cli.Dataset,
    large_label: Annotated[bool, cli.Opt(help="also GD at N = 100, 500, 1000")] = False,
    dev_limit: Annotated[int, cli.Opt(help="validation sentences for tuning")] = 1000,
    batch_size: Annotated[int, cli.Opt(help="sentences per decoder call")] = 256,
    results: Annotated[Path, cli.Opt(help="directory for the tables")] = ROOT / "results",
) -> None:
    """Table 6: every inference method on one trained energy (tuned on the validation split)."""
    data = dataset
    cli.check_pipeline(pipeline)
    torch.set_num_threads(1)
    key = dataset_key(data.name)
    short, test_label = DATASETS.get(key, (key, None))
    nlp = spacy.load(pipeline)
    if "infnet_tagger" not in nlp.pipe_names:
        raise ValueError(f"{pipeline} has no infnet_tagger component: it has {nlp.pipe_names}")
    comp = nlp.get_pipe("infnet_tagger")
    if comp.infnet is None:
        raise ValueError(f"{pipeline} has no inference network: Table 6 needs one")
    spacy_task = comp.task
    metric_label = test_label if test_label and data.split == "test" else None
    metric_label = metric_label or f"{data.split} {METRICS[spacy_task]}"
    model = comp.torch_model.eval()
    labels = comp.labels
    dev_data = replace(data, split="validation")
    dev = cli.load_examples(nlp, spacy_task, dev_data)[:dev_limit]
    logger.info("table6: %d validation sentences for tuning", len(dev))
    test = cli.load_examples(nlp, spacy_task, data)
    dev_gold = gold_tags(dev, labels, spacy_task, comp.scheme)
    test_gold = gold_tags(test, labels, spacy_task, comp.scheme)
    dev_b, test_b = encode(comp, dev, batch_size), encode(comp, test, batch_size)
    score = make_metric(labels, spacy_task)
    rows = []

    def add(method, n, lr, tags, energies, relaxed, seconds, oracle_score=None):
        rows.append(
            {
                "method": method,
                "steps": n,
                "learning_rate": lr,
                "metric": score(tags, test_gold),
                "oracle_metric": oracle_score,
                "energy": mean(energies),
                "relaxed_energy": mean(relaxed),
                "examples_per_s": len(tags) / seconds if seconds else None,
                "_energies": energies,
            }
        )
        logger.info("table6: %s N=%s lr=%s: %.2f", method, n, lr, rows[-1]["metric"])

    # Viterbi: the reference energy.
    vit = ViterbiDecoder()
    v_tags, v_energy, _, v_sec = decode_all(lambda b: vit.decode(model, b), test_b)

    def tuned_rows(label, decoder, steps, lrs, with_oracle):
        dev_sweep = sweep(decoder, model, dev_b, steps, lrs)
        for n in steps:
            (_, lr), _ = dev_tuned(
                {k: v for k, v in dev_sweep.items() if k[0] == n},
                lambda tags: score(tags, dev_gold),
            )

            def run(b, n=n, lr=lr):
                return decoder.decode_steps(model, b, steps=[n], learning_rate=lr)[n]

            tags, energies, relaxed, sec = decode_all(run, test_b)
            oracle_score = None
            if with_oracle:
                test_sweep = sweep(decoder, model, test_b, [n], lrs)
                o_tags, _, _ = oracle(test_sweep, test_gold)
                oracle_score = score(o_tags, test_gold)
            add(label, n, lr, tags, energies, relaxed, sec, oracle_score)

    gd_steps = GD_STEPS + (LARGE_STEPS if large_label else ())
    tuned_rows("GD", GradientDescentDecoder(), gd_steps, PAPER_LEARNING_RATES, True)
    inf = InferenceNetworkDecoder(report_energy=True)
    tags, energies, relaxed, _ = decode_all(lambda b: inf.decode(model, b), test_b)
    fast = InferenceNetworkDecoder()  # speed as deployed: the energy is not run

    def timed(b):
        tags = fast.decode(model, b).tags
        return Decoded(tags=tags, energy=torch.zeros(len(tags)))

    _, _, _, sec = decode_all(timed, test_b)
    rows.append(
        {
            "method": "infnet (relaxed output)",
            "steps": None,
            "learning_rate": None,
            "metric": score(tags, test_gold),
            "oracle_metric": None,
            "energy": mean(relaxed),
            "relaxed_energy": mean(relaxed),
            "examples_per_s": len(tags) / sec,
            "_energies": relaxed,
        }
    )
    add("discretized infnet", None, None, tags, energies, None, sec)
    tuned_rows(
        "instance-tailored", InstanceTailoredDecoder(), FEW_STEPS, TAILORED_LEARNING_RATES, False
    )
    tuned_rows("warm-started GD", WarmStartGDDecoder(), FEW_STEPS, PAPER_LEARNING_RATES, False)
    add("Viterbi", None, None, v_tags, v_energy, None, v_sec)

    # Exactness: no output may have a lower energy than Viterbi's.
    below = {
        f"{r['method']} N={r['steps']}": search_errors(r.pop("_energies"), v_energy)[
            "below_viterbi"
        ]
        for r in rows
    }
    # Stability: η = 1e4 for 1,000 steps on 500 test sentences.
    first = encode(comp, test[:500], 500)[0]
    gd = GradientDescentDecoder(steps=1000, learning_rate=1e4)
    out = gd.decode(model, first)
    non_finite = int(
        (~torch.isfinite(out.energy)).sum() + (~torch.isfinite(out.extra["relaxed_energy"])).sum()
    )

    table = {
        "task": short,
        "metric": metric_label,
        "pipeline": str(pipeline),
        "dev_sentences_for_tuning": len(dev),
        "test_sentences": len(test),
        "batch_size": batch_size,
        "environment": {
            "device": "cpu",
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "rows": rows,
        "sentences_below_viterbi_energy": below,
        "gd_lr1e4_1000_steps_500_sentences_non_finite": non_finite,
    }
    text = markdown(table)
    cli.write_table(results / f"table6_{short}", table, text)
    typer.echo(text)


def fmt(x, spec: str) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def markdown(results: dict) -> str:
    lines = [
        (
            f"Table 6 layout, {results['task']} ({results['metric']}), pipeline "
            f"{results['pipeline']}; learning rates dev-tuned per N on the first "
            f"{results['dev_sentences_for_tuning']} dev sentences; oracle = per-sentence best "
            "(N fixed, η from the paper's grid) on the test labels, an upper bound; energies: mean "
            "E_Θ over test sentences (for NER with the BIOES constraints: −1e4 per forbidden "
            "bigram); "
            f"CPU, 1 thread, batches of {results['batch_size']}."
        ),
        "",
        (
            f"| method | N | η | {results['metric']} | oracle | avg energy | avg relaxed energy "
            "| examples/s |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['method']} | {fmt(r['steps'], 'd')} | {fmt(r['learning_rate'], 'g')} | "
            f"{r['metric']:.2f} | {fmt(r['oracle_metric'], '.2f')} | {fmt(r['energy'], '.2f')} | "
            f"{fmt(r['relaxed_energy'], '.2f')} | {fmt(r['examples_per_s'], ',.0f')} |"
        )
    bad = {k: v for k, v in results["sentences_below_viterbi_energy"].items() if v}
    lines += [
        "",
        (
            f"Sentences with an energy below Viterbi's: {sum(bad.values())} "
            f"({', '.join(f'{k}: {v}' for k, v in bad.items()) or 'none in any row'}).  "
            "Non-finite values after 1,000 GD steps at η = 1e4 on 500 test sentences: "
            f"{results['gd_lr1e4_1000_steps_500_sentences_non_finite']}."
        ),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    cli.run_script(main, "table6")
