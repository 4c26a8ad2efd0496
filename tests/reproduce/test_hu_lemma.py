"""Hu Lemma 1 (eq. 6) and eq. 8 by exact sums: the generator's gradient against a hand-derived closed form, and
the right sides of the lemma against it; the JSD term is needed for the equality (the check can fail)."""
from __future__ import annotations

import math

import pytest
import torch

from jointkl.reproduce import hu_lemma as h

THETA0 = [(0.0, 1.0), (-1.0, 0.5), (2.5, 1.5), (1.0, 0.3)]


def loss_grad_by_hand(theta0: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """∇θ -1/2 E_{p_gθ}[log D] = -1/2 Cov_{p_gθ0}(∇θ log p_gθ, log D): for the Gaussian on the grid the
    unnormalized log-density's gradient is ((x - μ)/σ², (x - μ)²/σ²) and normalizing subtracts its mean."""
    mu, sigma = float(theta0[0]), math.exp(float(theta0[1]))
    p = h.gaussian_on_grid(theta0)
    u = torch.stack([(h.X - mu) / sigma ** 2, (h.X - mu) ** 2 / sigma ** 2])       # (2, K)
    u = u - (u * p).sum(1, keepdim=True)
    return -(u * p * d.log()).sum(1) / 2


def discriminators(theta0):
    return {"optimal": h.optimal_d(h.gaussian_on_grid(theta0)), "fixed": h.other_d(),
            "random": torch.rand(len(h.X), generator=torch.Generator().manual_seed(0), dtype=torch.float64)}


@pytest.mark.parametrize("mu,sigma", THETA0)
@pytest.mark.parametrize("which", ["optimal", "fixed", "random"])
def test_eq6_equals_the_generator_gradient_for_any_discriminator(mu, sigma, which):
    t0 = h.theta(mu, sigma)
    d = discriminators(t0)[which]
    truth = loss_grad_by_hand(t0, d)
    g = h.sides(t0, d)
    assert truth.abs().max() > 1e-3                                       # not a trivial zero gradient
    torch.testing.assert_close(g["loss"], truth, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g["eq6"], truth, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mu,sigma", THETA0)
def test_eq8_at_the_optimal_discriminator(mu, sigma):
    t0 = h.theta(mu, sigma)
    d = h.optimal_d(h.gaussian_on_grid(t0))
    torch.testing.assert_close(h.sides(t0, d)["eq8"], loss_grad_by_hand(t0, d), rtol=1e-10, atol=1e-12)


def test_eq8_needs_the_optimal_discriminator_and_eq6_needs_the_jsd():
    t0 = h.theta(-1.0, 0.5)
    d = h.other_d()
    truth = loss_grad_by_hand(t0, d)
    assert (h.sides(t0, d)["eq8"] - truth).abs().max() > 1e-2
    p0 = h.gaussian_on_grid(t0)
    no_jsd = h.grad_at(lambda t: h.lemma1_rhs(h.gaussian_on_grid(t), p0, d)
                       + h.jsd(h.gaussian_on_grid(t), h.P_DATA), t0)                # eq. 6 without its -JSD
    assert (no_jsd - truth).abs().max() > 1e-2


def test_a_uniform_discriminator_stops_the_generator():
    """Hu after eq. 8: when q_φ0(y|x) guesses uniformly, the KL and JSD gradients cancel."""
    t0 = h.theta(0.5, 0.8)
    g = h.sides(t0, torch.full_like(h.X, 0.5))
    assert g["loss"].abs().max() < 1e-14 and g["eq6"].abs().max() < 1e-14
    assert h.grad_at(lambda t: h.jsd(h.gaussian_on_grid(t), h.P_DATA), t0).abs().max() > 1e-2   # each term moves


def test_eq6_holds_for_a_free_categorical_generator():
    """Not a property of the Gaussian family: p_gθ = softmax(θ) over the K points, θ0 random."""
    t0 = torch.randn(len(h.X), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    g = h.sides(t0, h.optimal_d(torch.softmax(t0, 0)), family=lambda t: torch.softmax(t, 0))
    p = torch.softmax(t0, 0)
    d = h.optimal_d(p)
    truth = -(p * (d.log() - (p * d.log()).sum())) / 2                    # ∂/∂θ_k of -1/2 Σ softmax(θ) log D
    torch.testing.assert_close(g["eq6"], truth, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g["eq8"], truth, rtol=1e-10, atol=1e-12)


def test_entry_reports_both_gradients_and_reproduces(tmp_path):
    from jointkl.reproduce import run_tables
    result = run_tables(["hu-lemma1"], tmp_path, scale="quick")["hu-lemma1"]
    assert result.verdict == "reproduced"
    sided = [r for r in result.rows if r.paper is not None]
    assert len(sided) == 3 * 6 and all(abs(r.ours[0] - r.paper) <= 1e-9 * max(abs(r.paper), 1e-3) for r in sided)
    assert all(p.exists() for p in result.figures)
    report = (tmp_path / "report.md").read_text()
    assert "hu-lemma1" in report and "eq. 6" in report and "eq. 8" in report
