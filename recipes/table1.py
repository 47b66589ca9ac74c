"""Tu & Gimpel (2019) Table 1: local baselines vs inference networks vs Viterbi, one energy.

Trains (or reuses) one BLSTM-CRF+ energy, then, with that energy frozen, every inference
network architecture twice: as a local baseline (token cross entropy only) and as an inference
network (E_Θ(x, A_Ψ(x)) + λ·ℓ_token).  Each row is evaluated on the test split, and decoding
speed is measured end to end through ``nlp.pipe`` on the test sentences.

    python recipes/table1.py --task pos --out runs/table1_pos
    python recipes/table1.py --task ner --out runs/table1_ner --energy runs/ner/model-best

Writes ``results/table1_<task>.json`` and ``results/table1_<task>.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import spacy
import torch
from spacy.tokens import Doc
from spacy.util import load_config

from spacy_infnet.pipeline.readers import dataset_examples
from spacy_infnet.pipeline.train import train

ROOT = Path(__file__).resolve().parent.parent
TASKS = {
    # task: (config, dataset name, spaCy task, metric key, metric label)
    "pos": ("configs/pos.cfg", "twitter_pos", "tag", "tag_acc", "DAILY547 accuracy"),
    "ner": ("configs/ner.cfg", "conll2003", "ner", "ents_f", "testb F1"),
}
COMMON = {"char_cnn": False, "case_dim": 10, "dropout": 0.5}
ARCHS = {
    "cnn13": {"@architectures": "spacy_infnet.CNNInferenceNetwork.v1", "windows": [1, 3]},
    "cnn15": {"@architectures": "spacy_infnet.CNNInferenceNetwork.v1", "windows": [1, 5]},
    "blstm": {"@architectures": "spacy_infnet.BLSTMInferenceNetwork.v1", "n_layers": 1},
    "seq2seq": {"@architectures": "spacy_infnet.Seq2SeqInferenceNetwork.v1", "n_layers": 1},
}
# "blstm_e": a BLSTM of the energy's own shape (char CNN, no case embedding) that starts from
# the energy's feature network and emission layer (stages.infnet_init = "energy").
ENERGY_SHAPED = ("hidden_size", "n_layers", "char_cnn", "char_dim", "char_filters", "char_window")
LABELS = {
    "cnn13": "CNN {1,3}",
    "cnn15": "CNN {1,5}",
    "blstm": "BLSTM",
    "seq2seq": "seq2seq",
    "blstm_e": "BLSTM, energy-initialised",
}
VITERBI = {"@decoders": "spacy_infnet.Viterbi.v1"}


def variant_config(base, arch: str, objective: str, energy: Path, args) -> dict:
    """The shipped config, changed into one Table 1 row (stage 2 only, on ``energy``)."""
    epochs, hidden = args.epochs, args.hidden
    config = base.copy()
    comp = config["components"]["infnet_tagger"]
    if arch == "blstm_e":
        trained = load_config(Path(energy) / "config.cfg", interpolate=False)
        shape = trained["components"]["infnet_tagger"]["energy"]
        comp["infnet"] = {
            **ARCHS["blstm"],
            **COMMON,
            **{k: shape[k] for k in ENERGY_SHAPED},
            "case_dim": 0,
        }
        comp["stages"]["infnet_init"] = "energy"
    else:
        comp["infnet"] = {**ARCHS[arch], **COMMON, "hidden_size": hidden}
    comp["stages"]["objective"] = objective
    config["paths"]["energy_source"] = str(energy)
    if args.constraint_penalty is not None:
        value = None if args.constraint_penalty == "hard" else float(args.constraint_penalty)
        comp["stages"]["constraint_penalty"] = value
    config["training"]["max_epochs"] = epochs
    config["training"]["batcher"]["size"] = args.train_batch
    config["training"]["eval_frequency"] = args.eval_frequency
    if args.seed is not None:
        config["training"]["seed"] = args.seed
    if args.token_weight is not None:
        comp["stages"]["token_weight"] = args.token_weight
    return config


def words_of(examples) -> list[list[str]]:
    return [[t.text for t in eg.predicted] for eg in examples]


def speed(nlp, words: list[list[str]], batch_size: int, repeats: int) -> dict:
    """Median examples/s and tokens/s of ``nlp.pipe`` over pre-tokenised docs."""

    def docs():
        return [Doc(nlp.vocab, words=w) for w in words]

    list(nlp.pipe(docs()[: 4 * batch_size], batch_size=batch_size))  # warm-up
    times = []
    for _ in range(repeats):
        d = docs()
        start = time.perf_counter()
        for _ in nlp.pipe(d, batch_size=batch_size):
            pass
        times.append(time.perf_counter() - start)
    t = statistics.median(times)
    n_tokens = sum(len(w) for w in words)
    return {"seconds": t, "examples_per_s": len(words) / t, "tokens_per_s": n_tokens / t}


def evaluate(path: Path, task: str, data_path: str | None, decoder=None, bs=256, repeats=3):
    _, name, spacy_task, metric, _ = TASKS[task]
    overrides = {"components": {"infnet_tagger": {"decoder": decoder}}} if decoder else {}
    nlp = spacy.load(path, config=overrides)
    examples = list(dataset_examples(nlp, name, "test", path=data_path, task=spacy_task))
    scores = nlp.evaluate(examples)
    out = {"metric": 100 * scores[metric], "speed": speed(nlp, words_of(examples), bs, repeats)}
    if task == "ner":
        out.update(precision=100 * scores["ents_p"], recall=100 * scores["ents_r"])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--task", choices=sorted(TASKS), required=True)
    ap.add_argument("--out", type=Path, required=True, help="directory for the trained runs")
    ap.add_argument("--energy", type=Path, help="trained pipeline whose energy is reused")
    ap.add_argument("--data", help="CoNLL-2003 directory (--task ner; POS data is embedded)")
    ap.add_argument("--vectors", help="pretrained word vectors for the energy (stage 1)")
    ap.add_argument("--epochs", type=int, default=10, help="stage-2 epochs per variant")
    ap.add_argument("--hidden", type=int, default=100, help="inference network hidden size H")
    ap.add_argument("--archs", default="cnn13,cnn15,blstm,seq2seq,blstm_e")
    ap.add_argument("--objectives", default="local,energy", help="local and/or energy")
    ap.add_argument("--seed", type=int, help="[training] seed (default: the config's)")
    ap.add_argument("--token-weight", type=float, help="λ (default: the config's)")
    ap.add_argument("--train-batch", type=int, default=32, help="training batch (sentences)")
    ap.add_argument("--eval-frequency", type=int, default=400, help="updates between dev scores")
    ap.add_argument(
        "--constraint-penalty",
        help="stages.constraint_penalty for every row: a number, or 'hard' for the energy's -1e4 "
        "(default: the config's)",
    )
    ap.add_argument(
        "--train-only",
        action="store_true",
        help="train the missing runs and stop (run several in parallel, then once without it)",
    )
    ap.add_argument("--batch-size", type=int, default=256, help="nlp.pipe batch size (speed)")
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    args = ap.parse_args(argv)

    cfg_path, _, _, _, metric_label = TASKS[args.task]
    base = load_config(ROOT / cfg_path, interpolate=False)
    if args.data and args.task == "ner":
        base["paths"]["conll2003"] = args.data
    if args.vectors:
        base["paths"]["word_vectors"] = args.vectors
    data_path = (
        args.data if args.data else (base["paths"].get("conll2003") if args.task == "ner" else None)
    )
    energy = args.energy
    wall = {}
    if energy is None:
        start = time.perf_counter()
        energy = train(base, args.out / "energy")
        wall["energy (both stages, config as shipped)"] = time.perf_counter() - start
    rows = []
    for arch in args.archs.split(","):
        for objective in args.objectives.split(","):
            run = args.out / f"{arch}_{objective}"
            if not (run / "model-best").exists():
                start = time.perf_counter()
                train(variant_config(base, arch, objective, energy, args), run)
                seconds = time.perf_counter() - start
                (run / "train_seconds.json").write_text(json.dumps({"seconds": seconds}))
            if (run / "train_seconds.json").exists():
                wall[run.name] = json.loads((run / "train_seconds.json").read_text())["seconds"]
            rows.append((arch, objective, run / "model-best"))
    if args.train_only:
        return 0
    results = {
        "task": args.task,
        "metric": metric_label,
        "energy": str(energy),
        "stage2_epochs": args.epochs,
        "hidden_size": args.hidden,
        "train_batch": args.train_batch,
        "eval_frequency": args.eval_frequency,
        "seed": args.seed,
        "token_weight": args.token_weight,
        "constraint_penalty": args.constraint_penalty or "config default",
        "batch_size": args.batch_size,
        "environment": {
            "device": "cpu",
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "spacy": spacy.__version__,
            "python": platform.python_version(),
        },
        "train_seconds": wall,
        "rows": [],
    }
    vit = evaluate(energy, args.task, data_path, decoder=VITERBI, bs=args.batch_size)
    results["rows"].append({"method": "Viterbi", **vit})
    for arch, objective, path in rows:
        r = evaluate(path, args.task, data_path, bs=args.batch_size)
        method = f"{LABELS[arch]} {'local baseline' if objective == 'local' else 'infnet'}"
        results["rows"].append({"method": method, "arch": arch, "objective": objective, **r})
        print(f"{method}: {r['metric']:.2f}", file=sys.stderr)
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"table1_{args.task}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2))
    stem.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))
    return 0


def markdown(results: dict) -> str:
    vit = results["rows"][0]
    caption = (
        f"Table 1 layout, {results['task']} ({results['metric']}), one energy "
        f"({results['energy']}); inference networks H = {results['hidden_size']}, "
        f"{results['stage2_epochs']} stage-2 epochs, batches of {results['train_batch']} "
        f"sentences, dev score every {results['eval_frequency']} updates, constraint penalty "
        f"{results['constraint_penalty']}; speed: nlp.pipe on the test sentences, "
        f"batch size {results['batch_size']}, CPU, {results['environment']['torch_threads']} "
        "torch threads, median of 3."
    )
    lines = [
        caption,
        "",
        f"| method | {results['metric']} | examples/s | × Viterbi speed |",
        "|---|---:|---:|---:|",
    ]
    for r in results["rows"]:
        ratio = r["speed"]["examples_per_s"] / vit["speed"]["examples_per_s"]
        lines.append(
            f"| {r['method']} | {r['metric']:.2f} | {r['speed']['examples_per_s']:,.0f} | "
            f"{ratio:.1f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
