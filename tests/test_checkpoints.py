"""Training that survives faults (issue 22): atomic checkpoints, refusal of a partial model-best,
bitwise determinism on CPU, and `spacy train` killed with SIGKILL and resumed (resume_from).

The run-level tests share one set of small `spacy train` runs on real tweets
(:func:`small_configs.small_train_command`), two at a time as subprocesses, each with one torch
thread (bitwise identity needs the same thread count: README, "Training that survives faults")."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import spacy
import torch
from safetensors.torch import load_file

from spacy_infnet.pipeline import checkpoints, files
from spacy_infnet.pipeline.checkpoints import IncompleteCheckpointError, use_atomic_checkpoints
from spacy_infnet.pipeline.readers import dataset_examples
from spacy_infnet.training.progress import BEST_ENERGY_FILE, PROGRESS_FILE
from spacy_infnet.training.stages import StageTracker, TwoStageSettings

from small_configs import small_tagger, small_train_command

TEXTS = ["lol i cant believe its already friday !!! #tgif", "@bob going 2 the game tmrw , u in ?"]
#: files spaCy reads before any component (config, meta, vocab, tokenizer): where one of them is
#: damaged, spaCy's own error comes before the component's check (a refusal all the same)
SPACY_FIRST = ("config.cfg", "meta.json", "tokenizer", "vocab/")


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root``: {relative path: bytes}."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def tags(nlp) -> list[list[str]]:
    return [[t.tag_ for t in doc] for doc in nlp.pipe(TEXTS)]


# -- checkpoints saved in this process --------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A pipeline in stage 1 saved as checkpoint A (with a best energy), updated once more and
    saved as checkpoint B; and the in-memory pipeline (in B's state)."""
    nlp = small_tagger(energy_max_epochs=10)
    examples = list(dataset_examples(nlp, "twitter_pos", "train", task="tag", limit=60))
    spacy.util.fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    for batch in spacy.util.minibatch(examples, size=20):
        nlp.update(batch, sgd=optimizer)
    nlp.evaluate(examples[:20])  # a best stage-1 energy to save
    use_atomic_checkpoints(nlp)
    root = tmp_path_factory.mktemp("checkpoints")
    nlp.to_disk(root / "A")
    nlp.update(examples[:20], sgd=optimizer)
    nlp.to_disk(root / "B")
    return nlp, root / "A", root / "B"


def test_a_checkpoint_has_a_manifest_its_progress_and_loads(saved):
    nlp, a, b = saved
    manifest = json.loads((a / checkpoints.MANIFEST_FILE).read_text())["files"]
    on_disk = set(tree(a)) - {checkpoints.MANIFEST_FILE, "meta.json"}
    assert set(manifest) == on_disk
    assert {f"infnet_tagger/{PROGRESS_FILE}", f"infnet_tagger/{BEST_ENERGY_FILE}"} <= on_disk
    assert json.loads((a / "infnet_tagger" / "cfg.json").read_text())["checkpoint"] is True
    assert json.loads((b / "infnet_tagger" / PROGRESS_FILE).read_text())["updates"] == 4
    assert tags(spacy.load(b)) == tags(nlp)
    assert tree(a)["infnet_tagger/model.safetensors"] != tree(b)["infnet_tagger/model.safetensors"]


def test_a_plain_save_has_no_manifest_and_loads_as_before(saved, tmp_path):
    nlp, _, _ = saved
    spacy.Language.to_disk(nlp, tmp_path / "plain")
    assert not (tmp_path / "plain" / checkpoints.MANIFEST_FILE).exists()
    assert not (tmp_path / "plain" / "infnet_tagger" / PROGRESS_FILE).exists()
    assert "checkpoint" not in json.loads((tmp_path / "plain/infnet_tagger/cfg.json").read_text())
    assert tags(spacy.load(tmp_path / "plain")) == tags(nlp)


