"""What every reproduction shares: the result types, the registry, the context an entry runs in, and the
machinery that trains an entry's jobs (cached by config, in parallel) and times them.

An entry (`Table`) declares its training runs and its scoring separately: `jobs(ctx, out)` lists the runs
(model, data, out_dir, options) it needs, `score(ctx, out)` reads them and returns our numbers beside the
paper's. `run_table` trains the jobs not yet cached (after printing their expected time when `ctx.estimate`)
on an executor (`jointkl.reproduce.executors`: the local pool by default, or Ray / SLURM), then scores them, or,
when some are missing (`--report-only`, or runs that failed), returns rows naming them; `estimate_table` only
prints the time. The config cache (`_is_done`) is the only record of which runs are done. This module imports no table module; each table module
imports it and registers itself, and the package (`jointkl.reproduce`) imports the table modules and fixes
their order.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from jointkl.errors import Diverged, JointKLError
from jointkl.reproduce.executors import DIVERGED, Executor, LocalExecutor


@dataclass
class Row:
    method: str
    metric: str
    ours: list[float]                 # one value per seed
    paper: float | None = None        # None: the paper has no number for this cell
    better: str = "higher"            # which direction is better, for the difference column

    @property
    def mean(self) -> float:
        return float(np.mean(self.ours))

    @property
    def std(self) -> float:
        return float(np.std(self.ours, ddof=1)) if len(self.ours) > 1 else 0.0


@dataclass
class Result:
    rows: list[Row]
    verdict: str                      # reproduced | not reproduced | pending | failed (the entry raised)
    note: str = ""                    # what the verdict compares, in one or two sentences
    figures: list[Path] = field(default_factory=list)   # the report puts its ours-vs-paper chart first
    seconds: float = 0.0


SCALES = ("quick", "default", "full")   # quick: the whole registry in <= 10 min on 2 CPU cores;
                                        # default: the CPU-scale protocol; full: the papers' data and sizes


def pick(scale: str, quick, default, full=None):
    """The setting for this scale (full falls back to default)."""
    return {"quick": quick, "default": default, "full": default if full is None else full}[scale]


def image_nets(scale: str) -> dict:
    """The model option that selects the papers' networks: DCGAN-style conv nets at the full scale (DALI Sec. 4,
    Hu Sec. 6 and supplement I, AVB Sec. 6.2 all use them on MNIST), MLPs below it."""
    return pick(scale, {}, {}, {"arch": "dcgan"})


def nets_name(scale: str) -> str:
    return "DCGAN-style conv nets" if image_nets(scale) else "MLPs"


class Job(NamedTuple):
    """One training run of an entry: `jointkl.run.train(model, data, out, **options)`."""
    model: str
    data: str
    out: Path
    options: dict


@dataclass(frozen=True)
class Context:
    """What one entry runs at. `scale` and `seeds` choose its protocol; `step_cap` (smoke runs: the tests)
    stops every training run after that many steps, and entries cap their evaluation counts with it too
    (`capped`); `estimate`: print the expected training time of the runs not cached before training them."""
    scale: str
    seeds: int
    step_cap: int | None = None
    estimate: bool = False

    def __post_init__(self):
        if self.scale not in SCALES:
            raise JointKLError(f"unknown scale {self.scale!r}; choose one of {', '.join(SCALES)}")

    def pick(self, quick, default, full=None):
        """The setting for this context's scale (full falls back to default)."""
        return pick(self.scale, quick, default, full)

    def capped(self, steps: int) -> int:
        """The steps a run of `steps` really trains (the step cap applied)."""
        return min(steps, self.step_cap) if self.step_cap else steps

    def cap(self, jobs) -> list[Job]:
        """The jobs as they really train: steps and checkpoint interval capped."""
        if not self.step_cap:
            return [Job(*j) for j in jobs]
        return [Job(m, d, o, {**opts, "steps": self.capped(opts.get("steps", 2000)),
                              "ckpt_every": self.capped(opts.get("ckpt_every", 500))}) for m, d, o, opts in jobs]


def no_jobs(ctx: Context, out: Path) -> list[Job]:
    return []


