"""Command line: ``python -m spacy_infnet COMMAND`` (also installed as ``spacy-infnet``).

Commands:
    convert NAME OUTPUT [--path P] [--split S] [--task ner|tag] [--option KEY=VALUE ...]
        Write one split of a dataset as a spaCy DocBin (``.spacy``), e.g. for ``spacy evaluate``.
    evaluate PIPELINE DATA.spacy [--decoder viterbi|infnet|gd|tailored|warm_gd] [--output JSON]
        ``spacy evaluate`` with the decoder of the pipeline swapped at load (no retraining).
    bench PIPELINE [PIPELINE ...] --dataset NAME [--path P] [--split test]
          [--decoders viterbi,gd,infnet,tailored,warm_gd] [--batch-size 10] [--device cpu|cuda]
          [--output results.json] [--gd-steps 5,10,20,50] [--set gd.learning_rate=100]
          [--tune-learning-rates] [--likelihood]
        Speed, accuracy / F1, average energy and search error of every decoder (Tables 3 and 6),
        with Markdown and PNG figures (Figures 1 and 2); see spacy_infnet.bench.harness.
    bench-viterbi [--labels 17,25,321,400] [--batch-sizes 1,10,100,1000] [--pipeline DIR ...]
        Our Viterbi against pytorch-crf and torch-struct; see spacy_infnet.bench.viterbi_peers.
    export PIPELINE OUT_DIR [--bench RESULTS.json] [--name NAME] [--repo-id ORG/NAME]
          [--license ID] [--wheel]
        Write a Hugging Face Hub model repository (spaCy pipeline, config.json, model card);
        see spacy_infnet.hub.
    push PIPELINE ORG/NAME [--bench RESULTS.json] [--private] [--token T] [--revision R]
          [--license ID] [--wheel]
        Export and upload to the Hub (huggingface_hub create_repo + upload_folder).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parse_option(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option expects KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def convert(args: argparse.Namespace) -> int:
    import spacy
    from spacy.tokens import DocBin

    from .pipeline.readers import dataset_examples

    nlp = spacy.blank(args.lang)
    docbin = DocBin(store_user_data=False)
    n_docs = n_tokens = 0
    for eg in dataset_examples(
        nlp,
        args.name,
        args.split,
        path=args.path,
        task=args.task,
        scheme=args.scheme,
        options=dict(args.option or []),
        documents=args.documents,
    ):
        docbin.add(eg.reference)
        n_docs += 1
        n_tokens += len(eg.reference)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    docbin.to_disk(out)
    print(f"wrote {n_docs} docs ({n_tokens} tokens) of {args.name}/{args.split} to {out}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    import spacy
    from spacy.training import Corpus

    from .pipeline.registry import decoder_block

    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)
    overrides = {}
    if args.decoder:
        overrides = {"components": {args.component: {"decoder": decoder_block(args.decoder)}}}
    nlp = spacy.load(args.pipeline, config=overrides)
    data = Path(args.data)
    if not data.exists():
        raise SystemExit(f"evaluate: {data} does not exist")
    scores = nlp.evaluate(Corpus(data)(nlp))
    text = json.dumps(scores, indent=2)
    if args.output:
        Path(args.output).write_text(text)
    print(text)
    return 0


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def _decoder_option(text: str) -> tuple[str, str, object]:
    key, value = _parse_option(text)
    if "." not in key:
        raise argparse.ArgumentTypeError(
            f"--set expects DECODER.SETTING=VALUE (e.g. gd.learning_rate=100), got {text!r}"
        )
    decoder, setting = key.split(".", 1)
    return decoder, setting, value


def bench(args: argparse.Namespace) -> int:
    from .bench.harness import BenchSettings, markdown, run_bench, write_outputs

    options: dict[str, dict] = {}
    for decoder, setting, value in args.set or []:
        options.setdefault(decoder, {})[setting] = value
    settings = BenchSettings(
        dataset=args.dataset,
        path=args.path,
        split=args.split,
        decoders=[d.strip() for d in args.decoders.split(",") if d.strip()],
        batch_size=args.batch_size,
        device=args.device,
        repeats=args.repeats,
        warmup=args.warmup,
        limit=args.limit,
        gd_steps=args.gd_steps or [],
        options=options,
        tune_learning_rates=args.tune_learning_rates,
        tune_limit=args.tune_limit,
        threads=args.threads,
        scheme=args.scheme,
        likelihood=args.likelihood,
    )
    for pipeline in args.pipelines:
        if not Path(pipeline).is_dir():
            raise SystemExit(f"bench: pipeline directory {pipeline} does not exist")
    try:
        results = run_bench(args.pipelines, settings)
    except ValueError as err:
        raise SystemExit(f"bench: {err}")
    paths = write_outputs(results, args.output)
    print(markdown(results))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def bench_viterbi(args: argparse.Namespace) -> int:
    from .bench import viterbi_peers

    return viterbi_peers.main(args)


def export(args: argparse.Namespace) -> int:
    from .hub import build_wheel, save_pretrained

    try:
        out = save_pretrained(
            args.pipeline,
            args.output,
            bench=args.bench,
            model_name=args.name,
            repo_id=args.repo_id,
            license=args.license,
        )
        if args.wheel:
            wheel = build_wheel(out, out, name=args.name)
            print(f"wrote {wheel}")
    except (OSError, ValueError, RuntimeError) as err:
        raise SystemExit(f"export: {err}")
    print(
        f"wrote {out} (config.json, README.md, spaCy pipeline); load it with "
        f"spacy_infnet.from_pretrained({str(out)!r})"
    )
    return 0


def push(args: argparse.Namespace) -> int:
    from .hub import push_to_hub

    try:
        info = push_to_hub(
            args.pipeline,
            args.repo_id,
            token=args.token,
            private=args.private,
            revision=args.revision,
            bench=args.bench,
            license=args.license,
            wheel=args.wheel,
        )
    except (OSError, ValueError, RuntimeError) as err:
        raise SystemExit(f"push: {err}")
    print(f"uploaded to {getattr(info, 'commit_url', info)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m spacy_infnet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from .pipeline.registry import DECODER_NAMES, DECODER_VARIANTS

    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("convert", help="write a dataset split as a spaCy DocBin (.spacy)")
    p.add_argument("name", help="dataset: twitter_pos, conll2003, ccgbank, ud_ewt, conll")
    p.add_argument("output", help="output .spacy file")
    p.add_argument("--path", default=None, help="data folder (not needed for twitter_pos)")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--task", default="ner", choices=["ner", "tag"])
    p.add_argument("--scheme", default="bioes", help="scheme of the dataset's NER tags")
    p.add_argument("--lang", default="en")
    p.add_argument(
        "--documents",
        action="store_true",
        help="one doc per document (sentences joined, sentence starts kept), not per sentence",
    )
    p.add_argument(
        "--option",
        action="append",
        type=_parse_option,
        help="loader option KEY=VALUE (JSON values allowed); repeatable",
    )
    p.set_defaults(func=convert)
    p = sub.add_parser("evaluate", help="score a pipeline on a DocBin, optionally another decoder")
    p.add_argument("pipeline", help="trained pipeline directory")
    p.add_argument("data", help=".spacy file (see convert)")
    p.add_argument("--decoder", choices=sorted([*DECODER_NAMES, *DECODER_VARIANTS]), default=None)
    p.add_argument("--component", default="infnet_tagger")
    p.add_argument("--gpu-id", type=int, default=-1, help="CUDA device (default: CPU)")
    p.add_argument("--output", default=None, help="write the scores as JSON")
    p.set_defaults(func=evaluate)

    p = sub.add_parser(
        "bench", help="speed, accuracy, energy and search error of every decoder (Tables 3, 6)"
    )
    p.add_argument("pipelines", nargs="+", help="trained pipeline directories (several: Figure 1)")
    p.add_argument("--dataset", required=True, help="twitter_pos, conll2003, ud_ewt, ccgbank, …")
    p.add_argument("--path", default=None, help="data folder (not needed for twitter_pos)")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument(
        "--decoders",
        default="viterbi,gd,infnet,tailored,warm_gd",
        help="comma-separated: viterbi, gd, infnet, tailored, warm_gd",
    )
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--output", default="results.json", help="JSON; .md and .png written beside")
    p.add_argument("--repeats", type=int, default=3, help="timed passes (median reported)")
    p.add_argument("--warmup", type=int, default=3, help="untimed batches first")
    p.add_argument("--limit", type=int, default=0, help="first N sentences only (0: all)")
    p.add_argument("--gd-steps", type=_int_list, default=None, help="GD curve, e.g. 5,10,20,50")
    p.add_argument(
        "--set",
        action="append",
        type=_decoder_option,
        metavar="DECODER.SETTING=VALUE",
        help="override a decoder setting, e.g. gd.learning_rate=100; repeatable",
    )
    p.add_argument(
        "--tune-learning-rates",
        action="store_true",
        help="pick η of gd (per N), tailored and warm_gd by validation score over the paper's grid",
    )
    p.add_argument("--tune-limit", type=int, default=500, help="validation sentences for tuning")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--scheme", default=None, help="dataset NER scheme (default: detected)")
    p.add_argument(
        "--likelihood",
        action="store_true",
        help="§6.2: Spearman ρ of search error vs LSTM-LM perplexity (trains two small LMs)",
    )
    p.set_defaults(func=bench)

    from .bench import viterbi_peers

    p = sub.add_parser("bench-viterbi", help="our Viterbi vs pytorch-crf and torch-struct")
    viterbi_peers.add_arguments(p)
    p.set_defaults(func=bench_viterbi)

    def hub_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--bench", default=None, help="`bench` results JSON for the model card")
        p.add_argument("--license", default=None, help="Hub license id for the card, e.g. mit")
        p.add_argument("--wheel", action="store_true", help="also build the `spacy package` wheel")

    p = sub.add_parser("export", help="write a Hugging Face Hub model repository")
    p.add_argument("pipeline", help="trained pipeline directory, e.g. runs/ner/model-best")
    p.add_argument("output", help="new or empty directory")
    p.add_argument("--name", default=None, help="model name (card title, wheel name)")
    p.add_argument("--repo-id", default=None, help="Hub id shown in the card's usage snippet")
    hub_options(p)
    p.set_defaults(func=export)

    p = sub.add_parser("push", help="export and upload to the Hugging Face Hub")
    p.add_argument("pipeline", help="trained pipeline directory")
    p.add_argument("repo_id", help="ORG/NAME on the Hub (created if missing)")
    p.add_argument("--private", action="store_true", default=None)
    p.add_argument("--token", default=None, help="Hub token (default: `hf auth login`'s)")
    p.add_argument("--revision", default=None, help="branch to commit to")
    hub_options(p)
    p.set_defaults(func=push)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
