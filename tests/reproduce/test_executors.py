"""`jointkl reproduce --executor local|ray|slurm` and `--report-only`.

Fake `ray` and `submitit` modules (put in sys.modules) run every submitted function in this process and record
what was asked for; with them: each run not yet cached is submitted once, with the requested resources; cached
runs are not sent again; a run that raised is named in the report and trained by the next call; --report-only
trains nothing; without the package, one line names the extra. Two optional tests use the real packages (a
local Ray, submitit's local executor) when they are importable."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from jointkl.errors import JointKLError
from jointkl.reproduce import TABLES, Result, Row, Table, base, executors, run_tables
from jointkl.reproduce.executors import RayExecutor, SlurmExecutor, describe, make_executor, slurm_minutes

TINY = dict(hidden=16, layers=1, latent_dim=2, batch_size=32, log_every=2, device="cpu", steps=4, ckpt_every=4)
SEEDS = 3


def tiny_jobs(ctx, out: Path) -> list:
    return [("vae", "binary2x2", out / f"seed{s}", {**TINY, "seed": s}) for s in range(SEEDS)]


def tiny_score(ctx, out: Path) -> Result:
    from jointkl.api import load
    sums = [float(sum(p.detach().sum() for p in load(out / f"seed{s}", device="cpu").parameters()))
            for s in range(SEEDS)]
    return Result([Row("tiny VAE", "sum of weights", sums)], "reproduced", "a tiny entry for the executor tests")


@pytest.fixture(autouse=True)
def tiny_table(monkeypatch, tmp_path):
    """A registered entry of three 4-step VAE runs on binary2x2; the data folder, torch's threads and the
    environment as they were after each test (a fake engine runs `train_job` here, which sets them)."""
    monkeypatch.setitem(TABLES, "x-tiny", Table("x-tiny", "three tiny VAEs", "4 steps", tiny_score, tiny_jobs,
                                                seeds=1, quick_seeds=1))
    monkeypatch.setenv("JOINTKL_DATA", str(tmp_path / "data"))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def runs(out: Path) -> dict[str, Path]:
    return {f"seed{s}": out / "quick" / "x-tiny" / f"seed{s}" for s in range(SEEDS)}


def stamps(out: Path) -> dict[str, int]:
    """The final checkpoint's time of each run that has one."""
    found = {n: r / "checkpoints" for n, r in runs(out).items()}
    return {n: next(c.rglob("model.safetensors")).stat().st_mtime_ns for n, c in found.items()
            if c.exists() and any(c.rglob("model.safetensors"))}


def crash(out: str, why: str):
    """A run that died part way: its folder and config are there, its checkpoints are not."""
    shutil.rmtree(Path(out) / "checkpoints", ignore_errors=True)
    raise RuntimeError(why)


# ---- the fakes -------------------------------------------------------------------------------------------

class FakeRayTaskError(Exception):
    """As Ray raises: the task's exception in `cause`, a traceback in the message."""

    def __init__(self, cause: BaseException):
        super().__init__(f"ray::train_job() (pid=1, ip=10.0.0.1)\nTraceback (most recent call last):\n  File x\n"
                         f"{type(cause).__name__}: {cause}")
        self.cause = cause


class FakeRef:
    def __init__(self, value=None, error=None):
        self.value, self.error = value, error


def fake_ray(cluster: bool = False, fail: tuple = ()) -> types.ModuleType:
    """A `ray` whose tasks run at `.remote()`; `submitted`: (options, args) of each; `inits`: the addresses
    `init` was called with (address="auto" finds a cluster only if `cluster`); runs named in `fail` crash."""
    ray = types.ModuleType("ray")
    ray.submitted, ray.inits, ray.shutdowns, ray.up = [], [], 0, False

    def init(address=None, **kw):
        ray.inits.append(address)
        if address == "auto" and not cluster:
            raise ConnectionError("Could not find any running Ray instance.")
        ray.up = True

    def shutdown():
        ray.shutdowns += 1
        ray.up = False

    def remote(**options):
        def wrap(fn):
            def submit(*args):
                ray.submitted.append((options, args))
                try:
                    value = fn(*args)
                    if Path(args[2]).name in fail:
                        crash(args[2], "node lost")
                    return FakeRef(value)
                except Exception as e:  # noqa: BLE001
                    return FakeRef(error=FakeRayTaskError(e))
            return types.SimpleNamespace(remote=submit)
        return wrap

    def get(ref):
        if ref.error:
            raise ref.error
        return ref.value

    ray.init, ray.shutdown, ray.remote, ray.get = init, shutdown, remote, get
    ray.is_initialized = lambda: ray.up
    ray.wait = lambda refs, num_returns=1: (refs[:num_returns], refs[num_returns:])
    return ray


