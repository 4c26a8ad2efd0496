"""Networks only; no loss code lives here.

`build` picks a model's network by its `arch` option: "mlp" (everything flattened into an MLP) or "dcgan"
(DCGAN-style conv nets wherever an input or the output is an image; `jointkl.nets.conv`).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from jointkl.errors import JointKLError
from jointkl.nets.conv import ConvDecoder, ConvEncoder, halvings
from jointkl.nets.mlp import MLP

__all__ = ["ARCHS", "MLP", "ConvDecoder", "ConvEncoder", "build", "check_arch", "features", "repeat_call"]

ARCHS = ("mlp", "dcgan")
Shape = int | tuple[int, ...]


def _shape(s: Shape) -> tuple[int, ...]:
    return (s,) if isinstance(s, int) else tuple(s)


def check_arch(arch: str, data_shape: tuple[int, ...]) -> None:
    """A model's `arch` option against its data: dcgan needs images (C, H, W) that halve at least once."""
    if arch not in ARCHS:
        raise JointKLError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    if arch == "dcgan" and len(data_shape) != 3:
        raise JointKLError(f"arch=dcgan needs image data (C, H, W); use arch=mlp for data of shape {tuple(data_shape)}")
    if arch == "dcgan" and halvings(*data_shape[1:]) == 0:
        raise JointKLError(f"arch=dcgan needs images with even sides of at least 8 px (e.g. 28, 32, 64); got "
                           f"{data_shape[1]}x{data_shape[2]}; use arch=mlp")


def build(arch: str, in_shape: Shape, out_shape: Shape, hidden: int, layers: int, extra_dim: int = 0,
          batchnorm: bool = False, act: str = "leaky_relu") -> nn.Module:
    """The network reading a first input of shape `in_shape` plus `extra_dim` more vector entries (labels, z,
    noise) and returning (B, *out_shape). "mlp": an MLP on the inputs flattened (`hidden`, `layers`; `batchnorm`
    after each hidden linear layer, as in DCGAN's and ALI's generators; `act` the hidden activation, "leaky_relu"
    (0.2) or "relu"). "dcgan": a ConvEncoder when the first input is an image (C, H, W), a ConvDecoder (batch norm
    built in) when the inputs are vectors and the output ends in an image; an MLP where neither is an image (e.g.
    AAE's D(z))."""
    if arch not in ARCHS:
        raise JointKLError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    in_shape, out_shape = _shape(in_shape), _shape(out_shape)
    if arch == "dcgan" and len(in_shape) == 3:
        return ConvEncoder(in_shape, out_shape, extra_dim)
    if arch == "dcgan" and len(out_shape) >= 3:
        return ConvDecoder(math.prod(in_shape) + extra_dim, out_shape)
    return MLP(math.prod(in_shape) + extra_dim, out_shape, hidden, layers, batchnorm, act)


def features(net: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
    """The last hidden layer of an MLP or ConvEncoder; `net.net[-1]` maps it to the output. (B, width)"""
    h = net.join(*inputs) if isinstance(net, ConvEncoder) else torch.cat([t.flatten(1) for t in inputs], 1)
    return net.net[:-1](h)


def repeat_call(net: nn.Module, x: torch.Tensor, k: int, *extra: torch.Tensor) -> torch.Tensor:
    """net(x repeated k times along the batch, *extra), the extra inputs already k*B long. A ConvEncoder runs its
    conv trunk once per x and repeats the features: k draws per x cost one pass over the images."""
    if isinstance(net, ConvEncoder):
        h = net.join(x).repeat(k, 1)                                   # (k*B, feats)
        return net.net(torch.cat([h, *(t.flatten(1) for t in extra)], 1)).view(-1, *net.out_shape)
    return net(x.repeat(k, *[1] * (x.dim() - 1)), *extra)
