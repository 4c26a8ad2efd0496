"""Adversarial density ratio: a trained logistic discriminator's logit is the log density ratio; the f-GAN value
function (DALI eq. 8) at its optimum is the KL."""

import math

import pytest
import torch
import torch.distributions as D
from torch import nn
from torch.distributions import Normal

from jointkl.divergences.ratio import GENERATOR_LOSSES, discriminator_loss, generator_loss, kl_value, log_ratio


def test_trained_discriminator_logit_is_exact_log_density_ratio():
    torch.manual_seed(0)
    p_real, p_fake = Normal(0.0, 1.0), Normal(0.5, 1.2)
    net = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
    steps, batch = 800, 2048
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=1e-5)
    for _ in range(steps):
        x_real = p_real.sample((batch, 1))  # (B, 1)
        x_fake = p_fake.sample((batch, 1))  # (B, 1)
        loss = discriminator_loss(net(x_real), net(x_fake))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    grid = torch.linspace(-2.0, 2.0, 401).unsqueeze(1)  # (G, 1)
    exact = p_real.log_prob(grid) - p_fake.log_prob(grid)  # (G, 1)
    with torch.no_grad():
        estimate = log_ratio(net(grid))  # (G, 1)
    assert (estimate - exact).abs().max().item() < 0.1


def _discrete_case():
    """Two distributions on {0, 1, 2} and equal-size batches whose empirical laws are exactly them."""
    p_real = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    p_fake = torch.tensor([0.1, 0.3, 0.6], dtype=torch.float64)
    x_real = torch.tensor([0] * 5 + [1] * 3 + [2] * 2)  # (10,)
    x_fake = torch.tensor([0] * 1 + [1] * 3 + [2] * 6)  # (10,)
    return p_real, p_fake, x_real, x_fake


def test_discriminator_loss_at_optimum_is_two_log_two_minus_two_js():
    p_real, p_fake, x_real, x_fake = _discrete_case()
    logit = (p_real / p_fake).log()  # (3,) the optimal logit per atom, Su 2018 eq. 18
    loss = discriminator_loss(logit[x_real], logit[x_fake])
    m = 0.5 * (p_real + p_fake)
    js = 0.5 * (p_real * (p_real / m).log()).sum() + 0.5 * (p_fake * (p_fake / m).log()).sum()
    assert loss.item() == pytest.approx(2 * math.log(2) - 2 * js.item(), abs=1e-12)


def test_discriminator_loss_is_stationary_and_minimal_at_the_log_ratio():
    p_real, p_fake, x_real, x_fake = _discrete_case()
    logit = (p_real / p_fake).log().requires_grad_(True)  # (3,)
    loss = discriminator_loss(logit[x_real], logit[x_fake])
    (grad,) = torch.autograd.grad(loss, logit)
    assert grad.abs().max().item() < 1e-12
    for delta in (torch.tensor([0.1, 0.0, 0.0]), torch.tensor([0.0, -0.2, 0.3])):
        perturbed = logit.detach() + delta.double()  # (3,)
        assert discriminator_loss(perturbed[x_real], perturbed[x_fake]).item() > loss.item()


def test_discriminator_loss_hand_case():
    logit_real = torch.tensor([0.0, math.log(3.0)])
    logit_fake = torch.tensor([0.0])
    # -log sigmoid(0) = log 2, -log sigmoid(log 3) = log(4/3); -log(1 - sigmoid(0)) = log 2
    expected = 0.5 * (math.log(2) + math.log(4 / 3)) + math.log(2)
    assert discriminator_loss(logit_real, logit_fake).item() == pytest.approx(expected, rel=1e-6)


def test_generator_loss_hand_values():
    logit_fake = torch.tensor([0.0, math.log(3.0)])  # D = 1/2, 3/4
    # minimax: E log(1 - D) = (log 1/2 + log 1/4) / 2
    assert generator_loss(logit_fake, "minimax").item() == pytest.approx(-1.5 * math.log(2), rel=1e-6)
    # nonsaturating: -E log D = -(log 1/2 + log 3/4) / 2
    expected = 0.5 * (math.log(2) + math.log(4 / 3))
    assert generator_loss(logit_fake, "nonsaturating").item() == pytest.approx(expected, rel=1e-6)
    assert GENERATOR_LOSSES == ("minimax", "nonsaturating")


def test_generator_loss_unknown_kind_lists_choices():
    with pytest.raises(ValueError, match="minimax, nonsaturating"):
        generator_loss(torch.zeros(3), "wasserstein")


def test_log_ratio_is_identity():
    logit = torch.randn(4, 2)
    assert torch.equal(log_ratio(logit), logit)


def test_kl_value_at_optimum_is_the_kl():
    """E_P T* - E_Q exp(T* - 1) = KL(P || Q) at T* = 1 + log p/q (eq. 8), smaller anywhere else."""
    one = torch.ones((), dtype=torch.float64)
    p, q = D.Normal(0 * one, one), D.Normal(0.5 * one, 1.5 * one)
    u = (torch.arange(200_000, dtype=torch.float64) + 0.5) / 200_000      # stratified quantiles
    xp, xq = p.icdf(u), q.icdf(u)                                          # (200000,) each
    t = lambda x: 1 + p.log_prob(x) - q.log_prob(x)                        # noqa: E731  T*
    kl = D.kl_divergence(p, q)
    assert abs(kl_value(t(xp), t(xq)) - kl) < 1e-5
    for c in (-0.3, 0.2):                                                  # a shift or a tilt lowers the value
        assert kl_value(t(xp) + c, t(xq) + c) < kl - 1e-3
        assert kl_value(t(xp) + c * xp, t(xq) + c * xq) < kl - 1e-3
