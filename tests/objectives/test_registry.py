"""The registry of models: a user's module (`import_models`, the CLI's --import), installed packages' entry
points (group `jointkl.models`, loaded lazily), what a run records to import a user model again, and the
one-line refusals."""
from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import pytest

from jointkl.errors import JointKLError
from jointkl.objectives import registry
from jointkl.objectives.registry import MODELS, get, import_models, load_entry_points, provider, register
from tests.helpers import registry_kept

USER_MODEL = '''
from jointkl.objectives import register
from jointkl.objectives.vae import VAE


@register
class {cls}(VAE):
    """A VAE under another name: a user's model."""
    name = "{name}"
'''


@pytest.fixture(autouse=True)
def clean_registry(tmp_path):
    """Every test leaves the model registry, and the modules it imported from tmp_path, as it found them."""
    yield from registry_kept(tmp_path)


def write(folder: Path, module: str, name: str, cls: str = "Mine", extra: str = "") -> Path:
    path = folder / f"{module}.py"
    path.write_text(USER_MODEL.format(cls=cls, name=name) + extra)
    return path


# --- user modules ------------------------------------------------------------------------------------

def test_import_by_name_from_the_current_directory(tmp_path, monkeypatch):
    write(tmp_path, "reg_mymodels", "reg_mine")
    monkeypatch.chdir(tmp_path)
    assert "reg_mine" not in MODELS
    assert import_models("reg_mymodels") == ["reg_mine"]
    assert get("reg_mine").__module__ == "reg_mymodels"
    assert provider("reg_mine") == "reg_mymodels"                 # what a run records as `module:`
    assert str(tmp_path) not in sys.path                          # the folder was on the path for the import only
    assert import_models("reg_mymodels") == ["reg_mine"]          # again: harmless, same answer
    assert provider("vae") is None                                # built-in models record nothing
    assert registry.record("reg_mine") == {"module": "reg_mymodels",
                                           "module_file": str((tmp_path / "reg_mymodels.py").resolve())}
    assert registry.record("vae") == {}


def test_import_a_py_file_by_path_once(tmp_path, monkeypatch):
    count = tmp_path / "count"
    (tmp_path / "sub").mkdir()
    path = write(tmp_path / "sub", "reg_file", "reg_from_file",
                 extra=f"\nwith open({str(count)!r}, 'a') as f:\n    f.write('x')\n")
    monkeypatch.chdir(tmp_path)
    assert import_models("sub/reg_file.py") == ["reg_from_file"]
    assert provider("reg_from_file") == str(path.resolve())       # recorded absolute: found from anywhere
    assert registry.record("reg_from_file") == {"module": str(path.resolve())}
    assert import_models(str(path)) == ["reg_from_file"]
    assert count.read_text() == "x"                               # the file ran once


def test_a_model_imported_in_python_records_its_module(tmp_path, monkeypatch):
    write(tmp_path, "reg_plain", "reg_plain_model")
    monkeypatch.syspath_prepend(str(tmp_path))
    import reg_plain  # noqa: F401
    assert provider("reg_plain_model") == "reg_plain"


def test_unregister_forgets_the_module_so_it_is_imported_again(tmp_path, monkeypatch):
    write(tmp_path, "reg_again", "reg_again_model")
    monkeypatch.chdir(tmp_path)
    import_models("reg_again")
    first = MODELS["reg_again_model"]
    registry.unregister("reg_again_model")
    assert "reg_again_model" not in MODELS and "reg_again" not in sys.modules
    registry.unregister("vae")                                    # built-in models stay
    assert "vae" in MODELS
    assert get("reg_again_model", module="reg_again") is not first   # a run's recorded module, imported again


