"""Where the training runs of `jointkl reproduce` execute: `local` (the default: a process pool on this machine,
one thread per run), `ray` (one Ray task per run, on an existing cluster or a local one) or `slurm` (one
SLURM job per run, through submitit).

Every executor trains a run the same way: `train_job` calls `jointkl.run.train(model, data, out, force=True)`
with as many torch threads as CPUs the run was given (one in the local pool). None keeps a record of its own:
the config cache (a run folder whose config.yaml matches and which holds its final checkpoint, or a DIVERGED
marker) is the single record of which runs are done, so a run that crashed, was cancelled or was pre-empted
leaves no final checkpoint and is trained again by the next `jointkl reproduce`. The remote executors need the
output folder (and $JOINTKL_DATA) on a file system every worker sees; they report each run that raised and go
on with the others; the local pool stops at the first one, as it always has.

`ray` and `submitit` are imported only when their executor runs; without them, one-line `JointKLError`s name
the extra to install (`pip install 'jointkl[ray]'` / `'jointkl[slurm]'`). This module imports nothing of
`jointkl.reproduce`: `jointkl.reproduce.base` imports it.
"""
from __future__ import annotations

import importlib
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from jointkl.errors import Diverged, JointKLError, one_line

DIVERGED = "DIVERGED"                 # marker file in a run folder whose training met a non-finite loss
EXECUTORS = ("local", "ray", "slurm")
SLURM_MINUTES = 240                   # the default time limit of a SLURM job (submitit's own is 5 minutes)


def train_job(model: str, data: str, out: str, opts: dict, threads: int = 1, env: dict | None = None) -> str:
    """Train one run into `out` (replacing whatever is there) on `threads` torch threads; a non-finite loss is
    a result of the protocol, not a crash: it is recorded as the DIVERGED marker (cached, reported). `env`:
    environment variables to set first (a remote worker gets the submitting process's $JOINTKL_DATA)."""
    if env:
        os.environ.update(env)
    import torch
    torch.set_num_threads(max(1, int(threads)))
    from jointkl.run import train
    try:                              # progress=False: one bar over the jobs instead of interleaved bars
        train(model, data, out, force=True, progress=False, **opts)
    except Diverged as e:
        (Path(out) / DIVERGED).write_text(f"{e}\n")
    return out


def describe(e: BaseException) -> str:
    """A failed run's error on one line. Ray wraps the task's exception (`cause`); submitit quotes the remote
    traceback, whose last line is the exception itself."""
    cause = getattr(e, "cause", None)
    if isinstance(cause, BaseException):
        return one_line(cause)
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip() and not set(ln.strip()) <= {"-"}]
    if len(lines) > 1 and any(ln.startswith("Traceback") for ln in lines):
        return " ".join(lines[-1].split())
    return one_line(e)


def _need(module: str, extra: str):
    """Import an optional engine, or a one-line error naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise JointKLError(f"--executor {extra} needs the {module} package; install it with "
                           f"pip install 'jointkl[{extra}]'") from None


def _bar(total: int, desc: str):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="run")


def _remote_env() -> dict:
    """What a worker elsewhere needs from this process's environment: where the data files are (absolute)."""
    from jointkl.data.files import data_dir
    return {"JOINTKL_DATA": str(data_dir())}


class Executor:
    """Trains a list of (model, data, out, options) jobs, all of them not yet cached. `run` returns the runs
    that raised, {out as given: the error on one line}; the caller reads the cache for what is done."""
    name = "?"
    remote = False                    # runs on other processes than a local pool (the whole grid is sent at once)

    def run(self, jobs: list) -> dict[str, str]:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


class LocalExecutor(Executor):
    """The process pool of this machine: `workers` spawned processes (default: one per CPU, at most one per
    job), each run on one thread; `workers=1` trains in this process. The first run that raises stops it."""
    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = workers

    def run(self, jobs: list) -> dict[str, str]:
        left = [(m, d, str(o), opts) for m, d, o, opts in jobs]
        if not left:
            return {}
        workers = self.workers or min(len(left), os.cpu_count() or 1)
        bar = _bar(len(left), f"  {len(left)} run(s) on {workers} process(es)")
        try:
            if workers == 1:
                for j in left:
                    train_job(*j)
                    bar.update(1)
                return {}
            import multiprocessing as mp
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
                for f in as_completed([pool.submit(train_job, *j) for j in left]):
                    f.result()
                    bar.update(1)
        finally:
            bar.close()
        return {}


