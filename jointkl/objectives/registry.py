"""One registry of models: feeds `jointkl train`, `jointkl list models` and `jk.train`.

The built-in models register when `jointkl.objectives` is imported. A user's models join it three ways
(docs/write-your-own-model.md):

* `import_models(SPEC)` (the CLI's `--import SPEC`): imports a module by name (the current directory first,
  then sys.path) or a `.py` file by path; its `@register`-ed classes join the registry. The module must
  register at least one model.
* an installed package's entry points in the group `jointkl.models` (`name = "pkg.module"` or
  `"pkg.module:Class"`), loaded lazily the first time a model name is not found (and by `jointkl list models`).
* importing the module in Python (`import mymodels`) before `jointkl.train(...)`.

A run records where a user model came from (`provider`: config.yaml's `module:`), so `get(name, module)` can
import it again when the run is loaded. A name that clashes with a built-in model, or with another user model,
is refused naming both. Every failure is one `JointKLError` line.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import sysconfig
import traceback
from pathlib import Path

from jointkl.errors import JointKLError, one_line
from jointkl.objectives.base import Objective

MODELS: dict[str, type[Objective]] = {}
GROUP = "jointkl.models"               # the entry-point group of installed packages' models
GUIDE = "docs/write-your-own-model.md"

_PROVIDERS: dict[str, str] = {}        # model name -> the import spec that registered it (`import_models`)
_ENTRY_POINT_MODELS: set[str] = set()  # models registered from entry points (found again by name, lazily)
_LOADED_ENTRY_POINTS: set[tuple[str, str]] = set()   # (name, value) of entry points already loaded
_FILES: dict[str, object] = {}         # resolved .py path -> its module (a file is executed once)
_loading: list[str] = []               # the specs being imported now (innermost last)
_registered_now: list[str] = []        # names registered while a spec is being imported


def builtin(cls: type) -> bool:
    """A model that ships with jointkl."""
    return getattr(cls, "__module__", "").startswith("jointkl.")


def _where(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register(cls: type[Objective]) -> type[Objective]:
    """Class decorator: add a model (a class with a `name` and a `Config` dataclass) to the registry."""
    if not getattr(cls, "name", None) or not hasattr(cls, "Config"):
        if builtin(cls):
            raise TypeError(f"{cls.__name__} needs a `name` and a `Config` dataclass")
        raise JointKLError(f"model class {_where(cls)} needs a `name` (the model's name on the command line) and "
                           f"a `Config` dataclass of its options; see {GUIDE}")
    old = MODELS.get(cls.name)
    if old is not None and old is not cls:
        same = (old.__module__, old.__qualname__) == (cls.__module__, cls.__qualname__)
        if same and not builtin(cls):
            pass                           # the same module imported again (a file reloaded): the new class wins
        elif builtin(old) and builtin(cls):
            raise TypeError(f"model {cls.name!r} registered twice")
        elif builtin(old) or builtin(cls):
            mine, theirs = (cls, old) if builtin(old) else (old, cls)
            raise JointKLError(f"model name {cls.name!r} of {_where(mine)} clashes with the built-in model "
                               f"{cls.name!r} ({_where(theirs)}); give your model another name")
        else:
            raise JointKLError(f"model name {cls.name!r} is registered twice, by {_where(old)} and by "
                               f"{_where(cls)}; rename one of them")
    MODELS[cls.name] = cls
    if _loading and not builtin(cls):
        _PROVIDERS[cls.name] = _loading[0]
        _registered_now.append(cls.name)
    return cls


def get(name: str, module: str | None = None, module_file: str | None = None) -> type[Objective]:
    """The model class registered as `name`. Not registered: first `module` (a run's recorded provider) is
    imported (by name, and failing that from the file it was found in, `module_file`), then the installed
    packages' entry points are loaded; then it is one error naming the choices."""
    if name not in MODELS and module:
        try:
            import_models(module)
        except JointKLError as e:
            if not (module_file and Path(module_file).is_file() and _quietly(module_file)):
                raise JointKLError(f"model {name!r} comes from module {module}, which could not be imported again "
                                   f"({e}); run from the folder that holds it, or pass --import MODULE") from None
        if name not in MODELS:
            has = sorted(_of(module))
            raise JointKLError(f"model {name!r} was recorded as coming from module {module}, which no longer "
                               f"registers it" + (f" (it registers: {', '.join(has)})" if has else "") +
                               "; restore the model, or pass --import MODULE with a module that registers it")
    if name not in MODELS:
        load_entry_points(name)
    if name not in MODELS:
        raise JointKLError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))} (a model of your "
                           f"own: --import MODULE, see {GUIDE})")
    return MODELS[name]