def _traced(module_files: tuple[str, ...], on_line) -> None:
    """Call ``on_line(filename, lineno)`` at every line executed in ``module_files``."""

    def local(frame, event, arg):
        if event == "line":
            on_line(frame.f_code.co_filename, frame.f_lineno)
        return local

    def global_(frame, event, arg):
        return local if frame.f_code.co_filename.endswith(module_files) else None

    sys.settrace(global_)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_a_save_killed_at_any_line_leaves_the_old_or_the_new_model_last(
    saved, tmp_path, monkeypatch, exchange
):
    """At every line the atomic save executes (in checkpoints.py and the atomic file writer),
    what a SIGKILL there would leave is checked: model-last is checkpoint A or B, whole; with
    the two-rename fallback it may be absent for one line, and then the complete new
    checkpoint waits beside it (the documented recovery)."""
    nlp, a, _ = saved
    target = tmp_path / "model-last"
    shutil.copytree(a, target)
    nlp.to_disk(tmp_path / "probe")  # the new checkpoint (the vocab has grown since B)
    old, new = tree(a), tree(tmp_path / "probe")
    if not exchange:
        monkeypatch.setattr(checkpoints, "_exchange", lambda x, y: False)
    states = []

    def check(filename, lineno):
        if target.exists():
            now = tree(target)
            assert now in (old, new), f"model-last is neither A nor B at {filename}:{lineno}"
            states.append("A" if now == old else "B")
        else:
            partial = [p for p in tmp_path.glob(".model-last.partial-*") if p.is_dir()]
            assert len(partial) == 1, f"no model-last and no complete new one at line {lineno}"
            checkpoints.verify(partial[0])
            states.append("gap")

    _traced(("checkpoints.py", "fileio.py"), check)
    try:
        nlp.to_disk(target)
    finally:
        sys.settrace(None)
    assert tree(target) == new and states[0] == "A" and states[-1] == "B"
    assert ("gap" in states) is (not exchange)
    assert not list(tmp_path.glob(".model-last.*"))  # nothing left behind
    assert tags(spacy.load(target)) == tags(nlp)


def test_a_save_that_fails_anywhere_leaves_a_whole_model_last_and_no_temporary_files(
    saved, tmp_path, monkeypatch
):
    """An OSError from each file-system step of the save in turn (a file or the manifest
    written, a checksum read, an fsync, the exchange or a rename: a full disk, a failed
    rename) leaves model-last whole (A, or B where only the final flush failed), removes the
    temporary directory and resets the component's checkpoint flag."""
    nlp, a, _ = saved
    target = tmp_path / "model-last"
    steps = [
        (checkpoints, "atomic_write"),
        (checkpoints, "sha256"),
        (checkpoints, "_fsync"),
        (checkpoints, "_exchange"),
        (files, "atomic_write"),
        (os, "rename"),
    ]
    calls = []
    for module, name in steps:
        real = getattr(module, name)

        def step(*args, real=real, name=name, **kwargs):
            calls.append(name)
            if len(calls) == fail_at:
                raise OSError(f"simulated failure of {name} (call {fail_at})")
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, step)
    fail_at = 0
    shutil.copytree(a, target)
    nlp.to_disk(target)
    n_calls, wholes = len(calls), (tree(a), tree(target))
    assert n_calls > 20 and {"_exchange", "sha256", "_fsync"} <= set(calls), calls
    for fail_at in range(1, n_calls + 1):
        shutil.rmtree(target)
        shutil.copytree(a, target)
        calls.clear()
        with pytest.raises(OSError, match="simulated"):
            nlp.to_disk(target)
        assert tree(target) in wholes, calls[-1]
        assert not list(tmp_path.glob(".model-last.*")), calls[-1]
        assert not nlp.get_pipe("infnet_tagger").saving_checkpoint
    fail_at = 0
    nlp.to_disk(target)
    assert tags(spacy.load(target)) == tags(nlp)


