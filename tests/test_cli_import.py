"""`jointkl ... --import MODULE`: a user's model trained, listed, sampled, evaluated and resumed from the
command line; the run's config.yaml records its module, so sample/eval/resume import it again without the
flag; installed packages' models (entry points) need no flag; failures are one line."""
from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import jointkl as jk
from jointkl.objectives import registry
from jointkl.objectives.registry import MODELS
from tests.helpers import registry_kept

USER_MODEL = '''
from jointkl.objectives import register
from jointkl.objectives.vae import VAE


@register
class MyVAE(VAE):
    """A VAE under another name: a user's model."""
    name = "{name}"
'''
DATA = ["--data", "binary2x2"]


@pytest.fixture(autouse=True)
def clean_registry(tmp_path):
    """Every test leaves the model registry, and the modules it imported from tmp_path, as it found them."""
    yield from registry_kept(tmp_path)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """The user's folder, holding cli_models.py (model `cli_vae`), as the current directory."""
    (tmp_path / "cli_models.py").write_text(USER_MODEL.format(name="cli_vae"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def test_train_records_the_module_and_sample_eval_resume_import_it_again(cli, home, tiny_argv):
    run = home / "run"
    code, out, err = cli("train", "cli_vae", "--import", "cli_models", *DATA, "--steps", "10", "--out", run,
                         *tiny_argv)
    assert code == 0, err
    assert "trained cli_vae" in out
    assert config(run)["module"] == "cli_models"
    assert list(config(run))[:3] == ["jointkl_run", "model", "module"]
    registry.unregister("cli_vae")                                # a new process: nothing registered
    code, out, err = cli("sample", run, "--n", "5", "--out", home / "s.npy")
    assert code == 0, err
    assert np.load(home / "s.npy").shape == (5, 1, 2, 2)
    assert MODELS["cli_vae"].__module__ == "cli_models"           # imported again from config.yaml's module
    registry.unregister("cli_vae")
    code, out, err = cli("eval", run, "--metrics", "elbo")
    assert code == 0, err
    assert "elbo" in out
    registry.unregister("cli_vae")
    code, out, err = cli("train", "cli_vae", "--out", run, "--resume", "--steps", "20")   # no --import
    assert code == 0, err
    assert config(run)["module"] == "cli_models" and config(run)["train"]["steps"] == 20
    registry.unregister("cli_vae")
    model = jk.load(run, device="cpu")                            # and from Python
    assert model.name == "cli_vae" and model.sample(3).shape == (3, 1, 2, 2)


def test_a_run_opened_from_another_folder_imports_the_recorded_file(cli, home, tmp_path, monkeypatch, tiny_argv):
    run = home / "run"
    code, _, err = cli("train", "cli_vae", "--import", "cli_models", *DATA, "--steps", "2", "--out", run, *tiny_argv)
    assert code == 0, err
    assert config(run)["module_file"] == str((home / "cli_models.py").resolve())
    registry.unregister("cli_vae")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)                                  # cli_models is not importable by name here
    code, _, err = cli("sample", run, "--n", "2", "--out", "s.npy")
    assert code == 0, err
    assert MODELS["cli_vae"].__module__ == "cli_models"


def test_import_a_file_by_path_from_another_folder(cli, tmp_path, monkeypatch, tiny_argv):
    models = tmp_path / "lib" / "by_path_models.py"
    models.parent.mkdir()
    models.write_text(USER_MODEL.format(name="path_vae"))
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, _, err = cli("train", "path_vae", "--import", "../lib/by_path_models.py", *DATA, "--steps", "4",
                       "--out", "run", *tiny_argv)
    assert code == 0, err
    assert config(elsewhere / "run")["module"] == str(models.resolve())
    assert "module_file" not in config(elsewhere / "run")        # the module is the file already
    registry.unregister("path_vae")
    monkeypatch.chdir(tmp_path)                                   # the absolute path is found from anywhere
    code, _, err = cli("sample", "work/run", "--n", "2", "--out", "s.npy")
    assert code == 0, err


def test_list_models_shows_the_imported_model(cli, home):
    code, out, err = cli("list", "models", "--import", "cli_models")
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if ln.startswith("cli_vae "))
    assert "A VAE under another name" in line and "[from cli_models]" in line
    assert not any(ln.startswith("vae ") and "[from" in ln for ln in out.splitlines())
    code, out, err = cli("list", "models", "cli_vae", "--import", "cli_models")
    assert code == 0, err
    assert out.startswith("cli_vae: A VAE under another name") and "latent_dim=" in out


