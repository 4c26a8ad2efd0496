"""Multi-layer perceptrons that flatten their input and reshape their output."""
from __future__ import annotations

import math

import torch
from torch import nn

from jointkl.errors import JointKLError


ACTS = {"leaky_relu": lambda: nn.LeakyReLU(0.2), "relu": nn.ReLU}


class MLP(nn.Module):
    """`in_dim -> hidden x layers -> out_shape` with LeakyReLU(0.2) (`act="relu"`: ReLU, as DCGAN's
    generator); inputs of any trailing shape are flattened, so one class serves toy vectors and images."""

    def __init__(self, in_dim: int, out_shape: int | tuple[int, ...], hidden: int = 256, layers: int = 2,
                 batchnorm: bool = False, act: str = "leaky_relu"):
        super().__init__()
        if act not in ACTS:
            raise JointKLError(f"unknown activation {act!r}; choose one of {', '.join(ACTS)}")
        self.out_shape = (out_shape,) if isinstance(out_shape, int) else tuple(out_shape)
        dims = [in_dim] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            blocks += [nn.Linear(a, b)] + ([nn.BatchNorm1d(b)] if batchnorm else []) + [ACTS[act]()]
        blocks.append(nn.Linear(dims[-1], math.prod(self.out_shape)))
        self.net = nn.Sequential(*blocks)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        h = torch.cat([t.flatten(1) for t in inputs], dim=1)   # (B, in_dim)
        return self.net(h).view(-1, *self.out_shape)            # (B, *out_shape)
