"""What the commands of ``python -m spacy_infnet`` share: the dataset options (the same as the
loaders' arguments), the decoder options (one table, ``spacy_infnet.pipeline.registry.DECODERS``),
option parsing, logging, and the handling of user errors.

User errors print one line (``✘ COMMAND: message``, as wasabi's ``msg.fail`` in spaCy's CLI,
unwrapped) and exit with status 1; only bugs show a traceback (``--verbose`` logs user errors'
tracebacks too, at DEBUG).
"""

import functools
import inspect
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from wasabi import msg

from ..pipeline.registry import DECODERS

#: spaCy's logger: it has a stream handler (stderr) once spaCy is imported; the package logs to
#: its child "spacy.infnet", so spaCy's handler and level apply.
LOGGER = "spacy"
logger = logging.getLogger("spacy.infnet")

Arg = typer.Argument
Opt = typer.Option

DECODER_HELP = "short decoder name: " + ", ".join(DECODERS)


class UserError(SystemExit):
    """Exit status 1 after a one-line error message; ``str()`` is the message (so callers of
    :func:`spacy_infnet.cli.main` can match it), the interpreter prints nothing more."""

    def __init__(self, message: str) -> None:
        super().__init__(1)
        self.message = message

    def __str__(self) -> str:
        return self.message


def setup_logging(verbose: bool = False) -> None:
    """Level of spaCy's logger: INFO (progress of the package's modules), DEBUG if ``verbose``."""
    import spacy  # noqa: F401  (spacy.util adds the stream handler of the "spacy" logger)

    logging.getLogger(LOGGER).setLevel(logging.DEBUG if verbose else logging.INFO)


def user_error_types() -> tuple[type, ...]:
    """The package's documented user errors: what a command reports in one line.

    ``spacy_infnet.hub.ExportError`` (a damaged or refused export) and
    ``confection.ConfigValidationError`` (invalid settings) are ValueErrors; OSError covers
    FileNotFoundError (a missing pipeline or data file) and huggingface_hub's errors (an
    unreachable Hub id, no network, no access).
    """
    from confection import ConfigValidationError

    from ..hub.manifest import ExportError

    return (ExportError, ConfigValidationError, ValueError, OSError)


def describe(err: BaseException) -> str:
    """One line for a user error: a config validation error as ``title: field: problem; ...``
    (without the config it dumps), any other message with its line breaks joined."""
    from confection import ConfigValidationError

    if isinstance(err, ConfigValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', []))}: {e.get('msg')}" for e in err.errors
        )
        title = " ".join((err.title or "invalid settings").split())
        return f"{title}: {problems}" if problems else title
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return " ".join(lines) or type(err).__name__


def fail(text: str) -> None:
    """Print ``text`` as wasabi's ``msg.fail`` does (icon and colour, following wasabi's
    settings such as ``NO_COLOR``), but on one line: ``msg.fail`` wraps at 80 columns."""
    from wasabi.util import color, locale_escape

    line = text
    if msg.pretty:
        line = locale_escape(f"{msg.icons.get('fail', '')} {text}").strip()
        if msg.show_color:
            line = color(line, fg=msg.colors.get("fail"))
    print(line, flush=True)


def user_errors(command: str) -> Callable:
    """Decorator of a command: the user errors it raises (:func:`user_error_types`) print one
    line ``✘ COMMAND: message`` and exit with status 1 (:class:`UserError`); anything else
    propagates with its traceback (a bug)."""

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as err:
                if not isinstance(err, user_error_types()):
                    raise
                logger.debug("%s failed", command, exc_info=True)
                text = f"{command}: {describe(err)}"
                fail(text)
                raise UserError(text) from None

        return wrapper

    return decorate


