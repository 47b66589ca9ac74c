"""Command line: ``python -m spacy_infnet COMMAND`` (also installed as ``spacy-infnet``).

Commands:
    convert NAME OUTPUT [--path P] [--split S] [--task ner|tag] [--option KEY=VALUE ...]
        Write one split of a dataset as a spaCy DocBin (``.spacy``), e.g. for ``spacy evaluate``.
    evaluate PIPELINE DATA.spacy [--decoder viterbi|infnet|gd|tailored|warm_gd] [--output JSON]
        ``spacy evaluate`` with the decoder of the pipeline swapped at load (no retraining).
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
    ):
        docbin.add(eg.reference)
        n_docs += 1
        n_tokens += len(eg.reference)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    docbin.to_disk(out)
    print(f"wrote {n_docs} docs ({n_tokens} tokens) of {args.name}/{args.split} to {out}")
    return 0


DECODERS = {
    "viterbi": {"@decoders": "spacy_infnet.Viterbi.v1"},
    "infnet": {"@decoders": "spacy_infnet.InferenceNetwork.v1"},
    "gd": {"@decoders": "spacy_infnet.GradientDescent.v1"},
    "tailored": {"@decoders": "spacy_infnet.InstanceTailored.v1"},
    "warm_gd": {"@decoders": "spacy_infnet.WarmStartGD.v1"},
}


def evaluate(args: argparse.Namespace) -> int:
    import spacy
    from spacy.training import Corpus

    overrides = {}
    if args.decoder:
        overrides = {"components": {args.component: {"decoder": DECODERS[args.decoder]}}}
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m spacy_infnet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
        "--option",
        action="append",
        type=_parse_option,
        help="loader option KEY=VALUE (JSON values allowed); repeatable",
    )
    p.set_defaults(func=convert)
    p = sub.add_parser("evaluate", help="score a pipeline on a DocBin, optionally another decoder")
    p.add_argument("pipeline", help="trained pipeline directory")
    p.add_argument("data", help=".spacy file (see convert)")
    p.add_argument("--decoder", choices=sorted(DECODERS), default=None)
    p.add_argument("--component", default="infnet_tagger")
    p.add_argument("--output", default=None, help="write the scores as JSON")
    p.set_defaults(func=evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
