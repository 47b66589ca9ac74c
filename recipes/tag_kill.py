"""Kill `tag` with SIGKILL at random moments, rerun it, and compare with an uninterrupted run.

    python recipes/tag_kill.py runs/ner/model-best corpus/tag_corpus_1000000.txt \
        runs/tag_corpus/tag_n1_infnet --decoder infnet --kills 3

``--work`` is emptied first.  ``REFERENCE`` is the output directory of an uninterrupted ``tag`` run over the same corpus with
the same settings (the ``tag-corpus`` step leaves one per configuration under
``runs/tag_corpus``).  The command is started ``--kills`` times into a new directory; each time
it is killed (SIGKILL) a random moment after it has written a random number of new shards (at
least one, at most a third of those left, then a delay drawn uniformly within one shard's
time), and every shard visible after the kill is checked whole (its sidecar agrees with it).  A
last run finishes the output, which must equal the reference byte for byte: every shard and
sidecar.  Writes ``--output`` (.json) atomically: the moments of the kills, the shards finished
at each, and the result; exits with status 1 when the outputs differ.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from spacy_infnet.cli import _util as cli
from spacy_infnet.corpus.shards import finished_shard
from spacy_infnet.fileio import atomic_write

logger = logging.getLogger("tag_kill")


def part_bytes(out: Path) -> dict[str, bytes]:
    """Every shard and sidecar of an output directory, by file name."""
    return {p.name: p.read_bytes() for p in sorted(out.glob("part-*"))}


def main(
    pipeline: Annotated[Path, typer.Argument(help="trained pipeline directory")],
    corpus: Annotated[Path, typer.Argument(help="the corpus of the reference run")],
    reference: Annotated[Path, typer.Argument(help="output directory of an uninterrupted run")],
    decoder: Annotated[str, cli.Opt(help="the reference run's --decoder")] = "infnet",
    shard_size: Annotated[int, cli.Opt(help="the reference run's --shard-size")] = 10_000,
    kills: Annotated[int, cli.Opt(help="SIGKILLs before the last run")] = 3,
    seed: Annotated[int, cli.Opt(help="seed of the kill moments (-1: from the OS)")] = -1,
    work: Annotated[Path, cli.Opt(help="output directory of the killed runs")] = Path(
        "runs/tag_kill"
    ),
    output: Annotated[Path, cli.Opt(help="the result (.json)")] = Path("results/tag_kill_cpu.json"),
) -> None:
    """Kill tag --kills times at random moments, finish it, and compare with REFERENCE."""
    if work.exists():  # the killed runs of an earlier call of this recipe
        shutil.rmtree(work)
    ref = part_bytes(reference)
    n_shards = sum(name.endswith(".meta.json") for name in ref)
    if not n_shards:
        raise cli.UserError(f"tag_kill: {reference} holds no shards of a finished tag run")
    summary = json.loads((reference.parent / f"{reference.name}.summary.json").read_text())
    per_shard = float(summary["seconds"]) / n_shards
    rng = random.Random(int.from_bytes(os.urandom(8)) if seed < 0 else seed)
    cmd = [sys.executable, "-m", "spacy_infnet", "tag", str(pipeline), str(corpus), str(work)]
    cmd += ["--decoder", decoder, "--shard-size", str(shard_size), "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    events = []
    for i in range(kills):
        done = len(list(work.glob("part-*.meta.json")))
        target = done + rng.randint(1, max(1, (n_shards - done) // 3))
        delay = rng.uniform(0, per_shard)
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        while len(list(work.glob("part-*.meta.json"))) < target:
            if proc.poll() is not None:
                raise cli.UserError(f"tag_kill: run {i + 1} ended before its kill: {proc.stderr}")
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=120)
        visible = sorted(work.glob("part-*.meta.json"))
        whole = all(
            finished_shard(work, int(p.name[5:10]), "jsonl", shard_size) is not None
            for p in visible
        )
        events.append(
            {
                "killed_after_s": round(time.monotonic() - start, 2),
                "shards_finished": len(visible),
                "every_visible_shard_whole": whole,
            }
        )
        logger.info("kill %d: %s", i + 1, events[-1])
    start = time.monotonic()
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise cli.UserError(f"tag_kill: the last run failed: {res.stderr[-2000:]}")
    result = {
        "pipeline": str(pipeline),
        "corpus": str(corpus),
        "reference": str(reference),
        "decoder": decoder,
        "shards": n_shards,
        "kills": events,
        "last_run_s": round(time.monotonic() - start, 2),
        "last_run_summary": res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "",
        "equal_to_reference": part_bytes(work) == ref,
    }
    atomic_write(output, (json.dumps(result, indent=2) + "\n").encode("utf8"))
    logger.info(
        "equal to the uninterrupted run: %s (wrote %s)", result["equal_to_reference"], output
    )
    if not result["equal_to_reference"] or not all(e["every_visible_shard_whole"] for e in events):
        raise SystemExit(1)


if __name__ == "__main__":
    cli.run_script(main, "tag_kill")
