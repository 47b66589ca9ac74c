"""Tu & Gimpel (2019) Tables 1, 4 and 5: local baselines vs inference networks vs Viterbi on
one energy.

Trains (or reuses) one energy, then, with that energy frozen, every inference network
architecture twice: as a local baseline (token cross entropy only) and as an inference network
(E_Θ(x, A_Ψ(x)) + λ·ℓ_token, λ optionally annealed as λ·e^(−r·epoch)).  Each row is evaluated on
the test split, and decoding speed is measured end to end through ``nlp.pipe`` on the test
sentences.  ``--setting`` picks the paper's setting of the networks:

* ``plain`` (Table 1): the BLSTM-CRF setting -- no character CNN, fixed pretrained embeddings,
  no dropout, no case embedding; use it with a plain BLSTM-CRF energy (the project's
  ``pos-plain`` / ``ner-plain`` / ``ccg-plain`` steps train one);
* ``plus`` (Tables 4 and 5): infnet+ and local baseline+ carry the BLSTM-CRF+ features -- their
  own character CNN, fine-tuned embeddings, dropout 0.5 -- on a BLSTM-CRF+ energy.

    python recipes/table1.py --dataset twitter_pos --out runs/table1_pos
    python recipes/table1.py --dataset conll2003 --path ../shared/data/conll2003 \
        --out runs/table1_ner --energy runs/ner/model-best

(``spacy project run infnets-pos`` / ``infnets-ner`` run it as the project does.)  The
training config is ``configs/pos.cfg`` for twitter_pos and ``configs/ner.cfg`` for conll2003
(``--config`` for another dataset); its corpora are pointed at the dataset options.  Writes
``results/table1_<task>.json`` and ``results/table1_<task>.md`` (task: pos, ner, or the
dataset's name).
"""

from __future__ import annotations

import json
import logging
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import spacy
import torch
import typer
from spacy.tokens import Doc
from spacy.util import load_config

from spacy_infnet.cli import _util as cli
from spacy_infnet.data import dataset_key
from spacy_infnet.pipeline.train import train

ROOT = Path(__file__).resolve().parent.parent
logger = logging.getLogger("spacy.infnet")
#: dataset: (name in the results' file names, default training config, metric label on test)
DATASETS = {
    "twitter_pos": ("pos", "configs/pos.cfg", "DAILY547 accuracy"),
    "conll2003": ("ner", "configs/ner.cfg", "testb F1"),
    "ewt_ccg": ("ccg", "configs/ccg_ewt.cfg", "EWT-CCG test accuracy"),
}
#: the component's task: (spaCy score key, metric name for other datasets / splits)
METRICS = {"tag": ("tag_acc", "accuracy"), "ner": ("ents_f", "F1")}
#: the networks' settings in each of the paper's settings (see the module docstring)
SETTINGS = {
    "plain": {"char_cnn": False, "case_dim": 0, "dropout": 0.0, "fine_tune_embeddings": False},
    "plus": {"char_cnn": True, "case_dim": 0, "dropout": 0.5, "fine_tune_embeddings": True},
}
ARCHS = {
    "cnn13": {"@architectures": "spacy_infnet.CNNInferenceNetwork.v1", "windows": [1, 3]},
    "cnn15": {"@architectures": "spacy_infnet.CNNInferenceNetwork.v1", "windows": [1, 5]},
    "blstm": {"@architectures": "spacy_infnet.BLSTMInferenceNetwork.v1", "n_layers": 1},
    "blstm2": {"@architectures": "spacy_infnet.BLSTMInferenceNetwork.v1", "n_layers": 2},
    "seq2seq": {"@architectures": "spacy_infnet.Seq2SeqInferenceNetwork.v1", "n_layers": 1},
}
# "blstm_e": a BLSTM of the energy's own shape (char CNN, no case embedding) that starts from
# the energy's feature network and emission layer (stages.infnet_init = "energy").
ENERGY_SHAPED = ("hidden_size", "n_layers", "char_cnn", "char_dim", "char_filters", "char_window")
LABELS = {
    "cnn13": "CNN {1,3}",
    "cnn15": "CNN {1,5}",
    "blstm": "BLSTM",
    "blstm2": "2-layer BLSTM",
    "seq2seq": "seq2seq",
    "blstm_e": "BLSTM, energy-initialised",
}
OBJECTIVES = ("local", "energy")
VITERBI = {"@decoders": "spacy_infnet.Viterbi.v1"}
INFNET = {"@decoders": "spacy_infnet.InferenceNetwork.v1"}


