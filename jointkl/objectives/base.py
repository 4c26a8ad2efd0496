"""What every model is: two joints, a KL direction between them, and per-player losses.

A model declares its players (parameter groups with their optimizer settings and update counts) and
returns a loss for each; the trainer alternates over the players in declaration order, as the papers
derive it (Su: "like EM, we train alternately"; AVB Algorithm 1; DALI Algorithm 1). A closed-form
player (EM's M-step) updates its parameters itself in `update`.
"""
from __future__ import annotations

import functools
import inspect
import operator
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from jointkl.errors import JointKLError
from jointkl.training.player import Player

Logs = dict[str, torch.Tensor]
__all__ = ["Logs", "Objective", "Player"]


MAX_COUNT = 2 ** 31 - 1   # draws or importance samples in one call


def check_count(n, model: str, what: str = "n", least: int = 1) -> int:
    """`n` as an int, if it is a whole number (not a bool) in [least, MAX_COUNT]; else one `JointKLError` line."""
    try:
        if isinstance(n, (bool, np.bool_)) or (isinstance(n, torch.Tensor) and n.dtype == torch.bool):
            raise TypeError
        value = operator.index(n)
    except TypeError:
        raise JointKLError(f"{model}: {what} must be a whole number; got {_short(n)}") from None
    if not least <= value <= MAX_COUNT:
        raise JointKLError(f"{model}: {what}={value} is out of range; it must be in [{least}, {MAX_COUNT}]")
    return value


def check_k(k, model: str) -> int:
    """The number of importance samples of `log_likelihood`."""
    return check_count(k, model, "k")


COUNTS = ("k", "draws", "chunk")    # keyword arguments that are counts >= 1 wherever a method takes them


def check_batch(x, model: str, what: str = "x"):
    """`x` (returned as given) if it is a batch: a tensor, an array or nested lists of numbers, of 1 or more
    dimensions (rows first); the model's own `check_input` then checks its shape."""
    if not isinstance(x, (torch.Tensor, np.ndarray)):
        try:
            shape = torch.as_tensor(x, dtype=torch.float32).shape
        except (TypeError, ValueError, RuntimeError):
            raise JointKLError(f"{model}: {what} must be a tensor or an array of numbers; got "
                               f"{type(x).__name__}") from None
    else:
        shape = x.shape
    if len(shape) == 0:
        raise JointKLError(f"{model}: {what} must be a batch with rows first, shape (N, ...); got a scalar")
    return x


def _short(v) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _checked(method: str, fn):
    """`fn` (a model's sample, encode, decode, reconstruct or log_likelihood) with its arguments checked first."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())[1:]
    first = params[0].name if params and params[0].kind in (params[0].POSITIONAL_ONLY,
                                                             params[0].POSITIONAL_OR_KEYWORD) else None   # n, x or z

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        try:
            bound = sig.bind(self, *args, **kwargs)
        except TypeError:
            return fn(self, *args, **kwargs)                                  # Python's own message
        a, who = bound.arguments, f"{getattr(self, 'name', type(self).__name__)}.{method}"
        if method == "sample" and first in a:
            a[first] = check_count(a[first], who, first)
        elif first in a:
            check_batch(a[first], who, first)
        for name in COUNTS:
            if a.get(name) is not None:
                a[name] = check_count(a[name], who, name)
        return fn(*bound.args, **bound.kwargs)

    wrapper.checked = True
    return wrapper


class Objective(nn.Module):
    """Base class: `players()`, `loss(player, x)`, and the user-facing capabilities a model has.

    Every subclass's `sample`, `encode`, `decode`, `reconstruct` and `log_likelihood` are wrapped when the class
    is defined (`__init_subclass__`), so that their arguments are checked the same way in every model, one
    `JointKLError` line each: `n` of sample and `k` of log_likelihood whole numbers >= 1, x and z batches."""

    name: ClassVar[str]
    Config: ClassVar[type]
    labels: ClassVar[bool] = False  # True: `loss(player, x, y)` also gets the batch's labels, -1 = unlabelled
    CHECKED: ClassVar[tuple[str, ...]] = ("sample", "encode", "decode", "reconstruct", "log_likelihood")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for method in Objective.CHECKED:
            fn = cls.__dict__.get(method)
            if inspect.isfunction(fn) and not getattr(fn, "checked", False):
                setattr(cls, method, _checked(method, fn))

    def __init__(self, cfg, data_shape: tuple[int, ...], data_kind: str):
        super().__init__()
        self.cfg, self.data_shape, self.data_kind = cfg, tuple(data_shape), data_kind

    # --- training -------------------------------------------------------------------------------
    def players(self) -> list[Player]:
        raise NotImplementedError

    def begin(self, player: str) -> None:
        """Called once before a player's `steps` updates of an outer step (e.g. to fix G_old, Su eq. 26)."""

    def loss(self, player: str, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, Logs]:
        raise NotImplementedError

    def update(self, player: str, x: torch.Tensor) -> Logs:
        raise NotImplementedError

    # --- capabilities (override where the model has them) -------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(iter(self.state_dict().values())).device

    def _missing(self, what: str):
        raise JointKLError(f"model {self.name} has no {what}")

    @property
    def latent_dim(self) -> int:
        return self._missing("latent space")

    def sample(self, n: int) -> torch.Tensor:
        return self._missing("sampler")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._missing("encoder")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._missing("decoder")

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def log_likelihood(self, x: torch.Tensor, method: str = "elbo", k: int = 1) -> torch.Tensor:
        return self._missing("explicit likelihood")

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Move x to the model's device and check its shape against the data the model was built for."""
        x = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        if tuple(x.shape[1:]) != self.data_shape:
            raise JointKLError(f"input has shape {tuple(x.shape)} but model {self.name} expects (N, "
                               f"{', '.join(map(str, self.data_shape))}); reshape the data")
        return x
