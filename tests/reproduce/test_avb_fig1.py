"""avb-fig1's truth against closed forms: the targets' normalizers, the exact draws, and the KL score on a Gaussian
whose KL to the target is computed exactly."""
from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate, special

from jointkl.reproduce.avb_fig1 import N_DRAWS, Truth, kl_to_truth


def test_normalizers_match_closed_forms():
    # ring: int exp(-(r^2 - 2)^2) 2 pi r dr = pi int_0^inf exp(-(u - 2)^2) du = pi^1.5 / 2 (1 + erf 2)
    assert Truth("ring").log_z == pytest.approx(math.log(math.pi ** 1.5 / 2 * (1 + special.erf(2))), abs=1e-4)
    # banana: z1 given z2 is Gaussian, int dz1 = sqrt(pi / 2) exp(-(z2^2 - 1)^2 / 2), then a 1-d quadrature
    inner, _ = integrate.quad(lambda b: math.exp(-(b * b - 1) ** 2 / 2), -math.inf, math.inf)
    assert Truth("banana").log_z == pytest.approx(math.log(math.sqrt(math.pi / 2) * inner), abs=1e-4)


def test_exact_draws_have_the_targets_moments():
    z = Truth("banana").sample(200_000, torch.Generator().manual_seed(0))
    # E[z1 | z2] = (1 + z2^2) / 2 and Var[z1 | z2] = 1/4, so E[z1] = (1 + E z2^2) / 2 and Var of the residual 1/4
    resid = z[:, 0] - (1 + z[:, 1] ** 2) / 2
    assert resid.mean().item() == pytest.approx(0, abs=0.01)
    assert resid.var().item() == pytest.approx(0.25, rel=0.02)
    r2 = (Truth("ring").sample(200_000, torch.Generator().manual_seed(1)) ** 2).sum(1)
    # on the ring u = |z|^2 has density prop. to exp(-(u - 2)^2) on u >= 0: mean 2 + e^-4 / (sqrt(pi) (1 + erf 2))
    assert r2.mean().item() == pytest.approx(2 + math.exp(-4) / (math.sqrt(math.pi) * (1 + special.erf(2))), abs=0.01)


@pytest.mark.parametrize("name", ["ring", "banana"])
def test_kl_score_matches_the_exact_kl_of_a_gaussian(name):
    truth = Truth(name)
    q = torch.distributions.MultivariateNormal(torch.tensor([1.2, 0.3], dtype=torch.float64),
                                               torch.tensor([[0.5, 0.1], [0.1, 0.4]], dtype=torch.float64))
    torch.manual_seed(0)
    z = q.sample((N_DRAWS,))
    exact = float((q.log_prob(z) - truth.log_prob(z)).mean())       # Monte-Carlo over the same draws
    assert kl_to_truth(z, truth) == pytest.approx(exact, abs=0.05)
    assert exact > 0.5                                               # far from the target: the check has teeth
    assert abs(kl_to_truth(truth.sample(N_DRAWS, torch.Generator().manual_seed(0)), truth)) < 0.05
