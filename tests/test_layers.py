"""The import contract of the package, read from the source (every `import`, at module level and inside functions):

    cli → reproduce, report → run, api → eval, bayes → objectives, declare → training → joints, divergences, nets,
    data, plots, provenance

Imports go only downward or sideways, the module graph has no cycle, and no module imports another's private
(underscore) names."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "jointkl"

LAYERS = [                                   # lowest first; a module may import its own layer or lower ones
    {"errors", "provenance", "joints", "divergences", "nets", "data", "plots", "presets"},
    {"training"},
    {"objectives", "declare"},
    {"eval", "bayes"},
    {"run", "api"},
    {"reproduce", "report"},
    {"cli", "__main__", ""},                 # "" is the package's own __init__
]


def modules() -> dict[str, Path]:
    out = {}
    for f in ROOT.rglob("*.py"):
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def imports(name: str, path: Path, known: dict) -> tuple[set[str], list[str]]:
    """The jointkl modules `name` imports, and the private names it takes from other modules."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found, private = set(), []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "jointkl"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            if base.split(".")[0] != "jointkl":
                continue
            for a in node.names:
                full = f"{base}.{a.name}"
                found.add(full if full in known else base)
                if a.name.startswith("_") and not a.name.endswith("__") and full not in known:   # __dunder__ is public
                    private.append(f"{name} imports {a.name} from {base}")
    return {m for m in found if m in known and m != name}, private


def layer(name: str) -> int:
    top = name.split(".")[1] if "." in name else ""
    return next(i for i, group in enumerate(LAYERS) if top in group)


GRAPH = {n: imports(n, p, modules()) for n, p in modules().items()}


def test_every_module_has_a_layer():
    for name in GRAPH:
        layer(name)                          # StopIteration names a module no layer holds


def test_imports_go_downward():
    up = [f"{n} ({LAYERS[layer(n)]}) imports {m} ({LAYERS[layer(m)]})"
          for n, (deps, _) in GRAPH.items() for m in deps if layer(m) > layer(n)]
    assert not up, "\n".join(up)


def test_no_private_names_across_modules():
    private = [p for _, names in GRAPH.values() for p in names]
    assert not private, "\n".join(private)


def test_no_cycles():
    state: dict[str, int] = {}               # 1: on the current path, 2: done

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for m in sorted(GRAPH[n][0]):
            if state.get(m) == 1:
                pytest.fail("import cycle: " + " → ".join(path[path.index(m):] + [n, m]) if m in path
                            else f"import cycle through {n} → {m}")
            if m not in state:
                visit(m, path + [n])
        state[n] = 2

    for n in sorted(GRAPH):
        if n not in state:
            visit(n, [])


def test_the_contract_can_fail(tmp_path):
    """The walker sees a function-level upward import, a private name and a relative import."""
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from jointkl.api import _x\n    from .. import errors\n")
    known = {"jointkl.api": None, "jointkl.training.m": None, "jointkl.training": None, "jointkl.errors": None}
    deps, private = imports("jointkl.training.m", f, known)
    assert deps == {"jointkl.api", "jointkl.errors"} and private == ["jointkl.training.m imports _x from jointkl.api"]
    assert layer("jointkl.api") > layer("jointkl.training.m")
