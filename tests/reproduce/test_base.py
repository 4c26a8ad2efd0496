"""The shared machinery of `jointkl.reproduce.base`: the context, the step probe, training many jobs."""
from __future__ import annotations

import math

import pytest

from jointkl.errors import JointKLError
from jointkl.reproduce.base import Context, Job, _is_done, diverged, seconds_per_step, train_many


def test_context_caps_steps_and_checkpoints_and_picks_by_scale(tmp_path):
    jobs = [("gan", "grid25", tmp_path / "a", {"steps": 2000, "ckpt_every": 500, "seed": 1}),
            ("gan", "grid25", tmp_path / "b", {})]                         # the trainer's defaults: 2,000 / 500
    capped = Context("quick", 1, step_cap=4).cap(jobs)
    assert capped == [Job("gan", "grid25", tmp_path / "a", {"steps": 4, "ckpt_every": 4, "seed": 1}),
                      Job("gan", "grid25", tmp_path / "b", {"steps": 4, "ckpt_every": 4})]
    assert Context("quick", 1).cap(jobs) == jobs and Context("quick", 1).capped(2000) == 2000
    assert Context("quick", 1, step_cap=4).capped(3) == 3
    assert [Context(s, 1).pick(1, 2, 3) for s in ("quick", "default", "full")] == [1, 2, 3]
    assert Context("full", 1).pick(1, 2) == 2                              # full falls back to default
    with pytest.raises(JointKLError, match="unknown scale"):
        Context("huge", 1)
    with pytest.raises(AttributeError):                                    # frozen
        Context("quick", 1).step_cap = 2


def test_seconds_per_step_is_a_positive_time_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    t = seconds_per_step("gan", "grid25", {"hidden": 16, "layers": 1, "batch_size": 8}, steps=2)
    assert 0 < t < 60 and not any(tmp_path.iterdir())
    # a job whose loss overflows at once (DALI-f at lr 1) is timed, not raised: its run records the divergence
    t = seconds_per_step("dali", "grid25", {"hidden": 16, "layers": 1, "batch_size": 8, "variant": "f",
                                            "lr": 1.0, "latent_dim": 2}, steps=20)
    assert 0 <= t < 60 and math.isfinite(t)


def test_the_estimate_probes_runs_that_differ_only_in_rates_and_seeds_once(monkeypatch, capsys):
    from jointkl.reproduce import base
    probed = []
    monkeypatch.setattr(base, "seconds_per_step", lambda m, d, opts: probed.append(opts) or 0.5)
    jobs = [("vae", "mnist5k", "a", {"hidden": 64, "lr": 3e-4, "seed": 0, "steps": 100}),
            ("vae", "mnist5k", "b", {"hidden": 64, "lr": 1e-3, "seed": 1, "steps": 300}),   # same cost per step
            ("vae", "mnist5k", "c", {"hidden": 128, "lr": 1e-3, "seed": 0, "steps": 100})]  # another net
    wall = base.say_estimate(jobs, workers=1)
    assert [p["hidden"] for p in probed] == [64, 128]
    assert wall == pytest.approx(0.5 * 500) and "expected training time: about 4 min for 3 run(s)" in capsys.readouterr().out


def test_a_diverged_run_is_recorded_cached_and_counted_as_nothing_captured(tmp_path):
    """A seed that meets a non-finite loss (DALI-f at a huge rate) ends its run, not the table: the marker
    is written, the run counts as cached, and the grid score counts it as 0 modes, named in the row."""
    from jointkl.reproduce.su_ali import grid_rows
    tiny = dict(hidden=16, layers=1, latent_dim=2, log_every=5, device="cpu", batch_size=32)
    jobs = [("dali", "grid25", tmp_path / f"f-seed{s}", {**tiny, "variant": "f", "lr": lr, "steps": 20, "seed": s})
            for s, lr in enumerate([1e-3, 1.0])]
    train_many(jobs, workers=1)
    assert diverged(jobs[0][2]) is None and "non-finite loss" in diverged(jobs[1][2])
    assert all(_is_done(o, m, d, opts) for m, d, o, opts in jobs)
    rows, figs = grid_rows(tmp_path, "DALI-f", [o for _, _, o, _ in jobs], expected=True)
    assert rows[0].ours[1] == 0 and rows[1].ours[1] == 0.0 and rows[0].ours[0] >= 1
    assert [r.ours[1] for r in rows[2:]] == [0.0, 0]                   # mean over draws, covered modes
    assert "diverged in seed 1" in rows[0].method
    assert [f.name for f in figs] == ["samples-f-seed0.png", "latent-f-seed0.png"] and all(f.exists() for f in figs)
