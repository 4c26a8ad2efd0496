"""docs/write-your-own-model.md runs as written: its model module (the first python block), its Python session
(the second), its shell commands (through the CLI in-process) and its entry-point snippet, with tiny networks
and a few steps in place of the page's."""
from __future__ import annotations

import importlib.metadata
import re
import shlex
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

import jointkl
from jointkl.objectives import registry
from jointkl.objectives.registry import MODELS
from tests.helpers import registry_kept

PAGE = Path(__file__).resolve().parents[2] / "docs" / "write-your-own-model.md"
TINY = dict(hidden=8, layers=1, batch_size=32, log_every=2, ckpt_every=2, device="cpu")
STEPS = 4


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", PAGE.read_text(), flags=re.S | re.M)


@pytest.fixture(autouse=True)
def clean_registry(tmp_path):
    """Every test leaves the model registry, and the modules it imported from tmp_path, as it found them."""
    yield from registry_kept(tmp_path)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """The user's folder: the page's mymodel.py in it, and it the current directory."""
    module, _ = blocks("python")
    (tmp_path / "mymodel.py").write_text(module)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_page_has_its_parts_and_the_model_is_under_30_lines():
    python, shell = blocks("python"), blocks("bash")
    assert len(python) == 2 and len(shell) == 1 and len(blocks("toml")) == 1
    assert python[0].startswith("# mymodel.py\n")
    code = [ln for ln in python[0].splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert len(code) < 30
    assert f"in {len(code)} lines of code" in " ".join(PAGE.read_text().split())
    assert "--import mymodel" in shell[0]


def test_the_python_session_trains_records_the_module_and_loads_back(home, monkeypatch):
    real = jointkl.train

    def small(*args, **kw):                          # the page's call, with tiny nets and a few steps
        return real(*args, **{**kw, "steps": STEPS, "progress": False, **TINY})
    monkeypatch.setattr(jointkl, "train", small)
    monkeypatch.syspath_prepend(str(home))           # `import mymodel` from the user's folder, as python does
    session = {}
    exec(compile(blocks("python")[1], str(PAGE), "exec"), session)
    assert session["x"].shape == (1000, 2) and session["z"].shape == (1000, 2)
    run = home / "runs" / "ali_fkl"
    meta = yaml.safe_load((run / "config.yaml").read_text())
    assert meta["model"] == "ali_fkl" and meta["module"] == "mymodel" and meta["train"]["steps"] == STEPS
    assert meta["module_file"] == str((home / "mymodel.py").resolve())
    assert (run / "checkpoints" / f"step-{STEPS:08d}").is_dir()
    assert {"disc/kl_value", "gen/adv", "gen/nll"} <= set((run / "metrics.csv").read_text().splitlines()[0].split(","))
    assert session["again"].sample(4).shape == (4, 2)
    registry.unregister("ali_fkl")                   # a new session: load imports mymodel from config.yaml
    model = jointkl.load(run, device="cpu")
    assert type(model).__module__ == "mymodel" and "ali_fkl" in MODELS
    assert model.sample(3).shape == (3, 2)


def test_the_shell_commands_train_list_sample_and_eval(cli, home):
    commands = [shlex.split(ln) for ln in blocks("bash")[0].splitlines() if ln.startswith("jointkl ")]
    assert [c[1] for c in commands] == ["train", "list", "sample", "eval"]
    for argv in commands:
        argv = argv[1:]
        if argv[0] == "train":                       # tiny nets and a few steps
            argv[argv.index("--steps") + 1] = str(STEPS)
            argv += [f"{k}={v}" for k, v in TINY.items()]
            run = home / argv[argv.index("--out") + 1]
        if argv[0] == "sample":                      # a new process: nothing registered, no --import
            registry.unregister("ali_fkl")
        code, out, err = cli(*argv)
        assert code == 0, (argv, err)
        if argv[0] == "train":
            assert yaml.safe_load((run / "config.yaml").read_text())["module"] == "mymodel"
        if argv[0] == "list":
            assert "[from mymodel]" in next(ln for ln in out.splitlines() if ln.startswith("ali_fkl "))
        if argv[0] == "sample":
            assert "ali_fkl" in MODELS and (home / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if argv[0] == "eval":
            assert re.search(r"^\s+modes\s+\d+$", out, flags=re.M), out


def test_the_entry_point_snippet_finds_the_model(home, monkeypatch):
    table = tomllib.loads(blocks("toml")[0])["project"]["entry-points"]["jointkl.models"]
    eps = [importlib.metadata.EntryPoint(name=n, value=v, group="jointkl.models") for n, v in table.items()]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: eps)
    monkeypatch.syspath_prepend(str(home))           # the installed package
    assert "ali_fkl" not in MODELS
    cls = registry.get("ali_fkl")
    assert cls.__name__ == "ALIf" and registry.provider("ali_fkl") is None