@pytest.mark.parametrize("case, expect", [
    ("missing_module", ["cannot import models from reg_nosuch", "no module named reg_nosuch", "current directory"]),
    ("missing_file", ["no file", "reg_nosuch.py"]),
    ("registers_nothing", ["module reg_empty registers no model", "@register"]),
    ("raises", ["importing models from reg_raises failed", "NameError", "reg_raises.py, line 3"]),
    ("clash", ["'ali'", "reg_clash.MyALI", "clashes with the built-in model", "jointkl.objectives.ali.ALI"]),
    ("twice", ["'reg_dup'", "registered twice", "reg_dup_a.Mine", "reg_dup_b.Mine"]),
    ("no_config", ["reg_noconfig.Bare", "needs a `name`", "`Config`"]),
])
def test_import_failures_are_one_line(tmp_path, monkeypatch, case, expect):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reg_empty.py").write_text("x = 1\n")
    (tmp_path / "reg_raises.py").write_text("import jointkl\n\nundefined_name\n")
    (tmp_path / "reg_clash.py").write_text(USER_MODEL.format(cls="MyALI", name="ali"))
    write(tmp_path, "reg_dup_a", "reg_dup")
    write(tmp_path, "reg_dup_b", "reg_dup")
    (tmp_path / "reg_noconfig.py").write_text("from jointkl.objectives import register\n\n\n@register\n"
                                              "class Bare:\n    pass\n")
    before = dict(MODELS)
    spec = {"missing_module": "reg_nosuch", "missing_file": "models/reg_nosuch.py", "registers_nothing": "reg_empty",
            "raises": "reg_raises", "clash": "reg_clash", "twice": "reg_dup_b", "no_config": "reg_noconfig"}[case]
    if case == "twice":
        import_models("reg_dup_a")
        before = dict(MODELS)
    with pytest.raises(JointKLError) as e:
        import_models(spec)
    msg = str(e.value)
    assert "\n" not in msg
    for part in expect:
        assert part in msg, msg
    assert MODELS == before                                       # nothing half registered
    assert MODELS["ali"].__module__ == "jointkl.objectives.ali"


def test_a_clash_with_a_builtin_is_refused_however_the_module_is_imported(tmp_path, monkeypatch):
    (tmp_path / "reg_clash2.py").write_text(USER_MODEL.format(cls="MyVAE", name="vae"))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(JointKLError, match="clashes with the built-in model 'vae'"):
        import reg_clash2  # noqa: F401
    assert MODELS["vae"].__module__ == "jointkl.objectives.vae"


def test_unknown_model_names_the_choices_and_the_way_to_add_one(monkeypatch):
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [])
    with pytest.raises(JointKLError, match=r"unknown model 'nosuch'.*vae.*--import MODULE"):
        get("nosuch")


def test_a_recorded_module_that_is_gone_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(JointKLError, match=r"model 'gone' comes from module reg_gone, which could not be imported "
                       r"again \(cannot import .*\); run from the folder that holds it, or pass --import"):
        get("gone", module="reg_gone")
    write(tmp_path, "reg_other", "reg_other_model")
    with pytest.raises(JointKLError, match="no longer registers it .*reg_other_model"):
        get("gone", module="reg_other")


def test_a_recorded_module_not_importable_by_name_is_imported_from_its_file(tmp_path, monkeypatch):
    path = write(tmp_path, "reg_moved", "reg_moved_model")
    monkeypatch.chdir(tmp_path.parent)                            # not importable by name from here
    assert get("reg_moved_model", "reg_moved", str(path)).__module__ == "reg_moved"
    with pytest.raises(JointKLError, match="could not be imported again"):
        get("reg_gone_model", "reg_gone", str(tmp_path / "reg_gone.py"))


def test_summary_of_a_class_without_a_docstring():
    class NoDoc:
        __doc__ = None
    assert registry.summary(NoDoc) == ""


# --- entry points ------------------------------------------------------------------------------------

def entry_points(monkeypatch, *eps: tuple[str, str]) -> list:
    """Installed packages' entry points, as importlib.metadata would list them; returns the call log."""
    calls = []

    def fake(**kw):
        calls.append(kw)
        assert kw == {"group": "jointkl.models"}
        return [importlib.metadata.EntryPoint(name=n, value=v, group="jointkl.models") for n, v in eps]
    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    return calls


