"""The trainer: every player's learning rate decays linearly to its final fraction, a run killed mid-way and
resumed is bitwise equal to the uninterrupted one (also on a streamed set), deterministic=true sets torch's switches
for the run alone, and a non-finite loss stops with the last good checkpoint."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import jointkl as jk
from jointkl.training.trainer import Callback, Trainer

TINY = dict(hidden=32, layers=1, log_every=5)


class Killed(Exception):
    pass


def test_lr_decays_linearly_to_its_final_fraction(tmp_path, monkeypatch):
    seen = []
    original = Trainer.train_step

    def spy(self):
        out = original(self)
        seen.append([g["lr"] for o in self.opts.values() for g in o.param_groups])
        return out
    monkeypatch.setattr(Trainer, "train_step", spy)
    jk.train("gan", data="grid25", out=tmp_path / "r", **{**TINY, "steps": 11, "lr": 1e-3, "lr_d": 2e-3, "lr_decay": 0.1})
    assert seen[0] == [2e-3, 1e-3]                                   # step 1 runs at the players' own rates
    assert seen[5] == pytest.approx([2e-3 * 0.55, 1e-3 * 0.55])      # half way
    assert seen[-1] == pytest.approx([2e-4, 1e-4])                   # the last step at lr_decay x


@pytest.mark.parametrize("model,data,opts", [
    ("gan", "grid25", dict(g_steps=2, reg=5.0, latent_dim=2, lr_decay=0.1)),
    ("vae", "mnist5k", dict(binarize="dynamic", latent_dim=4)),
    ("dali", "grid25", dict(g_batchnorm=True, latent_dim=2)),       # batch-norm running statistics resume too
])
def test_resume_is_bitwise_equal(tmp_path, monkeypatch, model, data, opts):
    opts = {**TINY, **opts, "steps": 40, "ckpt_every": 15, "batch_size": 32, "sample_every": 10}
    full = jk.train(model, data=data, out=tmp_path / "full", **opts)

    original = Trainer.train_step

    def dying(self):
        if self.step == 33:                  # killed mid-run, 3 steps after the checkpoint at 30
            raise Killed
        return original(self)
    monkeypatch.setattr(Trainer, "train_step", dying)
    with pytest.raises(Killed):
        jk.train(model, data=data, out=tmp_path / "cut", **opts)
    monkeypatch.setattr(Trainer, "train_step", original)
    resumed = jk.train(model, out=tmp_path / "cut", resume=True)

    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "full" / "metrics.csv").read_text() == (tmp_path / "cut" / "metrics.csv").read_text()


def test_streamed_resume_is_bitwise_equal(tmp_path, monkeypatch):
    """A set streamed from a .npy file (JOINTKL_IN_MEMORY_GB below its 6,400 bytes), binarized afresh per batch: the
    run killed mid-way and resumed (reading the file again) equals the uninterrupted one, and both the run on the
    same file read into memory, bitwise."""
    x = torch.rand(100, 1, 4, 4, generator=torch.Generator().manual_seed(0))          # (100, 1, 4, 4) in [0, 1]
    np.save(tmp_path / "x.npy", x.numpy())
    data, opts = str(tmp_path / "x.npy"), {**TINY, "binarize": "dynamic", "latent_dim": 2, "steps": 40,
                                           "ckpt_every": 15, "batch_size": 32}
    memory = jk.train("vae", data=data, out=tmp_path / "memory", **opts).state_dict()
    monkeypatch.setenv("JOINTKL_IN_MEMORY_GB", "5e-6")                               # 5,368 bytes
    full = jk.train("vae", data=data, out=tmp_path / "full", **opts).state_dict()

    original = Trainer.train_step

    def dying(self):
        assert self.streamed
        if self.step == 33:
            raise Killed
        return original(self)
    monkeypatch.setattr(Trainer, "train_step", dying)
    with pytest.raises(Killed):
        jk.train("vae", data=data, out=tmp_path / "cut", **opts)
    monkeypatch.setattr(Trainer, "train_step", original)
    resumed = jk.train("vae", out=tmp_path / "cut", resume=True).state_dict()
    for w in (full, resumed):
        assert all(torch.equal(memory[k], w[k]) for k in memory)


def switches() -> tuple[bool, bool, bool, bool]:
    return (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)


def test_deterministic_sets_torch_for_the_run_alone(tmp_path, monkeypatch):
    """deterministic=true: torch's deterministic algorithms (warn_only), cuDNN deterministic and not autotuned while
    the run trains, the caller's settings after; on the CPU it changes no weight, and no op of the run warns that it
    has no deterministic kernel (warnings are errors here)."""
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)        # a caller's own setting, to be put back
    before = switches()
    seen = []

    class Watch(Callback):
        def on_step_end(self, trainer, logs):
            seen.append(switches())
    opts = {**TINY, "steps": 10, "latent_dim": 2, "g_batchnorm": True}
    on = jk.train("dali", data="grid25", out=tmp_path / "on", deterministic=True, callbacks=(Watch(),), **opts)
    assert set(seen) == {(True, True, True, False)} and switches() == before
    seen.clear()
    off = jk.train("dali", data="grid25", out=tmp_path / "off", callbacks=(Watch(),), **opts)
    assert set(seen) == {before}
    a, b = on.state_dict(), off.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# --- the NaN guard -------------------------------------------------------------------------------------

def test_non_finite_loss_stops_with_the_last_good_checkpoint(cli, tmp_path, monkeypatch):
    out = tmp_path / "run"
    # the loss of step 5 turns NaN (as an overflow in the forward pass would). (lr=1e30 no longer gets this far: its
    # weights of ~1e30 after step 1 are caught before the first checkpoint, tests/training/test_divergence.py)
    original = Trainer._loss

    def nan_at_step_5(self, player, batch):
        loss, logs = original(self, player, batch)
        return (loss * float("nan") if self.step == 4 else loss), logs
    monkeypatch.setattr(Trainer, "_loss", nan_at_step_5)
    line = cli.error("train", "vae", "--data", "binary2x2", "--steps", "50", "--out", out,
                     "hidden=16", "layers=1", "latent_dim=2", "batch_size=32", "log_every=1", "ckpt_every=1",
                     "device=cpu")
    assert "non-finite loss (nan) for player 'vae' at step 5" in line
    m = re.search(r"at step (\d+)", line)
    assert m, line
    bad_step = int(m.group(1))
    good = re.search(r"last good checkpoint is (\S+?)\.? ", line)
    assert good, line
    good_dir = Path(good.group(1))
    assert good_dir.parent == out / "checkpoints" and good_dir.is_dir()
    assert int(good_dir.name.split("-")[1]) < bad_step
    model = jk.load(out, device="cpu")
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