@dataclass
class Table:
    id: str
    title: str
    protocol: str
    score: Callable[[Context, Path], Result] | None   # (ctx, out_dir) -> Result, from the trained jobs; None = pending
    jobs: Callable[[Context, Path], list] = no_jobs   # (ctx, out_dir) -> the (model, data, out, options) runs it reads
    seeds: int = 3                    # at the default and full scales
    quick_seeds: int = 1
    full_data: tuple[str, ...] = ()   # the file data sets (jointkl.data.files) the full scale reads
    probed: bool = True               # all its training is in `jobs`, so `--estimate` can time it (else it trains
                                      # inside `score`)

    def context(self, scale: str, seeds: int | None = None, step_cap: int | None = None,
                estimate: bool = False) -> Context:
        """Its context at `scale`: `seeds` seeds, or its own number for that scale."""
        return Context(scale, seeds or (self.quick_seeds if scale == "quick" else self.seeds), step_cap, estimate)


TABLES: dict[str, Table] = {}


def register(table: Table) -> Table:
    if table.id in TABLES:
        raise ValueError(f"table {table.id!r} registered twice")
    TABLES[table.id] = table
    return table


# ---- running many small trainings: in a local pool, each on one thread, or on Ray / SLURM (executors) --------

def diverged(run: Path) -> str | None:
    """Why this run stopped at a non-finite loss, or None if it did not."""
    f = Path(run) / DIVERGED
    return f.read_text().strip() if f.exists() else None


def _is_done(out: Path, model: str, data: str, opts: dict) -> bool:
    """A cached run: same model, data and fully resolved config, trained to its end (or diverged)."""
    from jointkl.run import finished, matches
    tcfg = matches(out, model, data, opts)
    return tcfg is not None and (finished(out, tcfg.steps) or diverged(out) is not None)


def todo(jobs) -> list[Job]:
    """The jobs not already cached."""
    return [Job(*j) for j in jobs if not _is_done(Path(j[2]), j[0], j[1], j[3])]


def _workers(jobs: list, workers: int | None = None) -> int:
    return workers or min(len(jobs), os.cpu_count() or 1)


def train_many(jobs, workers: int | None = None, executor: Executor | None = None) -> dict[str, str]:
    """Train (model, data, out, options) jobs not already cached: on `executor`, or in the local pool of
    `workers` processes (which stops at the first run that raises). The runs that raised on a remote executor,
    {out: the error on one line}; they are not cached, so the next call trains them again."""
    left = todo(jobs)
    if not left:
        return {}
    return (executor or LocalExecutor(workers)).run(left)


# ---- the expected training time ----------------------------------------------------------------------------

def seconds_per_step(model: str, data: str, opts: dict, steps: int = 4) -> float:
    """Wall seconds of one training step of this job on one thread, timed over `steps` steps after one
    warm-up step (the trainer writes nothing). A step whose loss is not finite ends the probe: the run itself
    will meet it and record it."""
    import torch
    from jointkl.run import build
    from jointkl.training.trainer import Callback

    class Clock(Callback):
        def __init__(self):
            self.times: list[float] = []

        def on_step_start(self, trainer):
            self.start = time.perf_counter()

        def on_step_end(self, trainer, logs):
            self.times.append(time.perf_counter() - self.start)
            trainer.should_stop = len(self.times) > steps        # the first step warms up

    threads = torch.get_num_threads()
    torch.set_num_threads(1)                      # as each training process of `train_many` runs
    clock = Clock()
    try:
        trainer, _ = build(model, data, opts, callbacks=(clock,), progress=False)
        try:
            trainer.fit()
        except Diverged:                          # the run itself will meet it and say so; time the steps that ran
            pass
        timed = clock.times[1:] or clock.times    # the warm-up alone if nothing after it ran
        return sum(timed) / len(timed) if timed else 0.0
    finally:
        torch.set_num_threads(threads)


