"""Every reproduce entry runs end to end (a few training steps each) and reports real, finite numbers."""
from __future__ import annotations

import functools
import math

import pytest

from jointkl import data, reproduce
from jointkl.reproduce import SCALES, TABLES, run_tables
from jointkl.errors import JointKLError

BUILT = [tid for tid, t in TABLES.items() if t.run is not None]


@pytest.fixture
def capped(monkeypatch):
    monkeypatch.setattr(reproduce, "STEP_CAP", 4)


@pytest.mark.parametrize("tid", BUILT)
def test_entry_runs_at_quick_scale(capped, tmp_path, tid):
    result = run_tables([tid], tmp_path, seeds=1, scale="quick")[tid]
    assert result.verdict in ("reproduced", "not reproduced")
    assert result.note and result.rows
    measured = [v for row in result.rows for v in row.ours]
    assert measured and all(math.isfinite(v) for v in measured)
    assert all(p.exists() for p in result.figures)
    report = (tmp_path / "report.md").read_text()
    assert tid in report and result.verdict in report and "quick" in report
    assert (tmp_path / "report.html").read_text().count("data:image/png;base64") == len(result.figures)
    logged = [p for p in (tmp_path / "quick" / tid).rglob("metrics.csv") if len(p.read_text().splitlines()) > 1]
    assert ((tmp_path / "quick" / tid / "training_curves.png") in result.figures) == bool(logged)
    assert bool(logged) == (tid != "avb-fig3")       # every entry but the VB one trains through the trainer


@pytest.mark.parametrize("tid", [tid for tid in BUILT if TABLES[tid].full_data])
def test_full_scale_reads_files_in_the_real_format(tmp_path, monkeypatch, capsys, tid):
    from test_data_files import write_mnist          # fake files in the real formats
    # the full scale's conv nets are slow on CPU: 2 steps a run, and a 1-step probe for the time estimate
    monkeypatch.setattr(reproduce, "STEP_CAP", 2)
    monkeypatch.setattr(reproduce, "seconds_per_step", functools.partial(reproduce.seconds_per_step, steps=1))
    # 200 training digits: 1 % of them (hu-table3) is a batch of 2, which batch norm (arch=dcgan) needs
    writers = {"mnist": lambda root: write_mnist(root / "mnist", n=(200, 20))}
    monkeypatch.setenv("JOINTKL_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(data, "_CACHE", {})          # the fake sets never outlive this test
    for name in TABLES[tid].full_data:
        writers[name](tmp_path / "data")
    result = run_tables([tid], tmp_path, seeds=1, scale="full")[tid]
    assert all(math.isfinite(v) for row in result.rows for v in row.ours)
    assert any((tmp_path / "full" / tid).iterdir())
    assert "expected training time: about" in capsys.readouterr().out     # --full says how long it will take


def test_seconds_per_step_is_a_positive_time_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    t = reproduce.seconds_per_step("gan", "grid25", {"hidden": 16, "layers": 1, "batch_size": 8}, steps=2)
    assert 0 < t < 60 and not any(tmp_path.iterdir())
    # a job whose loss overflows at once (DALI-f at lr 1) is timed, not raised: its run records the divergence
    t = reproduce.seconds_per_step("dali", "grid25", {"hidden": 16, "layers": 1, "batch_size": 8, "variant": "f",
                                                      "lr": 1.0, "latent_dim": 2}, steps=20)
    assert 0 <= t < 60 and math.isfinite(t)


def test_cached_runs_are_not_retrained(capped, tmp_path):
    run_tables(["su-ali"], tmp_path, seeds=1, scale="quick")
    ckpts = sorted(tmp_path.glob("quick/su-ali/*/checkpoints/*/model.safetensors"))
    stamps = [p.stat().st_mtime_ns for p in ckpts]
    run_tables(["su-ali"], tmp_path, seeds=1, scale="quick")
    assert ckpts and [p.stat().st_mtime_ns for p in ckpts] == stamps


def test_pending_entries_are_listed_not_faked(tmp_path):
    pending = [tid for tid, t in TABLES.items() if t.run is None]
    results = run_tables(pending, tmp_path, scale="quick") if pending else {}
    assert all(r.verdict == "pending" and not r.rows for r in results.values())


def test_unknown_scale_and_table(tmp_path):
    assert SCALES == ("quick", "default", "full")
    with pytest.raises(JointKLError, match="unknown scale"):
        run_tables([], tmp_path, scale="huge")
    with pytest.raises(JointKLError, match="unknown table"):
        run_tables(["no-such-table"], tmp_path)


def test_estimate_only_trains_nothing_and_writes_no_report(capped, tmp_path, capsys):
    assert run_tables(["su-ali", "avb-fig3"], tmp_path, seeds=1, scale="quick", estimate_only=True) == {}
    out = capsys.readouterr().out
    assert "expected training time: about" in out and "expected training time in all" in out
    assert not list(tmp_path.rglob("config.yaml")) and not (tmp_path / "report.md").exists()
    assert not reproduce.ESTIMATE_ONLY                  # a later run_tables trains again


def test_a_config_field_added_later_counts_as_its_default(capped, tmp_path):
    """Runs cached before a model gained an option (e.g. `arch`) were trained with its default: not retrained."""
    import yaml
    run_tables(["su-ali"], tmp_path, seeds=1, scale="quick")
    cfgs = sorted(tmp_path.glob("quick/su-ali/*/config.yaml"))
    for p in cfgs:                                     # as written before `arch` existed
        meta = yaml.safe_load(p.read_text())
        meta["model_config"].pop("arch")
        p.write_text(yaml.safe_dump(meta, sort_keys=False))
    stamps = [p.stat().st_mtime_ns for p in cfgs]
    run_tables(["su-ali"], tmp_path, seeds=1, scale="quick")
    assert cfgs and [p.stat().st_mtime_ns for p in cfgs] == stamps


def test_a_diverged_run_is_recorded_cached_and_counted_as_nothing_captured(tmp_path, monkeypatch):
    """A seed that meets a non-finite loss (DALI-f at a huge rate) ends its run, not the table: the marker
    is written, the run counts as cached, and the grid score counts it as 0 modes, named in the row."""
    from jointkl.reproduce import diverged, train_many, _is_done
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
