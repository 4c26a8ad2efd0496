"""Importance weighting: the k-sample IWAE bound and self-normalised weights (Hu 2018 sec. 4.1)."""

import math

import torch
from torch import Tensor


def iwae_bound(log_w: Tensor) -> Tensor:
    """k-sample importance-weighted bound L_k = log (1/k) sum_i w_i (Hu 2018 eq. 36; Burda et al. 2015).

    log_w: (k, B) log importance weights, e.g. log p(x, z_i) - log q(z_i | x) with z_i ~ q(z | x).
    L_1 is the ELBO; E[L_k] grows with k towards log p(x). Returns (B,).
    """
    k = log_w.shape[0]
    return torch.logsumexp(log_w, dim=0) - math.log(k)  # (B,)


def self_normalized_weights(log_w: Tensor, dim: int = 0) -> Tensor:
    """Normalised weights w~_i = w_i / sum_j w_j = softmax(log_w) along dim (Hu 2018 eqs. 16, 37).

    For importance-weighted GANs log_w is the discriminator's logit, w_i = D(x_i) / (1 - D(x_i)).
    Same shape as log_w; sums to 1 along dim.
    """
    return torch.softmax(log_w, dim=dim)
