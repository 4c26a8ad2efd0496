"""Embedded toy data sets (generated in code, no files, no network).

Every set is deterministic: it is drawn from a local ``torch.Generator`` with a fixed seed, so the
tensors are identical on every call and do not depend on (or advance) the global RNG.

=============  ==========  ====================  ====================  ==========  ===============================
name           kind        train                 test                  labels      meta
=============  ==========  ====================  ====================  ==========  ===============================
grid25         continuous  (50000, 2), seed 0    (10000, 2), seed 1    component   means (25, 2), std 0.05
ring8          continuous  (50000, 2), seed 0    (10000, 2), seed 1    component   means (8, 2), std 0.02
binary2x2      binary      (4000, 1, 2, 2)       (4, 1, 2, 2)          pixel on    optimum_loglik = -log 4
eight_schools  continuous  (8, 2) = (y, sigma)   same tensor as train  none        y (8,), sigma (8,)
=============  ==========  ====================  ====================  ==========  ===============================

grid25
    Equal-weight mixture of 25 isotropic Gaussians with means on the grid {-4, -2, 0, 2, 4}^2 (row-major:
    component ``k`` has mean ``(g[k // 5], g[k % 5])``) and standard deviation 0.05. For each split the
    component index is drawn uniformly, ``label = k``, and ``x = means[k] + 0.05 * eps``.
ring8
    Equal-weight mixture of 8 Gaussians with means ``2 * (cos 2πk/8, sin 2πk/8)`` and std 0.02; sampled
    like grid25.
binary2x2
    The four one-hot 2x2 binary images (AVB, Mescheder et al. 2017, Fig. 5); image ``k`` has pixel ``k``
    (row-major) on, ``label = k``. Train is the four images tiled 1,000 times in the order 0, 1, 2, 3,
    0, 1, ... (4,000 rows, so any run of 4m consecutive rows is exactly uniform over the four); test is
    the four distinct images once each. The data distribution is uniform over four points, so the best
    achievable average log-likelihood is ``-log 4 ≈ -1.3863`` nats.
eight_schools
    Gelman et al. (BDA) eight-schools data: estimated treatment effects ``y`` and their standard errors
    ``sigma``. A single (8, 2) tensor with columns (y, sigma) serves as both train and test (the model is
    fitted to, and evaluated on, the same eight observations).
"""
from __future__ import annotations

import math

import torch

from jointkl.data.base import Dataset, register

_TRAIN_N, _TEST_N = 50_000, 10_000
_TRAIN_SEED, _TEST_SEED = 0, 1


def _sample_mixture(means: torch.Tensor, std: float, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` draws from the equal-weight isotropic mixture; returns (x float32, component int64)."""
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(0, means.shape[0], (n,), generator=g)
    eps = torch.randn(n, means.shape[1], generator=g, dtype=torch.float64)
    x = means.double()[k] + std * eps
    return x.float(), k.long()


def _mixture_dataset(name: str, means: torch.Tensor, std: float) -> Dataset:
    xtr, ytr = _sample_mixture(means, std, _TRAIN_N, _TRAIN_SEED)
    xte, yte = _sample_mixture(means, std, _TEST_N, _TEST_SEED)
    return Dataset(name=name, train=xtr, test=xte, kind="continuous", train_labels=ytr, test_labels=yte,
                   meta={"means": means.clone(), "std": std})


@register("grid25", "25 Gaussians on {-4,-2,0,2,4}^2, std 0.05; 50k train / 10k test")
def grid25() -> Dataset:
    g = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    means = torch.stack(torch.meshgrid(g, g, indexing="ij"), dim=-1).reshape(25, 2)
    return _mixture_dataset("grid25", means, 0.05)


@register("ring8", "8 Gaussians on a circle of radius 2, std 0.02; 50k train / 10k test")
def ring8() -> Dataset:
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    means = (2.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1)).float()
    return _mixture_dataset("ring8", means, 0.02)


@register("binary2x2", "the four one-hot 2x2 binary images (AVB Fig. 5); optimum log-likelihood -log 4")
def binary2x2() -> Dataset:
    eye = torch.eye(4).reshape(4, 1, 2, 2)
    labels = torch.arange(4)
    reps = 1000
    return Dataset(name="binary2x2", train=eye.repeat(reps, 1, 1, 1), test=eye.clone(), kind="binary",
                   train_labels=labels.repeat(reps), test_labels=labels.clone(),
                   meta={"optimum_loglik": -math.log(4.0)})


_EIGHT_Y = [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0]
_EIGHT_SIGMA = [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]


@register("eight_schools", "Gelman et al. eight schools: (8, 2) columns (y, sigma); train = test")
def eight_schools() -> Dataset:
    y = torch.tensor(_EIGHT_Y)
    sigma = torch.tensor(_EIGHT_SIGMA)
    data = torch.stack([y, sigma], dim=1)
    return Dataset(name="eight_schools", train=data, test=data.clone(), kind="continuous",
                   meta={"y": y, "sigma": sigma})
