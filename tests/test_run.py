"""The run folder (jointkl.run): --force deletes only what jointkl wrote, one writer per run folder (an OS lock
naming its PID, dropped when the process dies), resume as users do it (the same command plus --resume), stale
temporaries cleared, and failed writes as one line that keeps the last good checkpoint the newest.

Every refusal is checked for its one line, its exit code 2, and a run folder unchanged byte for byte."""
from __future__ import annotations

import csv
import errno
import multiprocessing as mp
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file

import jointkl as jk
from jointkl import run as runs
from jointkl.errors import JointKLError
from jointkl.training import checkpoint
from jointkl.training.trainer import Trainer

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root with its bytes (the lock file aside: it names whoever last held the folder)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != runs.LOCK}


def rows(run: Path) -> list[int]:
    with open(run / "metrics.csv") as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


def steps_on_disk(run: Path) -> list[int]:
    return sorted(checkpoint.step_of(p) for p in checkpoint.list_checkpoints(run / "checkpoints"))


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def train_argv(out, *extra, steps=20, tiny_argv=()):
    return ["train", "vae", "--data", "binary2x2", "--steps", str(steps), "--out", str(out), *tiny_argv, *extra]


# --- --force deletes only what jointkl wrote -------------------------------------------------------------

def test_a_new_run_is_marked_as_one(trained_run):
    assert yaml.safe_load((trained_run / "config.yaml").read_text())[runs.MARKER] == 1
    assert runs.is_run(trained_run) and runs.foreign(trained_run) is None


def test_force_replaces_a_run_entry_by_entry(cli, trained_run, tiny_argv):
    (trained_run / "eval.json").write_text("{}")
    (trained_run / "DIVERGED").write_text("earlier")
    stale = trained_run / "checkpoints" / ".tmp-step-00000030-4242"
    stale.mkdir()
    (stale / ".tmpab12cd").write_bytes(b"half a safetensors file")
    code, _, err = cli(*train_argv(trained_run, "--force", steps=3, tiny_argv=tiny_argv))
    assert code == 0, err
    assert sorted(p.name for p in trained_run.iterdir()) == [".lock", "checkpoints", "config.yaml", "metrics.csv",
                                                             "samples", "tb"]
    assert steps_on_disk(trained_run) == [3] and rows(trained_run) == [3]


def user_project(root: Path) -> Path:
    """A user's folder that looks like a run from afar: config.yaml, checkpoints/ (Lightning's), years of work."""
    root.mkdir()
    (root / "config.yaml").write_text("model: resnet\nlr: 0.1\n")
    (root / "thesis.tex").write_text("years of work")
    (root / "src").mkdir()
    (root / "src" / "train.py").write_text("import lightning")
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "epoch=3-step=1200.ckpt").write_bytes(b"weights")
    return root


def test_force_refuses_a_user_project_naming_a_file(cli, tmp_path, tiny_argv):
    project = user_project(tmp_path / "project")
    before = snapshot(project)
    line = cli.error(*train_argv(project, "--force", steps=3, tiny_argv=tiny_argv))
    assert f"{project} exists and is not a jointkl run" in line
    assert f"{project}/checkpoints/epoch=3-step=1200.ckpt would be lost" in line
    assert snapshot(project) == before and not (project / runs.LOCK).exists()


@pytest.mark.parametrize("where", ["notes.txt", "samples/mine.txt", "checkpoints/step-00000010/extra.bin",
                                   "checkpoints/best.ckpt", "tb/sub/events", "data-link"])
def test_force_refuses_a_run_holding_anything_else(cli, trained_run, tmp_path, tiny_argv, where):
    stray = trained_run / where
    if where == "data-link":
        (tmp_path / "elsewhere").mkdir()
        stray.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    else:
        stray.parent.mkdir(parents=True, exist_ok=True)
        stray.write_text("mine")
    named = trained_run / ("tb/sub" if where == "tb/sub/events" else where)
    before = snapshot(trained_run)
    line = cli.error(*train_argv(trained_run, "--force", steps=3, tiny_argv=tiny_argv))
    assert line == (f"jointkl: error: refusing to delete run {trained_run}: {named} was not written by jointkl and "
                    "would be lost; move it out of the run folder, or choose another --out")
    assert snapshot(trained_run) == before