def hours(seconds: float) -> str:
    h, m = divmod(max(1, round(seconds / 60)), 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


# options that change what a step computes but not what it costs: runs differing only in them are probed once
COST_FREE = frozenset({"seed", "lr", "lr_d", "lr_decay", "betas", "steps", "ckpt_every", "keep_ckpts", "log_every"})


def say_estimate(jobs: list, workers: int | None = None) -> float:
    """Probe each distinct (model, data, options but the `COST_FREE` ones) of `jobs` once, print the expected
    wall time of training them all with `train_many(jobs, workers)`, and return it in seconds."""
    workers = _workers(jobs, workers)
    per_step: dict[str, float] = {}
    total = 0.0
    for m, d, _, opts in jobs:
        key = repr((m, d, sorted((k, str(v)) for k, v in opts.items() if k not in COST_FREE)))
        if key not in per_step:
            per_step[key] = seconds_per_step(m, d, opts)
        total += per_step[key] * opts.get("steps", 2000)
    wall = total / min(workers, len(jobs))
    fast, slow = min(per_step.values()), max(per_step.values())
    print(f"  expected training time: about {hours(wall)} for {len(jobs)} run(s) on {workers} "
          f"process(es) (probed {fast * 1e3:.0f}-{slow * 1e3:.0f} ms/step on one thread; evaluation not included)",
          flush=True)
    return wall


# ---- one entry ---------------------------------------------------------------------------------------------

def estimate_table(table: Table, ctx: Context, out: Path) -> float:
    """Print the expected training time of the entry's jobs not yet cached in `out`; trains nothing. The
    seconds (0 if nothing is left to train or the entry trains outside its jobs)."""
    if not table.probed:
        print("  not probed: this entry trains outside train_many (see its protocol for its steps)")
        return 0.0
    left = todo(ctx.cap(table.jobs(ctx, out))) if table.score is not None else []
    if not left:
        print("  nothing to train (cached, or no training runs)")
        return 0.0
    return say_estimate(left)


def _add_training_curves(result: Result, folder: Path) -> None:
    """Append a figure of the losses of every training run under `folder` (if any logged) to the result."""
    from jointkl.plots import save_entry_curves
    path = folder / "training_curves.png"
    if folder.exists() and save_entry_curves(sorted(folder.rglob("metrics.csv")), path, folder):
        result.figures.append(path)


def missing_rows(table: Table, jobs: list[Job], missing: list[Job], failures: dict[str, str],
                 report_only: bool) -> Result:
    """The result of an entry some of whose runs are not there: one row per missing run saying why (failed,
    with its error, or not trained), verdict pending, and a note saying how to get them."""
    rows = [Row(f"run {Path(j.out).name}", f"failed: {failures[str(j.out)]}" if str(j.out) in failures
                else "missing: not trained yet" if report_only else "missing after training", []) for j in missing]
    have = f"{len(missing)} of its {len(jobs)} training run(s)"
    if report_only:
        note = (f"not scored: {have} are not in {Path(missing[0].out).parent} (--report-only trains nothing); "
                f"`jointkl reproduce {table.id}` at the same scale trains them and keeps the cached ones.")
    else:
        failed = sum(str(j.out) in failures for j in missing)
        note = (f"not scored: {have} did not finish ({failed} failed: see each row); the next `jointkl reproduce` "
                "trains them again and keeps the cached ones.")
    return Result(rows, "pending", note)


def run_table(table: Table, ctx: Context, out: Path, executor: Executor | None = None, train: bool = True,
              report_only: bool = False, failures: dict[str, str] | None = None) -> Result:
    """Train the entry's jobs not cached in `out` on `executor` (default: the local pool; saying first how
    long it will take when `ctx.estimate`), score them, and add the figure of the training losses.

    `train=False`: its jobs were already sent (a remote executor trains the whole grid at once; `failures`:
    {out: error} of those that raised). `report_only`: trains nothing, and an entry that trains inside its
    scoring (`probed=False`) is not scored. Either way an entry with runs missing is not scored: its rows name
    the missing runs (`missing_rows`)."""
    if table.score is None:
        return Result([], "pending", "not built yet")
    start = time.time()
    if report_only and not table.probed:
        return Result([], "pending", "not scored: this entry trains inside its scoring (see its protocol), which "
                      "--report-only does not run; run it without --report-only")
    jobs = ctx.cap(table.jobs(ctx, out))
    failures = dict(failures or {})
    if train and not report_only:
        local = executor is None or not executor.remote
        if ctx.estimate and local and (left := todo(jobs)):
            say_estimate(left)
        failures.update(train_many(jobs, executor=executor))
    if missing := todo(jobs):
        result = missing_rows(table, jobs, missing, failures, report_only)
    else:
        result = table.score(ctx, out)
        _add_training_curves(result, out)
    result.seconds = time.time() - start
    return result
