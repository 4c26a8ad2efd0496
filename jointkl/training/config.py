"""Typed, frozen configs and `key=value` overrides, and the one validator every option goes through.

A run has one `TrainConfig` (what the trainer needs) and one model config (the model's own frozen
dataclass, its defaults beside its code). Overrides are routed by field name to whichever owns it.

`validate` checks a whole config against rules keyed by field name and type, so that a rule means the same
in every model (every `*_dim` is a size, every `lr*` a learning rate, ...): `split_options` (a new run's
options) and `from_dict` (a run's config.yaml) both apply it, and `TrainConfig` applies it to itself. What
depends on more than one option or on the data (batch norm and a batch of one row, binarizing data outside
[0, 1], a device that exists on this machine) is checked by the trainer when it is built.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import re
import types
import typing
from dataclasses import dataclass, fields
from typing import Literal

import yaml

from jointkl.errors import JointKLError

MAX_SIZE = 2 ** 20        # widths, latent sizes, classes, components: one such layer is already 4 TB of weights
MAX_LAYERS = 1024         # hidden layers per network
MAX_INT = 2 ** 63 - 1     # any other whole number: what an int64 (torch, numpy, a seed) holds
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000               # outer iterations; each runs every player's update(s)
    batch_size: int = 128           # rows per step (per process under torchrun)
    seed: int = 0                   # seeds the network's initialization, the batches and every draw
    binarize: Literal["none", "fixed", "dynamic"] = "none"   # fixed: one draw (seed 0); dynamic: a draw per batch
    train_fraction: float = 1.0     # train on the first fraction of the training set (Hu Table 3)
    lr_decay: float = 1.0           # every player's lr decays linearly to lr_decay x its own by the last step
    labelled: float = 1.0           # fraction of training labels a labelled model sees, class-balanced (Hu Table 4)
    log_every: int = 50             # loss rows in metrics.csv / TensorBoard
    sample_every: int = 0           # PNG sample grid every K steps (0: only at the end)
    ckpt_every: int = 500           # checkpoint every K steps (and at the end)
    keep_ckpts: int = 3             # checkpoints kept (the newest)
    device: str = "auto"            # auto (CUDA if present) | cpu | cuda[:i] | mps
    threads: int = 0                # torch.set_num_threads; 0: cores / processes under torchrun, else torch's default
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"   # autocast of the players' losses (fp16: CUDA); weights fp32
    deterministic: bool = False     # torch's deterministic kernels and cuDNN settings for the run (docs/precision.md)

    def __post_init__(self):
        validate(self)


# --- the rules -------------------------------------------------------------------------------------------

def _short(value) -> str:
    """A value as a message shows it: a 400-digit number is cut to its first digits and its length."""
    s = repr(value) if isinstance(value, str) else str(value)
    return s if len(s) <= 40 else f"{s[:12]}...({len(s)} characters)"


def _range(key: str, tp) -> tuple[float, float, bool, bool] | None:
    """(low, high, low_open, high_open) for a numeric field, by its name (and type), or None."""
    if key == "seed":
        return 0, MAX_INT, False, False
    if key == "steps" or key.endswith("_steps"):
        return 1, MAX_INT, False, False
    if key == "layers":
        return 0, MAX_LAYERS, False, False
    if key.endswith("_layers"):
        return 1, MAX_LAYERS, False, False
    if key in ("hidden", "classes", "components", "ac_samples") or key.endswith(("_dim", "_hidden")):
        return 1, MAX_SIZE, False, False
    if key.startswith("n_"):
        return 0, MAX_SIZE, False, False
    if key in ("batch_size", "log_every", "ckpt_every", "keep_ckpts"):
        return 1, MAX_INT, False, False
    if key == "sample_every":
        return 0, MAX_INT, False, False
    if key == "threads":
        return 0, 4096, False, False
    if key in ("train_fraction", "labelled", "lr_decay"):
        return 0.0, 1.0, True, False
    if key == "lr" or key.startswith("lr_"):
        return 0.0, math.inf, True, True
    if key in ("reg", "lam", "info", "adv", "alpha", "rec", "gamma", "beta") or key.endswith("_weight"):
        return 0.0, math.inf, False, True
    if key.endswith("temperature"):
        return 0.0, math.inf, True, True
    if key.startswith("min_"):
        return 0.0, math.inf, False, True
    if key == "betas":
        return 0.0, 1.0, False, True
    if tp is int:
        return -MAX_INT, MAX_INT, False, False
    if tp is float:
        return -math.inf, math.inf, True, True
    return None


def _bound(x) -> str:
    if abs(x) == MAX_INT:
        return "2**63 - 1" if x > 0 else "-(2**63 - 1)"
    return f"{x:g}" if isinstance(x, float) else str(x)


def _out_of_range(v, lo, hi, lo_open, hi_open) -> str | None:
    """What `v` breaks of the interval, as 'finite' / 'at least 1' / 'at most 1048576', or None."""
    if not isinstance(v, numbers.Integral) and not math.isfinite(v):
        return "finite"
    if (v <= lo) if lo_open else (v < lo):
        return f"{'greater than' if lo_open else 'at least'} {_bound(lo)}"
    if (v >= hi) if hi_open else (v > hi):
        return f"{'less than' if hi_open else 'at most'} {_bound(hi)}"
    return None


def _base(tp):
    """The annotated type without `| None`, and whether None is allowed."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else tp), type(None) in typing.get_args(tp)
    return tp, False


