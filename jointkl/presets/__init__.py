"""Named settings: what makes a model work on a data set, as YAML files shipped in this folder.

A preset file `MODEL/DATA.yaml` (its name is the path without `.yaml`, e.g. `dali/grid25`) holds

    about:   one line: what the setting is and where it comes from
    model:   the registered model
    data:    the data set it is tuned for
    base:    another preset file whose options this one starts from (optional; e.g. `common/grid25`)
    options: key: value pairs of the model's and the trainer's options (`jointkl list models MODEL`)
    scales:  optional overrides per reproduction scale (quick / default / full) used by `jointkl reproduce`;
             a scale may name its own `data` too (the full scale's MNIST for a setting tuned on mnist5k)

`jointkl train MODEL --data DATA` with nothing else trains the preset `MODEL/DATA` where it exists; any
option given on the command line beats the preset's. Files under `common/` are bases only (no model). A user's
`--config FILE` has the same format (a run's own config.yaml is read too, see `jointkl.run`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from jointkl.errors import JointKLError

ROOT = Path(__file__).resolve().parent
SCALES = ("quick", "default", "full")


@dataclass(frozen=True)
class Preset:
    name: str                      # e.g. "dali/grid25"; for a user's file, its path
    model: str | None
    data: str | None
    options: dict
    about: str = ""
    scales: dict = field(default_factory=dict)

    def at(self, scale: str | None = None) -> dict:
        """The options at a reproduction scale (None: the preset's own, what `jointkl train` uses)."""
        if scale is not None and scale not in SCALES:
            raise JointKLError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
        return {**self.options, **{k: v for k, v in (self.scales.get(scale) or {}).items() if k != "data"}}

    def data_at(self, scale: str | None = None) -> str | None:
        """The data set at a reproduction scale: the scale's own `data` if it names one, else the preset's."""
        self.at(scale)                                           # checks the scale
        return (self.scales.get(scale) or {}).get("data", self.data)

    def describe(self, scale: str | None = None) -> str:
        """The options at `scale` as one line of text (`key value, ...`), for reports and listings."""
        return describe_options(self.at(scale))


def describe_options(options: dict) -> str:
    """Options as one line of text (`key value, ...`; log_every left out), for reports and listings."""
    def show(v):
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float):
            return f"{v:g}"
        return ", ".join(map(show, v)).join("()") if isinstance(v, (list, tuple)) else str(v)
    return ", ".join(f"{k} {show(v)}" for k, v in options.items() if k not in ("log_every",))


def _read(path: Path, name: str) -> dict:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as e:
        raise JointKLError(f"cannot read {path} ({e.strerror or e}); check the path") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        raise JointKLError(f"{path} is not valid YAML{at}; fix the file") from None
    if not isinstance(raw, dict):
        raise JointKLError(f"{path} must be a mapping with model, data and options; see `jointkl list presets`")
    unknown = set(raw) - {"about", "model", "data", "base", "options", "scales"}
    if unknown:
        raise JointKLError(f"{path}: unknown key {sorted(unknown)[0]!r}; a settings file has about, model, data, "
                           "base, options and scales")
    for key, kind in (("options", dict), ("scales", dict), ("model", str), ("data", str), ("base", str)):
        if raw.get(key) is not None and not isinstance(raw[key], kind):
            raise JointKLError(f"{path}: {key} must be a {kind.__name__}; got {type(raw[key]).__name__}")
    bad = [s for s in raw.get("scales") or {} if s not in SCALES or not isinstance(raw["scales"][s], dict)]
    if bad:
        raise JointKLError(f"{path}: scales must map quick/default/full to options; got {bad[0]!r}")
    bad = [s for s, o in (raw.get("scales") or {}).items() if "data" in o and not isinstance(o["data"], str)]
    if bad:
        got = raw["scales"][bad[0]]["data"]
        raise JointKLError(f"{path}: the data of scale {bad[0]} must be a data set's name; got {got!r}")
    return raw


def load_file(path: str | Path, name: str | None = None, _seen: tuple = ()) -> Preset:
    """A settings file (a preset's or a user's), its `base` chain merged in (the file's own options win)."""
    path = Path(path)
    name = name or str(path)
    if name in _seen:
        raise JointKLError(f"preset {name} is its own base (through {' -> '.join(_seen)}); fix its base")
    raw = _read(path, name)
    options, scales = dict(raw.get("options") or {}), dict(raw.get("scales") or {})
    if raw.get("base"):
        base = get(raw["base"], _seen=(*_seen, name))
        options = {**base.options, **options}
        scales = {s: {**base.scales.get(s, {}), **scales.get(s, {})} for s in {*base.scales, *scales}}
    return Preset(name, raw.get("model"), raw.get("data"), options, raw.get("about", ""), scales)


def names(runnable: bool = True) -> list[str]:
    """Every shipped preset's name (runnable: those naming a model, not the `common/` bases)."""
    out = sorted(str(p.relative_to(ROOT).with_suffix("")) for p in ROOT.rglob("*.yaml"))
    return [n for n in out if not (runnable and n.startswith("common/"))]


def get(name: str, _seen: tuple = ()) -> Preset:
    """The shipped preset `name` (e.g. `dali/grid25`); an unknown name is one line listing the others."""
    path = ROOT / f"{name}.yaml"
    if not name or ".." in Path(name).parts or not path.is_file():
        raise JointKLError(f"unknown preset {name!r}; available: {', '.join(names())} (jointkl list presets)")
    return load_file(path, name, _seen)


def find(model: str, data) -> Preset | None:
    """The preset for training `model` on the registered data set `data` (named MODEL/DATA), if one ships."""
    if not isinstance(data, str) or not data or "/" in data or "\\" in data or data.endswith((".npy", ".npz")):
        return None
    return get(f"{model}/{data}") if (ROOT / model / f"{data}.yaml").is_file() else None