@pytest.mark.parametrize("out, cwd", [(".", "."), ("..", "samples"), ("../..", "checkpoints/step-00000010")])
def test_force_never_empties_the_working_directory(cli, trained_run, tiny_argv, monkeypatch, out, cwd):
    monkeypatch.chdir(trained_run / cwd)
    before = snapshot(trained_run)
    line = cli.error(*train_argv(out, "--force", steps=3, tiny_argv=tiny_argv))
    assert line.startswith(f"jointkl: error: refusing to empty {out}: it is ")
    assert snapshot(trained_run) == before


def test_a_run_from_before_the_marker_is_still_replaced(cli, trained_run, tiny_argv):
    cfg = trained_run / "config.yaml"
    cfg.write_text("".join(line for line in cfg.read_text().splitlines(keepends=True)
                           if not line.startswith(runs.MARKER)))
    assert runs.is_run(trained_run)                      # config.yaml + checkpoints/step-NNNNNNNN
    code, _, err = cli(*train_argv(trained_run, "--force", steps=3, tiny_argv=tiny_argv))
    assert code == 0, err
    assert steps_on_disk(trained_run) == [3]


def test_an_unmarked_folder_without_jointkl_checkpoints_is_not_a_run(cli, tmp_path, trained_run, tiny_argv):
    old = tmp_path / "old"
    old.mkdir()
    text = "".join(x for x in (trained_run / "config.yaml").read_text().splitlines(keepends=True)
                   if not x.startswith(runs.MARKER))
    (old / "config.yaml").write_text(text)
    (old / "metrics.csv").write_text("step\n")
    before = snapshot(old)
    line = cli.error(*train_argv(old, "--force", steps=3, tiny_argv=tiny_argv))
    assert "is not a jointkl run" in line and f"{old}/config.yaml would be lost" in line
    assert snapshot(old) == before


def test_out_that_is_a_file_is_refused(cli, tmp_path, tiny_argv):
    f = tmp_path / "f"
    f.write_text("mine")
    line = cli.error(*train_argv(f, "--force", steps=3, tiny_argv=tiny_argv))
    assert line == f"jointkl: error: --out {f} is a file, not a folder; choose another --out"
    assert f.read_text() == "mine"


# --- one writer per run folder ------------------------------------------------------------------------------

class Held:
    """The run folder's lock taken by someone else: another open file description, with `pid` written."""

    def __init__(self, run: Path, pid: int = 4242):
        import fcntl
        self.fd = os.open(run / runs.LOCK, os.O_RDWR | os.O_CREAT)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{pid}\n".encode())

    def release(self):
        os.close(self.fd)


@pytest.mark.parametrize("how", ["train", "resume", "force"])
def test_a_second_writer_is_refused_naming_the_pid(cli, trained_run, tiny_argv, how):
    held = Held(trained_run, pid=4242)
    try:
        before = snapshot(trained_run)
        argv = {"train": train_argv(trained_run, steps=3, tiny_argv=tiny_argv),
                "resume": ["train", "vae", "--out", trained_run, "--resume", "--steps", "30"],
                "force": train_argv(trained_run, "--force", steps=3, tiny_argv=tiny_argv)}[how]
        line = cli.error(*argv)
        if how == "train":       # an existing run is refused before its lock is even looked at
            assert "already exists" in line
        else:
            assert line == (f"jointkl: error: run {trained_run} is in use by another jointkl process (pid 4242); "
                            "wait for it to finish or stop it, then try again")
        assert snapshot(trained_run) == before
    finally:
        held.release()
    assert cli("train", "vae", "--out", trained_run, "--resume", "--steps", "30")[0] == 0


def _hold_forever(run: str, ready) -> None:
    with runs.hold(Path(run)):
        ready.set()
        time.sleep(120)


