"""Every reproduce entry runs end to end (a few training steps each) and reports real, finite numbers."""
from __future__ import annotations

import functools
import math

import pytest

from jointkl import data
from jointkl.errors import JointKLError
from jointkl.reproduce import ORDER, SCALES, TABLES, Table, base, run_tables

BUILT = [tid for tid in ORDER if TABLES[tid].score is not None]
CAP = 4                                              # smoke runs: every training run stops after 4 steps


@pytest.fixture
def fresh_data_cache():
    """The registered sets load afresh in the test and its fake sets never outlive it."""
    data.clear_cache()
    yield
    data.clear_cache()


@pytest.mark.parametrize("tid", BUILT)
def test_entry_runs_at_quick_scale(tmp_path, tid):
    result = run_tables([tid], tmp_path, seeds=1, scale="quick", step_cap=CAP)[tid]
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
    assert bool(logged) == (tid not in ("avb-fig1", "avb-fig3", "hu-lemma1"))   # VB fits, exact sums: no runs


@pytest.mark.parametrize("tid", [tid for tid in BUILT if TABLES[tid].full_data])
def test_full_scale_reads_files_in_the_real_format(tmp_path, monkeypatch, capsys, fresh_data_cache, tid):
    from tests.data.test_files import write_mnist    # fake files in the real formats
    # the full scale's conv nets are slow on CPU: 2 steps a run, and a 1-step probe for the time estimate
    monkeypatch.setattr(base, "seconds_per_step", functools.partial(base.seconds_per_step, steps=1))
    # 200 training digits: 1 % of them (hu-table3) is a batch of 2, which batch norm (arch=dcgan) needs
    writers = {"mnist": lambda root: write_mnist(root / "mnist", n=(200, 20))}
    monkeypatch.setenv("JOINTKL_DATA", str(tmp_path / "data"))
    for name in TABLES[tid].full_data:
        writers[name](tmp_path / "data")
    result = run_tables([tid], tmp_path, seeds=1, scale="full", step_cap=2)[tid]
    assert all(math.isfinite(v) for row in result.rows for v in row.ours)
    assert any((tmp_path / "full" / tid).iterdir())
    assert "expected training time: about" in capsys.readouterr().out     # --full says how long it will take


def test_cached_runs_are_not_retrained(tmp_path):
    run_tables(["su-ali"], tmp_path, seeds=1, scale="quick", step_cap=CAP)
    ckpts = sorted(tmp_path.glob("quick/su-ali/*/checkpoints/*/model.safetensors"))
    stamps = [p.stat().st_mtime_ns for p in ckpts]
    run_tables(["su-ali"], tmp_path, seeds=1, scale="quick", step_cap=CAP)
    assert ckpts and [p.stat().st_mtime_ns for p in ckpts] == stamps


def test_pending_entries_are_listed_not_faked(tmp_path, monkeypatch):
    monkeypatch.setitem(TABLES, "x-pending", Table("x-pending", "a table not built yet", "none", None))
    pending = [tid for tid, t in TABLES.items() if t.score is None]
    results = run_tables(pending, tmp_path, scale="quick") if pending else {}
    assert all(r.verdict == "pending" and not r.rows for r in results.values())
    assert "x-pending" in results and "x-pending" in (tmp_path / "report.md").read_text()


def test_unknown_scale_and_table(tmp_path):
    assert SCALES == ("quick", "default", "full")
    with pytest.raises(JointKLError, match="unknown scale"):
        run_tables([], tmp_path, scale="huge")
    with pytest.raises(JointKLError, match="unknown table"):
        run_tables(["no-such-table"], tmp_path)


def test_estimate_only_trains_nothing_and_writes_no_report(tmp_path, capsys):
    assert run_tables(["su-ali", "avb-fig3"], tmp_path, seeds=1, scale="quick", estimate_only=True,
                      step_cap=CAP) == {}
    out = capsys.readouterr().out
    assert "expected training time: about" in out and "expected training time in all" in out
    assert "== avb-fig3" in out and "not probed" in out         # it trains outside its jobs: not timed
    assert not list(tmp_path.rglob("config.yaml")) and not (tmp_path / "report.md").exists()
    run_tables(["su-ali"], tmp_path, seeds=1, scale="quick", step_cap=CAP)    # a later run_tables trains again
    assert list(tmp_path.rglob("config.yaml")) and (tmp_path / "report.md").exists()


def test_estimate_only_says_when_nothing_is_left_to_train(tmp_path, capsys):
    run_tables(["su-ali"], tmp_path, seeds=1, scale="quick", step_cap=CAP)
    capsys.readouterr()
    run_tables(["su-ali"], tmp_path, seeds=1, scale="quick", estimate_only=True, step_cap=CAP)
    out = capsys.readouterr().out
    assert "nothing to train (cached, or no training runs)" in out and "expected training time: about" not in out


def test_a_config_field_added_later_counts_as_its_default(tmp_path):
    """Runs cached before a model gained an option (e.g. `arch`) were trained with its default: not retrained."""
    import yaml
    run_tables(["su-ali"], tmp_path, seeds=1, scale="quick", step_cap=CAP)
    cfgs = sorted(tmp_path.glob("quick/su-ali/*/config.yaml"))
    for p in cfgs:                                     # as written before `arch` existed
        meta = yaml.safe_load(p.read_text())
        meta["model_config"].pop("arch")
        p.write_text(yaml.safe_dump(meta, sort_keys=False))
    stamps = [p.stat().st_mtime_ns for p in cfgs]
    run_tables(["su-ali"], tmp_path, seeds=1, scale="quick", step_cap=CAP)
    assert cfgs and [p.stat().st_mtime_ns for p in cfgs] == stamps
