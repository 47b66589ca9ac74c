"""Throughput of ``python -m spacy_infnet tag`` on a corpus of about a million tokens: with 1
and 2 processes, with each decoder (default: the inference network and Viterbi), and on Ray
Data with 2 CPUs, each run in a fresh process; and whether Ray's output equals ``tag -n 2``'s.

    python recipes/tag_corpus.py runs/pos/model-best --output results/tag_corpus_cpu
    python recipes/tag_corpus.py runs/pos/model-best --tokens 20000 --work /tmp/tc \
        --corpus /tmp/tc/corpus.txt --output /tmp/tc/result

The corpus (``--corpus``, default ``corpus/tag_corpus_<tokens>.txt``; ``corpus/`` is
git-ignored, the CoNLL-2003 text must never be committed) holds one sentence per line: the
sentences of CoNLL-2003 (``eng.train``, ``eng.testa``, ``eng.testb``, words joined by spaces)
and of UD English EWT (``# text =`` of train, dev, test), alternately, repeated until the lines
hold ``--tokens`` whitespace-separated tokens.  Each run is ``python -m spacy_infnet tag`` (or
``tag --ray``) into a new directory under ``--work``, with ``OMP_NUM_THREADS=--threads``.

Recorded per run: documents and tokens (spaCy's tokens) tagged; ``seconds``, the command's own
time (loading the pipeline, counting the input, tagging, writing; for Ray, from reading to the
last file written, not counting Ray's start); ``wall_seconds``, the whole process from start to
exit (interpreter, imports, Ray's start); documents/s and tokens/s over ``seconds`` and over
``wall_seconds``; peak RSS in MB: of the command's process and of its largest child process
(``nlp.pipe`` workers; for Ray, the largest process of the run's process tree, from
``os.wait4``).  The table goes to ``--output`` ``.json`` and ``.md`` (written atomically).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from operator import itemgetter
from pathlib import Path
from typing import Annotated

import typer

from spacy_infnet.cli import _util as cli
from spacy_infnet.fileio import atomic_write

logger = logging.getLogger("spacy.infnet")
CONLL_FILES = ("eng.train", "eng.testa", "eng.testb")
EWT_FILES = ("en_ewt-ud-train.conllu", "en_ewt-ud-dev.conllu", "en_ewt-ud-test.conllu")


def conll_sentences(folder: Path) -> list[str]:
    """The sentences of the CoNLL-2003 files, words joined by single spaces.

    Raises:
        FileNotFoundError: a missing file (named).
    """
    out: list[str] = []
    for name in CONLL_FILES:
        path = cli.check_file(folder / name, "CoNLL-2003 file")
        words: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines() + [""]:
            if not line.strip() or line.startswith("-DOCSTART-"):
                if words:
                    out.append(" ".join(words))
                words = []
            else:
                words.append(line.split()[0])
    return out


def ewt_sentences(folder: Path) -> list[str]:
    """The ``# text =`` lines of the UD English EWT files.

    Raises:
        FileNotFoundError: a missing file (named).
    """
    out = []
    for name in EWT_FILES:
        path = cli.check_file(folder / name, "UD EWT file")
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# text ="):
                text = line.split("=", 1)[1].strip()
                if text:
                    out.append(text)
    return out


def build_corpus(path: Path, tokens: int, conll: Path, ewt: Path) -> dict:
    """Write the corpus (atomically) and describe it: lines, whitespace tokens, sources."""
    a, b = conll_sentences(conll), ewt_sentences(ewt)
    mixed = [s for pair in zip(a, b) for s in pair] + a[len(b) :] + b[len(a) :]
    if not mixed:
        raise ValueError(f"no sentences in {conll} and {ewt}")
    lines, n = [], 0
    while n < tokens:
        for sentence in mixed:
            lines.append(sentence)
            n += len(sentence.split())
            if n >= tokens:
                break
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, ("\n".join(lines) + "\n").encode("utf-8"))
    logger.info("tag_corpus: wrote %s (%d lines, %d tokens)", path, len(lines), n)
    return {
        "path": str(path),
        "documents": len(lines),
        "whitespace_tokens": n,
        "conll2003_sentences": len(a),
        "ud_ewt_sentences": len(b),
        "repeats": round(len(lines) / len(mixed), 2),
    }


def run(name: str, cmd: list[str], work: Path, threads: int) -> dict:
    """Run ``cmd`` (a ``tag`` command writing ``--summary``) in a fresh process; its summary
    plus wall seconds and the peak RSS of its process tree (``os.wait4``).

    Raises:
        ValueError: the command failed (its status, last lines of output and log file).
    """
    log = work / f"{name.replace(' ', '_').replace(',', '')}.log"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    logger.info("tag_corpus: %s: %s", name, " ".join(cmd))
    start = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
        raise ValueError(f"{name} failed ({proc.returncode}; {log}): {' | '.join(tail)}")
    summary = json.loads(cmd_summary(cmd).read_text())
    scale = 1 if sys.platform == "darwin" else 1024
    row = {
        "name": name,
        "documents": summary["documents"],
        "tokens": summary["tokens"],
        "bad_records": summary["bad_records"],
        "seconds": summary["seconds"],
        "wall_seconds": wall,
        "documents_per_second": summary["documents"] / summary["seconds"],
        "tokens_per_second": summary["tokens"] / summary["seconds"],
        "wall_documents_per_second": summary["documents"] / wall,
        "wall_tokens_per_second": summary["tokens"] / wall,
        "peak_rss_mb": summary.get("peak_rss_mb"),
        "peak_rss_children_mb": summary.get("peak_rss_children_mb"),
        "peak_rss_process_tree_mb": usage.ru_maxrss * scale / 1e6,
    }
    logger.info(
        "tag_corpus: %s: %.0f documents/s, %.0f tokens/s, %.1f s wall",
        name,
        row["documents_per_second"],
        row["tokens_per_second"],
        wall,
    )
    return row


def cmd_summary(cmd: list[str]) -> Path:
    return Path(cmd[cmd.index("--summary") + 1])


def ray_rows(out: Path) -> tuple[list[dict], list[dict]]:
    """(good rows without null fields, bad rows as sidecar entries) of Ray's JSON files."""
    good, bad = [], []
    for path in sorted(out.glob("*.json")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["error"] is None:
                good.append({k: v for k, v in row.items() if v is not None})
            else:
                bad.append({"id": row["id"], "source": row["source"], "reason": row["error"]})
    return sorted(good, key=itemgetter("id")), sorted(bad, key=itemgetter("id"))


def markdown(table: dict) -> str:
    c = table["corpus"]
    lines = [
        f"# tag on {c['documents']:,} documents ({c['whitespace_tokens']:,} whitespace tokens)",
        "",
        (
            f"Pipeline `{table['pipeline']}`, {table['machine']}, {table['threads']} torch "
            f"thread(s) per process; corpus: CoNLL-2003 and UD EWT sentences, alternately, "
            f"repeated {c['repeats']}×.  documents/s and tokens/s over the command's own "
            "seconds (loading included; Ray: without its start); wall: the whole process."
        ),
        "",
        (
            "| run | documents/s | tokens/s | seconds | wall s | wall documents/s "
            "| peak RSS MB (main / largest child / process tree) |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table["runs"]:
        rss = " / ".join(
            "–" if r[k] is None else f"{r[k]:,.0f}"
            for k in ("peak_rss_mb", "peak_rss_children_mb", "peak_rss_process_tree_mb")
        )
        lines.append(
            f"| {r['name']} | {r['documents_per_second']:,.0f} | {r['tokens_per_second']:,.0f} "
            f"| {r['seconds']:.1f} | {r['wall_seconds']:.1f} "
            f"| {r['wall_documents_per_second']:,.0f} | {rss} |"
        )
    same = table["ray_equals_tag_n_process_2"]
    lines += [
        "",
        (
            f"Ray's records equal those of `{table['ray_compared_with']}`: "
            f"{'yes' if same else 'no'} (null fields dropped; bad records compared with the "
            "sidecars' list)."
        ),
        "",
    ]
    return "\n".join(lines)


@cli.user_errors("tag_corpus")
def main(
    pipeline: Annotated[Path, cli.Arg(help="trained pipeline directory", show_default=False)],
    tokens: Annotated[int, cli.Opt(help="whitespace tokens of the corpus")] = 1_000_000,
    conll2003: Annotated[Path, cli.Opt(help="CoNLL-2003 folder")] = Path(
        "../shared/data/conll2003"
    ),
    ud_ewt: Annotated[Path, cli.Opt(help="UD English EWT folder")] = Path(
        "../shared/data/ud_english_ewt"
    ),
    corpus: Annotated[
        Path | None,
        cli.Opt(help="corpus file (default: corpus/tag_corpus_<tokens>.txt)", show_default=False),
    ] = None,
    decoders: Annotated[str, cli.Opt(help=f"comma-separated; {cli.DECODER_HELP}")] = (
        "infnet,viterbi"
    ),
    processes: Annotated[str, cli.Opt(help="comma-separated nlp.pipe process counts")] = "1,2",
    ray_cpus: Annotated[int, cli.Opt(help="CPUs (and actors) of the Ray run; 0: no Ray")] = 2,
    shard_size: Annotated[int, cli.Opt(help="records per shard")] = 10_000,
    threads: Annotated[int, cli.Opt(help="OMP_NUM_THREADS of every run")] = 1,
    work: Annotated[Path, cli.Opt(help="output directories of the runs")] = Path("runs/tag_corpus"),
    output: Annotated[Path, cli.Opt(help="stem of the .json and .md table")] = Path(
        "results/tag_corpus_cpu"
    ),
) -> None:
    """Time tag (1 and 2 processes, each decoder) and tag --ray on a ~1M-token corpus."""
    from spacy_infnet.bench import cpu_model
    from spacy_infnet.corpus import bad_records, iter_output
    from spacy_infnet.pipeline.checksum import weights_sha256

    cli.check_pipeline(pipeline)
    names = cli.check_decoders(decoders)
    counts = cli.parse_int_list(processes, "--processes")
    if not counts or min(counts) < 1:
        raise ValueError(f"--processes needs counts ≥ 1, got {processes!r}")
    corpus = corpus or Path("corpus") / f"tag_corpus_{tokens}.txt"
    described = build_corpus(corpus, tokens, conll2003, ud_ewt)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    base = [sys.executable, "-m", "spacy_infnet", "tag", str(pipeline), str(corpus)]
    runs, dirs = [], {}
    for decoder in names:
        for n in counts:
            name = f"tag -n {n}, {decoder}"
            out = work / f"tag_n{n}_{decoder}"
            cmd = base + [str(out), "--decoder", decoder, "--n-process", str(n)]
            cmd += ["--shard-size", str(shard_size), "--no-progress"]
            cmd += ["--summary", str(work / f"tag_n{n}_{decoder}.summary.json")]
            runs.append(run(name, cmd, work, threads))
            dirs[name] = out
    same, compared = None, None
    if ray_cpus > 0:
        name = f"ray, {ray_cpus} CPUs, {names[0]}"
        out = work / "ray"
        cmd = base + [str(out), "--ray", "--ray-cpus", str(ray_cpus), "-n", str(ray_cpus)]
        cmd += ["--decoder", names[0], "--no-progress", "--summary", str(work / "ray.summary.json")]
        runs.append(run(name, cmd, work, threads))
        compared = f"tag -n {max(counts)}, {names[0]}"
        good, bad = ray_rows(out)
        same = good == list(iter_output(dirs[compared])) and bad == bad_records(dirs[compared])
    table = {
        "pipeline": str(pipeline),
        "weights_sha256": weights_sha256(pipeline),
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs",
        "threads": threads,
        "shard_size": shard_size,
        "corpus": described,
        "runs": runs,
        "ray_compared_with": compared,
        "ray_equals_tag_n_process_2": same,
        "versions": {
            "python": platform.python_version(),
            "spacy": __import__("spacy").__version__,
            "torch": __import__("torch").__version__,
            "ray": _version("ray"),
        },
    }
    text = markdown(table)
    cli.write_table(output, table, text)
    typer.echo(text)


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


if __name__ == "__main__":
    cli.run_script(main, "tag_corpus")
