"""Reconstruction error of an inference-generator pair."""

from torch import Tensor


def reconstruction_mse(x: Tensor, x_hat: Tensor) -> float:
    """Per-element (per-pixel) mean squared error mean((x - x_hat)^2), as in DALI Table 1.

    x, x_hat: same shape, e.g. (B, C, H, W) test images and their reconstructions G(mu(x)).
    """
    if x.shape != x_hat.shape:
        raise ValueError(f"reconstruction_mse needs equal shapes, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    return float(((x - x_hat) ** 2).mean().item())