def _type_ok(value, tp) -> bool:
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return True


def check(key: str, value, tp) -> None:
    """The one validator of an option: `value` for field `key` of annotated type `tp` (already coerced), by
    the field's type and the rules keyed by its name. Raises one `JointKLError` line."""
    tp, optional = _base(tp)
    if value is None:
        if optional:
            return
        raise JointKLError(f"option {key} must be given; it has no 'none' value")
    if typing.get_origin(tp) is typing.Literal:         # a choice: `loss: Literal["minimax", "vi"]`
        if value not in typing.get_args(tp):
            raise JointKLError(f"option {key}={_short(value)} is not known; choose "
                               f"{', '.join(map(str, typing.get_args(tp)))}")
        return
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        want = len(args) if args and args[-1] is not Ellipsis else None
        if not isinstance(value, tuple) or (want is not None and len(value) != want):
            n = f"{want} numbers" if want else "numbers"
            raise JointKLError(f"option {key}={_short(list(value) if isinstance(value, tuple) else value)} must be "
                               f"a list of {n}, like {key}=[0.5,0.999]")
        for v in value:
            if not _type_ok(v, args[0]):
                raise JointKLError(f"option {key}={_short(list(value))} has the wrong type; expected "
                                   f"{getattr(args[0], '__name__', args[0])}s")
        values = value
    else:
        if not _type_ok(value, tp):
            got = "true/false" if isinstance(value, bool) else type(value).__name__
            raise JointKLError(f"option {key}={_short(value)} has the wrong type; expected "
                               f"{getattr(tp, '__name__', tp)}, got {got}")
        values = (value,)
    if key == "device" and not DEVICE.fullmatch(value):
        raise JointKLError(f"device={_short(value)} is not a device to train on; use auto, cpu, cuda, cuda:I or mps")
    rule = _range(key, typing.get_args(tp)[0] if typing.get_origin(tp) is tuple else tp)
    if rule is None:
        return
    lo, hi, lo_open, hi_open = rule
    for v in values:
        if not isinstance(v, numbers.Real) or isinstance(v, bool):
            continue
        broken = _out_of_range(v, lo, hi, lo_open, hi_open)
        if broken:
            shown = _short(list(value) if isinstance(value, tuple) else value)
            what = "each of them" if isinstance(value, tuple) else "it"
            raise JointKLError(f"option {key}={shown} is out of range; {what} must be {broken}")


def validate(cfg) -> None:
    """Every field of a config dataclass through `check`."""
    hints = _hints(type(cfg))
    for f in fields(cfg):
        check(f.name, getattr(cfg, f.name), hints[f.name])


# --- parsing -----------------------------------------------------------------------------------------

