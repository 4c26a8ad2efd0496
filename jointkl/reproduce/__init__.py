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

from jointkl.errors import JointKLError


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


def pick(scale: str, quick, default, full=None):
    """The setting for this scale (full falls back to default)."""
    return {"quick": quick, "default": default, "full": default if full is None else full}[scale]


STEP_CAP: int | None = None           # tests set this to smoke-run every entry for a few steps


def capped(steps: int) -> int:
    """The steps a run of `steps` really trains (STEP_CAP applied)."""
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
    train(model, data=data, out=out, force=True, **opts)
    return out


def _is_done(out: Path, model: str, data: str, opts: dict) -> bool:
    """A cached run: same model, data and fully resolved config (defaults included), trained to its end."""
    cfg = out / "config.yaml"
    if not cfg.exists():
        return False
    from jointkl.objectives import get
    from jointkl.training.config import split_options, to_dict
    meta = yaml.safe_load(cfg.read_text())
    tcfg, mcfg = split_options(dict(opts), get(model).Config, model)
    same = (meta.get("model") == model and meta.get("data") == data
            and meta.get("train") == to_dict(tcfg) and meta.get("model_config") == to_dict(mcfg))
    return same and (out / "checkpoints" / f"step-{tcfg.steps:08d}").exists()


def train_many(jobs: list[tuple[str, str, Path, dict]], workers: int | None = None) -> None:
    """Train (model, data, out, options) jobs not already cached, `workers` processes at a time."""
    if STEP_CAP:
        jobs = [(m, d, o, {**opts, "steps": capped(opts.get("steps", 2000)),
                           "ckpt_every": capped(opts.get("ckpt_every", 500))}) for m, d, o, opts in jobs]
    todo = [(m, d, str(o), opts) for m, d, o, opts in jobs if not _is_done(Path(o), m, d, opts)]
    if not todo:
        return
    workers = workers or min(len(todo), os.cpu_count() or 1)
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


# ---- the command -----------------------------------------------------------------------------------------

def run_tables(ids: list[str], out: Path, seeds: int | None = None, scale: str = "default") -> dict[str, Result]:
    """Run the entries `ids` (all if empty) at `scale`; training runs go to out/SCALE/ID/ (cached there),
    the report to out/report.md and out/report.html."""
    from jointkl.report import print_table, write_report
    if scale not in SCALES:
        raise JointKLError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    ids = ids or list(TABLES)
    unknown = [i for i in ids if i not in TABLES]
    if unknown:
        raise JointKLError(f"unknown table {unknown[0]!r}; choose from: {', '.join(TABLES)}")
    out.mkdir(parents=True, exist_ok=True)
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
        print_table(t, results[i], sys.stdout)
    write_report({i: TABLES[i] for i in ids}, results, out, scale)
    print(f"report: {out / 'report.md'} and {out / 'report.html'}")
    return results

from jointkl.reproduce import entries  # noqa: E402,F401  (registers the tables)