def _resources(cpus: int, gpus: float) -> tuple[int, float]:
    if int(cpus) < 1:
        raise JointKLError(f"--cpus-per-run must be at least 1; got {cpus}")
    if gpus < 0:
        raise JointKLError(f"--gpus-per-run must not be negative; got {gpus:g}")
    return int(cpus), gpus


class RayExecutor(Executor):
    """One Ray task per run, `cpus_per_run` CPUs and `gpus_per_run` GPUs each (Ray schedules them and sets
    CUDA_VISIBLE_DEVICES). Joins the Ray session this process already has, else the cluster at `address`,
    else the one `address="auto"` finds (RAY_ADDRESS or a `ray start` on this machine), else starts a local
    one for the duration of the run. Ray retries a task whose worker died (its node was lost); a task that
    raised is reported, not retried."""
    name = "ray"
    remote = True

    def __init__(self, address: str | None = None, cpus_per_run: int = 1, gpus_per_run: float = 0):
        self.address = address
        self.cpus, self.gpus = _resources(cpus_per_run, gpus_per_run)

    def describe(self) -> str:
        return f"ray ({self.address or 'auto'}; {self.cpus} CPU(s), {self.gpus:g} GPU(s) per run)"

    def _connect(self, ray) -> bool:
        """Connect; True if this call started the session (and so shuts it down after)."""
        if ray.is_initialized():
            return False
        try:
            if self.address:
                ray.init(address=self.address)
            else:
                try:
                    ray.init(address="auto")
                except ConnectionError:                    # no cluster running: a local one
                    ray.init()
        except Exception as e:  # noqa: BLE001 - any failure to connect is the user's to fix
            raise JointKLError(f"could not connect to Ray at {self.address or 'auto'} ({describe(e)}); check "
                               "--ray-address, or leave it out to start a local Ray") from None
        return True

    def run(self, jobs: list) -> dict[str, str]:
        if not jobs:
            return {}
        ray = _need("ray", "ray")
        started = self._connect(ray)
        try:
            task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus)(train_job)
            env = _remote_env()
            refs = {task.remote(m, d, str(Path(o).resolve()), opts, self.cpus, env): str(o)
                    for m, d, o, opts in jobs}
            failures: dict[str, str] = {}
            bar = _bar(len(refs), f"  {len(refs)} run(s) as Ray tasks")
            try:
                pending = list(refs)
                while pending:
                    done, pending = ray.wait(pending, num_returns=1)
                    for ref in done:
                        try:
                            ray.get(ref)
                        except Exception as e:  # noqa: BLE001 - a failed run is reported; the others go on
                            failures[refs[ref]] = describe(e)
                        bar.update(1)
            finally:
                bar.close()
            return failures
        finally:
            if started:
                ray.shutdown()


def slurm_minutes(text: str | int | None) -> int:
    """A SLURM time limit in minutes: `90` (minutes), `1:30:00` (hours:minutes:seconds) or `2-00:00:00`
    (days-hours:minutes:seconds); None: the default (`SLURM_MINUTES`)."""
    if text is None:
        return SLURM_MINUTES
    s = str(text).strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+):(\d{1,2}):(\d{1,2})", s)
    if s.isdigit():
        minutes = int(s)
    elif m:
        d, h, mi, sec = (int(g or 0) for g in m.groups())
        minutes = d * 1440 + h * 60 + mi + (1 if sec else 0)
    else:
        raise JointKLError(f"--slurm-time takes minutes (90), H:MM:SS (1:30:00) or D-HH:MM:SS (2-00:00:00); got {s!r}")
    if minutes < 1:
        raise JointKLError(f"--slurm-time must be at least one minute; got {s!r}")
    return minutes


