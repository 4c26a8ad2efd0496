"""DCGAN-style convolutional nets (Radford et al. 2016) for images of 28x28 (MNIST), 32x32 (SVHN, CIFAR-10)
and 64x64 (CelebA) pixels, with any number of channels.

A net has n stride-2 layers: the side is halved while it is even and its half is at least 4
(28 -> 14 -> 7: n = 2; 32 -> 16 -> 8 -> 4: n = 3; 64 -> 32 -> 16 -> 8 -> 4: n = 4), with 64, 128, 256, 512
channels, 4x4 kernels, padding 1. For 28 px these are the InfoGAN / improved-WGAN MNIST nets:

    ConvEncoder  x -> conv 64 s2 -> conv 128 s2, BN -> [features, extra vectors] -> FC 1024 -> out   LeakyReLU(0.2)
    ConvDecoder  v -> FC 1024, BN -> FC 128*7*7, BN -> deconv 64 s2, BN -> deconv C s2 (no activation)   ReLU

Both keep the MLP's call convention, `forward(*inputs) -> (B, *out_shape)`. The encoder's first input is the
image; further inputs (z of ALI's D(x, z), a one-hot label c, AVB's noise) join the conv features before the FC
layers, so batch norm only ever normalizes image features and a critic's dependence on z is per example.
The decoder's output shape may carry leading axes, e.g. a Gaussian's (2, C, H, W) mean and std logits: it
makes prod(lead) * C channels and reshapes. Weights start from N(0, 0.02), batch-norm scales from N(1, 0.02),
as in Radford et al. Sec. 4.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def halvings(h: int, w: int) -> int:
    """Stride-2 layers for an h x w image: halve while both sides are even and their halves are >= 4."""
    n = 0
    while h % 2 == 0 and w % 2 == 0 and min(h, w) // 2 >= 4:
        h, w, n = h // 2, w // 2, n + 1
    return n


def widths(n: int, base: int) -> list[int]:
    return [base * 2**i for i in range(n)]                        # 64, 128, 256, 512


def dcgan_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class ConvEncoder(nn.Module):
    """Image (C, H, W) [+ `extra_dim` vector entries] -> out_shape: DCGAN discriminator / encoder."""

    def __init__(self, image_shape: tuple[int, int, int], out_shape: int | tuple[int, ...], extra_dim: int = 0,
                 base: int = 64, fc: int = 1024):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.out_shape = (out_shape,) if isinstance(out_shape, int) else tuple(out_shape)
        c, h, w = self.image_shape
        n = halvings(h, w)
        chans = [c] + widths(n, base)
        blocks: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):   # no BN on the first layer (DCGAN)
            blocks += [nn.Conv2d(a, b, 4, 2, 1, bias=i == 0)] + ([nn.BatchNorm2d(b)] if i else []) + [nn.LeakyReLU(0.2)]
        self.trunk = nn.Sequential(*blocks, nn.Flatten())
        feats = chans[-1] * (h >> n) * (w >> n)
        # `net[:-1]` gives the last hidden layer and `net[-1]` the output, as for an MLP (DALI's E reads D's features)
        self.net = nn.Sequential(nn.Linear(feats + extra_dim, fc), nn.LeakyReLU(0.2),
                                 nn.Linear(fc, math.prod(self.out_shape)))
        dcgan_init(self)

    def join(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        """Conv features of x with the extra inputs appended: the input of `net`. (B, feats + extra_dim)"""
        h = self.trunk(x.reshape(x.shape[0], *self.image_shape))    # (B, feats)
        return torch.cat([h, *(t.flatten(1) for t in extra)], 1) if extra else h

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return self.net(self.join(x, *extra)).view(-1, *self.out_shape)   # (B, *out_shape)


class ConvDecoder(nn.Module):
    """Vectors (flattened and concatenated, `in_dim` in all) -> (*lead, C, H, W): DCGAN generator / decoder."""

    def __init__(self, in_dim: int, out_shape: tuple[int, ...], base: int = 64, fc: int = 1024):
        super().__init__()
        self.out_shape = tuple(out_shape)
        *lead, c, h, w = self.out_shape
        n = halvings(h, w)
        chans = widths(n, base)[::-1] + [math.prod(lead) * c]        # e.g. 128, 64, C for 28 px
        top = (chans[0], h >> n, w >> n)                             # e.g. (128, 7, 7)
        blocks: list[nn.Module] = [nn.Linear(in_dim, fc, bias=False), nn.BatchNorm1d(fc), nn.ReLU(),
                                   nn.Linear(fc, math.prod(top), bias=n == 0), nn.Unflatten(1, top)]
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):      # BN + ReLU before every deconv
            blocks += [nn.BatchNorm2d(a), nn.ReLU(), nn.ConvTranspose2d(a, b, 4, 2, 1, bias=i == n - 1)]
        self.net = nn.Sequential(*blocks)
        dcgan_init(self)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        v = torch.cat([t.flatten(1) for t in inputs], dim=1)        # (B, in_dim)
        return self.net(v).view(-1, *self.out_shape)               # (B, *lead, C, H, W)