def test_an_entry_point_class_is_registered_lazily(tmp_path, monkeypatch):
    (tmp_path / "reg_pkg.py").write_text("from jointkl.objectives.vae import VAE\n\n\n"
                                         "class Plain(VAE):\n    '''Not decorated.'''\n    name = 'ep_plain'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    calls = entry_points(monkeypatch, ("ep_plain", "reg_pkg:Plain"))
    assert get("vae") is MODELS["vae"] and calls == []            # a known name never looks at entry points
    assert "reg_pkg" not in sys.modules
    cls = get("ep_plain")
    assert cls.__name__ == "Plain" and MODELS["ep_plain"] is cls and len(calls) == 1
    assert provider("ep_plain") is None                           # found again by name: nothing to record
    get("ep_plain")
    with pytest.raises(JointKLError, match="unknown model 'ep_nosuch'"):
        get("ep_nosuch")                                          # the loaded entry point is not loaded again
    assert MODELS["ep_plain"] is cls


def test_an_entry_point_module_registers_its_models_and_only_the_named_one_loads_first(tmp_path, monkeypatch):
    write(tmp_path, "reg_ep_a", "ep_a")
    write(tmp_path, "reg_ep_b", "ep_b")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry_points(monkeypatch, ("ep_a", "reg_ep_a"), ("ep_b", "reg_ep_b"))
    assert get("ep_b").__module__ == "reg_ep_b"
    assert "ep_a" not in MODELS and "reg_ep_a" not in sys.modules  # lazily: only what was asked for
    assert load_entry_points() == ["ep_a"]                        # `jointkl list models` loads the rest
    assert provider("ep_a") is None


@pytest.mark.parametrize("value, expect", [
    ("reg_nosuch_pkg:Model", ["entry point ep_bad = reg_nosuch_pkg:Model (group jointkl.models) failed to load",
                              "ModuleNotFoundError"]),
    ("reg_ep_empty", ["entry point ep_bad = reg_ep_empty", "registers no model"]),
    ("reg_ep_clash", ["entry point ep_bad = reg_ep_clash", "clashes with the built-in model 'gan'"]),
])
def test_entry_point_failures_are_one_line(tmp_path, monkeypatch, value, expect):
    (tmp_path / "reg_ep_empty.py").write_text("x = 1\n")
    (tmp_path / "reg_ep_clash.py").write_text(USER_MODEL.format(cls="MyGAN", name="gan"))
    monkeypatch.syspath_prepend(str(tmp_path))
    entry_points(monkeypatch, ("ep_bad", value))
    with pytest.raises(JointKLError) as e:
        get("ep_bad")
    assert "\n" not in str(e.value)
    for part in expect:
        assert part in str(e.value), str(e.value)
    assert MODELS["gan"].__module__ == "jointkl.objectives.gan"


def test_builtin_models_still_refuse_a_second_registration():
    with pytest.raises(TypeError, match="registered twice"):
        register(type("Again", (MODELS["vae"],), {"__module__": "jointkl.objectives.again", "name": "vae"}))


def test_a_broken_entry_point_of_another_name_does_not_hide_the_answer(tmp_path, monkeypatch):
    write(tmp_path, "reg_ep_good", "ep_good")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry_points(monkeypatch, ("ep_broken", "reg_nosuch_pkg"), ("ep_good", "reg_ep_good"))
    assert get("ep_good").__module__ == "reg_ep_good"
    with pytest.raises(JointKLError, match="unknown model 'ep_typo'"):
        get("ep_typo")                                            # the broken one is skipped while looking
    with pytest.raises(JointKLError, match="entry point ep_broken = reg_nosuch_pkg .* failed to load"):
        load_entry_points()                                       # `jointkl list models` reports it


def test_an_error_in_a_users_module_points_at_the_users_line(tmp_path, monkeypatch):
    (tmp_path / "reg_badcfg.py").write_text("from dataclasses import dataclass\n\n\n@dataclass\nclass C:\n"
                                            "    a: int = 1\n    b: int\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(JointKLError, match=r"failed: TypeError: non-default argument 'b'.*\(reg_badcfg.py, line 4\)"):
        import_models("reg_badcfg")
