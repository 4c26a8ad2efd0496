"""Eight Schools (AVB Sec. 5.1) against known truths: the log-density by hand, the quadrature moments by importance
sampling, exact draws, NUTS vs the exact moments."""
import math
import sys

import numpy as np
import pytest
import torch
import torch.distributions as D

from jointkl.bayes import EightSchools, EightSchoolsConfig
from jointkl.bayes import eight_schools as es_mod
from jointkl.errors import JointKLError

Y, SIGMA = torch.tensor(es_mod.AVB_Y, dtype=torch.float64), torch.tensor(es_mod.AVB_SIGMA, dtype=torch.float64)
BDA_Y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0], dtype=torch.float64)
BDA_SIGMA = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0], dtype=torch.float64)


def log_normal(x, m, s):
    return -0.5 * ((x - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)


def test_log_joint_equals_a_hand_computation():
    """Both priors, row by row with scalar arithmetic (no torch.distributions)."""
    torch.manual_seed(0)
    z = torch.randn(5, 10, dtype=torch.float64) * 1.5
    paper = EightSchools().log_joint(z)
    gelman = EightSchools(EightSchoolsConfig(prior="gelman", data="gelman")).log_joint(z)
    for n, row in enumerate(z.tolist()):
        mu, u, eta = row[0], row[1], row[2:]
        lik = sum(log_normal(float(Y[i]), mu + u * eta[i], float(SIGMA[i])) for i in range(8))
        hand = log_normal(mu, 0, 1) + log_normal(u, 0, 1) + sum(log_normal(e, 0, 1) for e in eta) + lik
        assert paper[n].item() == pytest.approx(hand, abs=1e-10)
        tau = math.exp(u)                              # HalfCauchy(5) density of tau, times d tau / d u = tau
        log_p_u = math.log(2 / (math.pi * 5 * (1 + (tau / 5) ** 2))) + u
        lik = sum(log_normal(float(BDA_Y[i]), mu + tau * eta[i], float(BDA_SIGMA[i])) for i in range(8))
        hand = log_normal(mu, 0, 5) + log_p_u + sum(log_normal(e, 0, 1) for e in eta) + lik
        assert gelman[n].item() == pytest.approx(hand, abs=1e-10)


def test_the_posterior_is_symmetric_under_flipping_tau_and_eta():
    torch.manual_seed(0)
    z = torch.randn(100, 10, dtype=torch.float64)
    flipped = torch.cat([z[:, :1], -z[:, 1:]], 1)
    assert torch.allclose(EightSchools().log_joint(z), EightSchools().log_joint(flipped), atol=1e-12)


@pytest.mark.parametrize("cfg", [EightSchoolsConfig(), EightSchoolsConfig(prior="gelman", data="gelman")])
def test_quadrature_moments_match_importance_sampling_on_the_log_joint(cfg):
    """Brute force that only uses log_joint: self-normalized importance sampling, 200k draws. Proposal: (mu, u)
    from a Student-t 1.5x wider than the posterior, eta_i from its Gaussian conditional (written here again);
    the estimate is consistent whatever the proposal, so a wrong conditional would only cost efficiency."""
    es = EightSchools(cfg)
    ex = es.exact()
    torch.manual_seed(0)
    n = 200_000
    t = D.StudentT(5.0, ex["mean"][:2], 1.5 * ex["var"][:2].sqrt())
    mu_u = t.sample((n,))                                                  # (n, 2)
    mu, tau = mu_u[:, :1], es.tau(mu_u[:, 1:])
    a = es.s_eta
    prec = 1 / a**2 + tau**2 / es.sigma**2                                 # (n, 8)
    cond = D.Normal(tau * (es.y - mu) / es.sigma**2 / prec, prec.rsqrt())
    eta = cond.sample()
    z = torch.cat([mu_u, eta], 1)                                          # (n, 10)
    log_w = es.log_joint(z) - t.log_prob(mu_u).sum(1) - cond.log_prob(eta).sum(1)
    w = torch.softmax(log_w, 0)
    ess = 1 / (w**2).sum()
    mean = (w[:, None] * z).sum(0)
    second = (w[:, None] * z**2).sum(0)
    se2 = ((w[:, None] * (z**2 - second) ** 2).sum(0) / ess).sqrt()         # (10,) standard errors of E[z^2]
    # proposal seeds 0-2: ESS 91k (paper) and 104k (gelman) of 200k; max |z| of the 10 means 2.1 and of the 10 second
    # moments 3.0; log evidence within 0.005 nats; E|tau| within 0.2 %.
    assert ess > 20_000
    assert ((mean - ex["mean"]) / (ex["var"] / ess).sqrt()).abs().max() < 4.5
    assert ((second - ex["var"] - ex["mean"] ** 2) / se2).abs().max() < 4.5
    assert (torch.logsumexp(log_w, 0) - math.log(n)).item() == pytest.approx(ex["log_evidence"].item(), abs=0.02)
    abs_tau = (w * es.tau(z[:, 1]).abs()).sum()
    assert abs_tau.item() == pytest.approx(ex["abs_tau"].item(), rel=0.01)


def test_exact_moments_of_known_cases():
    """The paper's N(0, 1) prior on BDA's data is nearly flat in tau: p(tau | y) ~ N(0, 1) (E tau^2 = 0.9955). With
    the authors' rescaled data tau is bimodal: modes at +-0.62 with 4x the density at 0 (module docstring). Gelman's
    prior on BDA's data: the published posterior means E mu ~ 4.4, E tau ~ 3.6."""
    flat = EightSchools(EightSchoolsConfig(data="gelman")).exact()
    assert flat["var"][1].item() == pytest.approx(0.9955, abs=1e-4)
    ex = EightSchools().exact()
    u, dens = ex["u"], ex["density_u"]
    mode = dens[u > 0].argmax()
    assert u[u > 0][mode].item() == pytest.approx(0.62, abs=0.01)
    assert (dens[u > 0][mode] / dens[u.abs().argmin()]).item() == pytest.approx(4.13, abs=0.05)
    assert torch.trapezoid(dens, u).item() == pytest.approx(1.0, abs=1e-9)
    gel = EightSchools(EightSchoolsConfig(prior="gelman", data="gelman")).exact()
    assert gel["mean"][0].item() == pytest.approx(4.4, abs=0.05) and gel["abs_tau"].item() == pytest.approx(3.6, abs=0.05)


def test_exact_draws_have_the_quadrature_moments():
    es = EightSchools()
    ex = es.exact()
    z = es.exact_sample(100_000, torch.Generator().manual_seed(0))
    # seeds 0-2: max |z| of the 10 means 2.6; variances within 0.9 %; E|tau| within 0.2 %
    assert ((z.mean(0) - ex["mean"]) / (ex["var"] / len(z)).sqrt()).abs().max() < 4.5
    assert ((z.var(0) / ex["var"]) - 1).abs().max() < 0.03
    assert z[:, 1].abs().mean().item() == pytest.approx(ex["abs_tau"].item(), rel=0.01)


def test_nuts_reference_matches_the_exact_moments_and_is_cached(tmp_path, monkeypatch):
    """A short NUTS run (2 chains x (100 + 300), ~15 s) against the quadrature: every mean and second moment within
    a few Monte-Carlo standard errors (from Pyro's effective sample size); the second call reads the cache. A wrong
    target shows at once: the prior alone has Var mu = 0.94 against the posterior's 0.10 (z ~ 30 here)."""
    pytest.importorskip("pyro")
    es = EightSchools()
    ref = es.nuts(chains=2, warmup=100, draws=300, seed=0, cache_dir=tmp_path)
    z = torch.from_numpy(ref["samples"])
    assert z.shape == (600, 10) and ref["ess"].shape == ref["rhat"].shape == (10,)
    zs = es_mod.moments_check(z, es.exact(), torch.from_numpy(ref["ess"]))
    # seeds 0-2: max |z| over the 20 moments 2.3, 1.0, 1.9 (tau crosses between its modes rarely: ESS ~20 of 600)
    assert zs.abs().max() < 4.5, zs
    monkeypatch.setattr(es_mod, "_chain", lambda *a: pytest.fail("the cached reference was recomputed"))
    again = es.nuts(chains=2, warmup=100, draws=300, seed=0, cache_dir=tmp_path)
    assert np.array_equal(again["samples"], ref["samples"]) and len(list(tmp_path.iterdir())) == 1


def test_errors_are_one_line_and_say_what_to_do(monkeypatch, tmp_path):
    with pytest.raises(JointKLError, match="choose paper or gelman"):
        EightSchools(EightSchoolsConfig(prior="cauchy"))
    with pytest.raises(JointKLError, match="choose avb or gelman"):
        EightSchools(EightSchoolsConfig(data="rats"))
    with pytest.raises(JointKLError, match=r"\(N, 10\) batch"):
        EightSchools().log_joint(torch.zeros(10))
    monkeypatch.setitem(sys.modules, "pyro", None)                           # import pyro raises ImportError
    with pytest.raises(JointKLError, match="pip install"):
        EightSchools().nuts(chains=1, warmup=1, draws=1, cache_dir=tmp_path)
