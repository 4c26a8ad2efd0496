"""Typed, frozen configs and `key=value` overrides.

A run has one `TrainConfig` (what the trainer needs) and one model config (the model's own frozen
dataclass, its defaults beside its code). Overrides are routed by field name to whichever owns it.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, fields

import yaml

from jointkl.errors import JointKLError


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000               # outer iterations; each runs every player's update(s)
    batch_size: int = 128
    seed: int = 0
    binarize: str = "none"          # none | fixed (one draw, seed 0) | dynamic (fresh draw per batch)
    train_fraction: float = 1.0     # train on the first fraction of the training set (Hu Table 3)
    lr_decay: float = 1.0           # every player's lr decays linearly to lr_decay x its own by the last step
    labelled: float = 1.0           # fraction of training labels a labelled model sees, class-balanced (Hu Table 4)
    log_every: int = 50             # loss rows in metrics.csv / TensorBoard
    sample_every: int = 0           # PNG sample grid every K steps (0: only at the end)
    ckpt_every: int = 500           # checkpoint every K steps (and at the end)
    keep_ckpts: int = 3
    device: str = "auto"            # auto (CUDA if present) | cpu | cuda[:i]
    threads: int = 0                # torch.set_num_threads; 0: cores / processes under torchrun, else torch's default

    def __post_init__(self):
        least = {"steps": 1, "batch_size": 1, "log_every": 1, "sample_every": 0, "ckpt_every": 1, "keep_ckpts": 1,
                 "threads": 0}
        for key, low in least.items():
            value = getattr(self, key)
            if isinstance(value, int) and value < low:
                raise JointKLError(f"option {key}={value} is out of range; it must be at least {low}")
        for key in ("train_fraction", "labelled", "lr_decay"):
            if not 0.0 < getattr(self, key) <= 1.0:
                raise JointKLError(f"option {key}={getattr(self, key)} is out of range; it must be in (0, 1]")


def _coerce(value, tp, key: str):
    """Convert a parsed YAML scalar to the field's annotated type, or explain what was expected."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType")):
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except JointKLError:
                pass
        raise JointKLError(f"option {key}={value!r} has the wrong type; expected {tp}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise JointKLError(f"option {key} expects a list like {key}=[0.5,0.999]; got {value!r}")
        return tuple(_coerce(v, args[0], key) for v in value)
    try:
        if tp is bool:
            if isinstance(value, bool):
                return value
            raise ValueError
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        if tp is str and not isinstance(value, str):
            return str(value)
        return tp(value)
    except (TypeError, ValueError):
        raise JointKLError(f"option {key}={value!r} has the wrong type; expected {getattr(tp, '__name__', tp)}")


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def parse_overrides(items: list[str]) -> dict:
    """['latent_dim=8', 'lr=1e-3'] -> {'latent_dim': 8, 'lr': 0.001} (values parsed as YAML)."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or not key.strip().isidentifier():
            raise JointKLError(f"malformed option {item!r}: write key=value, e.g. latent_dim=8")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise JointKLError(f"malformed value in {item!r}: write key=value, e.g. lr=1e-3 or betas=[0.5,0.999]")
    return out


def split_options(options: dict, model_cls_config, model_name: str):
    """Route options to TrainConfig or the model config; unknown keys are an error naming the valid ones."""
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
            raise JointKLError(f"unknown option {k!r} for model {model_name}; valid: "
                               f"{', '.join(sorted(mkeys | tkeys))}")
    return TrainConfig(**t), model_cls_config(**m)


def to_dict(cfg) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()}


def from_dict(cls, d: dict):
    h = _hints(cls)
    return cls(**{k: _coerce(v, h[k], k) for k, v in d.items() if k in h})
