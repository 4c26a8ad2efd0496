"""Mode coverage on a Gaussian-mixture toy, following the VEEGAN protocol (Srivastava et al. 2017).

Draw 2,500 samples from the generator; a sample is "high quality" when it lies within n_std = 3
standard deviations of its nearest mixture mean; a mode is "captured" when it is the nearest mode
of at least one high-quality sample. DALI (sec. 4) reports these on the 25-mode 2D grid.

A mode that holds a few of the 2,500 samples is captured in one draw and missed in the next, so
`expected_modes` gives the mean count over 2,500-sample draws, from a large pool of the generator's samples,
and `covered_modes` counts only the modes that hold a real part of the mass (a thin streak of samples
between two modes can cross a third one and get it "captured").
"""

import torch
from torch import Tensor


def _captured_by(samples: Tensor, means: Tensor, std: float, n_std: float) -> tuple[Tensor, Tensor]:
    """For each sample, its nearest mode and whether it is high quality (within n_std * std of it). (n,), (n,)"""
    nearest_dist, nearest = torch.cdist(samples.double(), means.double()).min(dim=1)  # (n,), (n,)
    return nearest, nearest_dist <= n_std * std


def mode_stats(samples: Tensor, means: Tensor, std: float, n_std: float = 3.0) -> dict:
    """Count captured modes and the percentage of high-quality samples.

    samples: (n, D); means: (K, D); std: the mixture components' standard deviation.
    Returns {"modes": int in [0, K], "high_quality": float in [0, 100]} (Euclidean distance).
    """
    nearest, good = _captured_by(samples, means, std, n_std)  # (n,), (n,)
    n_modes = int(torch.unique(nearest[good]).numel())
    high_quality = 100.0 * good.double().mean().item() if samples.shape[0] > 0 else 0.0
    return {"modes": n_modes, "high_quality": float(high_quality)}


def mode_map(samples: Tensor, means: Tensor, std: float, n_std: float = 3.0) -> Tensor:
    """Each sample's nearest mode, or -1 where it is not high quality. (n,) int64"""
    nearest, good = _captured_by(samples, means, std, n_std)
    return torch.where(good, nearest, torch.full_like(nearest, -1))


def mode_shares(pool: Tensor, means: Tensor, std: float, n_std: float = 3.0) -> Tensor:
    """p_k: the fraction of all samples in `pool` (N, D) that are high quality and nearest to mode k. (K,)"""
    nearest, good = _captured_by(pool, means, std, n_std)
    return torch.bincount(nearest[good], minlength=means.shape[0]).double() / pool.shape[0]


def expected_modes(pool: Tensor, means: Tensor, std: float, n: int = 2500, n_std: float = 3.0) -> float:
    """Mean number of modes an n-sample draw captures, for a generator whose samples `pool` (N, D), N >> n,
    represent: sum_k 1 - (1 - p_k)^n, with p_k from `mode_shares` (a draw misses mode k only if none of
    its n samples lands there)."""
    p = mode_shares(pool, means, std, n_std)                                              # (K,)
    return float((1.0 - (1.0 - p) ** n).sum())


def covered_modes(pool: Tensor, means: Tensor, std: float, fraction: float = 0.25, n_std: float = 3.0) -> int:
    """Modes holding at least `fraction` of a fair share 1/K of the samples as high-quality ones (0.25 on
    the 25-mode grid: 1 %, 25 of 2,500 samples, where a perfect generator gives each mode 4 %)."""
    p = mode_shares(pool, means, std, n_std)                                              # (K,)
    return int((p >= fraction / means.shape[0]).sum())