class FakeJob:
    def __init__(self, n, fn, args, fail):
        self.job_id, self.error, self.value = str(100 + n), None, None
        try:
            self.value = fn(*args)
            if Path(args[2]).name in fail:
                crash(args[2], "pre-empted")
        except Exception as e:  # noqa: BLE001 - as submitit: the remote traceback quoted in the message
            self.error = RuntimeError(f"Job (task=0) failed during processing with trace:\n----------------------\n"
                                      f"Traceback (most recent call last):\n  File x\n{type(e).__name__}: {e}\n")

    def done(self):
        return True

    def result(self):
        if self.error:
            raise self.error
        return self.value


def fake_submitit(fail: tuple = ()) -> types.ModuleType:
    """A `submitit` whose jobs run at `submit`; `executors`: each AutoExecutor made, with its folder, the
    parameters it was given, its jobs' arguments and how many batches it opened."""
    sub = types.ModuleType("submitit")
    sub.executors = []

    class AutoExecutor:
        def __init__(self, folder, cluster=None):
            self.folder, self.parameters, self.args, self.batches = folder, {}, [], 0
            sub.executors.append(self)

        def update_parameters(self, **kw):
            self.parameters.update(kw)

        def batch(self):
            self.batches += 1
            return Batch()

        def submit(self, fn, *args):
            self.args.append(args)
            return FakeJob(len(self.args), fn, args, fail)

    class Batch:
        def __enter__(self):
            return None

        def __exit__(self, *a):
            return False

    sub.AutoExecutor = AutoExecutor
    return sub


def submitted(engine: types.ModuleType) -> list[tuple]:
    """(run name, CPUs, GPUs, threads, data folder) of each run sent to a fake engine."""
    if hasattr(engine, "submitted"):                                       # ray
        return [(Path(a[2]).name, o["num_cpus"], o["num_gpus"], a[4], a[5]["JOINTKL_DATA"])
                for o, a in engine.submitted]
    return [(Path(a[2]).name, ex.parameters["cpus_per_task"], ex.parameters.get("gpus_per_node", 0), a[4],
             a[5]["JOINTKL_DATA"]) for ex in engine.executors for a in ex.args]


ENGINES = {"ray": fake_ray, "slurm": fake_submitit}
MODULE = {"ray": "ray", "slurm": "submitit"}
FLAGS = {"ray": ["--cpus-per-run", "2", "--gpus-per-run", "0.5"],
         "slurm": ["--cpus-per-run", "2", "--gpus-per-run", "1", "--slurm-partition", "gpu", "--slurm-time",
                   "1:30:00"]}
GPUS = {"ray": 0.5, "slurm": 1}


def install(monkeypatch, name: str, **kw) -> types.ModuleType:
    engine = ENGINES[name](**kw)
    monkeypatch.setitem(sys.modules, MODULE[name], engine)
    return engine


# ---- the tests -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ray", "slurm"])
def test_each_run_not_cached_is_submitted_once_with_its_resources(cli, tmp_path, monkeypatch, name):
    out = tmp_path / "out"
    base.train_many(tiny_jobs(None, out / "quick" / "x-tiny")[:1], workers=1)       # seed0 cached beforehand
    before = stamps(out)
    engine = install(monkeypatch, name)
    code, stdout, err = cli("reproduce", "x-tiny", "--quick", "--out", out, "--executor", name, *FLAGS[name])
    assert code == 0, err
    assert sorted(submitted(engine)) == [(f"seed{s}", 2, GPUS[name], 2, str(tmp_path / "data")) for s in (1, 2)]
    args = engine.submitted[0][1] if name == "ray" else engine.executors[0].args[0]
    assert Path(args[2]).is_absolute()                                   # a worker elsewhere finds the folder
    assert stamps(out)["seed0"] == before["seed0"] and len(stamps(out)) == SEEDS
    assert "reproduced" in (out / "report.md").read_text() and "sum of weights" in stdout
    if name == "ray":                         # no cluster to join: address=auto, then a local Ray, shut down after
        assert engine.inits == ["auto", None] and engine.shutdowns == 1
    else:
        ex = engine.executors[0]
        assert ex.parameters == dict(name="jointkl", timeout_min=90, nodes=1, tasks_per_node=1, cpus_per_task=2,
                                     gpus_per_node=1, slurm_partition="gpu")
        assert ex.folder == str((out / "slurm-logs" / "%j").resolve()) and ex.batches == 1   # one job array

    again = install(monkeypatch, name)                                    # everything cached: nothing is sent
    code, _, err = cli("reproduce", "x-tiny", "--quick", "--out", out, "--executor", name, *FLAGS[name])
    assert code == 0, err
    assert submitted(again) == [] and not getattr(again, "inits", [])     # ray is not even started