# -- parsing ---------------------------------------------------------------------------------
def _json_value(text: str) -> Any:
    """``text`` as JSON (numbers, true/false/null, lists as tuples), else the string itself."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return tuple(value) if isinstance(value, list) else value


def parse_key_values(items: list[str] | None, flag: str = "--option") -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` → ``{KEY: value}``, values parsed as JSON where they are JSON
    (``3``, ``true``, ``null``, ``["a","b"]`` → a tuple), else kept as strings.

    Raises:
        ValueError: an item without ``=`` or with an empty key (names ``flag``).
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} expects KEY=VALUE (JSON values allowed), got {item!r}")
        out[key.strip()] = _json_value(value)
    return out


def parse_decoder_settings(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """``--set DECODER.SETTING=VALUE`` items → ``{decoder: {setting: value}}``.

    Raises:
        ValueError: bad syntax, or a decoder not in the table.
    """
    out: dict[str, dict[str, Any]] = {}
    for key, value in parse_key_values(items, "--set").items():
        decoder, dot, setting = key.partition(".")
        if not dot or not setting:
            raise ValueError(
                f"--set expects DECODER.SETTING=VALUE (e.g. gd.learning_rate=100), got {key!r}"
            )
        check_decoder(decoder)
        out.setdefault(decoder, {})[setting] = value
    return out


def parse_int_list(text: str | None, flag: str) -> list[int]:
    """``"5,10,20"`` → ``[5, 10, 20]`` (None or "" → []).

    Raises:
        ValueError: an item that is not an integer (names ``flag``).
    """
    try:
        return [int(x) for x in (text or "").split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{flag} expects comma-separated integers, got {text!r}") from None


def parse_names(text: str | None) -> list[str]:
    """``"viterbi, gd"`` → ``["viterbi", "gd"]``."""
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def check_decoder(name: str) -> str:
    """``name`` if it is a key of ``DECODERS``.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r}: choose from {', '.join(DECODERS)}")
    return name


def check_decoders(text: str | None) -> list[str]:
    """``"viterbi,infnet"`` → ``["viterbi", "infnet"]``, each a key of ``DECODERS``.

    Raises:
        ValueError: no name, or an unknown one (the message lists the known ones).
    """
    names = parse_names(text)
    if not names:
        raise ValueError("--decoders names no decoder")
    return [check_decoder(name) for name in names]


def check_pipeline(path: Path) -> Path:
    """``path`` if it is a directory.

    Raises:
        FileNotFoundError: it is not (names the path).
    """
    if not Path(path).is_dir():
        raise FileNotFoundError(
            f"pipeline directory {path} does not exist (pass a trained pipeline such as "
            "runs/pos/model-best)"
        )
    return Path(path)