def _coerce(value, tp, key: str):
    """Convert a parsed YAML scalar to the field's annotated type, or explain what was expected. A true/false
    is never a number (`steps=true` is not 1), and a number only a whole number where one is expected."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        check(key, value, tp)
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except JointKLError:
                pass
        names = " or ".join("null" if a is type(None) else getattr(a, "__name__", str(a)) for a in args)
        hint = " (true/false is not a number)" if isinstance(value, bool) else ""
        raise JointKLError(f"option {key}={_short(value)} has the wrong type; expected {names}{hint}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise JointKLError(f"option {key} expects a list like {key}=[0.5,0.999]; got {_short(value)}")
        try:
            return tuple(_coerce(v, args[0], key) for v in value)
        except JointKLError:
            raise JointKLError(f"option {key}={_short(list(value))} has the wrong type; expected a list of "
                               f"{getattr(args[0], '__name__', args[0])}s") from None
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            raise ValueError
        if tp in (int, float) and (isinstance(value, bool) or value is None):
            raise ValueError
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        if tp is str and not isinstance(value, str):
            return str(value)
        return tp(value)
    except (TypeError, ValueError, OverflowError):
        name = getattr(tp, "__name__", tp)
        hint = " (true/false is not a number)" if isinstance(value, bool) else ""
        raise JointKLError(f"option {key}={_short(value)} has the wrong type; expected {name}{hint}") from None


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def parse_overrides(items: list[str]) -> dict:
    """['latent_dim=8', 'lr=1e-3'] -> {'latent_dim': 8, 'lr': 0.001} (values parsed as YAML)."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or not key.strip().isidentifier():
            raise JointKLError(f"malformed option {_short(item)}: write key=value, e.g. latent_dim=8")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise JointKLError(f"malformed value in {_short(item)}: write key=value, e.g. lr=1e-3 or betas=[0.5,0.999]")
    return out


def split_options(options: dict, model_cls_config, model_name: str):
    """Route options to TrainConfig or the model config (unknown keys are an error naming the valid ones),
    coerced to each field's type and checked by `validate`."""
    tkeys = {f.name for f in fields(TrainConfig)}
    mkeys = {f.name for f in fields(model_cls_config)}
    th, mh = _hints(TrainConfig), _hints(model_cls_config)
    t, m = {}, {}
    for k, v in options.items():
        if k in mkeys:
            m[k] = _coerce(v, mh[k], k)
        elif k in tkeys:
            t[k] = _coerce(v, th[k], k)
        else:
            raise JointKLError(f"unknown option {_short(k)} for model {model_name}; valid: "
                               f"{', '.join(sorted(mkeys | tkeys))}")
    return TrainConfig(**t), _build(model_cls_config, m)


def _build(cls, values: dict):
    """cls(**values), checked by `validate`; a config's own refusal (its __post_init__) is one line too."""
    try:
        cfg = cls(**values)
    except (TypeError, ValueError) as e:
        raise JointKLError(f"invalid options {', '.join(f'{k}={_short(v)}' for k, v in values.items())}: "
                           f"{' '.join(str(e).split())}") from None
    validate(cfg)
    return cfg


def to_dict(cfg) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()}


def from_dict(cls, d: dict):
    """A config from its recorded dict (config.yaml), coerced and checked as options are; unknown keys (a field
    since removed) are ignored, missing ones take their defaults."""
    h = _hints(cls)
    return _build(cls, {k: _coerce(v, h[k], k) for k, v in d.items() if k in h})


def option_help(cls) -> dict[str, str]:
    """Each field's one-line meaning: the comment after it in its dataclass's source (the closest class in the
    MRO that defines it), '' where it has none. Written once, beside the default it explains."""
    import inspect
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            src = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for line in src.splitlines():
            m = re.match(r"\s+(\w+)\s*:[^#]*?(?:#\s*(.*))?$", line)
            if m and m.group(1) in {f.name for f in fields(cls)}:
                out[m.group(1)] = (m.group(2) or "").strip()
    return {f.name: out.get(f.name) or COMMON_HELP.get(f.name, "") for f in fields(cls)}


COMMON_HELP = {           # what a field of this name means in every model that has it
    "latent_dim": "size of the latent z",
    "hidden": "units per hidden layer of every network",
    "layers": "hidden layers per network",
    "lr": "Adam learning rate of the model's players",
    "lr_d": "the discriminator's learning rate (default: lr)",
    "betas": "Adam's (beta1, beta2)",
    "arch": "mlp | dcgan (conv nets; image data only)",
    "g_batchnorm": "batch norm in the generator's hidden layers (DCGAN)",
    "g_act": "the generator's hidden activation: leaky_relu | relu",
}
