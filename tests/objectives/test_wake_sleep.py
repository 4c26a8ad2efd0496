"""Wake-sleep (Hu eq. 14) against known truths: its exact log-likelihood (by enumeration) is normalized and
climbs to the maximum-likelihood optimum -log 4, its sleep phase matches the exact posterior marginals, and each
phase updates its own side."""
import itertools
import math

import pytest
import torch

import jointkl as jk
from jointkl.data import load as load_data
from jointkl.errors import JointKLError
from jointkl.joints import Bernoulli


# --- wake-sleep (Hu eq. 14) --------------------------------------------------------------------------------

BINARY4 = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4))).view(16, 1, 2, 2)   # every 2x2 image


def log_p(m, x, hs):
    """log p(x, h_1..h_L) from the nets, by hand: Bernoulli(h_L; prior), p(h_l | h_{l+1}), p(x | h_1). (B,)"""
    lp = torch.distributions.Bernoulli(logits=m.prior_logits).log_prob(hs[-1]).sum(-1)
    for l, net in enumerate(m.p_h):
        lp = lp + net(hs[l + 1]).log_prob(hs[l])
    return lp + m.p_x(hs[0]).log_prob(x)


def exact_posterior(m, x):
    """p(x) and the posterior marginals p(h_i = 1 | x) by enumerating all latent states. (N,), (N, d)"""
    hs = m.all_latents()                                                    # [(M, d)]
    log_joint = torch.stack([log_p(m, x.expand(len(hs[0]), *x.shape[1:]), hs) for x in x.split(1)])   # (N, M)
    post = (log_joint - log_joint.logsumexp(1, keepdim=True)).exp()
    return log_joint.logsumexp(1).exp(), post @ hs[0]


def test_wake_sleep_exact_likelihood_is_normalized_and_matches_importance_sampling(tmp_path):
    """Enumeration: sum over all 16 images of p(x) = 1 and it equals logsumexp of log p(x, h); IWAE with
    k = 5000 samples of q agrees with it (measured |diff| <= 0.003 over seeds 0-2) and the ELBO lies below it."""
    m = jk.train("wake_sleep", data="binary2x2", steps=200, out=tmp_path / "r", latent_dim=3, layers=1,
                 hidden=32, lr=1e-2, batch_size=64, log_every=50, ckpt_every=200, device="cpu")
    with torch.no_grad():
        px, _ = exact_posterior(m, BINARY4)
        exact = m.log_likelihood(BINARY4, "exact")                          # (16,)
    torch.testing.assert_close(exact.exp().sum(), torch.tensor(1.0), rtol=0, atol=1e-5)
    torch.testing.assert_close(exact, px.log(), rtol=0, atol=1e-5)
    torch.manual_seed(0)
    x = load_data("binary2x2").test                                          # the four one-hot images
    assert (m.log_likelihood(x, "iwae", k=5000) - m.log_likelihood(x, "exact")).abs().max() < 0.02
    assert (m.log_likelihood(x, "elbo", k=5000) <= m.log_likelihood(x, "exact") + 0.005).all()   # MC error ~1e-3


def test_wake_sleep_climbs_to_the_maximum_likelihood_optimum(tmp_path):
    """binary2x2 is uniform over four images, so the exact ML optimum is log p(x) = -log 4 = -1.386 (the
    model, 3 latent bits, can represent it). The exact log-likelihood by enumeration starts near -2.9 and
    wake-sleep brings it to the optimum. Measured at 1,000 steps over seeds 0-2: -1.396, -1.390, -1.389
    (from -2.77, -2.94, -2.89; the independent-pixel plateau is -2.249)."""
    x, opt = load_data("binary2x2").test, -math.log(4)
    opts = dict(latent_dim=3, layers=1, hidden=32, lr=1e-2, batch_size=64, log_every=100, ckpt_every=250,
                keep_ckpts=10, device="cpu")
    jk.train("wake_sleep", data="binary2x2", steps=1000, seed=1, out=tmp_path / "r", **opts)
    ll = [float(jk.load(tmp_path / "r", device="cpu", step=s).log_likelihood(x, "exact").mean())
          for s in (250, 500, 750, 1000)]
    torch.manual_seed(1)                                                     # the run's initialization
    from jointkl.objectives.wake_sleep import WakeSleep, WakeSleepConfig
    init = WakeSleep(WakeSleepConfig(latent_dim=3, layers=1, hidden=32), (1, 2, 2), "binary")
    assert float(init.log_likelihood(x, "exact").mean()) < -2.5
    assert ll[-1] > opt - 0.03 and ll[-1] <= opt + 1e-6                     # the optimum bounds it
    assert ll[-1] > ll[0] + 0.1


