"""Stopping a run by a signal: SIGINT (Ctrl-C) and SIGTERM (SLURM, Kubernetes, `timeout`) finish the current
step, write a checkpoint at it and print the command that resumes it, and the command exits 130 / 143; a second
signal stops at once; the handlers are installed only while `fit` runs, in the main thread."""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from jointkl import data
from jointkl.objectives import get
from jointkl.training.config import TrainConfig
from jointkl.training.trainer import Callback, Interrupted, Trainer

TINY = ["hidden=8", "layers=1", "latent_dim=2", "batch_size=16", "log_every=20", "ckpt_every=20", "device=cpu"]


def _ckpt_steps(run: Path) -> list[int]:
    d = run / "checkpoints"
    return sorted(int(p.name.split("-")[1]) for p in d.iterdir() if p.name.startswith("step-")) if d.exists() else []


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_with_a_checkpoint_and_the_resume_command(tmp_path, cli, sig, code):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "jointkl", "train", "vae", "--data", "binary2x2", "--steps",
                             "100000", "--out", str(run), *TINY], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not _ckpt_steps(run):                      # the first checkpoint: training runs, handlers are in
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert f"resume with: jointkl train vae --out {shlex.quote(str(run))} --resume" in err, err
    step = int(re.search(rf"stopped by {sig.name} at step (\d+) of 100000", err).group(1))
    assert max(_ckpt_steps(run)) == step, _ckpt_steps(run)      # a checkpoint at the interrupted step
    assert "trained vae" not in out

    code, out, err = cli("train", "vae", "--out", run, "--resume", "--steps", step + 3)
    assert code == 0, err
    assert max(_ckpt_steps(run)) == step + 3


# --- in process: the trainer's side ----------------------------------------------------------------------

class Send(Callback):
    """Sends `signals` to this process at the end of step `at` (as a user or a scheduler would, mid-run)."""

    def __init__(self, at: int, *signals):
        self.at, self.signals = at, signals

    def on_step_end(self, trainer, logs):
        if trainer.step == self.at:
            for s in self.signals:
                os.kill(os.getpid(), s)


def _trainer(run_dir, callbacks=(), steps=50):
    ds = data.load("binary2x2")
    cls = get("vae")
    torch.manual_seed(0)
    model = cls(cls.Config(hidden=8, layers=1, latent_dim=2), ds.shape, ds.kind)
    cfg = TrainConfig(steps=steps, batch_size=16, log_every=5, ckpt_every=10, device="cpu")
    return Trainer(model, ds, cfg, run_dir, callbacks=callbacks, progress=False)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_the_step_finishes_and_is_saved(tmp_path, sig, code):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    trainer = _trainer(tmp_path / "run", [Send(13, sig)])
    with pytest.raises(Interrupted) as e:
        trainer.fit()
    assert e.value.exit_code == code and isinstance(e.value, KeyboardInterrupt)
    assert trainer.step == 13 and _ckpt_steps(tmp_path / "run") == [10, 13]
    assert f"stopped by {sig.name} at step 13 of 50" in str(e.value)
    assert {s: signal.getsignal(s) for s in before} == before          # the previous handlers are back


def test_a_second_signal_stops_at_once(tmp_path):
    before = signal.getsignal(signal.SIGINT)      # Python's default handler, or SIG_IGN under `nohup ... &`
    trainer = _trainer(tmp_path / "run", [Send(13, signal.SIGINT, signal.SIGINT)])
    with pytest.raises(Interrupted, match="stopped at once by a second SIGINT") as e:
        trainer.fit()
    assert e.value.exit_code == 130
    assert _ckpt_steps(tmp_path / "run") == [10]                       # no checkpoint after the second signal
    assert "resume with: jointkl train vae" in str(e.value)
    assert signal.getsignal(signal.SIGINT) is before                    # the previous handler is back


def test_without_a_run_folder_nothing_is_saved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trainer = _trainer(None, [Send(3, signal.SIGTERM)])
    with pytest.raises(Interrupted, match="nothing was saved"):
        trainer.fit()
    assert trainer.step == 3 and list(tmp_path.iterdir()) == []


def test_outside_the_main_thread_no_handler_is_installed(tmp_path):
    seen, done, before = [], [], signal.getsignal(signal.SIGTERM)     # whatever the process had (SIG_DFL, ...)

    class Look(Callback):
        def on_step_end(self, trainer, logs):
            seen.append(signal.getsignal(signal.SIGTERM))

    worker = threading.Thread(target=lambda: done.append(_trainer(tmp_path / "run", [Look()], steps=3).fit()))
    worker.start()
    worker.join(120)
    assert done and set(seen) == {before}


def test_cli_prints_the_resume_command(tmp_path, cli, monkeypatch):
    original = Trainer.train_step

    def step_then_term(self):
        logs = original(self)
        if self.step == 7:
            os.kill(os.getpid(), signal.SIGTERM)
        return logs
    monkeypatch.setattr(Trainer, "train_step", step_then_term)
    run = tmp_path / "run"
    code, out, err = cli("train", "vae", "--data", "binary2x2", "--steps", "50", "--out", run, *TINY)
    assert code == 143 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (f"jointkl: stopped by SIGTERM at step 7 of 50; checkpoint written: "
                                            f"{run / 'checkpoints' / 'step-00000007'}; resume with: jointkl train "
                                            f"vae --out {shlex.quote(str(run))} --resume")
    assert _ckpt_steps(run) == [7]