def test_print_config_with_import(cli, home):
    code, out, err = cli("train", "cli_vae", "--import", "cli_models", *DATA, "--print-config")
    assert code == 0, err
    assert yaml.safe_load(out)["model"] == "cli_vae"


def test_two_imports(cli, home):
    (home / "cli_more.py").write_text(USER_MODEL.format(name="cli_vae2").replace("MyVAE", "Other"))
    code, out, err = cli("list", "models", "--import", "cli_models", "--import", "cli_more")
    assert code == 0, err
    assert "\ncli_vae " in out and "\ncli_vae2 " in out


@pytest.mark.parametrize("argv, expect", [
    (["train", "cli_vae", *DATA], ["unknown model 'cli_vae'", "--import MODULE"]),
    (["train", "cli_vae", "--import", "cli_nosuch", *DATA], ["cannot import models from cli_nosuch",
                                                             "no module named cli_nosuch"]),
    (["train", "cli_vae", "--import", "nosuch/cli_models.py", *DATA], ["no file nosuch/cli_models.py"]),
    (["train", "cli_vae", "--import", "cli_empty", *DATA], ["module cli_empty registers no model"]),
    (["train", "vae", "--import", "cli_clash", *DATA], ["model name 'vae' of cli_clash.MyVAE clashes with the "
                                                        "built-in model 'vae' (jointkl.objectives.vae.VAE)"]),
    (["list", "models", "--import", "cli_broken"], ["importing models from cli_broken failed: ZeroDivisionError",
                                                    "cli_broken.py, line 1"]),
    (["sample", "run", "--n", "2", "--out", "s.npy", "--import", "cli_nosuch"], ["cli_nosuch"]),
])
def test_failures_are_one_line_and_write_nothing(cli, home, argv, expect):
    (home / "cli_empty.py").write_text("x = 1\n")
    (home / "cli_clash.py").write_text(USER_MODEL.format(name="vae"))
    (home / "cli_broken.py").write_text("1 / 0\n")
    before = sorted(p.name for p in home.iterdir())
    line = cli.error(*argv, "--out", home / "run") if argv[0] == "train" else cli.error(*argv)
    for part in expect:
        assert part in line, line
    assert sorted(p.name for p in home.iterdir() if p.name != "__pycache__") == \
        [n for n in before if n != "__pycache__"]
    assert MODELS["vae"].__module__ == "jointkl.objectives.vae"


def test_a_run_whose_module_is_gone(cli, home, tiny_argv):
    run = home / "run"
    code, _, err = cli("train", "cli_vae", "--import", "cli_models", *DATA, "--steps", "4", "--out", run, *tiny_argv)
    assert code == 0, err
    registry.unregister("cli_vae")
    (home / "cli_models.py").rename(home / "moved.py")
    line = cli.error("sample", run, "--n", "2", "--out", home / "s.npy")
    assert "model 'cli_vae' comes from module cli_models, which could not be imported again" in line
    assert "pass --import MODULE" in line
    code, _, err = cli("sample", run, "--n", "2", "--out", home / "s.npy", "--import", "moved")   # the hint works
    assert code == 0, err


def test_a_corrupt_module_field_is_one_line(cli, home, tiny_argv):
    run = home / "run"
    code, _, err = cli("train", "cli_vae", "--import", "cli_models", *DATA, "--steps", "2", "--out", run, *tiny_argv)
    assert code == 0, err
    meta = config(run)
    meta["module"] = ["not", "a", "name"]
    (run / "config.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    assert "is corrupt" in cli.error("sample", run, "--n", "2", "--out", home / "s.npy")


def test_an_installed_packages_model_needs_no_flag(cli, tmp_path, monkeypatch, tiny_argv):
    (tmp_path / "cli_pkg.py").write_text(USER_MODEL.format(name="ep_vae"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    ep = importlib.metadata.EntryPoint(name="ep_vae", value="cli_pkg", group="jointkl.models")
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda **kw: [ep] if kw == {"group": "jointkl.models"} else [])
    code, out, err = cli("list", "models")
    assert code == 0, err
    assert "[from cli_pkg]" in next(ln for ln in out.splitlines() if ln.startswith("ep_vae "))
    registry.unregister("ep_vae")
    registry._LOADED_ENTRY_POINTS.clear()
    run = tmp_path / "run"
    code, _, err = cli("train", "ep_vae", *DATA, "--steps", "4", "--out", run, *tiny_argv)
    assert code == 0, err
    assert "module" not in config(run)                            # found by name again, through the entry point
    registry.unregister("ep_vae")
    registry._LOADED_ENTRY_POINTS.clear()
    code, _, err = cli("sample", run, "--n", "2", "--out", tmp_path / "s.npy")
    assert code == 0, err
