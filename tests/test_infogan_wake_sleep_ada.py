"""Hu et al.'s InfoGAN, wake-sleep and adversarial domain adaptation against known truths: InfoGAN's
categorical code recovers the components of a 4-Gaussian mixture (and without the info term it does not);
wake-sleep's exact log-likelihood (by enumeration) climbs to the maximum-likelihood optimum -log 4 and its
sleep phase matches the exact posterior marginals; ADA's discriminator estimates the known domain density
ratio, and the adversary lifts target accuracy on a shifted toy domain above the no-adversary baseline."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

import jointkl as jk
from jointkl.data import Dataset, load as load_data
from jointkl.errors import JointKLError
from jointkl.joints import Bernoulli
from jointkl.objectives.infogan import InfoGAN, InfoGANConfig

MEANS4 = torch.tensor([[-2.0, -2.0], [-2.0, 2.0], [2.0, -2.0], [2.0, 2.0]])


def mixture4(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(4, (n,), generator=g)
    return MEANS4[k] + 0.2 * torch.randn(n, 2, generator=g), k


def best_permutation_accuracy(pred: torch.Tensor, truth: torch.Tensor, k: int) -> float:
    return max(float((torch.tensor(p)[pred] == truth).float().mean()) for p in itertools.permutations(range(k)))


# --- InfoGAN (Hu eq. 9) -----------------------------------------------------------------------------------

def code_purity(model, n: int = 500) -> float:
    """Mean over codes of the share of G(z, c=j) samples in their most frequent component, after matching
    codes to distinct components (1.0: each code generates one component of its own)."""
    counts = torch.zeros(4, 4)
    for j in range(4):
        c = F.one_hot(torch.full((n,), j), 4).float()
        x = model.decode(torch.cat([torch.randn(n, model.cfg.latent_dim), c], 1))       # (n, 2)
        counts[j] = torch.bincount(torch.cdist(x, MEANS4).argmin(1), minlength=4).float()
    return max(sum(float(counts[j, p[j]]) for j in range(4)) for p in itertools.permutations(range(4))) / (4 * n)


def train_infogan(tmp_path, seed, **opts):
    (xtr, ktr), (xte, kte) = mixture4(4000, 0), mixture4(2000, 1)
    ds = Dataset("mix4", xtr, xte, "continuous", ktr, kte)
    model = jk.train("infogan", data=ds, steps=300, seed=seed, out=tmp_path / f"ig{seed}", latent_dim=2,
                     n_categorical=4, n_continuous=0, hidden=64, layers=2, batch_size=128, log_every=100,
                     ckpt_every=300, device="cpu", **opts)
    torch.manual_seed(seed)
    return model, xte, kte


@pytest.mark.parametrize("shared", [False, True])
def test_infogan_recovers_the_categorical_code(tmp_path, shared):
    """The inferred code of real test points matches their component (best permutation of 4 codes; chance
    0.25), and each code generates one component. Measured over seeds 0-2 at 300 steps: accuracy 1.000 and
    purity 1.000 in every seed, separate or shared Q."""
    model, xte, kte = train_infogan(tmp_path, 0, q_on_disc_features=shared)
    assert best_permutation_accuracy(model.classify(xte), kte, 4) > 0.9
    assert code_purity(model) > 0.9
    assert model.encode(xte[:5]).sum(1).allclose(torch.ones(5))              # categorical probabilities


def test_without_the_info_term_the_code_is_ignored(tmp_path):
    """Control: info=0 is a plain GAN fed the code as extra noise, and codes do not pick components.
    Measured purity over seeds 0-2: 0.33, 0.27, 0.28 (vs 1.000 with the info term)."""
    model, _, _ = train_infogan(tmp_path, 1, info=0.0)
    assert code_purity(model) < 0.7


def test_infogan_continuous_code_orders_a_segment(tmp_path):
    """Data uniform on a segment x1 in [-2, 2]: a continuous code c ~ U(-1, 1) with the info term becomes the
    position along it, both in G(z, c) and in the inferred code of real points. Measured |corr| over seeds
    0-2: 1.000, 0.999, 0.992 (generation) and 1.000, 0.999, 0.992 (inference); with info=0: 0.61, 0.08, 0.51."""
    def segment(n, seed):
        g = torch.Generator().manual_seed(seed)
        return torch.stack([4 * torch.rand(n, generator=g) - 2, 0.05 * torch.randn(n, generator=g)], 1)
    ds = Dataset("segment", segment(4000, 0), segment(2000, 1), "continuous")
    m = jk.train("infogan", data=ds, steps=300, seed=0, out=tmp_path / "r", latent_dim=1, n_categorical=0,
                 n_continuous=1, hidden=64, layers=2, batch_size=128, log_every=100, ckpt_every=300, device="cpu")
    torch.manual_seed(0)
    c = torch.linspace(-1, 1, 200)[:, None]
    x = m.decode(torch.cat([torch.randn(200, 1), c], 1))                    # (200, 2), noise drawn too
    corr = lambda a, b: float(torch.corrcoef(torch.stack([a, b]))[0, 1])    # noqa: E731
    assert abs(corr(c[:, 0], x[:, 0])) > 0.95
    assert abs(corr(m.encode(ds.test)[:, 0], ds.test[:, 0])) > 0.95


def test_infogan_generator_loss_is_eq9():
    """gen loss = -log D(G(z, c)) + info * (-log Q(c|G(z, c))) on the same draw, by hand; the D player's
    parameters get no gradient from it."""
    torch.manual_seed(0)
    m = InfoGAN(InfoGANConfig(latent_dim=2, n_categorical=3, n_continuous=2, info=0.7, hidden=16, layers=2),
                (2,), "continuous").double()
    x = torch.randn(16, 2, dtype=torch.float64)
    torch.manual_seed(3)
    loss, _ = m.loss("gen", x)
    torch.manual_seed(3)
    z, k, u = m.prior(16)
    fake = m.generate(torch.cat([z, F.one_hot(k, 3).double(), u], 1))
    out = m.Q(fake)                                                          # (16, 3 + 2 + 2)
    logq_cat = out[:, :3].log_softmax(1).gather(1, k[:, None]).squeeze(1)
    std = F.softplus(out[:, 5:]) + m.cfg.min_std
    logq_cont = torch.distributions.Normal(out[:, 3:5], std).log_prob(u).sum(1)
    expected = F.softplus(-m.D(fake).squeeze(1)).mean() + 0.7 * -(logq_cat + logq_cont).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-10)
    loss.backward(inputs=[p for pl in m.players() if pl.name == "gen" for p in pl.params])
    assert all(p.grad is None for p in m.D.parameters())


def test_infogan_api_cli_and_errors(tmp_path, cli):
    code, _, err = cli("train", "infogan", "--data", "grid25", "--steps", "3", "--out", tmp_path / "r",
                       "hidden=16", "layers=1", "log_every=1", "device=cpu")
    assert code == 0, err
    m = jk.load(tmp_path / "r", device="cpu")
    assert m.sample(5).shape == (5, 2) and m.encode(torch.randn(7, 2)).shape == (7, 12)
    assert m.decode(torch.randn(4, 12)).shape == (4, 2) and m.decode(torch.randn(4, 20)).shape == (4, 2)
    assert m.reconstruct(torch.randn(3, 2)).shape == (3, 2) and m.classify(torch.randn(3, 2)).shape == (3,)
    with pytest.raises(JointKLError, match="needs a code"):
        InfoGAN(InfoGANConfig(n_categorical=0, n_continuous=0), (2,), "continuous")
    with pytest.raises(JointKLError, match="decode takes"):
        m.decode(torch.randn(4, 5))


# --- wake-sleep (Hu eq. 14) --------------------------------------------------------------------------------

BINARY4 = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4))).view(16, 1, 2, 2)   # every 2x2 image


def exact_posterior(m, x):
    """p(x) and the posterior marginals p(h_i = 1 | x) by enumerating all latent states. (N,), (N, d)"""
    hs = m.all_latents()                                                    # [(M, d)]
    log_joint = torch.stack([m.log_p(x.expand(len(hs[0]), *x.shape[1:]), hs) for x in x.split(1)])   # (N, M)
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
    hs = m.infer(x)
    torch.testing.assert_close(loss, -m.log_p(x, hs).mean())
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


# --- adversarial domain adaptation (Hu eqs. 1-3, 19) ------------------------------------------------------

def test_domain_discriminator_estimates_the_domain_density_ratio():
    """With features fixed to x itself, D's logit converges to log p_source(x) / p_target(x) (Hu eq. 7 with
    p(y) uniform): for N(-0.5, 1) vs N(0.5, 1) that is -x. Batches hold 3 source rows per target row;
    each domain is averaged on its own rows, so the prior odds log 3 must not appear. Measured max error on
    [-2, 2] over seeds 0-2: 0.070, 0.062, 0.053 (the unweighted mean would be off by log 3 = 1.1)."""
    from jointkl.objectives.ada import ADA, ADAConfig
    torch.manual_seed(0)
    m = ADA(ADAConfig(classes=2, feat_dim=1, hidden=64), (1,), "continuous")
    m.F = torch.nn.Identity()
    opt = torch.optim.Adam(m.D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    for _ in range(2000):
        x = torch.cat([torch.randn(384, 1) - 0.5, torch.randn(128, 1) + 0.5])
        y = torch.cat([torch.randint(2, (384,)), torch.full((128,), -1)])
        loss, _ = m.loss("disc", x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    grid = torch.linspace(-2, 2, 81)[:, None]
    with torch.no_grad():
        err = (m.domain_logits(grid) - (-grid[:, 0])).abs().max()
    assert err < 0.15, float(err)


def test_adversary_lifts_target_accuracy_on_digits(tmp_path):
    """mnist5k (labelled) -> sklearn digits in MNIST's layout (unlabelled): target test accuracy with the
    adversary (adv=1) against the source-only baseline (adv=0), 800 steps, hidden 64, features 32. Measured
    over seeds 0-3: baseline 0.642, 0.553, 0.583, 0.592; adversary 0.711, 0.722, 0.703, 0.706 (gain
    0.07-0.17, smallest at the pinned seed 0); source accuracy 0.90-0.92 either way."""
    ds = load_data("mnist5k-digits")
    acc = {}
    for adv in (0.0, 1.0):
        m = jk.train("ada", data=ds, steps=800, seed=0, out=tmp_path / f"a{adv}", hidden=64, feat_dim=32,
                     adv=adv, log_every=200, ckpt_every=800, device="cpu")
        acc[adv] = float((m.classify(ds.test) == ds.test_labels).float().mean())
        assert float((m.classify(ds.meta["source_test"]) == ds.meta["source_test_labels"]).float().mean()) > 0.85
    assert acc[1.0] > 0.67 and acc[1.0] > acc[0.0] + 0.04, acc


def test_ada_losses_players_and_errors(tmp_path, cli):
    """The feature player's loss is eq. 19's source cross-entropy plus adv times the flipped-label loss of
    eqs. 2-3 (by hand); minimax is minus D's loss; D's parameters get no gradient from it."""
    from jointkl.objectives.ada import ADA, ADAConfig
    torch.manual_seed(0)
    x, y = torch.randn(12, 3, dtype=torch.float64), torch.tensor([0, 1, 2, -1, -1, 0, 1, -1, 2, 2, -1, -1])
    for loss_kind in ("flip", "minimax"):
        m = ADA(ADAConfig(classes=3, feat_dim=4, hidden=8, adv=0.5, loss=loss_kind), (3,), "continuous").double()
        loss, _ = m.loss("model", x, y)
        feats, src = m.F(x), y >= 0
        t = m.D(feats).squeeze(1)
        ce = F.cross_entropy(m.C(feats[src]), y[src])
        d_loss = F.softplus(-t[src]).mean() + F.softplus(t[~src]).mean()           # Hu eq. 1 (as a loss)
        flip = F.softplus(t[src]).mean() + F.softplus(-t[~src]).mean()             # Hu eq. 2 (as a loss)
        torch.testing.assert_close(loss, ce + 0.5 * (flip if loss_kind == "flip" else -d_loss))
        torch.testing.assert_close(m.loss("disc", x, y)[0], d_loss)
        disc, model = m.players()
        loss.backward(inputs=model.params)
        assert all(p.grad is None for p in m.D.parameters())
    only_src = m.loss("disc", x[src], y[src])[0]                                   # a batch with one domain
    assert torch.isfinite(only_src)
    with pytest.raises(JointKLError, match="classes=4"):
        m.loss("model", x, torch.full((12,), 3))
    code, _, err = cli("train", "ada", "--data", "mnist5k-digits", "--steps", "2", "--out", tmp_path / "r",
                       "hidden=16", "feat_dim=4", "log_every=1", "device=cpu")
    assert code == 0, err
    r = jk.load(tmp_path / "r", device="cpu")
    assert r.encode(torch.rand(5, 1, 28, 28)).shape == (5, 4) and r.classify(torch.rand(5, 1, 28, 28)).shape == (5,)
    assert "no sampler" in cli.error("sample", tmp_path / "r", "--n", "4", "--out", tmp_path / "s.npy")
    assert "minimax" in cli.error("train", "ada", "--data", "mnist5k-digits", "--out", tmp_path / "b", "loss=nope")
    assert "has no labels" in cli.error("train", "ada", "--data", "eight_schools", "--out", tmp_path / "c")
