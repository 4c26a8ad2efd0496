"""Divergence beyond NaN: an exploded loss, parameters that are not finite or are huge, and a model whose samples
are not finite stop the run naming the player, the step and the likely cause (the learning rate, or data of a
huge scale); a checkpoint is written only for a model whose samples are finite, and checking costs training
nothing (a run checkpointed every step equals one checkpointed once)."""
from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import jointkl as jk
from jointkl.errors import Diverged
from jointkl.training.trainer import LOSS_LIMIT, WEIGHT_LIMIT, Callback

TINY = ["hidden=16", "layers=1", "latent_dim=2", "batch_size=32", "device=cpu"]


def _steps(run: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in (run / "checkpoints").iterdir()) \
        if (run / "checkpoints").exists() else []


def test_an_exploding_gan_stops_naming_player_step_and_learning_rate(cli, tmp_path):
    # lr=1e6: the discriminator's loss reaches ~1e20 within two steps (before this check the run ended "fine",
    # its samples hundreds of times outside the data)
    line = cli.error("train", "gan", "--data", "grid25", "--steps", "200", "--out", tmp_path / "run", *TINY, "lr=1e6")
    m = re.search(r"loss of player '(\w+)' exploded to (\S+) at step (\d+) \(beyond 1e\+12\)", line)
    assert m and abs(float(m.group(2))) > LOSS_LIMIT, line
    assert f"'{m.group(1)}' lr=1e+06" in line and "lower the learning rate" in line and "--force" in line


def test_an_exploding_vae_loss_is_caught_before_nan(cli, tmp_path):
    # lr=100 on binary data: the KL grows to ~1e16 while every loss stays finite, and the run used to end with exit 0
    line = cli.error("train", "vae", "--data", "binary2x2", "--steps", "200", "--out", tmp_path / "run", "hidden=32",
                     "layers=2", "batch_size=32", "device=cpu", "lr=100")
    assert re.search(r"loss of player 'vae' exploded to \S+ at step \d+", line), line
    assert "lower the learning rate ('vae' lr=100)" in line


def test_weights_blown_up_by_the_first_update_are_never_saved(cli, tmp_path):
    # lr=1e30: the first Adam step moves every weight by ~1e30; the loss of that step was still finite, and the run
    # used to keep step 1 as its "last good checkpoint"
    line = cli.error("train", "vae", "--data", "binary2x2", "--steps", "50", "--out", tmp_path / "run", *TINY,
                     "log_every=1", "ckpt_every=1", "lr=1e30")
    assert "parameters of player 'vae' reached 1e+30 at step 1 (beyond 1e+12); no checkpoint was written yet" in line
    assert _steps(tmp_path / "run") == []


def test_data_of_a_huge_scale_are_blamed_not_the_learning_rate(cli, tmp_path):
    x = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32) * 1e30
    np.save(tmp_path / "huge.npy", x)
    for model in ("vae", "gan"):
        line = cli.error("train", model, "--data", tmp_path / "huge.npy", "--steps", "20", "--out",
                         tmp_path / model, *TINY, "lr=1e-9")
        assert "the training data reach |x| = " in line and "rescale them" in line, line
        assert "lower the learning rate" not in line


class Poke(Callback):
    """At the end of step `at`, does `what` to the model (as a diverging update would)."""

    def __init__(self, at: int, what):
        self.at, self.what = at, what

    def on_step_end(self, trainer, logs):
        if trainer.step == self.at:
            self.what(trainer.model)


def _first_weight(model) -> torch.Tensor:
    return next(p for n, p in model.named_parameters() if n.startswith("p_x"))


@pytest.mark.parametrize("value, words", [(1e13, "parameters of player 'vae' reached 1e+13 at step 6 (beyond 1e+12)"),
                                          (math.inf, "non-finite parameters (inf) for player 'vae' at step 6")])