def test_a_killed_writer_leaves_no_stale_lock(cli, trained_run):
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    p = ctx.Process(target=_hold_forever, args=(str(trained_run), ready))
    p.start()
    try:
        assert ready.wait(30)
        line = cli.error("train", "vae", "--out", trained_run, "--resume", "--steps", "30")
        assert f"(pid {p.pid})" in line
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.join(30)
    assert p.exitcode == -signal.SIGKILL
    assert (trained_run / runs.LOCK).read_text().strip() == str(p.pid)      # the file stays; the lock went
    code, _, err = cli("train", "vae", "--out", trained_run, "--resume", "--steps", "30")
    assert code == 0, err
    assert steps_on_disk(trained_run)[-1] == 30


RACE = ["hidden=8", "layers=1", "batch_size=16", "device=cpu", "threads=1"]


def _racer(argv: list[str], start, log: str) -> None:
    sys.stdout = sys.stderr = open(log, "w", buffering=1)
    from jointkl.cli import main
    start.wait()
    code = main(argv)
    sys.stdout.flush()
    os._exit(code)


def test_two_writers_started_at_once_never_both_succeed(tmp_path):
    """Two `jointkl train` processes on one --out, released by one barrier, 20 times: exactly one trains, the
    other is refused in one line (by the lock, naming the winner's PID, or by the run folder it finds already
    taken when it looks: the winner's config.yaml is written), and the folder holds the winner's config and the
    winner's weights (bitwise equal to its run trained alone)."""
    def argv(out, seed):
        return ["train", "vae", "--data", "binary2x2", "--steps", "5", "--seed", str(seed), "--out", str(out), *RACE]
    from jointkl.cli import main
    for seed in (1, 2):                         # each contender's run trained alone (also warms the imports)
        assert main(argv(tmp_path / f"alone{seed}", seed)) == 0
    ctx = mp.get_context("fork")                # real processes, without 40 interpreter start-ups
    refusals, started = {"lock": 0, "taken": 0}, time.perf_counter()
    for i in range(20):
        out, start = tmp_path / f"race{i}", ctx.Barrier(2)
        procs = {seed: ctx.Process(target=_racer, args=(argv(out, seed), start, str(tmp_path / f"log{i}-{seed}")))
                 for seed in (1, 2)}
        for p in procs.values():
            p.start()
        for p in procs.values():
            p.join(120)
        codes = {seed: p.exitcode for seed, p in procs.items()}
        assert sorted(codes.values()) == [0, 2], (i, codes)
        winner = next(s for s, c in codes.items() if c == 0)
        loser = 3 - winner
        lines = (tmp_path / f"log{i}-{loser}").read_text().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("jointkl: error: "), lines
        if "in use by another jointkl process" in lines[0]:
            assert f"(pid {procs[winner].pid})" in lines[0], lines
            refusals["lock"] += 1
        else:
            assert f"run directory {out} already exists" in lines[0], lines
            refusals["taken"] += 1
        assert yaml.safe_load((out / "config.yaml").read_text())["train"]["seed"] == winner
        assert steps_on_disk(out) == [5]
        assert same_weights(out / "checkpoints" / "step-00000005", tmp_path / f"alone{winner}" / "checkpoints"
                            / "step-00000005")
        assert rows(out) == rows(tmp_path / f"alone{winner}")
    print(f"20 races in {time.perf_counter() - started:.1f} s; loser refused by the lock {refusals['lock']}x, "
          f"by the folder already taken {refusals['taken']}x")


# --- resume as users do it ----------------------------------------------------------------------------------

def test_the_same_command_plus_resume_is_accepted(cli, trained_run, tiny_argv):
    before = snapshot(trained_run)
    code, out, err = cli(*train_argv(trained_run, "--resume", "--seed", "0", "threads=0", tiny_argv=tiny_argv))
    assert code == 0, err
    assert err == f"jointkl: run {trained_run} is already trained to step 20; raise --steps to train further\n"
    assert out == ""
    assert snapshot(trained_run) == before                      # nothing to do: nothing touched
    code, _, err = cli(*train_argv(trained_run, "--resume", steps=30, tiny_argv=tiny_argv))
    assert code == 0, err
    assert steps_on_disk(trained_run) == [10, 20, 30] and rows(trained_run) == [5, 10, 15, 20, 25, 30]
    assert yaml.safe_load((trained_run / "config.yaml").read_text())["train"]["steps"] == 30


