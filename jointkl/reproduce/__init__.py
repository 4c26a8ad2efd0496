"""Reproductions: one entry per paper table or figure, each holding its protocol, the paper's numbers and
a function that trains what it needs (cached by config) and returns our numbers beside the paper's.

`run_tables` runs entries, prints each table, and writes report.md / report.html into the output folder.
"""
from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import yaml

from jointkl.errors import Diverged, JointKLError

DIVERGED = "DIVERGED"                 # marker file in a run folder whose training met a non-finite loss


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
    verdict: str                      # reproduced | not reproduced | pending
    note: str = ""                    # what the verdict compares, in one or two sentences
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0


SCALES = ("quick", "default", "full")   # quick: the whole registry in <= 10 min on 2 CPU cores;
                                        # default: the CPU-scale protocol; full: the papers' data and sizes


@dataclass
class Table:
    id: str
    title: str
    protocol: str
    run: Callable[[Path, int, str], Result] | None   # (out_dir, seeds, scale) -> Result; None = pending
    seeds: int = 3                    # at the default and full scales
    quick_seeds: int = 1
    full_data: tuple[str, ...] = ()   # the file data sets (jointkl.data.files) the full scale reads
    probed: bool = True               # its training goes through train_many, so `--estimate` can time it


def pick(scale: str, quick, default, full=None):
    """The setting for this scale (full falls back to default)."""
    return {"quick": quick, "default": default, "full": default if full is None else full}[scale]


def image_nets(scale: str) -> dict:
    """The model option that selects the papers' networks: DCGAN-style conv nets at the full scale (DALI Sec. 4,
    Hu Sec. 6 and supplement I, AVB Sec. 6.2 all use them on MNIST), MLPs below it."""
    return pick(scale, {}, {}, {"arch": "dcgan"})


def nets_name(scale: str) -> str:
    return "DCGAN-style conv nets" if image_nets(scale) else "MLPs"


STEP_CAP: int | None = None           # tests set this to smoke-run every entry for a few steps


def capped(steps: int) -> int:
    """The steps a run of `steps` really trains (STEP_CAP applied); smoke runs cap evaluation counts with it too."""
    return min(steps, STEP_CAP) if STEP_CAP else steps


TABLES: dict[str, Table] = {}


def register(table: Table) -> Table:
    if table.id in TABLES:
        raise ValueError(f"table {table.id!r} registered twice")
    TABLES[table.id] = table
    return table


# ---- running many small trainings in parallel, each on one thread --------------------------------------

def _train_job(args: tuple) -> str:
    model, data, out, opts = args
    import torch
    torch.set_num_threads(1)
    from jointkl.api import train
    from jointkl.training import trainer
    trainer.PROGRESS = False          # one bar over the jobs instead of interleaved bars
    try:
        train(model, data=data, out=out, force=True, **opts)
    except Diverged as e:             # a result of the protocol, not a crash: recorded, cached, reported
        (Path(out) / DIVERGED).write_text(f"{e}\n")
    return out


def diverged(run: Path) -> str | None:
    """Why this run stopped at a non-finite loss, or None if it did not."""
    f = Path(run) / DIVERGED
    return f.read_text().strip() if f.exists() else None


def _is_done(out: Path, model: str, data: str, opts: dict) -> bool:
    """A cached run: same model, data and fully resolved config (defaults included), trained to its end. A field
    added to a config since the run was trained counts as its default (which is what the run trained with)."""
    cfg = out / "config.yaml"
    if not cfg.exists():
        return False
    from jointkl.objectives import get
    from jointkl.training.config import TrainConfig, split_options, to_dict
    meta = yaml.safe_load(cfg.read_text())
    cls = get(model)
    tcfg, mcfg = split_options(dict(opts), cls.Config, model)
    same = (meta.get("model") == model and meta.get("data") == data
            and {**to_dict(TrainConfig()), **meta.get("train", {})} == to_dict(tcfg)
            and {**to_dict(cls.Config()), **meta.get("model_config", {})} == to_dict(mcfg))
    return same and ((out / "checkpoints" / f"step-{tcfg.steps:08d}").exists() or diverged(out) is not None)


def seconds_per_step(model: str, data: str, opts: dict, steps: int = 4) -> float:
    """Wall seconds of one training step of this job on one thread, timed over `steps` steps after one
    warm-up step (the trainer is built in a scratch folder; nothing is written where the run will go). A step
    whose loss is not finite ends the probe: the run itself will meet it and record it."""
    import tempfile
    import torch
    from jointkl.api import _dataset
    from jointkl.objectives import get
    from jointkl.training.config import split_options
    from jointkl.training.trainer import NonFinite, Trainer
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                      # as each training process of `train_many` runs
    try:
        cls = get(model)
        tcfg, mcfg = split_options(dict(opts), cls.Config, model)
        ds = _dataset(data)
        torch.manual_seed(tcfg.seed)
        with tempfile.TemporaryDirectory() as d, torch.enable_grad():
            trainer = Trainer(cls(mcfg, ds.shape, ds.kind), ds, tcfg, Path(d))
            times = []
            try:
                for _ in range(steps + 1):                # the first step warms up
                    start = time.perf_counter()
                    trainer.train_step()
                    times.append(time.perf_counter() - start)
            except NonFinite:             # the run itself will meet it and say so; time the steps that ran
                pass
            timed = times[1:] or times                    # the warm-up alone if nothing after it ran
            return sum(timed) / len(timed) if timed else 0.0
    finally:
        torch.set_num_threads(threads)