def _quietly(spec: str) -> bool:
    """Import `spec`'s models; False instead of an error."""
    try:
        import_models(spec)
    except JointKLError:
        return False
    return True


def record(name: str) -> dict[str, str]:
    """What a run's config.yaml records to import model `name` again: `module` (`provider`) and, for a module
    imported by name, `module_file`, the file it came from (used when the name is not importable where the run
    is opened). Empty for built-in and entry-point models."""
    spec = provider(name)
    if spec is None:
        return {}
    found = getattr(sys.modules.get(MODELS[name].__module__), "__file__", None)
    return {"module": spec, **({"module_file": str(Path(found).resolve())} if found and not _is_path(spec) else {})}


def provider(name: str) -> str | None:
    """What a run of model `name` records to import it again (config.yaml's `module:`): the spec given to
    `import_models`, else the module of a class a user imported in Python; None for built-in models, entry-point
    models (found again by name) and classes defined in a script (`__main__`, which cannot be imported again)."""
    cls = MODELS[name]
    if builtin(cls) or name in _ENTRY_POINT_MODELS:
        return None
    if name in _PROVIDERS:
        return _PROVIDERS[name]
    return None if cls.__module__ == "__main__" else cls.__module__


def unregister(name: str) -> None:
    """Remove a user's model and forget its module, so that importing it again runs it again (a notebook that
    edits its model file; tests). Built-in models stay."""
    cls = MODELS.get(name)
    if cls is None or builtin(cls):
        return
    del MODELS[name]
    _PROVIDERS.pop(name, None)
    _ENTRY_POINT_MODELS.discard(name)
    module = sys.modules.pop(cls.__module__, None)
    for key in [k for k, m in _FILES.items() if m is module]:
        del _FILES[key]


def summary(cls: type[Objective]) -> str:
    lines = (cls.__doc__ or "").strip().splitlines()
    return lines[0] if lines else ""


# ---- user modules -----------------------------------------------------------------------------------------

def _is_path(spec: str) -> bool:
    return spec.endswith(".py") or "/" in spec or os.sep in spec


def _of(spec: str) -> list[str]:
    """The registered models that `spec` provided."""
    return [n for n, s in _PROVIDERS.items() if s == spec and n in MODELS]


def _failure(spec: str, e: BaseException) -> JointKLError:
    """An error raised by a user's module while it was imported, as one line with where it happened."""
    paths = sysconfig.get_paths()
    library = (str(Path(__file__).resolve().parents[1]), paths["stdlib"], paths["purelib"], "<frozen")
    frames = traceback.extract_tb(e.__traceback__)
    frames = [f for f in frames if not f.filename.startswith(library)] or frames[-1:]
    at = f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})" if frames else ""   # the user's line
    return JointKLError(f"importing models from {spec} failed: {one_line(e)}{at}")


def _import_file(spec: str, given: str):
    path = Path(spec)
    if not path.is_file():
        where = given if given == spec else f"{given} ({spec})"
        raise JointKLError(f"no file {where} to import models from; pass a .py file or an importable module name")
    key = str(path)
    if key in _FILES:
        return _FILES[key]
    name = path.stem if path.stem.isidentifier() else "module"
    held = sys.modules.get(name)
    if held is not None and getattr(held, "__file__", None) != key:       # another module has the name
        name = f"jointkl_user_{name}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise JointKLError(f"{spec} cannot be imported as a Python module; pass a .py file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))          # so the file may import its neighbours
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        sys.path.remove(str(path.parent))
    _FILES[key] = module
    return module


