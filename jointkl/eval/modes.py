"""Mode coverage on a Gaussian-mixture toy, following the VEEGAN protocol (Srivastava et al. 2017).

Draw 2,500 samples from the generator; a sample is "high quality" when it lies within n_std = 3
standard deviations of its nearest mixture mean; a mode is "captured" when it is the nearest mode
of at least one high-quality sample. DALI (sec. 4) reports these on the 25-mode 2D grid.
"""

import torch
from torch import Tensor


def mode_stats(samples: Tensor, means: Tensor, std: float, n_std: float = 3.0) -> dict:
    """Count captured modes and the percentage of high-quality samples.

    samples: (n, D); means: (K, D); std: the mixture components' standard deviation.
    Returns {"modes": int in [0, K], "high_quality": float in [0, 100]} (Euclidean distance).
    """
    dist = torch.cdist(samples.double(), means.double())  # (n, K)
    nearest_dist, nearest = dist.min(dim=1)  # (n,), (n,)
    good = nearest_dist <= n_std * std  # (n,)
    n_modes = int(torch.unique(nearest[good]).numel())
    high_quality = 100.0 * good.double().mean().item() if samples.shape[0] > 0 else 0.0
    return {"modes": n_modes, "high_quality": float(high_quality)}