def test_sleep_phase_matches_the_exact_posterior_marginals():
    """At a fixed generator the sleep phase minimizes E_p(x) KL(p(h|x) || q(h|x)), whose optimum over
    factorial q is the exact posterior marginals q_i(x) = p(h_i = 1 | x). Random generator (weights ~
    N(0, 2^2)), 800 sleep steps; the excess KL E_p(x) sum_i KL(Bern(p_i) || Bern(q_i)) falls below 0.01
    nats. Measured over seeds 0-2: 0.0044, 0.0021, 0.0008 nats; p(x)-weighted max error 0.029, 0.019, 0.014."""
    from jointkl.objectives.wake_sleep import WakeSleep, WakeSleepConfig
    torch.manual_seed(0)
    m = WakeSleep(WakeSleepConfig(latent_dim=3, layers=1, hidden=64), (4,), "binary")
    m.p_x = Bernoulli(3, 4, layers=0)                                        # a logistic generator layer
    with torch.no_grad():
        for p in [m.prior_logits, *m.p_x.parameters()]:
            p.normal_(0, 2.0)
    x = BINARY4.flatten(1)
    kl_bern = lambda a, b: (a * (a / b).log() + (1 - a) * ((1 - a) / (1 - b)).log()).sum(1)   # noqa: E731

    def excess_kl():
        with torch.no_grad():
            px, marg = exact_posterior(m, x)
            return float((px * kl_bern(marg.clamp(1e-9, 1 - 1e-9), m.encode(x))).sum()), px, marg
    before = excess_kl()[0]
    sleep = next(p for p in m.players() if p.name == "sleep")
    opt = torch.optim.Adam(sleep.params, lr=1e-2)
    for _ in range(800):
        loss, _ = m.loss("sleep", torch.zeros(1024, 4))                       # dreams; the data batch is unused
        opt.zero_grad()
        loss.backward(inputs=sleep.params)
        opt.step()
    after, px, marg = excess_kl()
    assert after < 0.01 < before
    assert float((px * (m.encode(x) - marg).abs().max(1).values).sum()) < 0.05


def test_wake_sleep_phases_update_their_own_side(tmp_path, cli):
    """wake: gradient only on the generator and equal to -grad log p(x, h) at q-samples; sleep: only on q."""
    from jointkl.objectives.wake_sleep import WakeSleep, WakeSleepConfig
    torch.manual_seed(0)
    m = WakeSleep(WakeSleepConfig(latent_dim=4, stochastic_layers=2, hidden=8, layers=1), (1, 2, 2), "binary")
    wake, sleep = m.players()
    x = load_data("binary2x2").test.repeat(4, 1, 1, 1)
    for pl, other in ((wake, sleep), (sleep, wake)):
        m.zero_grad(set_to_none=True)
        loss, _ = m.loss(pl.name, x)
        loss.backward(inputs=pl.params)
        assert all(p.grad is None for p in other.params) and any(p.grad is not None for p in pl.params)
    torch.manual_seed(4)
    loss, _ = m.loss("wake", x)
    torch.manual_seed(4)
    hs = [m.q_h[0](x).sample()]                                              # h ~ q(h|x), bottom-up
    hs.append(m.q_h[1](hs[0]).sample())
    torch.testing.assert_close(loss, -log_p(m, x, hs).mean())
    code, _, err = cli("train", "wake_sleep", "--data", "mnist5k", "--steps", "3", "--out", tmp_path / "r",
                       "binarize=dynamic", "latent_dim=8", "log_every=1", "device=cpu")
    assert code == 0, err
    r = jk.load(tmp_path / "r", device="cpu")
    assert r.sample(3).shape == (3, 1, 28, 28) and r.encode(torch.rand(2, 1, 28, 28)).shape == (2, 8)
    assert r.reconstruct(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)
    assert r.log_likelihood(torch.rand(2, 1, 28, 28).round(), "iwae", k=10).shape == (2,)
    with pytest.raises(JointKLError, match="at most 20 latent bits"):
        big = WakeSleep(WakeSleepConfig(latent_dim=11, stochastic_layers=2), (4,), "binary")     # 22 bits
        big.log_likelihood(x[:1].flatten(1), "exact")
    assert "binarize=dynamic" in cli.error("train", "wake_sleep", "--data", "grid25", "--out", tmp_path / "g")


def test_ais_of_a_model_without_one_latent_z_is_refused():
    from jointkl.declare import Declared
    from jointkl.objectives.wake_sleep import WakeSleep, WakeSleepConfig
    m = WakeSleep(WakeSleepConfig(latent_dim=3, hidden=8, layers=1), (1, 2, 2), "binary")
    with pytest.raises(JointKLError, match=r"^method='ais' anneals from the prior of one latent z; wake_sleep's "
                                           r"latents are h1: use elbo or iwae$"):
        Declared.log_likelihood(m, torch.zeros(2, 1, 2, 2), "ais", 2)    # the generic bound, under wake_sleep's own
