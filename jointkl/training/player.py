"""A player: one group of parameters that the trainer updates in turn with its own optimizer (Su: "like EM,
we train alternately"; AVB Algorithm 1; DALI Algorithm 1)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass
class Player:
    name: str
    params: list[nn.Parameter]
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    steps: int = 1                  # updates per outer step (e.g. n_critic)
    closed_form: bool = False       # `update` replaces the gradient step
    full_batch: bool = False        # the player sees the whole training set each update