@dataclass
class Settings:
    """How each Table 1 row is trained (the command's options)."""

    epochs: int = 10
    hidden: int = 100
    train_batch: int = 32
    eval_frequency: int = 400
    seed: int | None = None
    token_weight: float | None = None
    token_weight_decay: float | None = None
    constraint_penalty: str | None = None  # a number, "hard", or None: the config's
    setting: str = "plus"


def variant_config(base, arch: str, objective: str, energy: Path, settings: Settings) -> dict:
    """The shipped config, changed into one Table 1 row (stage 2 only, on ``energy``)."""
    config = base.copy()
    comp = config["components"]["infnet_tagger"]
    if arch == "blstm_e":
        trained = load_config(Path(energy) / "config.cfg", interpolate=False)
        shape = trained["components"]["infnet_tagger"]["energy"]
        comp["infnet"] = {
            **ARCHS["blstm"],
            **SETTINGS[settings.setting],
            **{k: shape[k] for k in ENERGY_SHAPED},
            "case_dim": 0,
        }
        comp["stages"]["infnet_init"] = "energy"
    else:
        comp["infnet"] = {
            **ARCHS[arch],
            **SETTINGS[settings.setting],
            "hidden_size": settings.hidden,
        }
    comp["stages"]["objective"] = objective
    if comp.get("decoder", {}).get("@decoders") != INFNET["@decoders"]:  # an energy-only config
        comp["decoder"] = dict(INFNET)
    config["paths"]["energy_source"] = str(energy)
    config["initialize"]["components"]["infnet_tagger"]["energy_source"] = str(energy)
    if settings.constraint_penalty is not None:
        penalty = settings.constraint_penalty
        comp["stages"]["constraint_penalty"] = None if penalty == "hard" else float(penalty)
    config["training"]["max_epochs"] = settings.epochs
    config["training"]["batcher"]["size"] = settings.train_batch
    config["training"]["eval_frequency"] = settings.eval_frequency
    if settings.seed is not None:
        config["training"]["seed"] = settings.seed
    if settings.token_weight is not None:
        comp["stages"]["token_weight"] = settings.token_weight
    if settings.token_weight_decay is not None:
        comp["stages"]["token_weight_decay"] = settings.token_weight_decay
    return config


def use_dataset(base, data: cli.Dataset) -> cli.Dataset:
    """Point the config's corpora at ``data`` and return the test data as the config reads it.

    A corpus that reads another dataset is switched to ``data`` (its name, path and options);
    one that reads the same dataset keeps its own path (e.g. ``${paths.conll2003}``) unless
    ``--path`` is given.  The returned :class:`cli.Dataset` has that path filled in, so training
    and scoring read the same files.
    """
    for key in ("train", "dev", "test"):
        block = base["corpora"].get(key)
        if not block or "name" not in block:
            continue
        if dataset_key(block["name"]) != dataset_key(data.name):
            block["name"], block["path"] = data.name, data.path
        elif data.path is not None:
            block["path"] = data.path
        if data.options:
            block["options"] = {**block.get("options", {}), **data.options}
    path = data.path
    if path is None:
        path = base.interpolate()["corpora"].get("test", {}).get("path")
    return cli.Dataset(name=data.name, path=path, split=data.split, options=data.options)


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


def evaluate(path: Path, data: cli.Dataset, spacy_task: str, decoder=None, bs=256, repeats=3):
    metric = METRICS[spacy_task][0]
    overrides = {"components": {"infnet_tagger": {"decoder": decoder}}} if decoder else {}
    nlp = spacy.load(path, config=overrides)
    examples = cli.load_examples(nlp, spacy_task, data)
    scores = nlp.evaluate(examples)
    out = {"metric": 100 * scores[metric], "speed": speed(nlp, words_of(examples), bs, repeats)}
    if spacy_task == "ner":
        out.update(precision=100 * scores["ents_p"], recall=100 * scores["ents_r"])
    return out


