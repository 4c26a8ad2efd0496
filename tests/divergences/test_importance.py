"""Importance weighting on a linear-Gaussian model whose marginal likelihood is known exactly."""

import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal

from jointkl.divergences.importance import iwae_bound, self_normalized_weights

SIGMA = 0.5
W = torch.tensor([[1.0, -0.5], [0.3, 0.8], [-0.7, 0.4]], dtype=torch.float64)  # (3, 2)
B = torch.tensor([0.2, -0.1, 0.5], dtype=torch.float64)  # (3,)


def _model():
    """p(z) = N(0, I_2), p(x|z) = N(W z + b, sigma^2 I_3); returns the observations and log p(x)."""
    torch.manual_seed(0)
    marginal = MultivariateNormal(B, W @ W.T + SIGMA**2 * torch.eye(3, dtype=torch.float64))
    x = marginal.sample((5,))  # (N, 3)
    return x, marginal.log_prob(x)  # (N, 3), (N,)


def _proposal(x):
    """q(z|x) = N(mu(x), diag(1.5 s)^2): exact posterior mean, diagonal std inflated x1.5; also the posterior."""
    precision = torch.eye(2, dtype=torch.float64) + W.T @ W / SIGMA**2  # (2, 2)
    cov = torch.linalg.inv(precision)  # (2, 2)
    mu = (x - B) @ W / SIGMA**2 @ cov  # (N, 2)
    inflated = torch.diag(1.5**2 * cov.diagonal())  # (2, 2)
    return MultivariateNormal(mu, inflated), MultivariateNormal(mu, cov)


def _log_w(x, n):
    """n draws of log w = log p(x|z) + log p(z) - log q(z|x), z ~ q(z|x): shape (n, N)."""
    q, _ = _proposal(x)
    z = q.sample((n,))  # (n, N, 2)
    prior = Independent(Normal(torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)), 1)
    lik = Independent(Normal(z @ W.T + B, SIGMA), 1)
    return lik.log_prob(x) + prior.log_prob(z) - q.log_prob(z)  # (n, N)


def _mean_bound(log_w, k):
    """Average of L_k over the disjoint k-sized groups of log_w (n, N): estimates E[L_k] per x, (N,)."""
    n, N = log_w.shape
    groups = log_w[: n - n % k].reshape(-1, k, N).transpose(0, 1)  # (k, G, N)
    bounds = iwae_bound(groups.reshape(k, -1)).reshape(-1, N)  # (G, N)
    return bounds.mean(dim=0), bounds.std(dim=0) / math.sqrt(bounds.shape[0])  # (N,), (N,)


def test_iwae_bound_increases_with_k_and_approaches_log_px():
    x, log_px = _model()
    torch.manual_seed(1)
    log_w = _log_w(x, 200_000)  # (n, N)
    means = {}
    for k in (1, 10, 100, 1000):
        mean, se = _mean_bound(log_w, k)  # (N,), (N,)
        assert (mean <= log_px + 3 * se + 1e-9).all(), f"L_{k} exceeds log p(x)"
        means[k] = mean.mean().item()
    assert means[1] < means[10] < means[100] < means[1000]
    q, posterior = _proposal(x)
    gap = torch.distributions.kl_divergence(q, posterior)  # (N,) ELBO = log p(x) - KL(q || posterior)
    elbo = (log_px - gap).mean().item()
    assert means[1] == pytest.approx(elbo, abs=0.01)
    assert abs(means[1000] - log_px.mean().item()) < 0.05
    assert abs(means[1] - log_px.mean().item()) > 0.05  # the proposal is really imperfect


def test_k1_bound_is_the_elbo_estimate():
    x, _ = _model()
    torch.manual_seed(2)
    log_w = _log_w(x, 1)  # (1, N)
    assert torch.equal(iwae_bound(log_w), log_w[0])


def test_iwae_bound_hand_case():
    log_w = torch.log(torch.tensor([[1.0, 2.0], [3.0, 2.0]]))  # (k=2, B=2)
    expected = torch.log(torch.tensor([2.0, 2.0]))
    torch.testing.assert_close(iwae_bound(log_w), expected)


def test_self_normalized_weights():
    torch.manual_seed(3)
    log_w = torch.randn(7, 4)
    w = self_normalized_weights(log_w)  # (7, 4)
    torch.testing.assert_close(w.sum(dim=0), torch.ones(4))
    torch.testing.assert_close(self_normalized_weights(log_w, dim=1).sum(dim=1), torch.ones(7))
    torch.testing.assert_close(self_normalized_weights(torch.full((5,), 3.7)), torch.full((5,), 0.2))
    hand = self_normalized_weights(torch.log(torch.tensor([1.0, 2.0, 3.0])))
    torch.testing.assert_close(hand, torch.tensor([1 / 6, 2 / 6, 3 / 6]))