REFUSED = {   # extra argv -> the one line
    "other seed": (["--seed", "1"], "run {run} was trained with seed=0; got seed=1. A resumed run keeps its options "
                   "(only steps can change): drop seed=1, or train a new run into another --out"),
    "other size": (["hidden=32"], "run {run} was trained with hidden=16; got hidden=32."),
    "other lr": (["lr=0.5"], "run {run} was trained with lr=0.001; got lr=0.5."),
    "other device": (["device=auto"], "run {run} was trained with device=cpu; got device=auto."),
    "other data": (["--data", "grid25"], "run {run} was trained on binary2x2; got --data grid25. A resumed run "
                   "keeps its data: drop --data, or train a new run into another --out"),
    "below the checkpoint": (["--steps", "15"], "steps=15 is below step 20 of the newest checkpoint of run {run}; "
                             "pass --steps 20 or more (a run cannot be shortened; train a new one with --force)"),
    "unknown option": (["hiden=8"], "unknown option 'hiden'"),
    "with --force": (["--force"], "--resume continues a run and --force replaces it; pass one of them"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_resume_that_would_change_the_run_is_refused(cli, trained_run, case):
    extra, words = REFUSED[case]
    before = snapshot(trained_run)
    line = cli.error("train", "vae", "--out", trained_run, "--resume", *extra)
    assert words.format(run=trained_run) in line, line
    assert snapshot(trained_run) == before


def test_resuming_with_another_model_is_refused(cli, trained_run):
    before = snapshot(trained_run)
    line = cli.error("train", "gan", "--out", trained_run, "--resume")
    assert line == (f"jointkl: error: run {trained_run} is a vae run; got model gan. Resume it with "
                    f"`jointkl train vae --out {trained_run} --resume`, or train gan into another --out")
    assert snapshot(trained_run) == before


def test_python_resume_behaves_the_same(trained_run, capsys, tiny):
    before = snapshot(trained_run)
    with pytest.raises(JointKLError, match=r"was trained with seed=0; got seed=1\."):
        jk.train("vae", out=trained_run, resume=True, seed=1)
    with pytest.raises(JointKLError, match=r"is a vae run; got model gan\."):
        jk.train("gan", out=trained_run, resume=True)
    with pytest.raises(JointKLError, match=r"steps=5 is below step 20"):
        jk.train("vae", out=trained_run, resume=True, steps=5)
    capsys.readouterr()
    model = jk.train("vae", data="binary2x2", out=trained_run, resume=True, steps=20, **tiny)
    assert "is already trained to step 20" in capsys.readouterr().err
    assert snapshot(trained_run) == before
    weights = load_file(trained_run / "checkpoints" / "step-00000020" / "model.safetensors")
    assert all(torch.equal(model.state_dict()[k], weights[k]) for k in weights) and not model.training
    assert jk.train(out=trained_run, resume=True).name == "vae"          # no model given: the run's own


class Killed(Exception):
    pass


def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_0(cli, tmp_path, tiny_argv, monkeypatch):
    alone = tmp_path / "alone"
    assert cli(*train_argv(alone, tiny_argv=tiny_argv))[0] == 0
    original = Trainer.train_step

    def dying(self):
        if self.step == 7:                   # before the first checkpoint (ckpt_every=10)
            raise Killed
        return original(self)
    monkeypatch.setattr(Trainer, "train_step", dying)
    with pytest.raises(Killed):
        cli(*train_argv(tmp_path / "cut", tiny_argv=tiny_argv))
    monkeypatch.setattr(Trainer, "train_step", original)
    assert (tmp_path / "cut" / "config.yaml").exists() and steps_on_disk(tmp_path / "cut") == []
    code, _, err = cli(*train_argv(tmp_path / "cut", "--resume", tiny_argv=tiny_argv))   # no --force needed
    assert code == 0, err
    assert err == f"jointkl: run {tmp_path / 'cut'} stopped before its first checkpoint; training it from step 0\n"
    assert steps_on_disk(tmp_path / "cut") == [10, 20]
    for step in ("step-00000010", "step-00000020"):        # as if it had never been killed, bit for bit on CPU
        assert same_weights(tmp_path / "cut" / "checkpoints" / step, alone / "checkpoints" / step)
    assert (tmp_path / "cut" / "metrics.csv").read_text() == (alone / "metrics.csv").read_text()


def test_resume_without_a_run_creates_nothing(cli, tmp_path):
    line = cli.error("train", "vae", "--out", tmp_path / "none", "--resume")
    assert "no run at" in line and not (tmp_path / "none").exists()


# --- stale temporaries ----------------------------------------------------------------------------------------

def test_a_writer_clears_what_interrupted_writes_left(cli, trained_run):
    ckpts = trained_run / "checkpoints"
    for name in (".tmp-step-00000030-99999", ".tmp-step-00000020-12"):
        (ckpts / name).mkdir()
        (ckpts / name / "model.safetensors").write_bytes(b"half a file")
    (trained_run / ".tmp-config.yaml-99999").write_text("model: va")
    code, _, err = cli("train", "vae", "--out", trained_run, "--resume", "--steps", "30")
    assert code == 0, err
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-00000010", "step-00000020", "step-00000030"]
    assert not (trained_run / ".tmp-config.yaml-99999").exists()


# --- write errors ---------------------------------------------------------------------------------------------

def failing_on_call(n: int, original, error: BaseException):
    calls = []

    def fake(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise error
        return original(*args, **kwargs)
    return fake


@pytest.mark.parametrize("error, reason", [
    (ENOSPC, "No space left on device"),
    (OSError(errno.EACCES, os.strerror(errno.EACCES)), "Permission denied"),
    (SafetensorError('Error while serializing: I/O error: No space left on device (os error 28) at path "x"'),
     "No space left on device"),
])
def test_a_failed_checkpoint_write_is_one_line_and_keeps_the_last_good_one(cli, tmp_path, tiny_argv, monkeypatch,
                                                                           error, reason):
    out = tmp_path / "run"
    monkeypatch.setattr(checkpoint, "save_file", failing_on_call(2, checkpoint.save_file, error))   # at step 20
    line = cli.error(*train_argv(out, tiny_argv=tiny_argv))
    assert line == (f"jointkl: error: could not write checkpoint to {out}/checkpoints ({reason}); free space or fix "
                    "permissions, then resume with --resume")
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000010"]      # no temporary left
    assert checkpoint.newest(out / "checkpoints") == out / "checkpoints" / "step-00000010"
    monkeypatch.undo()
    code, _, err = cli("train", "vae", "--out", out, "--resume")
    assert code == 0, err
    assert steps_on_disk(out) == [10, 20]


def test_a_failed_config_write_keeps_the_old_config(cli, trained_run, monkeypatch):
    before = snapshot(trained_run)
    replace = os.replace

    def fake(src, dst, *a, **kw):
        if Path(dst).name == "config.yaml":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src), None, str(dst))
        return replace(src, dst, *a, **kw)
    monkeypatch.setattr(os, "replace", fake)
    line = cli.error("train", "vae", "--out", trained_run, "--resume", "--steps", "30")
    assert line == (f"jointkl: error: could not write {trained_run}/config.yaml (No space left on device); free space "
                    "or fix permissions, then resume with --resume")
    assert snapshot(trained_run) == before                          # no temporary file left either


def test_a_failed_metrics_write_is_one_line(cli, trained_run, monkeypatch):
    import jointkl.training.trainer as trainer_module

    def fake_open(path, mode="r", *args, **kwargs):
        if str(path).endswith("metrics.csv") and "a" in mode:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))       # as a failed write(2): no file name
        return open(path, mode, *args, **kwargs)
    monkeypatch.setattr(trainer_module, "open", fake_open, raising=False)
    line = cli.error("train", "vae", "--out", trained_run, "--resume", "--steps", "30")
    assert line == (f"jointkl: error: could not write to {trained_run} (No space left on device); free space or fix "
                    "permissions, then resume with --resume")
    assert checkpoint.newest(trained_run / "checkpoints") == trained_run / "checkpoints" / "step-00000020"
