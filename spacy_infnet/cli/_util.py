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
DATASET_HELP = "dataset: twitter_pos, conll2003, ud_ewt, ccgbank, conll (your own column files)"
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
    (see :mod:`spacy_infnet.data`), split ``split``."""

    name: str
    path: str | None
    split: str = "test"
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_cli(
        cls, name: str, path: str | None, options: list[str] | None, split: str
    ) -> "Dataset":
        """Parse and check the dataset options of a command.

        Raises:
            ValueError: bad ``--option`` syntax, an unknown dataset, or an option its loader
                does not take (the message lists those it takes).
        """
        parsed = parse_key_values(options)
        check_loader_options(name, parsed)
        return cls(name=name, path=path, split=split, options=parsed)

    def labels(self) -> list[str]:
        """The split's label names (loads the dataset).

        Raises:
            ValueError: no such split; the loader's errors.
        """
        from ..data import load_dataset

        data = load_dataset(self.name, self.path, **self.options)
        if self.split not in data:
            raise ValueError(
                f"dataset {self.name!r} has no split {self.split!r}; it has {list(data)}"
            )
        return list(data[self.split].features["tags"].feature.names)

    def scheme(self, given: str | None) -> str:
        """``given``, else the NER scheme detected from the split's labels."""
        if given:
            return given
        from ..core.schemes import detect_scheme

        return detect_scheme(self.labels())


def check_loader_options(name: str, options: dict[str, Any]) -> None:
    """Check ``options`` against the keyword arguments of the loader of dataset ``name``.

    Raises:
        ValueError: an unknown dataset (lists the known ones), or an option the loader does not
            take (lists those it takes).
    """
    from .. import data

    key = str(name).strip().lower().replace("-", "_")
    key = getattr(data, "_ALIASES", {}).get(key, key)
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
