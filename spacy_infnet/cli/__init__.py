"""Command line of spacy-infnet: one typer app, ``infnet``, reachable three ways::

    python -m spacy_infnet COMMAND ...    (spacy_infnet/__main__.py)
    spacy-infnet COMMAND ...              (console script, [project.scripts])
    python -m spacy infnet COMMAND ...    (spaCy's CLI, through the spacy_cli entry point)

Commands (``--help`` on each lists every option):

    convert NAME OUTPUT        a dataset split as a spaCy DocBin (.spacy)         (:mod:`.data`)
    evaluate PIPELINE [DATA]   spaCy's scores on a DocBin or --dataset split, any decoder
                                                                                  (:mod:`.evaluate`)
    bench PIPELINE...          speed, accuracy, energy, search error per decoder  (:mod:`.bench`)
    bench-beyond PIPELINE      hybrid curve, confidence calibration, k-best oracle (:mod:`.beyond`)
    export PIPELINE OUT        a Hugging Face Hub model repository                (:mod:`.hub`)
    push PIPELINE ORG/NAME     export and upload to the Hub                       (:mod:`.hub`)
    tag PIPELINE INPUT OUT     tag a corpus into resumable shards (or on Ray)     (:mod:`.tag`)

Commands that read a dataset take the loaders' options (``--dataset``/NAME, ``--path``,
``--option KEY=VALUE``, ``--split``); commands that take a decoder take a short name of
``spacy_infnet.pipeline.registry.DECODERS``.  User errors print one line and exit with status 1
(:mod:`._util`).  Progress is logged through spaCy's logger (level INFO; ``--verbose``: DEBUG).

spaCy's ``setup_cli()`` calls ``registry.cli.get_all()``, which imports every ``spacy_cli``
entry point; ours (``infnet = "spacy_infnet.cli:app"``) imports this module, which adds
:data:`app` to ``spacy.cli._util.app`` (:func:`register_with_spacy`).
"""

import sys
from typing import Annotated

import typer

from ._util import Opt, UserError, click_errors, setup_logging
from .bench import bench_cli
from .beyond import bench_beyond_cli
from .data import convert_cli
from .evaluate import evaluate_cli
from .hub import export_cli, push_cli
from .tag import tag_cli

NAME = "infnet"
HELP = """spacy-infnet: inference networks for spaCy (Tu & Gimpel, NAACL 2019).

Convert datasets, evaluate and benchmark the decoders of a trained infnet_tagger, and export
or push it to the Hugging Face Hub.
"""

app = typer.Typer(
    name=NAME, help=HELP, no_args_is_help=True, rich_markup_mode=None, add_completion=False
)


@app.callback()
def _options(
    verbose: Annotated[
        bool, Opt("--verbose", "-v", help="debug logging (tracebacks of errors too)")
    ] = False,
) -> None:
    setup_logging(verbose)


app.command("convert")(convert_cli)
app.command("evaluate")(evaluate_cli)
app.command("bench")(bench_cli)
app.command("bench-beyond")(bench_beyond_cli)
app.command("export")(export_cli)
app.command("push")(push_cli)
app.command("tag")(tag_cli)


def register_with_spacy() -> None:
    """Add :data:`app` to spaCy's CLI as ``python -m spacy infnet`` (once per process)."""
    from spacy.cli._util import app as spacy_app

    if not any(group.typer_instance is app for group in spacy_app.registered_groups):
        spacy_app.add_typer(app, name=NAME)


register_with_spacy()


def main(argv: list[str] | None = None) -> int:
    """Run a command: ``main(["bench", "runs/pos/model-best", "--dataset", "twitter_pos"])``.

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        0 on success (also after ``--help``).

    Raises:
        SystemExit: a user error, after its one-line message (status 1; ``str()`` of the
            exception is the message, see :class:`._util.UserError`), or a usage error such
            as an unknown flag or a missing argument, after click's message (status 2).
    """
    usage_errors, aborts = click_errors()
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, standalone_mode=False)
    except usage_errors as err:
        err.show()
        raise SystemExit(getattr(err, "exit_code", 2)) from None
    except aborts:
        print("Aborted!", file=sys.stderr)
        raise SystemExit(1) from None
    return rv if isinstance(rv, int) else 0


__all__ = ["NAME", "UserError", "app", "main", "register_with_spacy"]
