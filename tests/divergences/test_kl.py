"""KL divergence: Monte-Carlo estimates against analytic / quadrature truth."""

import math

import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from jointkl.divergences.kl import kl, mc_kl


def _diag_gaussian(loc, scale):
    return Independent(Normal(loc, scale), 1)


def test_mc_kl_matches_analytic_diagonal_gaussians():
    torch.manual_seed(0)
    q = _diag_gaussian(torch.tensor([0.3, -0.5, 1.0]), torch.tensor([0.8, 1.5, 0.6]))
    p = _diag_gaussian(torch.tensor([0.0, 0.0, 0.5]), torch.tensor([1.0, 1.0, 1.2]))
    exact = torch.distributions.kl_divergence(q, p)  # ()
    n = 200_000
    z = q.sample((n,))  # (n, 3)
    log_ratio = q.log_prob(z) - p.log_prob(z)  # (n,)
    se = log_ratio.std() / math.sqrt(n)
    torch.manual_seed(0)
    estimate = mc_kl(q, p, n)
    assert estimate.shape == exact.shape
    assert abs(estimate - exact) < 3 * se
    assert abs(estimate - exact) / exact < 1e-2


def test_mc_kl_keeps_batch_shape():
    torch.manual_seed(1)
    q = _diag_gaussian(torch.zeros(5, 4), torch.ones(5, 4))
    p = _diag_gaussian(torch.ones(5, 4), torch.ones(5, 4))
    assert mc_kl(q, p, 7).shape == (5,)
    assert kl(q, p).shape == (5,)


def test_kl_uses_analytic_path_when_registered():
    torch.manual_seed(2)
    q = _diag_gaussian(torch.randn(4, 2), torch.rand(4, 2) + 0.5)
    p = _diag_gaussian(torch.randn(4, 2), torch.rand(4, 2) + 0.5)
    assert torch.equal(kl(q, p, n=3), torch.distributions.kl_divergence(q, p))
    q1, p1 = Normal(0.2, 0.7), Normal(-0.1, 1.3)
    assert torch.equal(kl(q1, p1), torch.distributions.kl_divergence(q1, p1))


def test_kl_falls_back_to_monte_carlo_without_registered_kl():
    torch.manual_seed(3)
    q = MixtureSameFamily(Categorical(torch.tensor([0.3, 0.7])), Normal(torch.tensor([-1.0, 1.5]), torch.tensor([0.5, 0.8])))
    p = Normal(torch.tensor(0.0), torch.tensor(1.5))
    # truth by trapezoid quadrature of q(z) (log q(z) - log p(z)) on a fine grid
    grid = torch.linspace(-12.0, 12.0, 200_001, dtype=torch.float64)  # (G,)
    log_q = q.log_prob(grid.float()).double()  # (G,)
    log_p = p.log_prob(grid.float()).double()  # (G,)
    truth = torch.trapezoid(log_q.exp() * (log_q - log_p), grid).item()
    n = 200_000
    estimate = kl(q, p, n=n)
    z = q.sample((n,))  # (n,)
    se = (q.log_prob(z) - p.log_prob(z)).std().item() / math.sqrt(n)
    assert abs(estimate.item() - truth) < 4 * se
    assert abs(mc_kl(q, p, 2_000_000).item() - truth) < 5e-3


def test_mc_kl_gradient_matches_analytic_gradient():
    torch.manual_seed(4)
    loc = torch.tensor([0.5, -1.0], requires_grad=True)
    log_scale = torch.tensor([0.2, -0.4], requires_grad=True)
    p = _diag_gaussian(torch.tensor([0.0, 0.3]), torch.tensor([1.0, 0.8]))

    exact = torch.distributions.kl_divergence(_diag_gaussian(loc, log_scale.exp()), p)
    g_loc_exact, g_scale_exact = torch.autograd.grad(exact, [loc, log_scale])

    estimate = mc_kl(_diag_gaussian(loc, log_scale.exp()), p, 200_000)
    g_loc, g_scale = torch.autograd.grad(estimate, [loc, log_scale])
    torch.testing.assert_close(g_loc, g_loc_exact, atol=2e-2, rtol=0)
    torch.testing.assert_close(g_scale, g_scale_exact, atol=2e-2, rtol=0)


def test_mc_kl_rejects_zero_samples():
    q, p = Normal(0.0, 1.0), Normal(1.0, 1.0)
    try:
        mc_kl(q, p, 0)
    except ValueError as err:
        assert "n >= 1" in str(err)
    else:
        raise AssertionError("mc_kl(n=0) should raise")