def check_penalty(text: str) -> str | None:
    """``--constraint-penalty``: None for "config", else "hard" or a number (kept as text)."""
    if text == "config":
        return None
    if text != "hard":
        try:
            float(text)
        except ValueError:
            raise ValueError(
                f"--constraint-penalty expects a number, 'hard' or 'config', got {text!r}"
            ) from None
    return text


@cli.user_errors("table1")
@cli.dataset_options(required=True)
def main(
    dataset: cli.Dataset,
    out: Annotated[Path, cli.Opt(help="directory for the trained runs", show_default=False)],
    config: Annotated[
        Path | None,
        cli.Opt(
            help="training config (default: configs/pos.cfg for twitter_pos, configs/ner.cfg "
            "for conll2003); its corpora are pointed at the dataset",
            show_default=False,
        ),
    ] = None,
    energy: Annotated[
        Path | None,
        cli.Opt(
            help="trained pipeline whose energy is reused (default: train one)", show_default=False
        ),
    ] = None,
    vectors: Annotated[
        str | None,
        cli.Opt(help="pretrained word vectors for the energy (stage 1)", show_default=False),
    ] = None,
    epochs: Annotated[int, cli.Opt(help="stage-2 epochs per variant")] = 10,
    hidden: Annotated[int, cli.Opt(help="inference network hidden size H")] = 100,
    archs: Annotated[
        str, cli.Opt(help=f"comma-separated: {', '.join(LABELS)}")
    ] = "cnn13,cnn15,blstm,seq2seq,blstm_e",
    objectives: Annotated[str, cli.Opt(help="local and/or energy")] = "local,energy",
    seed: Annotated[
        int | None, cli.Opt(help="[training] seed (default: the config's)", show_default=False)
    ] = None,
    token_weight: Annotated[
        float | None, cli.Opt(help="λ (default: the config's)", show_default=False)
    ] = None,
    token_weight_decay: Annotated[
        float | None,
        cli.Opt(
            help="r of the annealed λ·e^(−r·epoch), e.g. 0.01 (default: the config's)",
            show_default=False,
        ),
    ] = None,
    setting: Annotated[
        str,
        cli.Opt(help="the networks' setting: plain (Table 1) or plus (infnet+, Tables 4, 5)"),
    ] = "plus",
    train_batch: Annotated[int, cli.Opt(help="training batch (sentences)")] = 32,
    eval_frequency: Annotated[int, cli.Opt(help="updates between dev scores")] = 400,
    constraint_penalty: Annotated[
        str,
        cli.Opt(
            help="stages.constraint_penalty for every row: a number, 'hard' for the energy's "
            "-1e4, or 'config' for the config's"
        ),
    ] = "config",
    train_only: Annotated[
        bool,
        cli.Opt(
            help="train the missing runs and stop (run several in parallel, then once without it)"
        ),
    ] = False,
    batch_size: Annotated[int, cli.Opt(help="nlp.pipe batch size (speed)")] = 256,
    threads: Annotated[
        int | None,
        cli.Opt(
            help="torch threads for training and timing (default: torch's)", show_default=False
        ),
    ] = None,
    results: Annotated[Path, cli.Opt(help="directory for the tables")] = ROOT / "results",
    table: Annotated[
        str, cli.Opt(help="the tables' file names: TABLE_<task>.{json,md}, e.g. table4")
    ] = "table1",
) -> None:
    """Table 1: local baselines and inference networks on one frozen energy, with Viterbi."""
    data, table_name = dataset, table
    key = dataset_key(data.name)
    short, default_config, test_label = DATASETS.get(key, (key, None, None))
    if config is None:
        if default_config is None:
            raise ValueError(f"no default training config for dataset {data.name!r}: pass --config")
        config = ROOT / default_config
    cli.check_file(config, "config file")
    arch_names, objective_names = cli.parse_names(archs), cli.parse_names(objectives)
    unknown = [a for a in arch_names if a not in LABELS] + [
        o for o in objective_names if o not in OBJECTIVES
    ]
    if unknown or not arch_names or not objective_names:
        raise ValueError(
            f"unknown or missing --archs/--objectives {unknown}: choose from "
            f"{', '.join(LABELS)} and {', '.join(OBJECTIVES)}"
        )
    settings = Settings(
        epochs=epochs,
        hidden=hidden,
        train_batch=train_batch,
        eval_frequency=eval_frequency,
        seed=seed,
        token_weight=token_weight,
        token_weight_decay=token_weight_decay,
        constraint_penalty=check_penalty(constraint_penalty),
        setting=setting,
    )
    if setting not in SETTINGS:
        raise ValueError(f"unknown --setting {setting!r}: choose from {', '.join(SETTINGS)}")
    if energy is not None:
        cli.check_pipeline(energy)
    if threads:
        torch.set_num_threads(threads)

    base = load_config(config, interpolate=False)
    spacy_task = base["components"]["infnet_tagger"].get("task", "ner")
    if spacy_task not in METRICS:
        raise ValueError(f"{config}: unknown infnet_tagger task {spacy_task!r}")
    metric_label = test_label if test_label and data.split == "test" else None
    metric_label = metric_label or f"{data.split} {METRICS[spacy_task][1]}"
    test_data = use_dataset(base, data)
    if vectors:
        base["paths"]["vectors"] = vectors
    wall = {}
    if energy is None:
        start = time.perf_counter()
        energy = train(base, out / "energy")
        wall["energy (both stages, config as shipped)"] = time.perf_counter() - start
    rows = []
    for arch in arch_names:
        for objective in objective_names:
            run = out / f"{arch}_{objective}"
            if not (run / "model-best").exists():
                logger.info("table1: training %s", run)
                start = time.perf_counter()
                train(variant_config(base, arch, objective, energy, settings), run)
                seconds = time.perf_counter() - start
                (run / "train_seconds.json").write_text(json.dumps({"seconds": seconds}))
            if (run / "train_seconds.json").exists():
                wall[run.name] = json.loads((run / "train_seconds.json").read_text())["seconds"]
            rows.append((arch, objective, run / "model-best"))
    if train_only:
        return
    table = {
        "table": table_name,
        "task": short,
        "metric": metric_label,
        "energy": str(energy),
        "stage2_epochs": epochs,
        "hidden_size": hidden,
        "train_batch": train_batch,
        "eval_frequency": eval_frequency,
        "seed": seed,
        "token_weight": token_weight,
        "token_weight_decay": token_weight_decay,
        "setting": setting,
        "constraint_penalty": settings.constraint_penalty or "config default",
        "batch_size": batch_size,
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
    vit = evaluate(energy, test_data, spacy_task, decoder=VITERBI, bs=batch_size)
    table["rows"].append({"method": "Viterbi", **vit})
    logger.info("table1: Viterbi: %.2f", vit["metric"])
    for arch, objective, run_path in rows:
        r = evaluate(run_path, test_data, spacy_task, bs=batch_size)
        method = f"{LABELS[arch]} {'local baseline' if objective == 'local' else 'infnet'}"
        table["rows"].append({"method": method, "arch": arch, "objective": objective, **r})
        logger.info("table1: %s: %.2f", method, r["metric"])
    text = markdown(table)
    cli.write_table(results / f"{table_name}_{short}", table, text)
    typer.echo(text)


def table_label(name: str) -> str:
    """ "table4" -> "Table 4" (other names as they are)."""
    return f"Table {name[5:]}" if name.startswith("table") and name[5:].isdigit() else name


def markdown(results: dict) -> str:
    vit = results["rows"][0]
    caption = (
        f"{table_label(results.get('table', 'table1'))} layout, {results['task']} "
        f"({results['metric']}), one energy ({results['energy']}); networks in the "
        f"{results.get('setting', 'plus')} setting, H = {results['hidden_size']}, "
        f"{results['stage2_epochs']} stage-2 epochs, batches of {results['train_batch']} "
        f"sentences, dev score every {results['eval_frequency']} updates, λ = "
        f"{results.get('token_weight') or 'config'} (decay r = "
        f"{results.get('token_weight_decay') or 0}), constraint penalty "
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
    cli.run_script(main, "table1")
