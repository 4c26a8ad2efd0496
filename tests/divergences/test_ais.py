"""AIS (jointkl.divergences.ais) against known normalizers: a linear-Gaussian model's analytic log p(x), a bimodal
target with a closed-form integral, importance sampling at T = 1, and a trained VAE's IWAE and ELBO."""
import math

import pytest
import torch
import torch.distributions as D

import jointkl as jk
from jointkl.data import binarize_fixed, load
from jointkl.errors import JointKLError
from jointkl.divergences.ais import AISConfig, ais, ais_config, schedule
from jointkl.eval.suite import evaluate
from jointkl.objectives.vae import VAE, VAEConfig


def linear_gaussian_vae() -> tuple[VAE, torch.Tensor, torch.Tensor]:
    """A VAE with linear nets set to z ~ N(0, I), x = W z + b + 0.5 eps: log p(x) = log N(x; b, W W^T + 0.25 I)."""
    model = VAE(VAEConfig(latent_dim=2, layers=0, decoder="gaussian"), (3,), "continuous")
    W, b, s = torch.tensor([[1.0, 0.5], [-0.3, 0.8], [0.2, -1.0]]), torch.tensor([0.1, -0.2, 0.3]), 0.5
    with torch.no_grad():
        model.p_x.net.net[0].weight.copy_(W), model.p_x.net.net[0].bias.copy_(b)
        model.p_x.log_std.fill_(math.log(s))
    x = torch.tensor([[0.5, -1.0, 1.2], [-1.0, 0.3, 0.0], [3.0, 2.0, -2.0], [0.0, 0.0, 0.0]])
    return model, x, D.MultivariateNormal(b, W @ W.T + s**2 * torch.eye(3)).log_prob(x)


def test_matches_linear_gaussian_log_px():
    model, x, log_px = linear_gaussian_vae()
    torch.manual_seed(0)
    est = model.log_likelihood(x, "ais", k=50, steps=1500, leapfrog=3, chunk=2)
    # seeds 0-5: max error 0.032 nats over the four x (ideal transitions would leave a per-chain log-weight std of
    # 0.06-0.25 at 1,500 steps; the far-out x = (3, 2, -2) is the hardest)
    assert (est - log_px).abs().max() < 0.1
    # importance sampling from the prior with as many likelihood evaluations is far off on that example
    torch.manual_seed(0)
    is_prior = model.log_likelihood(x, "ais", k=5, steps=1)
    assert (is_prior - log_px).abs().max() > 1.0


def test_bimodal_target_with_known_integral():
    """p(z) = N(0, I) in 2-d, p(x|z) = N(z; m, s^2 I) + N(z; -m, s^2 I) (unnormalized in z):
    the integral is 2 N(m; 0, (1 + s^2) I); the two modes are 3 prior std apart."""
    m, s = torch.tensor([1.5, 1.5]), 0.2
    log_prior = lambda z: D.Normal(0.0, 1.0).log_prob(z).sum(-1)                      # noqa: E731
    log_lik = lambda z: torch.logaddexp(D.Normal(m, s).log_prob(z).sum(-1),           # noqa: E731
                                        D.Normal(-m, s).log_prob(z).sum(-1))
    exact = math.log(2) + D.Normal(0.0, math.sqrt(1 + s**2)).log_prob(m).sum()
    torch.manual_seed(0)
    est = ais(log_prior, log_lik, torch.randn(50, 8, 2), AISConfig(steps=1000, chains=50, leapfrog=3))   # 8 repeats
    # seeds 0-5: mean error <= 0.022 nats, worst repeat 0.088
    assert abs(float(est.mean() - exact)) < 0.05
    assert (est - exact).abs().max() < 0.15


def test_one_step_is_importance_sampling_from_the_prior():
    log_prior = lambda z: D.Normal(0.0, 1.0).log_prob(z).sum(-1)                      # noqa: E731
    log_lik = lambda z: -(z - 1).pow(2).sum(-1)                                         # noqa: E731
    z0 = torch.randn(7, 3, 2)                                                           # (C, B, d)
    est = ais(log_prior, log_lik, z0, AISConfig(steps=1, chains=7))
    assert torch.allclose(est, torch.logsumexp(log_lik(z0).double(), 0) - math.log(7))


def test_schedules_run_from_zero_to_one():
    for kind in ("sigmoid", "linear"):
        b = schedule(AISConfig(steps=50, schedule=kind))
        assert b[0] == 0 and b[-1] == 1 and (b.diff() > 0).all() and b.numel() == 51
    sig = schedule(AISConfig(steps=50)).diff()
    assert sig[0] < sig[25] > sig[-1]                                    # dense near both ends


def test_bad_options_are_one_line_errors():
    with pytest.raises(JointKLError, match="unknown AIS option 'stepz'"):
        ais_config(stepz=3)
    with pytest.raises(JointKLError, match="steps >= 1"):
        AISConfig(steps=0)
    with pytest.raises(JointKLError, match="schedule"):
        AISConfig(schedule="cosine")
    model, x, _ = linear_gaussian_vae()
    with pytest.raises(JointKLError, match="apply to method='ais' only"):
        model.log_likelihood(x, "iwae", k=2, steps=10)


def test_trained_vae_ais_above_iwae_above_elbo(tmp_path):
    """On binarized 8x8 digits: E[AIS] -> log p(x) >= IWAE(k=1000) >= ELBO; AIS may fall below IWAE only by noise."""
    model = jk.train("vae", data="digits", steps=600, out=tmp_path / "vae", latent_dim=4, hidden=64, layers=1,
                     binarize="dynamic", log_every=300, ckpt_every=600, device="cpu")
    x = binarize_fixed(load("digits").test[:60])
    torch.manual_seed(0)
    elbo = model.log_likelihood(x, "elbo", k=1000)
    iwae = model.log_likelihood(x, "iwae", k=1000)
    ais_ = model.log_likelihood(x, "ais", k=5, steps=300)
    gap = iwae - elbo                                                    # seeds 0-2: mean 0.14-0.17, min >= 0.03
    assert gap.mean() > 0.05 and gap.min() > 0
    d = ais_ - iwae                                                      # paired per example
    # seeds 0-2: mean difference -0.01 to +0.02 nats with a standard error of ~0.02
    assert d.mean() > -3 * d.std() / len(d) ** 0.5 - 0.01
    # and it is an estimate of the same number, not a looser bound: within 0.1 nats on average
    assert d.mean().abs() < 0.1


def test_suite_ais_metric(tmp_path):
    model, x, log_px = linear_gaussian_vae()
    ds = jk.data.Dataset("lin", x, x, "continuous")
    out = evaluate(model, ds, ["ais"], ais={"steps": 200, "chains": 5, "n": 3})
    assert out["ais"] == pytest.approx(float(log_px[:3].mean()), abs=0.1)
    with pytest.raises(JointKLError, match="unknown AIS option"):
        evaluate(model, ds, ["ais"], ais={"stepz": 2})