ESTIMATE = False                      # run_tables sets it above the quick scale: say how long training will take
ESTIMATE_ONLY = False                 # `reproduce --estimate`: say it, then stop the entry before training


class _Estimated(Exception):
    """Raised by train_many under ESTIMATE_ONLY once the entry's expected time is printed."""

    def __init__(self, seconds: float):
        self.seconds = seconds


def _hours(seconds: float) -> str:
    h, m = divmod(max(1, round(seconds / 60)), 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


def _say_estimate(todo: list[tuple], workers: int) -> float:
    """Probe each distinct (model, data, options but seed) once and print the expected training time."""
    per_step: dict[str, float] = {}
    total = 0.0
    for m, d, _, opts in todo:
        key = repr((m, d, sorted((k, str(v)) for k, v in opts.items() if k != "seed")))
        if key not in per_step:
            per_step[key] = seconds_per_step(m, d, opts)
        total += per_step[key] * opts.get("steps", 2000)
    wall = total / min(workers, len(todo))
    fast, slow = min(per_step.values()), max(per_step.values())
    print(f"  expected training time: about {_hours(wall)} for {len(todo)} run(s) on {workers} "
          f"process(es) (probed {fast * 1e3:.0f}-{slow * 1e3:.0f} ms/step on one thread; evaluation not included)",
          flush=True)
    return wall


def train_many(jobs: list[tuple[str, str, Path, dict]], workers: int | None = None) -> None:
    """Train (model, data, out, options) jobs not already cached, `workers` processes at a time."""
    if STEP_CAP:
        jobs = [(m, d, o, {**opts, "steps": capped(opts.get("steps", 2000)),
                           "ckpt_every": capped(opts.get("ckpt_every", 500))}) for m, d, o, opts in jobs]
    todo = [(m, d, str(o), opts) for m, d, o, opts in jobs if not _is_done(Path(o), m, d, opts)]
    if not todo:
        return
    workers = workers or min(len(todo), os.cpu_count() or 1)
    if ESTIMATE or ESTIMATE_ONLY:
        wall = _say_estimate(todo, workers)
        if ESTIMATE_ONLY:
            raise _Estimated(wall)
    from tqdm.auto import tqdm
    bar = tqdm(total=len(todo), desc=f"  {len(todo)} run(s) on {workers} process(es)", unit="run")
    try:
        if workers == 1:
            for j in todo:
                _train_job(j)
                bar.update(1)
            return
        import multiprocessing as mp
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            for f in as_completed([pool.submit(_train_job, j) for j in todo]):
                f.result()
                bar.update(1)
    finally:
        bar.close()


def _add_training_curves(result: Result, folder: Path) -> None:
    """Append a figure of the losses of every training run under `folder` (if any logged) to the result."""
    from jointkl.plots import save_entry_curves
    path = folder / "training_curves.png"
    if folder.exists() and save_entry_curves(sorted(folder.rglob("metrics.csv")), path, folder):
        result.figures.append(path)


# ---- the command -----------------------------------------------------------------------------------------

def _estimate_tables(ids: list[str], out: Path, seeds: int | None, scale: str) -> dict:
    total = 0.0
    for i in ids:
        t = TABLES[i]
        print(f"== {t.id}: {t.title}", flush=True)
        if not t.probed:
            print("  not probed: this entry trains outside train_many (see its protocol for its steps)")
            continue
        try:
            if t.run is not None:
                t.run(out / scale / t.id, seeds or (t.quick_seeds if scale == "quick" else t.seeds), scale)
            print("  nothing to train (cached, or no training runs)")
        except _Estimated as e:
            total += e.seconds
    print(f"expected training time in all: about {_hours(total)}")
    return {}


def run_tables(ids: list[str], out: Path, seeds: int | None = None, scale: str = "default",
               estimate_only: bool = False) -> dict[str, Result]:
    """Run the entries `ids` (all if empty) at `scale`; training runs go to out/SCALE/ID/ (cached there),
    the report to out/report.md and out/report.html. `estimate_only`: print each entry's expected training
    time and return {} without training or writing a report."""
    from jointkl.report import print_table, write_report
    if scale not in SCALES:
        raise JointKLError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    ids = ids or list(TABLES)
    unknown = [i for i in ids if i not in TABLES]
    if unknown:
        raise JointKLError(f"unknown table {unknown[0]!r}; choose from: {', '.join(TABLES)}")
    out.mkdir(parents=True, exist_ok=True)
    global ESTIMATE, ESTIMATE_ONLY
    ESTIMATE, ESTIMATE_ONLY = scale != "quick", estimate_only
    try:
        if estimate_only:
            return _estimate_tables(ids, out, seeds, scale)
        results: dict[str, Result] = {}
        for i in ids:
            t = TABLES[i]
            print(f"== {t.id}: {t.title}", flush=True)
            if t.run is None:
                results[i] = Result([], "pending", "not built yet")
            else:
                start = time.time()
                n = seeds or (t.quick_seeds if scale == "quick" else t.seeds)
                results[i] = t.run(out / scale / t.id, n, scale)
                results[i].seconds = time.time() - start
                _add_training_curves(results[i], out / scale / t.id)
            print_table(t, results[i], sys.stdout)
    finally:
        ESTIMATE = ESTIMATE_ONLY = False  # a later train_many outside run_tables probes nothing
    write_report({i: TABLES[i] for i in ids}, results, out, scale)
    print(f"report: {out / 'report.md'} and {out / 'report.html'}")
    return results

from jointkl.reproduce import entries  # noqa: E402,F401  (registers the tables)
