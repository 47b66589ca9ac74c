"""Tu & Gimpel (2019) Table 6: every inference method on one trained energy.

Rows: gradient descent at N steps (learning rate dev-tuned per N, and the per-sentence oracle),
the inference network (energy of its relaxed output) and its discretized output, instance-
tailored inference networks and warm-started GD at N ∈ {3, 5, 10} (learning rate dev-tuned per
N), and Viterbi.  Columns: test accuracy / F1, average energy of the discrete output, average
energy of the relaxed output, examples/s of the test run.  Checks printed with the table:
sentences whose energy is below Viterbi's (a bug if any), and non-finite values after 1,000
GD steps at η = 1e4 on 500 test sentences.

    python recipes/table6.py --task ner --pipeline runs/table1_ner_v2/cnn13_energy/model-best \
        --data ../shared/data/conll2003
    python recipes/table6.py --task pos --pipeline runs/table1_pos/cnn13_energy/model-best

Writes ``results/table6_<task>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import spacy
import torch
from seqeval.metrics import f1_score

from spacy_infnet.core.decoders import (
    Decoded,
    GradientDescentDecoder,
    InferenceNetworkDecoder,
    InstanceTailoredDecoder,
    ViterbiDecoder,
    WarmStartGDDecoder,
)
from spacy_infnet.core.tuning import (
    PAPER_LEARNING_RATES,
    TAILORED_LEARNING_RATES,
    dev_tuned,
    oracle,
    sweep,
)
from spacy_infnet.data.schemes import spans_to_tags
from spacy_infnet.pipeline.readers import dataset_examples

ROOT = Path(__file__).resolve().parent.parent
TASKS = {
    "pos": ("twitter_pos", "tag", "DAILY547 accuracy"),
    "ner": ("conll2003", "ner", "testb F1"),
}
GD_STEPS = (10, 20, 30, 40, 50)
LARGE_STEPS = (100, 500, 1000)
FEW_STEPS = (3, 5, 10)


def gold_tags(examples, labels: list[str], spacy_task: str) -> list[list[int]]:
    index = {name: i for i, name in enumerate(labels)}
    out = []
    for eg in examples:
        ref = eg.reference
        if spacy_task == "tag":
            out.append([index.get(t.tag_, -1) for t in ref])
        else:
            spans = [(e.start, e.end, e.label_) for e in ref.ents]
            out.append([index[t] for t in spans_to_tags(len(ref), spans, scheme="bioes")])
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--task", choices=sorted(TASKS), required=True)
    ap.add_argument("--pipeline", type=Path, required=True, help="energy + inference network")
    ap.add_argument("--data", help="CoNLL-2003 directory (--task ner)")
    ap.add_argument("--large-label", action="store_true", help="also GD at N = 100, 500, 1000")
    ap.add_argument("--dev-limit", type=int, default=1000, help="dev sentences for tuning")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    name, spacy_task, metric_label = TASKS[args.task]
    nlp = spacy.load(args.pipeline)
    comp = nlp.get_pipe("infnet_tagger")
    energy, infnet = comp.energy.eval(), comp.infnet.eval()
    labels = comp.labels
    dev = list(dataset_examples(nlp, name, "validation", path=args.data, task=spacy_task))
    dev = dev[: args.dev_limit]
    test = list(dataset_examples(nlp, name, "test", path=args.data, task=spacy_task))
    dev_gold, test_gold = gold_tags(dev, labels, spacy_task), gold_tags(test, labels, spacy_task)
    dev_b, test_b = encode(comp, dev, args.batch_size), encode(comp, test, args.batch_size)
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
        print(f"{method} N={n} lr={lr}: {rows[-1]['metric']:.2f}", file=sys.stderr)

    # Viterbi: the reference energy.
    vit = ViterbiDecoder()
    v_tags, v_energy, _, v_sec = decode_all(lambda b: vit.decode(energy, b), test_b)

    def tuned_rows(label, decoder, steps, lrs, with_oracle):
        dev_sweep = sweep(decoder, energy, dev_b, steps, lrs, infnet)
        for n in steps:
            (_, lr), _ = dev_tuned(
                {k: v for k, v in dev_sweep.items() if k[0] == n},
                lambda tags: score(tags, dev_gold),
            )

            def run(b, n=n, lr=lr):
                return decoder.decode_steps(energy, b, infnet, steps=[n], learning_rate=lr)[n]

            tags, energies, relaxed, sec = decode_all(run, test_b)
            oracle_score = None
            if with_oracle:
                test_sweep = sweep(decoder, energy, test_b, [n], lrs, infnet)
                o_tags, _, _ = oracle(test_sweep, test_gold)
                oracle_score = score(o_tags, test_gold)
            add(label, n, lr, tags, energies, relaxed, sec, oracle_score)

    gd_steps = GD_STEPS + (LARGE_STEPS if args.large_label else ())
    tuned_rows("GD", GradientDescentDecoder(), gd_steps, PAPER_LEARNING_RATES, True)
    inf = InferenceNetworkDecoder(report_energy=True)
    tags, energies, relaxed, _ = decode_all(lambda b: inf.decode(energy, b, infnet), test_b)
    fast = InferenceNetworkDecoder()  # speed as deployed: the energy is not run

    def timed(b):
        tags = fast.decode(energy, b, infnet).tags
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

    # Exactness: no output may have a lower energy than Viterbi's (relative slack 1e-5).
    below = {}
    for r in rows:
        bad = sum(e < v - 1e-3 - 1e-5 * abs(v) for e, v in zip(r.pop("_energies"), v_energy))
        below[f"{r['method']} N={r['steps']}"] = bad
    # Stability: η = 1e4 for 1,000 steps on 500 test sentences.
    first = encode(comp, test[:500], 500)[0]
    gd = GradientDescentDecoder(steps=1000, learning_rate=1e4)
    out = gd.decode(energy, first)
    non_finite = int(
        (~torch.isfinite(out.energy)).sum() + (~torch.isfinite(out.extra["relaxed_energy"])).sum()
    )

    results = {
        "task": args.task,
        "metric": metric_label,
        "pipeline": str(args.pipeline),
        "dev_sentences_for_tuning": len(dev),
        "test_sentences": len(test),
        "batch_size": args.batch_size,
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
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"table6_{args.task}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2))
    stem.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))
    return 0


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
    raise SystemExit(main())