@pytest.mark.parametrize("name", ["ray", "slurm"])
def test_a_failed_run_is_reported_and_trained_again_by_the_next_call(cli, tmp_path, monkeypatch, name):
    out = tmp_path / "out"
    install(monkeypatch, name, fail=("seed1",))
    code, stdout, err = cli("reproduce", "x-tiny", "--quick", "--out", out, "--executor", name)
    errors = [ln for ln in err.splitlines() if ln.startswith("jointkl: ")]            # (the progress bar aside)
    assert code == 2 and len(errors) == 1 and "1 training run(s) failed" in errors[0] and "Traceback" not in err
    why = "RuntimeError: node lost" if name == "ray" else "RuntimeError: pre-empted"
    assert f"failed: {runs(out)['seed1']}" in stdout and why in stdout
    report = (out / "report.md").read_text()
    assert f"run seed1 | failed: {'' if name == 'ray' else 'job 102: '}{why} |" in report
    assert "pending" in report and "not scored: 1 of its 3 training run(s) did not finish" in report
    assert set(stamps(out)) == {"seed0", "seed2"}                        # the others finished and are cached
    first = stamps(out)

    engine = install(monkeypatch, name)                                  # the next call: the failed run only
    code, stdout, err = cli("reproduce", "x-tiny", "--quick", "--out", out, "--executor", name)
    assert code == 0, err
    assert [s[0] for s in submitted(engine)] == ["seed1"]
    assert {n: t for n, t in stamps(out).items() if n != "seed1"} == first
    assert "failed" not in (out / "report.md").read_text() and "verdict: reproduced." in stdout


def test_report_only_trains_nothing_and_names_the_missing_runs(cli, tmp_path, monkeypatch):
    out = tmp_path / "out"
    engine = install(monkeypatch, "ray")
    code, stdout, err = cli("reproduce", "x-tiny", "avb-fig3", "--quick", "--out", out, "--report-only",
                            "--executor", "ray")
    assert code == 0, err
    assert engine.submitted == [] and engine.inits == [] and not list(out.rglob("config.yaml"))
    assert not (out / "quick" / "avb-fig3").exists()                     # trains inside its scoring: not run
    report = (out / "report.md").read_text()
    assert report.count("missing: not trained yet") == SEEDS and "--report-only trains nothing" in report
    assert "verdict: pending. not scored: this entry trains inside its scoring" in stdout
    assert "which --report-only does not run" in report

    base.train_many(tiny_jobs(None, out / "quick" / "x-tiny")[:2], workers=1)    # two of the three runs exist
    cli("reproduce", "x-tiny", "--quick", "--out", out, "--report-only")
    report = (out / "report.md").read_text()
    assert "run seed2 | missing: not trained yet" in report and "seed0 | missing" not in report
    assert "2 of its 3" not in report and "1 of its 3 training run(s) are not in" in report
    base.train_many(tiny_jobs(None, out / "quick" / "x-tiny"), workers=1)
    before = stamps(out)
    code, stdout, _ = cli("reproduce", "x-tiny", "--quick", "--out", out, "--report-only")
    assert code == 0 and "verdict: reproduced." in stdout and stamps(out) == before

    line = cli.error("reproduce", "x-tiny", "--quick", "--out", out, "--report-only", "--estimate")
    assert "pass one of them" in line


@pytest.mark.parametrize("name", ["ray", "slurm"])
def test_a_missing_engine_is_a_one_line_error_naming_the_extra(cli, tmp_path, monkeypatch, name):
    monkeypatch.setitem(sys.modules, MODULE[name], None)                 # `import ray` raises ImportError
    line = cli.error("reproduce", "x-tiny", "--quick", "--out", tmp_path / "out", "--executor", name)
    assert f"pip install 'jointkl[{name}]'" in line and MODULE[name] in line
    assert not list((tmp_path / "out").rglob("config.yaml"))


