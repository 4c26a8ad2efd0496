"""What every model is: two joints, a KL direction between them, and per-player losses.

A model declares its players (parameter groups with their optimizer settings and update counts) and
returns a loss for each; the trainer alternates over the players in declaration order, as the papers
derive it (Su: "like EM, we train alternately"; AVB Algorithm 1; DALI Algorithm 1). A closed-form
player (EM's M-step) updates its parameters itself in `update`.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from jointkl.errors import JointKLError
from jointkl.training.player import Player

Logs = dict[str, torch.Tensor]
__all__ = ["Logs", "Objective", "Player"]


class Objective(nn.Module):
    """Base class: `players()`, `loss(player, x)`, and the user-facing capabilities a model has."""

    name: ClassVar[str]
    Config: ClassVar[type]
    labels: ClassVar[bool] = False  # True: `loss(player, x, y)` also gets the batch's labels, -1 = unlabelled

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
