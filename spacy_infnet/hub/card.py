"""The model card (``README.md``) of an exported pipeline: YAML metadata that the Hugging Face
Hub reads (``library_name``, ``tags``, ``datasets``, ``model-index`` with evaluation results)
and a body with the architecture, the results table and a usage snippet.

Metrics come from a benchmark run (``python -m spacy_infnet bench``, one row per decoder:
accuracy or F1, examples/s, average energy, search error; Tu & Gimpel 2019 Tables 3 and 6) when
one is given, else from the development-set scores spaCy's training loop stored in
``meta.json``.  The card is built with ``huggingface_hub.ModelCard`` / ``ModelCardData``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

#: Dataset names of our loaders → (display name, Hub dataset id or None).
DATASETS = {
    "conll2003": ("CoNLL-2003", "eriktks/conll2003"),
    "twitter_pos": ("Twitter POS (Owoputi et al. 2013)", None),
    "ud_ewt": ("UD English EWT", "universal-dependencies/universal_dependencies"),
    "ccgbank": ("CCGbank", None),
    "conll": ("CoNLL-format corpus", None),
}

CITATION = """@inproceedings{tu-gimpel-2019-benchmarking,
    title = "Benchmarking Approximate Inference Methods for Neural Structured Prediction",
    author = "Tu, Lifu and Gimpel, Kevin",
    booktitle = "Proceedings of NAACL-HLT 2019",
    year = "2019",
    pages = "3313--3324",
}"""


def load_bench(
    bench: str | Path | dict | None,
    pipeline: str | Path | None,
    *,
    weights_sha256: str | None = None,
) -> dict | None:
    """The benchmark entry (one pipeline's rows, with the dataset and environment) of ``bench``,
    a results dict or the JSON file written by ``python -m spacy_infnet bench``.

    Each pipeline entry of the results records ``"weights_sha256"``, the SHA-256 of the
    ``infnet_tagger`` weights file it measured (:func:`spacy_infnet.bench.harness.bench_pipeline`).
    With ``weights_sha256`` given, only an entry with that checksum is taken: results of another
    pipeline would put its figures into this pipeline's card.

    Args:
        bench: results (dict), a path to the JSON, or None.
        pipeline: the pipeline directory that was exported, to pick its entry when the results
            hold several pipelines with the same weights.
        weights_sha256: hex SHA-256 of the exported pipeline's weights file
            (:func:`spacy_infnet.pipeline.checksum.weights_sha256`); None skips the check.

    Raises:
        FileNotFoundError: the JSON file does not exist.
        ValueError: not benchmark results; results without a weights checksum (written before
            checksums were recorded) or of another pipeline (checksums differ) when
            ``weights_sha256`` is given; several pipelines and none matches ``pipeline``.
    """
    if bench is None:
        return None
    where = "benchmark results"
    if not isinstance(bench, dict):
        where = str(bench)
        path = Path(bench)
        if not path.is_file():
            raise FileNotFoundError(f"benchmark results {path} do not exist")
        try:
            bench = json.loads(path.read_text(encoding="utf8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err
    entries = bench.get("pipelines") if isinstance(bench, dict) else None
    if not entries:
        raise ValueError(
            f"{where} hold no pipeline results (expected the JSON written by "
            "`python -m spacy_infnet bench`)"
        )
    if weights_sha256 is not None:
        entries = _entries_of_weights(entries, weights_sha256, where)
    entry = entries[0]
    if len(entries) > 1:
        wanted = Path(pipeline).resolve() if pipeline is not None else None
        matches = [e for e in entries if wanted and Path(e["pipeline"]).resolve() == wanted]
        if weights_sha256 is not None:  # the same weights benchmarked twice: either will do
            matches = matches or entries[:1]
        if len(matches) != 1:
            raise ValueError(
                f"{where} hold {len(entries)} pipelines "
                f"({', '.join(e['pipeline'] for e in entries)}); export from one of those "
                "directories or pass results of one pipeline"
            )
        entry = matches[0]
    return {
        "dataset": bench.get("dataset"),
        "split": bench.get("split"),
        "environment": bench.get("environment", {}),
        **entry,
    }


def _entries_of_weights(entries: list[dict], digest: str, where: str) -> list[dict]:
    """The entries of ``entries`` whose ``"weights_sha256"`` is ``digest``.

    Raises:
        ValueError: no entry records a checksum, or none records ``digest`` (one sentence
            naming the first 12 hex digits of both checksums and ``where``).
    """
    recorded = [e.get("weights_sha256") for e in entries]
    if not any(recorded):
        raise ValueError(
            f"{where} record no weights checksum (they were written before `bench` recorded "
            "one), so nothing shows they measured the exported pipeline: rerun "
            "`python -m spacy_infnet bench` on this pipeline and export with those results"
        )
    matches = [e for e in entries if e.get("weights_sha256") == digest]
    if not matches:
        theirs = ", ".join(f"{d[:12]}…" if d else "none" for d in recorded)
        raise ValueError(
            f"{where} measured another pipeline: its infnet_tagger weights have SHA-256 "
            f"{theirs}, the exported pipeline's have {digest[:12]}…; rerun "
            "`python -m spacy_infnet bench` on this pipeline and export with those results"
        )
    return matches


def _training_dataset(nlp) -> str | None:
    corpus = nlp.config.get("corpora", {}).get("train", {})
    if str(corpus.get("@readers", "")).startswith("spacy_infnet."):
        return corpus.get("name")
    return None


def _eval_results(config: dict, bench: dict | None, nlp, dataset: str | None) -> list:
    task_name = "Named entity recognition" if config["task"] == "ner" else "Sequence labelling"
    display, _ = DATASETS.get(dataset or "", (dataset or "unknown", None))
    common = {
        "task_type": "token-classification",
        "task_name": task_name,
        "dataset_type": dataset or "unknown",
        "dataset_name": display,
    }
    out = []
    if bench is not None:
        for row in bench["rows"]:
            metric_type = "f1" if row["metric_name"] == "F1" else "accuracy"
            out.append(
                EvalResult(
                    **common,
                    dataset_split=bench["split"],
                    metric_type=metric_type,
                    metric_value=round(row["metric"] / 100, 4),
                    metric_name=f"{row['metric_name']} ({row['method']})",
                )
            )
        return out
    perf = nlp.meta.get("performance") or {}
    key, metric_type = ("ents_f", "f1") if config["task"] == "ner" else ("tag_acc", "accuracy")
    if perf.get(key) is not None:
        out.append(
            EvalResult(
                **common,
                dataset_split="validation",
                metric_type=metric_type,
                metric_value=round(float(perf[key]), 4),
                metric_name=f"{metric_type} ({config['decoder_name']}, development set)",
            )
        )
    return out


def _architecture(config: dict) -> list[str]:
    e = config["energy"]
    plus = e.get("char_cnn")
    if e.get("architecture") == "transformer_crf":
        extras = [
            f"character CNN ({e.get('char_filters')} filters of width {e.get('char_window')})"
            if plus
            else "",
            f"{e.get('case_dim')}-d case embedding" if e.get("case_dim") else "",
            f"BLSTM {e.get('hidden_size')} units per direction" if e.get("hidden_size") else "",
        ]
        extras = ", ".join(x for x in extras if x)
        lines = [
            f"- **Energy**: transformer features from `{e['model']}` "
            f"({e.get('pooling')}-piece pooling per word, "
            f"{'fine-tuned' if e.get('fine_tune') else 'frozen'})"
            + (f" with {extras}" if extras else "")
            + ", and a linear-chain CRF (the energy of Tu & Gimpel 2019, §2). The transformer "
            "is needed to load this pipeline; inference-network decoding does not run it.",
        ]
        return lines + _infnet_and_decoder(config)
    lines = [
        f"- **Energy** (Tu & Gimpel 2019, §2): BLSTM-CRF{'+' if plus else ''}, "
        f"{e.get('word_dim')}-d word embeddings"
        f"{' (fine-tuned)' if e.get('fine_tune_embeddings') else ' (fixed)'}, "
        f"BLSTM {e.get('hidden_size')} units per direction × {e.get('n_layers')} layer{'s' if e.get('n_layers', 1) > 1 else ''}"
        + (
            f", character CNN ({e.get('char_dim')}-d characters, {e.get('char_filters')} "
            f"filters of width {e.get('char_window')}, max pooling)"
            if plus
            else ""
        )
        + f", dropout {e.get('dropout')}.",
    ]
    return lines + _infnet_and_decoder(config)


def _infnet_and_decoder(config: dict) -> list[str]:
    lines = []
    inf = config.get("infnet")
    if inf:
        windows = "{" + ",".join(str(w) for w in inf.get("windows", [])) + "}"
        what = {
            "cnn": f"CNN, {windows}-gram windows, {inf.get('hidden_size')} filters each",
            "blstm": f"BLSTM tagger, {inf.get('hidden_size')} units per direction",
            "seq2seq": f"seq2seq with fixed position attention, {inf.get('hidden_size')} units",
        }.get(inf.get("architecture"), inf.get("architecture"))
        if inf.get("architecture") == "cnn" and inf.get("dilations"):
            what += ", dilated residual layers " + str(list(inf["dilations"]))
        if inf.get("piece_embeddings"):
            what += (
                f"; each word also read as the mean of its subword pieces' embeddings "
                f"({inf.get('piece_combine', 'concat')} with its word row)"
            )
        trained = "" if config.get("stage") == "infnet" else " — never trained (stage 1 only)"
        lines.append(
            f"- **Inference network** A_Ψ (§4): {what}; trained with the energy frozen to "
            f"minimise E(x, A_Ψ(x)) + λ·ℓ_token{trained}."
        )
    else:
        lines.append("- **Inference network**: none (decoders that need one are unavailable).")
    block = config["decoder"]
    settings = ", ".join(f"{k}={v}" for k, v in block.items() if not k.startswith("@"))
    lines.append(
        f"- **Decoder** used by `nlp(text)`: `{block.get('@decoders')}`"
        + (f" ({settings})" if settings else "")
        + "; every decoder decodes the same energy and can be chosen at load time."
    )
    return lines


def _results_table(bench: dict) -> list[str]:
    env = bench.get("environment", {})
    metric = bench["rows"][0]["metric_name"] if bench["rows"] else "metric"
    out = [
        (
            f"Measured by `python -m spacy_infnet bench` on {bench['dataset']}/{bench['split']} "
            f"({bench.get('sentences', 0):,} sentences; {env.get('device_name', '?')}, "
            f"{env.get('device', '?')}, {env.get('torch_threads', '?')} torch thread(s), batch size "
            f"{env.get('batch_size', '?')}). Search error = E(ŷ) − E(ŷ_Viterbi) per sentence."
        ),
        "",
        f"| method | {metric} | examples/s | avg energy | mean search error |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in bench["rows"]:
        out.append(
            f"| {r['method']} | {r['metric']:.2f} | {r['examples_per_s']:,.0f} | "
            f"{r['avg_energy']:.2f} | {r['search_error']['mean']:.3f} |"
        )
    return out


def build_card(
    nlp,
    config: dict[str, Any],
    *,
    bench: dict | None = None,
    model_name: str | None = None,
    repo_id: str | None = None,
    license: str | None = None,
) -> ModelCard:
    """The model card of an export.

    Args:
        nlp: the exported ``spacy.Language``.
        config: its ``config.json`` (:func:`.manifest.build_config`).
        bench: a benchmark entry (:func:`load_bench`) or None (dev scores from meta.json).
        model_name: the card's title and model-index name (default: the repo id or
            ``meta.json``'s name).
        repo_id: the Hub id the card's usage snippet loads (default: a placeholder).
        license: a Hub license id (e.g. "mit", "cc-by-4.0"); None leaves it out.
    """
    dataset = (bench or {}).get("dataset") or _training_dataset(nlp)
    display, hub_id = DATASETS.get(dataset or "", (dataset, None))
    name = model_name or repo_id or f"{nlp.lang}_{nlp.meta.get('name', 'pipeline')}"
    metric_types = ["f1"] if config["task"] == "ner" else ["accuracy"]
    data = ModelCardData(
        language=nlp.lang,
        license=license,
        library_name="spacy",
        tags=[
            "spacy",
            "token-classification",
            "spacy-infnet",
            "inference-networks",
            "crf",
            "structured-prediction",
        ],
        datasets=[hub_id] if hub_id else None,
        metrics=metric_types,
        model_name=name,
        eval_results=_eval_results(config, bench, nlp, dataset) or None,
    )
    what = "named entities (BIOES)" if config["task"] == "ner" else "token tags"
    target = repo_id or "USER/REPO"
    labels = ", ".join(f"`{lab}`" for lab in config["labels"][:40])
    more = f" … ({config['n_labels']} in all)" if config["n_labels"] > 40 else ""
    body = [
        f"# {name}",
        "",
        (
            f"A spaCy pipeline whose `{config['component']}` component (spacy-infnet "
            f"{config['versions']['spacy_infnet']}) predicts {what} by minimising a BLSTM-CRF "
            "energy E(x, y) with a choice of decoders: exact Viterbi, gradient descent, an "
            "inference network, an instance-tailored inference network, or gradient descent "
            "warm-started from the inference network (Tu & Gimpel, NAACL 2019)."
        ),
        "",
        f"Trained on {display or 'an unrecorded dataset'}.",
        "",
        "## Architecture",
        "",
        *_architecture(config),
        "",
        f"Labels ({config['n_labels']}): {labels}{more}.",
        "",
        "## Results",
        "",
    ]
    if bench is not None:
        body += _results_table(bench)
    else:
        perf = nlp.meta.get("performance") or {}
        key = "ents_f" if config["task"] == "ner" else "tag_acc"
        if perf.get(key) is not None:
            body.append(
                f"Development-set {key} with the configured decoder: {100 * perf[key]:.2f} "
                "(spaCy's training loop). Run `python -m spacy_infnet bench` for the test split."
            )
        else:
            body.append("No evaluation results were recorded.")
    body += [
        "",
        "## Usage",
        "",
        "```bash",
        "pip install spacy-infnet",
        "```",
        "",
        "```python",
        "from spacy_infnet import from_pretrained",
        "",
        f'nlp = from_pretrained("{target}")  # a Hub id, or a local directory',
        (
            'doc = nlp("Peter Blackburn visited Brussels on Monday.")'
            if config["task"] == "ner"
            else 'doc = nlp("ikr smh he asked fir yo last name so he can add u on fb lololol")'
        ),
        (
            "print([(ent.text, ent.label_) for ent in doc.ents])"
            if config["task"] == "ner"
            else "print([(token.text, token.tag_) for token in doc])"
        ),
        "",
        "# another decoder of the same energy: viterbi, infnet, gd, tailored, warm_gd",
        f'nlp_exact = from_pretrained("{target}", decoder="viterbi")',
        "```",
        "",
        (
            "Weights are stored as safetensors and settings as JSON; loading never unpickles. "
            "`from_pretrained` checks every file against the SHA-256 recorded in `config.json`."
        ),
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body))
