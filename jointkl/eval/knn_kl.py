"""KL divergence between two sample sets by k-nearest-neighbour distances (Wang, Kulkarni & Verdu 2009).

With x_1..x_n ~ P and y_1..y_m ~ Q in R^d, rho_k(i) the distance from x_i to its k-th nearest neighbour
among the other x's and nu_k(i) that to its k-th nearest neighbour among the y's,

    D(P || Q) ~= d/n sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1))       (Wang et al. 2009, eq. 5)

which is consistent (asymptotically unbiased and mean-square consistent) as n, m -> infinity for fixed k.
Used for KL(q(z) || p(z)) of an aggregated posterior (AVB Table 1) and KL to a reference posterior (AVB Fig. 3).

When Q's log-density is known (a prior N(0, I)), `knn_kl_to_density` needs only P's samples:

    D(P || Q) = -H(P) - E_P log q,   H(P) ~= psi(n) - psi(k) + log V_d + d/n sum_i log rho_k(i)

(Kozachenko & Leonenko 1987; V_d the volume of the unit d-ball). Only the entropy is estimated, so it is much
less biased in higher dimensions: for Gaussians in 10-d with n = 4,000 the two-sample estimate was 15-60 % off,
this one within 5 % (k = 1; tests/test_knn_kl.py).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def kth_nn_distance(x: Tensor, y: Tensor, k: int, chunk: int = 512) -> Tensor:
    """Distance from each row of x (n, d) to its k-th nearest row of y (m, d), in chunks of x. (n,)"""
    # topk of k smallest is ~3x faster than kthvalue on CPU
    return torch.cat([torch.cdist(xb, y).topk(k, dim=1, largest=False).values[:, -1] for xb in x.split(chunk)])


def knn_kl(x: Tensor, y: Tensor, k: int = 5) -> float:
    """Estimate KL(P || Q) in nats from samples x ~ P (n, d) and y ~ Q (m, d) (computed in float64)."""
    x, y = torch.as_tensor(x).double().flatten(1), torch.as_tensor(y).double().flatten(1)
    (n, d), m = x.shape, y.shape[0]
    if y.shape[1] != d:
        raise ValueError(f"knn_kl needs samples of one dimension; got {d} and {y.shape[1]}")
    if not 1 <= k < min(n, m + 1):
        raise ValueError(f"knn_kl needs 1 <= k < n and k <= m; got k={k}, n={n}, m={m}")
    rho = kth_nn_distance(x, x, k + 1)      # (n,) the nearest "neighbour" of x_i among the x's is x_i itself
    nu = kth_nn_distance(x, y, k)           # (n,)
    if (rho == 0).any() or (nu == 0).any():
        raise ValueError("knn_kl found repeated points (zero distances); it needs samples of continuous densities")
    return float(d * (nu.log() - rho.log()).mean() + math.log(m / (n - 1)))


def knn_entropy(x: Tensor, k: int = 1) -> float:
    """Kozachenko-Leonenko estimate of the differential entropy H(P) in nats from samples x ~ P (n, d)."""
    x = torch.as_tensor(x).double().flatten(1)
    n, d = x.shape
    if not 1 <= k < n:
        raise ValueError(f"knn_entropy needs 1 <= k < n; got k={k}, n={n}")
    rho = kth_nn_distance(x, x, k + 1)      # (n,) the point itself is its own nearest neighbour
    if (rho == 0).any():
        raise ValueError("knn_entropy found repeated points (zero distances); it needs samples of a continuous density")
    log_unit_ball = d / 2 * math.log(math.pi) - math.lgamma(d / 2 + 1)
    return float(torch.special.digamma(torch.tensor(float(n))) - torch.special.digamma(torch.tensor(float(k)))
                 + log_unit_ball + d * rho.log().mean())


def knn_kl_to_density(x: Tensor, log_q, k: int = 1) -> float:
    """Estimate KL(P || Q) from samples x ~ P (n, d) and Q's log-density log_q: (n, d) -> (n,) (float64 input)."""
    x = torch.as_tensor(x).double().flatten(1)
    return float(-knn_entropy(x, k) - log_q(x).mean())
