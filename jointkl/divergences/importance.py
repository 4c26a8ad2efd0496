"""Importance weighting: the k-sample IWAE bound and self-normalised weights (Hu 2018 sec. 4.1)."""

import math
from typing import Callable

import torch
import torch.distributions as D
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


def chunked_bound(log_weights: Callable[..., Tensor], method: str, k: int, chunk: int, *rows: Tensor) -> Tensor:
    """Per example, the ELBO (the mean of k log-weights) or the k-sample IWAE bound (`iwae_bound`), computed
    max(1, chunk // k) examples at a time: `log_weights(*parts)` maps one chunk of each of `rows` (split alike
    along dim 0) to (k, b) log-weights. Returns (B,)."""
    if method not in ("elbo", "iwae"):
        raise ValueError(f"unknown bound {method!r}; choose elbo or iwae")
    out = []
    for parts in zip(*(r.split(max(1, chunk // max(k, 1))) for r in rows)):
        log_w = log_weights(*parts)                                      # (k, b)
        out.append(log_w.mean(0) if method == "elbo" else iwae_bound(log_w))
    return torch.cat(out)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) over the last dimension: (..., d) -> (...)."""
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(-1)


def kde_iwae(log_lik: Callable[[Tensor], Tensor], centres: Tensor, k: int, w: float = 0.1) -> Tensor:
    """log (1/k) sum_i p(x|z_i) p(z_i) / s(z_i) for one x, z_i ~ s = (1 - w) KDE(centres) + w N(0, I): an
    importance-sampling estimate of log p(x) with an explicit proposal built from draws of an encoder that has
    no density (AVB's implicit q(z|x)). `centres` (M, d) are draws of q(z|x) (Gaussian kernels, Scott's
    bandwidth); `log_lik(z)` maps (k, d) to log p(x|z) (k,). The prior part bounds the weights by p(x|z) / w,
    and the mean weight is unbiased for p(x), so this is a stochastic lower bound that tends to log p(x) as k
    grows. Returns (1,)."""
    fit, d = centres.shape
    h = centres.std(0, correction=1).clamp_min(1e-3) * fit ** (-1 / (d + 4))   # (d,) Scott's rule
    from_prior = torch.rand(k, device=centres.device) < w
    eps = torch.randn(2, k, d, device=centres.device)                    # (2, k, d)
    z = torch.where(from_prior[:, None], eps[0], centres[torch.randint(fit, (k,), device=centres.device)] + h * eps[1])
    log_kde = torch.cat([torch.logsumexp(D.Normal(centres, h).log_prob(zb[:, None]).sum(-1), 1)
                         for zb in z.split(max(1, 2**22 // fit))]) - math.log(fit)   # (k,)
    log_s = torch.logaddexp(math.log(1 - w) + log_kde, math.log(w) + standard_normal_log_prob(z))   # (k,)
    log_w = log_lik(z) + standard_normal_log_prob(z) - log_s           # (k,)
    return iwae_bound(log_w[:, None])                                  # (1,)