def check_file(path: Path, what: str = "data file", hint: str = "") -> Path:
    """``path`` if it is a file.

    Raises:
        FileNotFoundError: it is not (names ``what`` and the path).
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{what} {path} does not exist{hint}")
    return Path(path)


# -- the options every command shares (typer ``Annotated`` types) ---------------------------
DATASET_HELP = (
    "dataset: twitter_pos, conll2003, ewt_ccg, ud_ewt, ccgbank, conll (your own column files)"
)
PATH_HELP = "data folder of the dataset (not needed for twitter_pos)"
OPTION_HELP = (
    "loader option KEY=VALUE, passed to spacy_infnet.load_dataset(NAME, PATH, **options); "
    "JSON values allowed (null, 3, true, [..]); repeatable, e.g. --option train=a.tsv "
    "--option validation=null (conll)"
)
SPLIT_HELP = "split: train, validation or test"
SCHEME_HELP = "NER tag scheme of the dataset (bioes, iob2, ...; default: detected from its labels)"
DOCUMENTS_HELP = "one doc per document (sentences joined, sentence starts kept), not per sentence"

#: The dataset, as the first argument (convert).
DatasetArg = Annotated[str, Arg(help=DATASET_HELP, show_default=False)]
#: The dataset, as ``--dataset`` (evaluate: optional; bench: :data:`RequiredDatasetOpt`).
DatasetOpt = Annotated[str | None, Opt("--dataset", help=DATASET_HELP, show_default=False)]
RequiredDatasetOpt = Annotated[str, Opt("--dataset", help=DATASET_HELP, show_default=False)]
PathOpt = Annotated[str | None, Opt("--path", help=PATH_HELP, show_default=False)]
OptionOpt = Annotated[
    list[str] | None, Opt("--option", help=OPTION_HELP, metavar="KEY=VALUE", show_default=False)
]
SplitOpt = Annotated[str, Opt("--split", help=SPLIT_HELP)]
SchemeOpt = Annotated[str | None, Opt("--scheme", help=SCHEME_HELP, show_default=False)]
DocumentsOpt = Annotated[bool, Opt("--documents", help=DOCUMENTS_HELP)]
DecoderOpt = Annotated[
    str | None,
    Opt(
        "--decoder",
        help=DECODER_HELP + " (default: the pipeline's configured decoder)",
        show_default=False,
    ),
]
GpuOpt = Annotated[int, Opt("--gpu-id", "-g", help="CUDA device to run on (-1: CPU)")]


@dataclass
class Dataset:
    """One split of a dataset as the loaders take it: ``load_dataset(name, path, **options)``
    (see :mod:`spacy_infnet.data`), split ``split``; ``scheme``: the NER tag scheme of its
    labels (None: detected from them)."""

    name: str
    path: str | None
    split: str = "test"
    options: dict[str, Any] = field(default_factory=dict)
    scheme: str | None = None

    @classmethod
    def from_cli(
        cls,
        name: str,
        path: str | None,
        options: list[str] | None,
        split: str,
        scheme: str | None = None,
    ) -> "Dataset":
        """Parse and check the dataset options of a command.

        Raises:
            ValueError: bad ``--option`` syntax, an unknown dataset, or an option its loader
                does not take (the message lists those it takes).
        """
        parsed = parse_key_values(options)
        check_loader_options(name, parsed)
        return cls(name=name, path=path, split=split, options=parsed, scheme=scheme)

    def ner_scheme(self) -> str:
        """:attr:`scheme`, else the NER scheme detected from the split's labels (the split is
        read once: :func:`~spacy_infnet.pipeline.readers.dataset_examples` reuses it)."""
        from ..core.schemes import detect_scheme
        from ..pipeline.readers import split_labels

        if self.scheme:
            return self.scheme
        return detect_scheme(split_labels(self.name, self.path, self.split, self.options))

    def examples(self, nlp: Any, task: str, documents: bool = False) -> list:
        """The split's gold :class:`spacy.training.Example` objects for a component of
        ``task`` ("ner": entities from the tags, :meth:`ner_scheme`; "tag": ``token.tag_``),
        one per sentence or (``documents``) per document.

        Raises:
            ValueError: an unknown task; the loader's errors.
        """
        from ..pipeline.readers import dataset_examples

        return list(
            dataset_examples(
                nlp,
                self.name,
                self.split,
                path=self.path,
                task=task,
                scheme=self.ner_scheme() if task == "ner" else "bioes",
                options=self.options,
                documents=documents,
            )
        )


#: The loaders' dataset options, as every command takes them: (name, option type, default).
DATASET_OPTIONS = (
    ("dataset", DatasetOpt, None),
    ("path", PathOpt, None),
    ("option", OptionOpt, None),
    ("split", SplitOpt, "test"),
    ("scheme", SchemeOpt, None),
)


def dataset_options(required: bool = False) -> Callable:
    """Decorator of a command that takes ``dataset`` (a :class:`Dataset` or None): its command
    line gets the loaders' dataset options instead (:data:`DATASET_OPTIONS`: ``--dataset``,
    ``--path``, ``--option KEY=VALUE``, ``--split``, ``--scheme``), defined here once for
    every command and recipe, and it is called with the :class:`Dataset` they name (None
    without ``--dataset``, which ``required`` makes mandatory).

    Raises (when the command runs):
        ValueError: bad ``--option`` syntax, an unknown dataset or loader option.
    """

    def decorate(fn: Callable) -> Callable:
        own = [p for p in inspect.signature(fn, eval_str=True).parameters.values()]
        own = [p for p in own if p.name != "dataset"]
        kind = inspect.Parameter.KEYWORD_ONLY
        added = [
            inspect.Parameter(name, kind, default=default, annotation=annotation)
            for name, annotation, default in DATASET_OPTIONS
        ]
        if required:
            added[0] = inspect.Parameter("dataset", kind, annotation=RequiredDatasetOpt)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            values = {name: kwargs.pop(name, default) for name, _, default in DATASET_OPTIONS}
            dataset = None
            if values["dataset"] is not None:
                dataset = Dataset.from_cli(*(values[name] for name, _, _ in DATASET_OPTIONS))
            return fn(*args, dataset=dataset, **kwargs)

        params = own + added
        wrapper.__signature__ = inspect.Signature(params, return_annotation=None)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


def check_loader_options(name: str, options: dict[str, Any]) -> None:
    """Check ``options`` against the keyword arguments of the loader of dataset ``name``.

    Raises:
        ValueError: an unknown dataset (lists the known ones), or an option the loader does not
            take (lists those it takes).
    """
    from .. import data

    key = data.dataset_key(name)
    if key not in data.DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}: choose from {', '.join(sorted(data.DATASETS))}"
        )
    params = inspect.signature(data.DATASETS[key]).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    takes = [p for p in params if p != "path"]
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise ValueError(
            f"the {key} loader takes no option {', '.join(map(repr, unknown))}; it takes "
            f"{', '.join(takes) or 'none'}"
        )


# -- scripts outside the package (recipes/*.py) -----------------------------------------------
def load_examples(
    nlp: Any,
    task: str,
    dataset: Dataset | None,
    docbin: Path | None = None,
    documents: bool = False,
) -> list:
    """The gold examples of a DocBin (``.spacy``) or of a dataset split (:meth:`Dataset.examples`),
    for a component of ``task``: one of ``docbin`` and ``dataset``.

    Raises:
        ValueError: both or neither of ``docbin`` and ``dataset``; the loader's errors.
        FileNotFoundError: ``docbin`` does not exist.
    """
    check_source(dataset, docbin)
    if docbin is None:
        return dataset.examples(nlp, task, documents=documents)
    from spacy.training import Corpus

    return list(Corpus(docbin)(nlp))


def check_source(dataset: Dataset | None, docbin: Path | None) -> None:
    """Check that exactly one of a dataset split and a DocBin file is given, and that the
    file exists.

    Raises:
        ValueError: both or neither.
        FileNotFoundError: ``docbin`` does not exist.
    """
    if docbin is not None and dataset is not None:
        raise ValueError("pass a .spacy file or --dataset NAME, not both")
    if docbin is None and dataset is None:
        raise ValueError("no data: pass a .spacy file (see convert) or --dataset NAME")
    if docbin is not None:
        check_file(docbin, hint=" (write one with `python -m spacy_infnet convert`)")


def write_table(stem: Path, table: dict, text: str) -> tuple[Path, Path]:
    """Write a recipe's table as ``STEM.json`` (``table``) and ``STEM.md`` (``text``), each
    atomically (a temporary file, then a rename); returns the two paths."""
    from ..pipeline.files import atomic_write

    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = stem.with_suffix(".json"), stem.with_suffix(".md")
    atomic_write(paths[0], json.dumps(table, indent=2).encode("utf8"))
    atomic_write(paths[1], text.encode("utf8"))
    logger.info("wrote %s and %s", *paths)
    return paths


def click_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(usage errors, aborts) as a typer command raises them with ``standalone_mode=False``:
    typer ≥ 0.2x vendors click (its errors derive from ``typer.TyperException``, abort is
    ``typer.Abort``), older typer uses click's own classes."""
    usage: list[type] = [typer.TyperException] if hasattr(typer, "TyperException") else []
    aborts: list[type] = [typer.Abort] if hasattr(typer, "Abort") else []
    try:
        import click
    except ImportError:
        pass
    else:
        usage.append(click.ClickException)
        aborts.append(click.exceptions.Abort)
    return tuple(usage), tuple(aborts)


def run_script(command: Callable, name: str, argv: list[str] | None = None) -> None:
    """Run ``command`` (a typer command function, decorated with :func:`user_errors`) as the
    whole command line of a script such as ``python recipes/table1.py``, in the conventions of
    ``python -m spacy_infnet``: progress logged through spaCy's logger at INFO
    (:func:`setup_logging`), user errors in one line with status 1, and usage errors (an
    unknown option, a value of the wrong type, a missing argument) in one line
    ``✘ NAME: message`` with status 2, without the usage text.
    """
    from typer.core import TyperCommand

    usage_errors, _ = click_errors()

    class OneLineUsage(TyperCommand):
        def make_context(self, info_name, args, parent=None, **extra):
            try:
                return super().make_context(info_name, args, parent=parent, **extra)
            except usage_errors as err:
                if not hasattr(err, "format_message"):
                    raise
                fail(f"{name}: {' '.join(err.format_message().split())}")
                raise SystemExit(2) from None

    app = typer.Typer(add_completion=False, rich_markup_mode=None)
    app.command(cls=OneLineUsage)(command)
    setup_logging()
    prog = f"python {Path(sys.argv[0]).as_posix()}" if sys.argv and sys.argv[0] else name
    app(args=argv, prog_name=prog)
