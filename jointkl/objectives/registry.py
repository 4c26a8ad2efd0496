"""One registry of models: feeds `jointkl train`, `jointkl list models` and `jk.train`."""
from __future__ import annotations

from jointkl.errors import JointKLError
from jointkl.objectives.base import Objective

MODELS: dict[str, type[Objective]] = {}


def register(cls: type[Objective]) -> type[Objective]:
    if not getattr(cls, "name", None) or not hasattr(cls, "Config"):
        raise TypeError(f"{cls.__name__} needs a `name` and a `Config` dataclass")
    if cls.name in MODELS:
        raise TypeError(f"model {cls.name!r} registered twice")
    MODELS[cls.name] = cls
    return cls


def get(name: str) -> type[Objective]:
    if name not in MODELS:
        raise JointKLError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def summary(cls: type[Objective]) -> str:
    return (cls.__doc__ or "").strip().splitlines()[0]