class SlurmExecutor(Executor):
    """One SLURM job per run through submitit (`submitit.AutoExecutor`: SLURM where `sbatch` exists, else
    submitit's local executor, which runs the jobs as processes of this machine), submitted as one batch
    (a job array). `partition`, `minutes` (the job's time limit), `cpus_per_run`, `gpus_per_run`; the jobs'
    logs and pickles go to `log_folder` (`%j` is the job id). It waits for the jobs, polling every `poll`
    seconds; a job that failed, timed out or was pre-empted is reported and trained again next time."""
    name = "slurm"
    remote = True

    def __init__(self, log_folder: str | Path, partition: str | None = None, minutes: int | None = None,
                 cpus_per_run: int = 1, gpus_per_run: float = 0, poll: float = 10.0):
        self.log_folder = Path(log_folder)
        self.partition = partition
        self.minutes = slurm_minutes(minutes)
        self.cpus, gpus = _resources(cpus_per_run, gpus_per_run)
        if gpus != int(gpus):
            raise JointKLError(f"--gpus-per-run with slurm takes a whole number of GPUs; got {gpus:g}")
        self.gpus = int(gpus)
        self.poll = poll

    def describe(self) -> str:
        return (f"slurm (partition {self.partition or 'default'}, {self.minutes} min, {self.cpus} CPU(s), "
                f"{self.gpus} GPU(s) per run; logs in {self.log_folder})")

    def parameters(self) -> dict:
        """What each job asks for, as `AutoExecutor.update_parameters` takes it."""
        p = dict(name="jointkl", timeout_min=self.minutes, nodes=1, tasks_per_node=1, cpus_per_task=self.cpus)
        if self.gpus:                                  # no --gpus-per-node=0 line: some clusters refuse it
            p["gpus_per_node"] = self.gpus
        if self.partition:
            p["slurm_partition"] = self.partition
        return p

    def run(self, jobs: list) -> dict[str, str]:
        if not jobs:
            return {}
        submitit = _need("submitit", "slurm")
        try:
            ex = submitit.AutoExecutor(folder=str(self.log_folder.resolve()))
            ex.update_parameters(**self.parameters())
            env = _remote_env()
            with ex.batch():
                handles = [(str(o), ex.submit(train_job, m, d, str(Path(o).resolve()), opts, self.cpus, env))
                           for m, d, o, opts in jobs]
        except JointKLError:
            raise
        except Exception as e:  # noqa: BLE001 - sbatch refused (no such partition, too long a time, ...)
            raise JointKLError(f"submitit could not submit the runs ({describe(e)}); check --slurm-partition, "
                               f"--slurm-time and the logs in {self.log_folder}") from None
        failures: dict[str, str] = {}
        bar = _bar(len(handles), f"  {len(handles)} run(s) as SLURM jobs")
        try:
            pending = handles
            while pending:
                still = []
                for out, job in pending:
                    if not job.done():
                        still.append((out, job))
                        continue
                    try:
                        job.result()
                    except Exception as e:  # noqa: BLE001 - failed, timed out, pre-empted: reported, run again later
                        failures[out] = f"job {getattr(job, 'job_id', '?')}: {describe(e)}"
                    bar.update(1)
                pending = still
                if pending:
                    time.sleep(self.poll)
        finally:
            bar.close()
        return failures


def make_executor(name: str = "local", *, out: str | Path = ".", address: str | None = None,
                  partition: str | None = None, minutes: str | int | None = None, cpus_per_run: int | None = None,
                  gpus_per_run: float | None = None, log_folder: str | Path | None = None,
                  workers: int | None = None) -> Executor:
    """The executor `name` with its options; an option of another executor is a one-line error. The SLURM
    logs default to OUT/slurm-logs/%j."""
    if name not in EXECUTORS:
        raise JointKLError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
    given = {"--ray-address": (address, "ray"), "--slurm-partition": (partition, "slurm"),
             "--slurm-time": (minutes, "slurm"), "--slurm-logs": (log_folder, "slurm"),
             "--cpus-per-run": (cpus_per_run, "ray or slurm"), "--gpus-per-run": (gpus_per_run, "ray or slurm")}
    for flag, (value, owner) in given.items():
        if value is not None and name not in owner.split(" or "):
            raise JointKLError(f"{flag} applies to --executor {owner}, not {name}")
    cpus = 1 if cpus_per_run is None else cpus_per_run
    gpus = 0 if gpus_per_run is None else gpus_per_run
    if name == "ray":
        return RayExecutor(address, cpus, gpus)
    if name == "slurm":
        return SlurmExecutor(log_folder or Path(out) / "slurm-logs" / "%j", partition, minutes, cpus, gpus)
    return LocalExecutor(workers)
