"""The registry: every table module registers its entries, the package fixes their order, and no table module
imports the package (only `jointkl.reproduce.base` and other modules below it)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import jointkl.reproduce
from jointkl.reproduce import ORDER, TABLES, Context

PACKAGE = Path(jointkl.reproduce.__file__).parent


def test_order_covers_every_registered_table_once():
    assert len(ORDER) == len(set(ORDER)) and set(ORDER) == set(TABLES)


def test_list_tables_follows_the_order(cli):
    code, out, _ = cli("list", "tables")
    assert code == 0 and [line.split()[0] for line in out.splitlines() if line.strip()] == list(ORDER)


@pytest.mark.parametrize("path", sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"))
def test_no_table_module_imports_the_package(path):
    tree = ast.parse((PACKAGE / path).read_text())
    bad = [n.lineno for n in ast.walk(tree)
           if isinstance(n, ast.ImportFrom) and n.module == "jointkl.reproduce"
           or isinstance(n, ast.ImportFrom) and n.level
           or isinstance(n, ast.Import) and any(a.name == "jointkl.reproduce" for a in n.names)]
    assert not bad, f"{path} imports jointkl.reproduce at line(s) {bad}"


@pytest.mark.parametrize("tid", ORDER)
@pytest.mark.parametrize("scale", ["quick", "default", "full"])
def test_jobs_are_declared_without_touching_the_disk(tmp_path, tid, scale):
    """`jobs` only lists runs (what an executor and `--estimate` read); an entry that trains outside them says
    so (`probed=False`) and declares none."""
    t = TABLES[tid]
    jobs = t.jobs(t.context(scale), tmp_path / tid)
    assert not any(tmp_path.iterdir())
    assert bool(jobs) == t.probed
    for model, dataset, out, opts in jobs:
        assert isinstance(model, str) and isinstance(dataset, str) and isinstance(opts, dict)
        assert Path(out).parent == tmp_path / tid
    assert len({str(j[2]) for j in jobs}) == len(jobs)                 # one folder per run


def test_a_context_per_table_takes_its_own_seeds_unless_given():
    t = TABLES["dali-table2"]
    assert t.context("default") == Context("default", 5) and t.context("quick") == Context("quick", 1)
    assert t.context("full", seeds=2, step_cap=3, estimate=True) == Context("full", 2, 3, True)
