"""Reproductions: one entry per paper table or figure, each holding its protocol, the paper's numbers, the
training runs it needs (cached by config) and a scoring that returns our numbers beside the paper's.

The shared pieces are in `jointkl.reproduce.base`; each table module registers its entries there. This package
imports the table modules and fixes their order (`ORDER`), which `jointkl list tables`, `run_tables` and the
report follow. `run_tables` runs entries, prints each table, and after each entry writes report.md / report.html
into the output folder.
"""
from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

from jointkl.errors import JointKLError, one_line
from jointkl.reproduce import avb, avb_fig1, avb_table2, dali, eight_schools, hu, hu_lemma  # noqa: F401
from jointkl.reproduce import hu_models, su_ali, su_fig1  # noqa: F401
from jointkl.reproduce.base import (SCALES, TABLES, Context, Job, Result, Row, Table, diverged, estimate_table, hours,
                                    run_table, seconds_per_step, todo, train_many)
from jointkl.reproduce.executors import EXECUTORS, Executor, make_executor

ORDER = ("avb-table2", "avb-fig1", "avb-fig3", "hu-table2", "hu-table3", "hu-table4", "hu-ada", "su-fig1", "avb-table1",
         "avb-fig6", "su-ali", "dali-table2", "dali-table1", "hu-lemma1")

__all__ = ["EXECUTORS", "ORDER", "SCALES", "TABLES", "Context", "Executor", "Job", "Result", "Row", "Table", "diverged",
           "make_executor", "run_tables", "seconds_per_step", "train_many"]


def run_tables(ids: list[str], out: Path, seeds: int | None = None, scale: str = "default",
               estimate_only: bool = False, step_cap: int | None = None, executor: Executor | str | None = None,
               report_only: bool = False, results_page: Path | None = None) -> dict[str, Result]:
    """Run the entries `ids` (all, in `ORDER`, if empty) at `scale`; training runs go to out/SCALE/ID/ (cached
    there), the report to out/report.md and out/report.html. Above the quick scale each entry first prints its
    expected training time. `estimate_only`: print each entry's expected training time and return {} without
    training or writing a report. `step_cap`: every training run stops after that many steps (smoke runs).

    `executor` (an `Executor` or a name of `EXECUTORS`; default the local pool, entry by entry): a remote one
    (ray, slurm) is sent every run of every entry not yet cached at once, then the entries are scored here.
    `report_only`: train nothing and report from the runs that exist; an entry with runs missing says which.
    Runs that failed on a remote executor are named in the report, then a `JointKLError` says how many (the
    next call trains them again: the cache is the only record of what is done).
    `results_page`: also write the results as that docs page (`jointkl.report.write_results_page`).

    The report is rewritten after each entry, so a later crash or stop leaves the finished entries readable;
    an entry that raises is reported as failed (its error on one line, its traceback in out/ID-error.txt), the
    entries after it still run, and a `JointKLError` at the end names the entries that raised."""
    from jointkl.report import failed_result, print_table, write_report, write_results_page
    if scale not in SCALES:
        raise JointKLError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    if estimate_only and report_only:
        raise JointKLError("--estimate and --report-only both train nothing; pass one of them")
    ids = list(ids) or list(ORDER)
    unknown = [i for i in ids if i not in TABLES]
    if unknown:
        raise JointKLError(f"unknown table {unknown[0]!r}; choose from: {', '.join(ORDER)}")
    if isinstance(executor, str):
        executor = make_executor(executor, out=out)
    out.mkdir(parents=True, exist_ok=True)
    contexts = {i: TABLES[i].context(scale, seeds, step_cap, estimate=scale != "quick") for i in ids}
    remote = executor is not None and executor.remote and not (estimate_only or report_only)
    failures: dict[str, str] = {}
    if remote:                                   # the whole grid at once: the cluster schedules it
        grid = [j for i in ids if TABLES[i].score is not None
                for j in todo(contexts[i].cap(TABLES[i].jobs(contexts[i], out / scale / i)))]
        if grid:
            print(f"== training {len(grid)} run(s) on {executor.describe()}", flush=True)
            failures = executor.run(grid)
            for run, why in failures.items():
                print(f"  failed: {run}: {why}", flush=True)
    results: dict[str, Result] = {}
    total = 0.0
    raised: dict[str, Path] = {}
    for i in ids:
        t, ctx = TABLES[i], contexts[i]
        print(f"== {t.id}: {t.title}", flush=True)
        if estimate_only:
            total += estimate_table(t, ctx, out / scale / t.id)
            continue
        start = time.time()
        try:
            results[i] = run_table(t, ctx, out / scale / t.id, executor=None if remote else executor,
                                   train=not remote, report_only=report_only, failures=failures)
        except Exception as e:           # the report says so; the entries after it still run (hours of work)
            trace = out / f"{i}-error.txt"
            trace.write_text(traceback.format_exc())
            results[i], raised[i] = failed_result(e, time.time() - start, []), trace
            print(f"  {i} raised {one_line(e)} (traceback: {trace}); going on with the next entries", flush=True)
        print_table(t, results[i], sys.stdout)
        write_report({j: TABLES[j] for j in results}, results, out, scale)   # after each entry: a crash or a
                                                                            # stop later keeps these readable
    if estimate_only:
        print(f"expected training time in all: about {hours(total)}")
        return {}
    print(f"report: {out / 'report.md'} and {out / 'report.html'}")
    if results_page is not None:
        runs = {i: [j.out for j in contexts[i].cap(TABLES[i].jobs(contexts[i], out / scale / i))] for i in results}
        write_results_page({j: TABLES[j] for j in results}, results, runs, Path(results_page), scale, out)
        print(f"results page: {results_page}")
    if raised:
        raise JointKLError(f"{len(raised)} entr{'y' if len(raised) == 1 else 'ies'} raised: "
                           + "; ".join(f"{i} (traceback in {t})" for i, t in raised.items())
                           + f"; the report ({out / 'report.md'}) says why on one line, the other entries finished")
    if failures:
        raise JointKLError(f"{len(failures)} training run(s) failed (named in {out / 'report.md'}); run the same "
                           "command again to train them (the finished runs are cached)")
    return results