def test_huge_or_non_finite_parameters_stop_at_the_next_log_step(tmp_path, value, words):
    def blow(model):
        with torch.no_grad():
            _first_weight(model).view(-1)[0] = value
    with pytest.raises(Diverged) as e:
        jk.train("vae", data="binary2x2", out=tmp_path / "run", steps=40, hidden=8, layers=1, latent_dim=2,
                 batch_size=16, log_every=3, ckpt_every=4, device="cpu", callbacks=[Poke(6, blow)])
    msg = str(e.value)
    assert words in msg, msg                         # found at the log step
    assert f"the last good checkpoint is {tmp_path / 'run' / 'checkpoints' / 'step-00000004'}" in msg
    assert _steps(tmp_path / "run") == [4]


def test_a_model_with_non_finite_samples_is_not_saved(tmp_path):
    """The VAE at lr=100 used to keep a 'last good' checkpoint whose samples were inf: a checkpoint is now written
    only after a few samples come out finite."""
    def break_sampler(model):
        model.sample = lambda n: torch.full((n, 1, 2, 2), math.inf)
    with pytest.raises(Diverged) as e:
        jk.train("vae", data="binary2x2", out=tmp_path / "run", steps=40, hidden=8, layers=1, latent_dim=2,
                 batch_size=16, log_every=5, ckpt_every=10, device="cpu", callbacks=[Poke(12, break_sampler)])
    msg = str(e.value)
    assert "samples are not finite at step 20, so that checkpoint was not written" in msg, msg
    assert f"the last good checkpoint is {tmp_path / 'run' / 'checkpoints' / 'step-00000010'}" in msg
    assert _steps(tmp_path / "run") == [10]
    model = jk.load(tmp_path / "run", device="cpu")
    assert torch.isfinite(model.sample(100)).all()


@pytest.mark.parametrize("model, opts", [("vae", dict(latent_dim=2)),
                                         ("gan", dict(latent_dim=2, g_batchnorm=True, g_steps=2))])
def test_checks_cost_training_nothing(tmp_path, model, opts):
    """The sample probes at every checkpoint (forked RNG, train/eval modes put back) leave training bitwise as it
    was: a run checkpointed at every step equals one checkpointed only at its end."""
    kw = dict(steps=12, hidden=16, layers=1, batch_size=16, log_every=1, device="cpu", **opts)
    data = "binary2x2" if model == "vae" else "grid25"
    a = jk.train(model, data=data, out=tmp_path / "a", ckpt_every=1, **kw)
    b = jk.train(model, data=data, out=tmp_path / "b", ckpt_every=1000, **kw)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert (tmp_path / "a" / "metrics.csv").read_text() == (tmp_path / "b" / "metrics.csv").read_text()


@pytest.mark.parametrize("model, data, opts", [("vae", "binary2x2", {}), ("gan", "grid25", dict(reg=5.0)),
                                               ("avb", "grid25", dict(noise_dim=4))])
def test_healthy_runs_stay_far_below_the_limits(tmp_path, model, data, opts):
    """The limits are 1e12: healthy losses are nats per example (< 1e5 even for 3072-pixel images) and Adam moves
    a weight by about lr per update (|w| < 1e4 for lr <= 1e-2 over 1e6 steps). Healthy runs of the test suite
    and of `reproduce --quick` stay orders of magnitude below both."""
    m = jk.train(model, data=data, out=tmp_path / "r", steps=100, hidden=16, layers=1, latent_dim=2, batch_size=32,
                 log_every=1, device="cpu", **opts)
    with open(tmp_path / "r" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    peak_loss = max(abs(float(v)) for r in rows for k, v in r.items() if k != "step")
    peak_weight = max(float(p.detach().abs().max()) for p in m.parameters())
    assert peak_loss < LOSS_LIMIT * 1e-6 and peak_weight < WEIGHT_LIMIT * 1e-6, (peak_loss, peak_weight)
