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


def discriminator_weights(logit_fake: Tensor) -> Tensor:
    """IWGAN's weights over a batch of k generated samples, Hu eq. 16 and supplement eqs. 38-43.

    The unnormalized weight of x_i = G(z_i) is w_i = q^r(y=0|x_i) / q(y=0|x_i) = D(x_i) / (1 - D(x_i))
    (supplement eq. 40), so log w_i is D's logit; w~ = softmax over the batch. Detached: eq. 43 multiplies
    the gradient of log D(G(z_i)) by w~_i without differentiating the weight. logit_fake: (k,) or (k, 1);
    returns (k,), summing to 1.
    """
    return self_normalized_weights(logit_fake.detach().reshape(-1), dim=0)  # (k,)
