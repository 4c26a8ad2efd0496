"""Reproductions: one entry per paper table or figure, each holding its protocol, the paper's numbers, the
training runs it needs (cached by config) and a scoring that returns our numbers beside the paper's.

The shared pieces are in `jointkl.reproduce.base`; each table module registers its entries there. This package
imports the table modules and fixes their order (`ORDER`), which `jointkl list tables`, `run_tables` and the
report follow. `run_tables` runs entries, prints each table, and writes report.md / report.html into the output
folder.
"""
from __future__ import annotations

import sys
from pathlib import Path

from jointkl.errors import JointKLError
from jointkl.reproduce import avb, avb_table2, dali, eight_schools, hu, hu_models, su_ali, su_fig1  # noqa: F401
from jointkl.reproduce.base import (SCALES, TABLES, Context, Job, Result, Row, Table, diverged, estimate_table, hours,
                                    run_table, seconds_per_step, train_many)

ORDER = ("avb-table2", "avb-fig3", "hu-table2", "hu-table3", "hu-table4", "hu-ada", "su-fig1", "avb-table1",
         "su-ali", "dali-table2", "dali-table1")

__all__ = ["ORDER", "SCALES", "TABLES", "Context", "Job", "Result", "Row", "Table", "diverged", "run_tables",
           "seconds_per_step", "train_many"]


def run_tables(ids: list[str], out: Path, seeds: int | None = None, scale: str = "default",
               estimate_only: bool = False, step_cap: int | None = None) -> dict[str, Result]:
    """Run the entries `ids` (all, in `ORDER`, if empty) at `scale`; training runs go to out/SCALE/ID/ (cached
    there), the report to out/report.md and out/report.html. Above the quick scale each entry first prints its
    expected training time. `estimate_only`: print each entry's expected training time and return {} without
    training or writing a report. `step_cap`: every training run stops after that many steps (smoke runs)."""
    from jointkl.report import print_table, write_report
    if scale not in SCALES:
        raise JointKLError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    ids = list(ids) or list(ORDER)
    unknown = [i for i in ids if i not in TABLES]
    if unknown:
        raise JointKLError(f"unknown table {unknown[0]!r}; choose from: {', '.join(ORDER)}")
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Result] = {}
    total = 0.0
    for i in ids:
        t = TABLES[i]
        ctx = t.context(scale, seeds, step_cap, estimate=scale != "quick")
        print(f"== {t.id}: {t.title}", flush=True)
        if estimate_only:
            total += estimate_table(t, ctx, out / scale / t.id)
            continue
        results[i] = run_table(t, ctx, out / scale / t.id)
        print_table(t, results[i], sys.stdout)
    if estimate_only:
        print(f"expected training time in all: about {hours(total)}")
        return {}
    write_report({i: TABLES[i] for i in ids}, results, out, scale)
    print(f"report: {out / 'report.md'} and {out / 'report.html'}")
    return results