def _damaged_copies(a: Path, b: Path, out: Path):
    """Every way spaCy's copytree (or a disk) can leave checkpoint A partial: each file missing,
    each file truncated to half, each prefix of the copy in copytree's own order, and each
    component file of B that differs; as (name, directory, whether a file that spaCy reads
    first is damaged, the damaged file or None)."""
    names = sorted(tree(a))
    for rel in names:
        for how in ("missing", "truncated"):
            d = out / f"{how}-{rel.replace('/', '_')}"
            shutil.copytree(a, d)
            if how == "missing":
                (d / rel).unlink()
            else:
                (d / rel).write_bytes((a / rel).read_bytes()[: (a / rel).stat().st_size // 2])
            yield f"{rel} {how}", d, rel.startswith(SPACY_FIRST), rel
    copied: list[str] = []

    class Killed(Exception):  # not an OSError: copytree would collect it and go on
        pass

    def copy(src, dst):
        if len(copied) == limit:
            raise Killed
        copied.append(Path(src).relative_to(a).as_posix())
        return shutil.copy2(src, dst)

    for limit in range(len(names)):
        d, copied = out / f"prefix-{limit}", []
        with pytest.raises(Killed):
            shutil.copytree(a, d, copy_function=copy)
        left = [rel for rel in names if rel not in copied]
        spacy_first = any(r.startswith(SPACY_FIRST) for r in left)
        yield f"copytree stopped before {left[0]}", d, spacy_first, None
    others = [
        p.name
        for p in (b / "infnet_tagger").iterdir()
        if p.read_bytes() != tree(a).get(f"infnet_tagger/{p.name}")
    ]
    assert {"model.safetensors", PROGRESS_FILE} <= set(others)
    for rel in others:
        d = out / f"swapped-{rel}"
        shutil.copytree(a, d)
        shutil.copy2(b / "infnet_tagger" / rel, d / "infnet_tagger" / rel)
        yield f"{rel} of another checkpoint", d, False, f"infnet_tagger/{rel}"


def test_a_partial_model_best_is_refused_with_a_clear_message(saved, tmp_path):
    _, a, b = saved
    reference = tags(spacy.load(a))
    for name, d, spacy_first, rel in _damaged_copies(a, b, tmp_path):
        try:
            loaded = spacy.load(d)
        except Exception as err:  # noqa: BLE001 (every refusal is fine, its text is checked)
            text = str(err)
            if spacy_first and not text.startswith("infnet_tagger: "):
                continue  # spaCy's own error, raised before the component is read
            assert "incomplete" in text or "does not match" in text, (name, text)
            assert str(d) in text and "\n" not in text.strip(), (name, text)
            assert rel is None or rel in text, (name, text)
            continue
        assert tags(loaded) == reference, f"{name}: loaded with other predictions"
        pytest.fail(f"{name}: a damaged checkpoint loaded")


def test_missing_component_files_say_the_directory_is_incomplete(saved, tmp_path):
    nlp, _, _ = saved
    spacy.Language.to_disk(nlp, tmp_path / "p")  # no manifest: the component's own errors
    for name in ("model.safetensors", "cfg.json"):
        shutil.copytree(tmp_path / "p", tmp_path / name)
        (tmp_path / name / "infnet_tagger" / name).unlink()
        with pytest.raises(FileNotFoundError, match=f"{name}: .* is incomplete"):
            spacy.load(tmp_path / name)


def test_a_second_process_saving_into_the_same_output_is_refused(saved, tmp_path):
    """Two runs with one --output would overwrite each other's checkpoints: while another
    process holds the output's lock, a save is refused; once it has ended, saves go on."""
    nlp, _, _ = saved
    lock = tmp_path / checkpoints.LOCK_FILE
    hold = (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print(1, flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold, str(lock)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"1"
        with pytest.raises(RuntimeError, match="another process saves checkpoints into"):
            nlp.to_disk(tmp_path / "model-last")
        assert not (tmp_path / "model-last").exists()
    finally:
        holder.kill()
        holder.wait()
    nlp.to_disk(tmp_path / "model-last")
    checkpoints.verify(tmp_path / "model-last")


# -- resume_from, in this process ---------------------------------------------------------------
def _resumed(path: Path, energy_max_epochs=10, limit=60):
    nlp = small_tagger(energy_max_epochs=energy_max_epochs)
    examples = list(dataset_examples(nlp, "twitter_pos", "train", task="tag", limit=limit))
    nlp.initialize(lambda: examples)  # the factory default: resume_from = None
    tagger = nlp.get_pipe("infnet_tagger")
    tagger.initialize(lambda: examples, nlp=nlp, resume_from=str(path))
    return tagger


def test_resume_in_stage_1_restores_weights_progress_and_the_best_energy(saved, caplog):
    nlp, _, b = saved
    with caplog.at_level("INFO", logger="spacy.infnet"):
        tagger = _resumed(b)
    trained = nlp.get_pipe("infnet_tagger")
    assert "resumed from" in caplog.text and "after 4 updates" in caplog.text
    assert tagger.stage == "energy" and tagger.schedule.stage == "energy"
    for key, value in trained.torch_model.weights().items():
        assert torch.equal(tagger.torch_model.weights()[key], value), key
    mine, theirs = tagger.schedule.tracker, trained.schedule.tracker
    assert mine.progress() == theirs.progress()
    assert mine.best_state.keys() == theirs.best_state.keys()
    assert all(torch.equal(mine.best_state[k], v) for k, v in theirs.best_state.items())


def test_resume_in_stage_2_freezes_the_energy_and_continues_the_inference_network(tmp_path):
    nlp = small_tagger(energy_max_epochs=1)
    examples = list(dataset_examples(nlp, "twitter_pos", "train", task="tag", limit=40))
    spacy.util.fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(2):
        for batch in spacy.util.minibatch(examples, size=20):
            nlp.update(batch, sgd=optimizer)
    trained = nlp.get_pipe("infnet_tagger")
    assert trained.stage == "infnet"
    use_atomic_checkpoints(nlp).to_disk(tmp_path / "model-last")
    tagger = _resumed(tmp_path / "model-last", energy_max_epochs=1, limit=40)
    assert tagger.stage == "infnet" and tagger.schedule.stage == "infnet"
    assert tagger.schedule.tracker.progress() == trained.schedule.tracker.progress()
    assert not any(p.requires_grad for p in tagger.energy.parameters())
    for key, value in trained.torch_model.weights().items():
        assert torch.equal(tagger.torch_model.weights()[key], value), key


def test_invalid_progress_is_refused_with_its_reason():
    tracker = StageTracker(TwoStageSettings(), n_train=30)
    good = {"stage": "infnet", "updates": 7, "sentences": 70, "best_update": 3}
    tracker.restore(good)
    assert (tracker.updates, tracker.epoch, tracker.stage) == (7, 70 / 30, "infnet")
    for bad in ({}, {**good, "stage": "third"}, {**good, "updates": "many"}):
        with pytest.raises(ValueError, match="invalid training progress"):
            tracker.restore(bad)


def test_resume_from_an_incomplete_checkpoint_is_refused(saved, tmp_path):
    _, a, _ = saved
    shutil.copytree(a, tmp_path / "c")
    (tmp_path / "c" / "infnet_tagger" / BEST_ENERGY_FILE).unlink()
    with pytest.raises(IncompleteCheckpointError, match="incomplete: infnet_tagger/best_energy"):
        _resumed(tmp_path / "c")


# -- spacy train, killed and resumed ------------------------------------------------------------
#: the small runs: stage 1 for 3 epochs (90 updates), then stage 2; a dev score every 20 steps
EVAL = 20
RUN = {"training__eval_frequency": EVAL, "components__infnet_tagger__stages__energy_max_epochs": 3}
TOTAL = 140  # updates of an uninterrupted run (stage 2 from update 91)


def _env(hash_seed: int = 0) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": str(hash_seed)}


def _start(out: Path, *, seed=0, hash_seed=0, **settings) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    cmd = small_train_command(
        out, seed=seed, training__logger__output_file=out / "log.jsonl", **RUN, **settings
    )
    log = open(out / "stdout.txt", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(cmd, env=_env(hash_seed), stdout=log, stderr=subprocess.STDOUT)


def _finish(proc: subprocess.Popen, out: Path) -> None:
    assert proc.wait(timeout=300) == 0, (out / "stdout.txt").read_text()[-3000:]


def _scores(out: Path) -> dict[int, float]:
    """{spaCy step: dev tag accuracy (%)} of a run's log."""
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return {row["step"]: row["scores"]["tag_acc"] for row in rows}


def _progress(path: Path) -> dict | None:
    try:
        return json.loads((path / "infnet_tagger" / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return None


def _kill_after(proc: subprocess.Popen, out: Path, updates: int) -> dict:
    """SIGKILL ``proc`` as soon as its model-last holds at least ``updates`` updates; returns
    that checkpoint's progress."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        progress = _progress(out / "model-last")
        if progress and progress["updates"] >= updates:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return _progress(out / "model-last")  # the last complete checkpoint
        time.sleep(0.01)
    raise AssertionError(f"no checkpoint of {updates} updates: {(out / 'stdout.txt').read_text()}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Uninterrupted runs (seeds 0 and 1; seed 0 twice, under another hash seed), and runs of
    seed 0 killed in stage 1 (after update 41) and stage 2 (after update 101), each resumed
    from its model-last for one evaluation interval (and a little more)."""
    root = tmp_path_factory.mktemp("runs")
    n = {"training__max_steps": TOTAL}
    out = {name: root / name for name in ("u0", "u1", "u0_again", "k1", "r1", "k2", "r2")}
    started = time.monotonic()
    p = [_start(out["u0"], **n), _start(out["k1"], **n)]
    killed = {"k1": _kill_after(p[1], out["k1"], 41)}
    p[1] = _start(out["k2"], **n)
    killed["k2"] = _kill_after(p[1], out["k2"], 101)
    resume = {"training__max_steps": EVAL + 1}
    p[1] = _start(out["r1"], paths__resume=out["k1"] / "model-last", **resume)
    _finish(p[0], out["u0"])
    p[0] = _start(out["u1"], seed=1, **n)
    _finish(p[1], out["r1"])
    p[1] = _start(out["r2"], paths__resume=out["k2"] / "model-last", **resume)
    _finish(p[1], out["r2"])
    p[1] = _start(out["u0_again"], hash_seed=1, **n)
    _finish(p[0], out["u1"])
    _finish(p[1], out["u0_again"])
    print(f"runs took {time.monotonic() - started:.1f} s")
    return out, killed


def test_same_seed_same_data_gives_bitwise_identical_weights(runs):
    """Two processes (other PYTHONHASHSEED), one thread each: the same weights, byte for byte,
    after 140 updates through the stage switch (energy and inference network), and the same
    model-best."""
    out, _ = runs
    for name in ("model-last", "model-best"):
        one = load_file(str(out["u0"] / name / "infnet_tagger" / "model.safetensors"))
        two = load_file(str(out["u0_again"] / name / "infnet_tagger" / "model.safetensors"))
        assert one.keys() == two.keys() and any(k.startswith("infnet.") for k in one)
        assert all(torch.equal(one[k], two[k]) for k in one), name
    assert _progress(out["u0"] / "model-last")["stage"] == "infnet"
    assert _scores(out["u0"]) == _scores(out["u0_again"])


@pytest.mark.parametrize("kill", ["k1", "k2"], ids=["stage-1", "stage-2"])
def test_a_killed_run_resumed_from_model_last_scores_like_an_uninterrupted_one(runs, kill):
    """Killed with SIGKILL after a checkpoint of K updates and restarted as documented
    (``--paths.resume <run>/model-last`` into a new --output), the run's dev score at its next
    evaluation (step EVAL of the restart: K + EVAL + 1 updates in all) is within noise of the
    uninterrupted run of the same seed at step K - 1 + EVAL (one update fewer), and far above
    a run from scratch after as many updates as the restart made (step EVAL of a fresh run).

    The noise is measured: the largest difference between the two seeds' dev scores at any
    evaluation up to that step (but the first, after one update: its spread, 3.7 points,
    only reflects the initial weights).  The restart changes what a seed changes (the order of the
    batches, which restarts at the corpus' first, and the dropout masks) and restarts Adam's
    moments; so the margin is twice the measured spread, at least 2 points (100 dev tweets,
    ~1,400 tokens: 1 point is 14 tokens)."""
    out, killed = runs
    progress, resumed = killed[kill], "r" + kill[1]
    stage = "energy" if kill == "k1" else "infnet"
    assert progress["stage"] == stage, progress
    k = progress["updates"]
    step = k - 1 + EVAL  # the uninterrupted run's evaluation at (almost) the same total
    u0, u1, restarted = _scores(out["u0"]), _scores(out["u1"]), _scores(out[resumed])
    spread = max(abs(u0[s] - u1[s]) for s in u0 if 0 < s <= step)
    margin = max(2 * spread, 2.0)
    assert abs(restarted[EVAL] - u0[step]) <= margin, (restarted, u0, spread)
    assert restarted[EVAL] > u0[EVAL] + 2 * margin, (restarted, u0)  # vs from scratch
    log = (out[resumed] / "stdout.txt").read_text()
    assert f"resumed from {out[kill] / 'model-last'}: stage {kill[1]}" in log, log
    assert _progress(out[resumed] / "model-last")["updates"] == k + EVAL + 2
    if stage == "infnet":  # the energy stayed frozen: the checkpoint's, bit for bit
        before, after = (
            load_file(str(out[name] / "model-last" / "infnet_tagger" / "model.safetensors"))
            for name in (kill, resumed)
        )
        energy = [key for key in before if key.startswith("energy.")]
        assert energy and all(torch.equal(before[key], after[key]) for key in energy)
    # what the kill left: model-last whole (it was resumed); model-best (often killed while
    # spaCy replaced it) missing, whole, or refused (by spaCy's reader or the manifest check)
    best = out[kill] / "model-best"
    if best.exists():
        try:
            with warnings.catch_warnings():  # a stage-1 model-best warns that Ψ is untrained
                warnings.simplefilter("ignore")
                spacy.load(best)
        except Exception as err:  # noqa: BLE001 (any refusal; the component's must be clear)
            text = str(err)
            assert not text.startswith("infnet_tagger: ") or "incomplete" in text, text
