"""Command line: ``python -m benchmarks.viterbi_peers [OPTIONS]``, run from the repository root.

A typer app in the style of spaCy's CLI.  It writes the JSON results to ``--output`` and the
Markdown table next to it, prints the Markdown, and exits with 0 when every cell agrees, 1 when
some cell disagrees, or 2 for a user error (a bad option value, a missing pipeline directory,
an unknown peer or data set), which is reported as one line on stderr, never a traceback.
Progress is a tqdm bar; diagnostics go to the ``spacy.infnet`` logger (INFO, on stderr).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import torch
import typer
from typer.core import TyperCommand

from .peers import PEERS
from .problems import parse_pipeline_data
from .run import markdown, run_benchmark

__all__ = ["app", "main"]

PROG = "viterbi_peers"
USER_ERROR = 2
DEFAULT_OUTPUT = Path("results/bench_viterbi.json")
logger = logging.getLogger("spacy.infnet")

Opt = typer.Option


def _fail(message: str) -> NoReturn:
    """Print ``message`` as one line on stderr and exit with status :data:`USER_ERROR`."""
    typer.echo(f"{PROG}: error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(USER_ERROR)


class _OneLineErrors(TyperCommand):
    """A typer command that reports errors in parsing its options (a value that is not a number,
    an unknown option...) as one line on stderr instead of the usage text and error panel."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except typer.TyperException as exc:
            _fail(exc.format_message())


class _StderrHandler(logging.StreamHandler):
    """A ``StreamHandler`` on whatever ``sys.stderr`` is when a record is written (so it follows
    redirections such as typer's ``CliRunner``), formatted like spaCy's own handler."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("[%(asctime)s] [%(levelname)s] %(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # assigned by StreamHandler.__init__; always sys.stderr
        pass


def _setup_logging(import_spacy: bool) -> None:
    """INFO on the ``spacy.infnet`` logger, with a stderr handler on ``spacy`` if it has none."""
    if import_spacy:
        # Loading the pipelines imports spaCy, which adds its own handler to "spacy": import it
        # first so that handler is the only one (no duplicated lines).
        import spacy  # noqa: F401
    logger.setLevel(logging.INFO)
    spacy_logger = logging.getLogger("spacy")
    if not spacy_logger.handlers:
        spacy_logger.addHandler(_StderrHandler())


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"expected positive integers, got {text!r}")
    return values


def _peer_list(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in values if v not in PEERS]
    if unknown:
        raise ValueError(f"unknown peer(s) {unknown}; known: {', '.join(PEERS)}")
    return values


app = typer.Typer(
    name=PROG,
    help="Our batched Viterbi against pytorch-crf and torch-struct, on identical potentials.",
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.command(cls=_OneLineErrors)
def main(
    labels: Annotated[
        str, Opt("--labels", help="Comma-separated label counts L of the random potentials")
    ] = "17,25,321,400",
    batch_sizes: Annotated[
        str, Opt("--batch-sizes", help="Comma-separated batch sizes B (sentences per batch)")
    ] = "1,10,100,1000",
    repeats: Annotated[
        int, Opt("--repeats", min=1, help="Timed runs per decoder and cell, after 1 warm-up run")
    ] = 3,
    threads: Annotated[
        int, Opt("--threads", min=1, help="Torch threads (torch.set_num_threads) during the run")
    ] = 1,
    seed: Annotated[
        int, Opt("--seed", help="Seed of the sentence lengths and the random potentials")
    ] = 0,
    pipeline: Annotated[
        list[str] | None,
        Opt(
            "--pipeline",
            metavar="DIR",
            help="Trained spaCy pipeline with an infnet_tagger (repeatable; one --pipeline-data "
            "each)",
        ),
    ] = None,
    pipeline_data: Annotated[
        list[str] | None,
        Opt(
            "--pipeline-data",
            metavar="NAME[:PATH]",
            help="Test data of the matching --pipeline, e.g. conll2003:../shared/data/conll2003, "
            "twitter_pos, ud_ewt:../shared/data/ud_english_ewt (repeatable)",
        ),
    ] = None,
    no_random: Annotated[
        bool, Opt("--no-random", help="Only the pipelines' potentials, no random ones")
    ] = False,
    peers: Annotated[
        str, Opt("--peers", help=f"Comma-separated peers to run ({', '.join(PEERS)})")
    ] = ",".join(PEERS),
    torch_struct_max_gib: Annotated[
        float,
        Opt("--torch-struct-max-gib", help="Estimated memory cap per torch-struct chunk (GiB)"),
    ] = 2.0,
    peer_time_budget: Annotated[
        float,
        Opt(
            "--peer-time-budget",
            min=0.0,
            help="Seconds a peer's first run of a cell may take (0 = no limit)",
        ),
    ] = 120.0,
    output: Annotated[
        Path,
        Opt("--output", help="JSON results; the Markdown goes next to it with the same stem"),
    ] = DEFAULT_OUTPUT,
    no_progress: Annotated[bool, Opt("--no-progress", help="No progress bar")] = False,
) -> None:
    """Time our Viterbi, pytorch-crf and torch-struct on random potentials (every L x B) and on
    trained pipelines' potentials (every B), check that their paths agree, and write the JSON
    results and a Markdown table (see the docstring of benchmarks.viterbi_peers)."""
    pipeline, pipeline_data = pipeline or [], pipeline_data or []
    try:
        label_list = _int_list(labels)
    except ValueError as exc:
        _fail(f"--labels: {exc}")
    try:
        batch_list = _int_list(batch_sizes)
    except ValueError as exc:
        _fail(f"--batch-sizes: {exc}")
    try:
        peer_list = _peer_list(peers)
    except ValueError as exc:
        _fail(f"--peers: {exc}")
    if len(pipeline) != len(pipeline_data):
        _fail(
            f"{len(pipeline)} --pipeline but {len(pipeline_data)} --pipeline-data; "
            "give one NAME[:PATH] per pipeline"
        )
    pipelines = []
    for directory, spec in zip(pipeline, pipeline_data):
        try:
            name, path = parse_pipeline_data(spec)
        except ValueError as exc:
            _fail(str(exc))
        if not Path(directory).is_dir():
            _fail(f"--pipeline {directory}: no such directory")
        if path is not None and not Path(path).exists():
            _fail(f"--pipeline-data {spec}: no such file or directory {path}")
        pipelines.append((directory, name, path))
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"--output {output}: {exc}")
    _setup_logging(import_spacy=bool(pipelines))

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        results = run_benchmark(
            labels=label_list,
            batch_sizes=batch_list,
            repeats=repeats,
            seed=seed,
            pipelines=pipelines,
            random=not no_random,
            peers=peer_list,
            peer_time_budget=peer_time_budget or None,
            torch_struct_max_gib=torch_struct_max_gib,
            progress=not no_progress,
        )
    except (OSError, ValueError) as exc:
        # Loading a pipeline or a data set: an unknown data set name, a directory that is not a
        # spaCy pipeline or has no infnet_tagger, unreadable data files.
        logger.debug("run_benchmark failed", exc_info=True)
        _fail(str(exc))
    finally:
        torch.set_num_threads(previous_threads)

    md_path = output.with_suffix(".md")
    text = markdown(results)
    try:
        output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        md_path.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"--output {output}: {exc}")
    typer.echo(text)
    logger.info("wrote %s and %s", output, md_path)
    disagree = sum(1 for row in results["rows"] if row["agreement"]["disagree"])
    if disagree:
        logger.warning("%d cell(s) where a peer's path disagrees with ours", disagree)
        raise typer.Exit(1)
