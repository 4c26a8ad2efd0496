"""Trainer callbacks: every hook fires when it should, a callback can stop a run, a trainer without a run folder
writes nothing, and a callback-watched run trains exactly as an unwatched one."""
from __future__ import annotations

import os

import pytest
import torch

import jointkl as jk
from jointkl import data
from jointkl.errors import JointKLError
from jointkl.objectives import get
from jointkl.training.config import TrainConfig
from jointkl.training.trainer import Callback, Trainer


class Recorder(Callback):
    def __init__(self, stop_at: int | None = None):
        self.events, self.stop_at = [], stop_at

    def on_fit_start(self, trainer):
        self.events.append(("fit_start", trainer.step))

    def on_step_start(self, trainer):
        self.events.append(("step_start", trainer.step))

    def on_step_end(self, trainer, logs):
        assert all(isinstance(v, torch.Tensor) for v in logs.values())
        self.events.append(("step_end", trainer.step))
        if trainer.step == self.stop_at:
            trainer.should_stop = True

    def on_log(self, trainer, values):
        assert all(isinstance(v, float) for v in values.values()) and "vae/loss" in values
        self.events.append(("log", trainer.step))

    def on_checkpoint(self, trainer, path):
        self.events.append(("checkpoint", int(path.name.split("-")[1])))

    def on_fit_end(self, trainer):
        self.events.append(("fit_end", trainer.step))


def _vae_trainer(run_dir, callbacks=(), steps=6, **kw):
    ds = data.load("binary2x2")
    cls = get("vae")
    torch.manual_seed(0)
    model = cls(cls.Config(hidden=8, layers=1, latent_dim=2), ds.shape, ds.kind)
    cfg = TrainConfig(steps=steps, batch_size=16, log_every=2, ckpt_every=3, device="cpu", **kw)
    return Trainer(model, ds, cfg, run_dir, callbacks=callbacks, progress=False)


def test_hooks_fire_in_order(tmp_path):
    rec = Recorder()
    _vae_trainer(tmp_path / "run", [rec]).fit()
    ev = rec.events
    assert ev[0] == ("fit_start", 0) and ev[-1] == ("fit_end", 6)
    assert [s for e, s in ev if e == "step_start"] == [0, 1, 2, 3, 4, 5]
    assert [s for e, s in ev if e == "step_end"] == [1, 2, 3, 4, 5, 6]
    assert [s for e, s in ev if e == "log"] == [2, 4, 6]
    assert [s for e, s in ev if e == "checkpoint"] == [3, 6]
    # within a step: log before step end, step end before the checkpoint
    assert ev.index(("log", 6)) < ev.index(("step_end", 6)) < ev.index(("checkpoint", 6))


def test_should_stop_ends_the_run_with_a_checkpoint(tmp_path):
    rec = Recorder(stop_at=4)
    trainer = _vae_trainer(tmp_path / "run", [rec])
    trainer.fit()
    assert trainer.step == 4 and ("checkpoint", 4) in rec.events
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["step-00000003", "step-00000004"]


def test_no_run_folder_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rec = Recorder()
    trainer = _vae_trainer(None, [rec])
    trainer.fit()
    assert trainer.step == 6 and list(tmp_path.iterdir()) == []
    assert [s for e, s in rec.events if e == "checkpoint"] == []     # no folder, no checkpoint
    with pytest.raises(JointKLError, match="no run folder"):
        trainer.restore()


def test_watched_run_equals_unwatched(tmp_path):
    a = jk.train("vae", data="binary2x2", steps=8, out=tmp_path / "a", hidden=8, layers=1, batch_size=16,
                 device="cpu")
    b = jk.train("vae", data="binary2x2", steps=8, out=tmp_path / "b", hidden=8, layers=1, batch_size=16,
                 device="cpu", callbacks=[Recorder()])
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert (tmp_path / "a" / "metrics.csv").read_bytes() == (tmp_path / "b" / "metrics.csv").read_bytes()


def test_unprepared_data_is_refused():
    """The trainer trains on what it is given: data that `prepare` has not binarized are refused."""
    with pytest.raises(JointKLError, match="not prepared for binarize=fixed"):
        _vae_trainer(None, binarize="fixed")
    prepared = data.prepare(data.load("binary2x2"), "fixed")
    cls = get("vae")
    model = cls(cls.Config(hidden=8, layers=1), prepared.shape, prepared.kind)
    Trainer(model, prepared, TrainConfig(binarize="fixed", device="cpu"))      # accepted