def _import_name(spec: str):
    cwd = os.getcwd()
    sys.path.insert(0, cwd)                       # the current directory first, as `python -c "import m"` does
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as e:
        if e.name and (spec == e.name or spec.startswith(e.name + ".")):
            raise JointKLError(f"cannot import models from {spec}: no module named {e.name} in the current "
                               f"directory ({cwd}) or on sys.path; pass an importable module name or a .py "
                               "file path") from None
        raise
    finally:
        sys.path.remove(cwd)


def import_models(spec: str) -> list[str]:
    """Import the models of a user's module: `spec` is a module name (looked up in the current directory, then
    sys.path) or a path to a .py file. Returns the names of the models it registers (at least one, or it is an
    error). Importing it again is harmless: its models are already registered."""
    spec = given = str(spec).strip()
    if not spec:
        raise JointKLError("--import needs a module name or a .py file path")
    if _is_path(spec):
        spec = str(Path(spec).expanduser().resolve())
    start = len(_registered_now)
    _loading.append(spec)
    try:
        module = _import_file(spec, given) if _is_path(spec) else _import_name(spec)
    except (Exception, SystemExit) as e:
        for n in _registered_now[start:]:          # a module that failed half way registers nothing
            MODELS.pop(n, None)
            _PROVIDERS.pop(n, None)
        raise e if isinstance(e, JointKLError) else _failure(spec, e) from None
    finally:
        _loading.pop()
        new = _registered_now[start:]
        del _registered_now[start:]
    names = set(new) | set(_of(spec)) | {n for n, cls in MODELS.items()
                                         if not builtin(cls) and sys.modules.get(cls.__module__) is module}
    for n in names:
        _PROVIDERS.setdefault(n, spec)
    if not names:
        raise JointKLError(f"module {spec} registers no model; decorate your model class with @register "
                           f"(from jointkl.objectives import register), see {GUIDE}")
    return sorted(names)


# ---- installed packages: entry points ---------------------------------------------------------------------

def _entry_points() -> list:
    try:
        return list(importlib.metadata.entry_points(group=GROUP))
    except Exception as e:  # a broken installed distribution's metadata
        raise JointKLError(f"cannot read the installed packages' {GROUP} entry points: {one_line(e)}") from None


def load_entry_points(name: str | None = None) -> list[str]:
    """Load the `jointkl.models` entry points of installed packages: the one named `name` first, and the others
    only if that did not register `name` (all of them when `name` is None). An entry point's object is a module
    whose classes `@register` themselves, or a model class (registered here). Returns the models registered.
    A failure is one error; while looking for `name`, one of an entry point of another name is skipped (left
    for `jointkl list models` to report), so a broken package cannot hide the real answer."""
    eps = [ep for ep in _entry_points() if (ep.name, ep.value) not in _LOADED_ENTRY_POINTS]
    eps.sort(key=lambda ep: ep.name != name)      # the entry point named like the model first
    found: list[str] = []
    for ep in eps:
        if name is not None and name in MODELS:
            break
        before = set(MODELS)
        where = f"entry point {ep.name} = {ep.value} (group {GROUP})"
        try:
            obj = ep.load()
            if isinstance(obj, type) and obj not in MODELS.values():
                register(obj)
            if not (set(MODELS) - before) and not (isinstance(obj, type) and obj in MODELS.values()):
                raise JointKLError(f"{where} registers no model; point it at a module whose classes use "
                                   "@register, or at a model class")
        except (Exception, SystemExit) as e:
            for n in set(MODELS) - before:
                del MODELS[n]
            if name is not None and ep.name != name:
                continue                           # not the one asked for: `jointkl list models` reports it
            if isinstance(e, JointKLError):
                raise JointKLError(e if str(e).startswith(where) else f"{where}: {e}") from None
            raise JointKLError(f"{where} failed to load: {one_line(e)}; fix or uninstall the package that "
                               "declares it") from None
        _LOADED_ENTRY_POINTS.add((ep.name, ep.value))
        new = [n for n in MODELS if n not in before]
        _ENTRY_POINT_MODELS.update(new)
        found += new
    return found