def test_options_are_checked_before_anything_runs(cli, tmp_path):
    out = ["--quick", "--out", tmp_path / "out"]
    assert "--slurm-partition applies to --executor slurm, not ray" in cli.error(
        "reproduce", "x-tiny", *out, "--executor", "ray", "--slurm-partition", "gpu")
    assert "--cpus-per-run applies to --executor ray or slurm, not local" in cli.error(
        "reproduce", "x-tiny", *out, "--cpus-per-run", "2")
    assert "--slurm-time takes minutes" in cli.error("reproduce", "x-tiny", *out, "--executor", "slurm",
                                                     "--slurm-time", "soon")
    assert "at least 1" in cli.error("reproduce", "x-tiny", *out, "--executor", "ray", "--cpus-per-run", "0")
    assert "whole number" in cli.error("reproduce", "x-tiny", *out, "--executor", "slurm", "--gpus-per-run", "0.5")
    assert not (tmp_path / "out").exists()
    assert [slurm_minutes(t) for t in (None, "90", 45, "1:30:00", "0:00:30", "2-01:00:00")] == \
        [executors.SLURM_MINUTES, 90, 45, 90, 1, 2940]
    with pytest.raises(JointKLError, match="unknown executor"):
        make_executor("dask")


def test_ray_joins_the_given_address_or_the_session_it_finds(tmp_path, monkeypatch):
    jobs = tiny_jobs(None, tmp_path)[:1]
    engine = install(monkeypatch, "ray", cluster=True)
    assert RayExecutor().run(jobs) == {} and engine.inits == ["auto"] and engine.shutdowns == 1
    engine = install(monkeypatch, "ray")
    RayExecutor("ray://head:10001").run(jobs)
    assert engine.inits == ["ray://head:10001"]
    engine = install(monkeypatch, "ray")
    engine.up = True                                                      # the caller's own ray.init()
    RayExecutor().run(jobs)
    assert engine.inits == [] and engine.shutdowns == 0 and engine.up


def test_remote_numbers_are_the_local_ones(tmp_path, monkeypatch):
    """The same entry scored from runs trained by the local pool and by each (fake) remote executor."""
    local = run_tables(["x-tiny", "su-ali"], tmp_path / "local", scale="quick", step_cap=4)
    for name in ("ray", "slurm"):
        install(monkeypatch, name)
        remote = run_tables(["x-tiny", "su-ali"], tmp_path / name, scale="quick", step_cap=4,
                            executor=make_executor(name, out=tmp_path / name))
        assert {i: [r.ours for r in res.rows] for i, res in remote.items()} == \
            {i: [r.ours for r in res.rows] for i, res in local.items()}


def test_describe_gives_the_remote_error_on_one_line():
    assert describe(FakeRayTaskError(ValueError("bad\nvalue"))) == "ValueError: bad value"
    assert describe(RuntimeError("failed with trace:\n---\nTraceback (most recent call last):\n  File x\n"
                                 "KeyError: 'a'\n")) == "KeyError: 'a'"
    assert describe(RuntimeError("Job 7 timed out\nmore")) == "RuntimeError: Job 7 timed out more"


def test_no_engine_is_imported_unless_chosen():
    code = ("import sys, jointkl.cli, jointkl.reproduce; from jointkl.cli import _parser; "
            "_parser().parse_args(['reproduce', '--executor', 'ray']); "
            "print('ray' in sys.modules, 'submitit' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "False"], done.stderr


# ---- the real engines, when installed (optional extras) ------------------------------------------------

def numbers(results: dict) -> dict:
    return {i: [r.ours for r in res.rows] for i, res in results.items()}


def test_a_real_local_ray_trains_the_runs_to_the_local_numbers(tmp_path):
    ray = pytest.importorskip("ray")
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        results = run_tables(["x-tiny", "su-ali"], tmp_path, scale="quick", step_cap=4, executor=RayExecutor())
    finally:
        ray.shutdown()
        for s, h in handlers.items():                    # ray.init leaves its own SIGTERM handler in the process
            signal.signal(s, h)
    assert results["x-tiny"].verdict == "reproduced" and len(stamps(tmp_path)) == SEEDS
    local = run_tables(["x-tiny", "su-ali"], tmp_path / "local", scale="quick", step_cap=4)
    assert numbers(results) == numbers(local)


def test_submitit_local_executor_trains_the_runs_to_the_local_numbers(tmp_path):
    pytest.importorskip("submitit")
    if shutil.which("sbatch"):
        pytest.skip("a SLURM cluster is here: this test uses submitit's local executor")
    ex = SlurmExecutor(tmp_path / "logs" / "%j", minutes=5, poll=0.2)
    base.train_many(tiny_jobs(None, tmp_path / "quick" / "x-tiny")[:1], workers=1)
    results = run_tables(["x-tiny"], tmp_path, scale="quick", executor=ex)
    assert results["x-tiny"].verdict == "reproduced" and len(stamps(tmp_path)) == SEEDS
    jobs = [p for p in (tmp_path / "logs").iterdir() if p.name.isdigit()]            # logs/%j, %j = the job id
    assert len(jobs) == SEEDS - 1                                                   # one job per run not cached
    assert numbers(results) == numbers(run_tables(["x-tiny"], tmp_path / "local", scale="quick"))
