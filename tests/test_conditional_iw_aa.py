"""Hu et al. (2018) transfers and the conditional models against known truths: IWGAN's weights (eq. 16) by hand,
AA-VAE with a perfect discriminator is the VAE (Lemma 2), CVAE/SVAE bounds with linear nets equal the analytic
log-likelihoods of a linear-Gaussian class-conditional model, and the trained models do what they are for."""
import math

import pytest
import torch
import torch.distributions as D
from torch import nn

import jointkl as jk
from jointkl.data import Dataset
from jointkl.divergences.importance import discriminator_weights
from jointkl.errors import JointKLError
from jointkl.objectives.cgan import CGAN, CGANConfig
from jointkl.objectives.cvae import CVAE, CVAEConfig
from jointkl.objectives.gan import GAN, GANConfig
from jointkl.objectives.svae import SVAE, SVAEConfig
from jointkl.objectives.vae import VAE, VAEConfig


# --- IWGAN: Hu eq. 16, supplement eqs. 40, 43 -------------------------------------------------------------

class FixedLogits(nn.Module):
    """A 'discriminator' that returns given logits whatever it is fed; the logits are a leaf to read gradients."""

    def __init__(self, logits):
        super().__init__()
        self.logits = nn.Parameter(torch.as_tensor(logits, dtype=torch.float32)[:, None])   # (B, 1)

    def forward(self, *inputs):
        return self.logits


def test_iw_weights_uniform_for_a_constant_discriminator():
    assert torch.allclose(discriminator_weights(torch.full((7, 1), 0.3)), torch.full((7,), 1 / 7))
    losses, grads = {}, {}
    for iw in (False, True):
        torch.manual_seed(0)
        gan = GAN(GANConfig(latent_dim=2, hidden=8, layers=1, iw=iw), (2,), "continuous")
        with torch.no_grad():                      # D(x) = sigmoid(0.7) for every x
            gan.D.net[-1].weight.zero_(), gan.D.net[-1].bias.fill_(0.7)
        gan.begin("gen")
        loss, _ = gan.loss("gen", torch.randn(16, 2))
        losses[iw], grads[iw] = loss, torch.autograd.grad(loss, list(gan.G.parameters()))
    assert torch.allclose(losses[True], losses[False], atol=1e-7)
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(grads[True], grads[False]))


@pytest.mark.parametrize("cls,cfg,extra", [(GAN, GANConfig, {}), (CGAN, CGANConfig, {"classes": 3})])
def test_iw_generator_loss_and_gradient_by_hand(cls, cfg, extra):
    """D = (0.5, 0.8, 0.2): w = D/(1-D) = (1, 4, 1/4), w~ = w / 5.25; loss = sum w~_i (-log D_i); the weights are
    constants, so d loss / d logit_i = -w~_i (1 - D_i) (eq. 43)."""
    d = torch.tensor([0.5, 0.8, 0.2])
    gan = cls(cfg(latent_dim=2, hidden=8, layers=1, iw=True, **extra), (2,), "continuous")
    gan.D = FixedLogits(torch.log(d / (1 - d)))
    gan.begin("gen")
    loss, logs = gan.loss("gen", torch.randn(3, 2), torch.tensor([0, 1, 2]) if extra else None)
    w = torch.tensor([1.0, 4.0, 0.25]) / 5.25
    assert torch.allclose(discriminator_weights(gan.D.logits), w)
    assert loss.item() == pytest.approx(float((w * -torch.log(d)).sum()), abs=1e-6)
    loss.backward()
    assert torch.allclose(gan.D.logits.grad.squeeze(1), -w * (1 - d), atol=1e-6)
    assert logs["ess"].item() == pytest.approx(1 / float((w ** 2).sum()), rel=1e-6)


# --- AA-VAE: Hu eq. 17, supplement eqs. 44-46, Lemma 2 ------------------------------------------------------

def _make(cls, cfg_cls, aa, **kw):
    torch.manual_seed(0)
    return cls(cfg_cls(latent_dim=2, hidden=16, layers=1, aa=aa, **kw), (1, 4, 4), "binary")


AA_MODELS = [(VAE, VAEConfig, {}, None),
             (CVAE, CVAEConfig, {"classes": 3}, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])),
             (SVAE, SVAEConfig, {"classes": 3}, torch.tensor([0, -1, 2, -1, -1, 1, -1, -1]))]


@pytest.mark.parametrize("cls,cfg,kw,y", AA_MODELS)
def test_aa_with_a_perfect_discriminator_is_the_plain_vae(cls, cfg, kw, y):
    """Lemma 2: q*(y=1|x) = 1 on data and 0 on samples gives weights 1 and 0, and the AA loss (without the
    factor 1/2) and its gradients are the plain model's, exactly."""
    torch.manual_seed(2)
    x = torch.bernoulli(torch.full((8, 1, 4, 4), 0.3))
    plain, aa = _make(cls, cfg, False, **kw), _make(cls, cfg, True, aa_temperature=3.0, **kw)
    aa.load_state_dict({**plain.state_dict(), **{k: v for k, v in aa.state_dict().items() if k.startswith("D.")}})
    is_data = lambda t: (t.flatten(1)[:, None] == x.flatten(1)[None]).all(-1).any(1)   # noqa: E731
    aa.critic = lambda t, _y: torch.where(is_data(t), math.inf, -math.inf)              # the perfect q*(y|x)
    out = {}
    for name, m in (("plain", plain), ("aa", aa)):
        torch.manual_seed(1)
        loss, logs = m.loss("vae", x, y)
        params = [p for n, p in m.named_parameters() if not n.startswith("D.")]
        out[name] = (loss, torch.autograd.grad(loss, params))
    assert out["aa"][0].item() == out["plain"][0].item()
    assert all(torch.equal(a, b) for a, b in zip(out["aa"][1], out["plain"][1]))
    # and the fakes did enter the loss but with weight 0, while data had weight 1
    torch.manual_seed(1)
    _, logs = aa.loss("vae", x, y)
    assert logs["w_real"] == 1 and logs["w_fake"] == 0


@pytest.mark.parametrize("cls,cfg,kw,y", AA_MODELS)
def test_aa_loss_by_hand_with_a_constant_discriminator(cls, cfg, kw, y):
    """Logit 2 everywhere at temperature T = 2: w = sigmoid(1) on data and samples, so the loss is
    sigmoid(1) * (mean l(data) + aa_weight * mean l(samples)) + extra, with the same draws."""
    torch.manual_seed(2)
    x = torch.bernoulli(torch.full((8, 1, 4, 4), 0.3))
    m = _make(cls, cfg, True, aa_temperature=2.0, aa_weight=0.5, **kw)
    m.critic = lambda t, _y: torch.full((t.shape[0],), 2.0)
    torch.manual_seed(1)
    loss, _ = m.loss("vae", x, y)
    torch.manual_seed(1)                                    # the same draws, in the loss's order
    with torch.no_grad():
        per, extra, _ = m.bound(x, y)
        x_fake, y_fake = m.fake(8, y)
        per_fake, _, _ = m.bound(x_fake, y_fake)
    w = torch.sigmoid(torch.tensor(1.0))
    assert loss.item() == pytest.approx(float(w * (per.mean() + 0.5 * per_fake.mean()) + extra), rel=1e-6)


def test_aa_discriminator_player_is_logistic_regression_on_data_vs_samples():
    m = _make(VAE, VAEConfig, True)
    assert [p.name for p in m.players()] == ["disc", "vae"]
    assert not set(map(id, m.players()[0].params)) & set(map(id, m.players()[1].params))
    with torch.no_grad():
        m.D.net[-1].weight.zero_(), m.D.net[-1].bias.zero_()   # D = 1/2: loss = 2 log 2
    loss, _ = m.loss("disc", torch.bernoulli(torch.full((8, 1, 4, 4), 0.3)))
    assert loss.item() == pytest.approx(2 * math.log(2), abs=1e-6)


# --- CVAE and SVAE on a linear-Gaussian class-conditional model -------------------------------------------
# p(c) = 1/3, p(z) = N(0, I_2), p(x|z, c) = N(W z + b_c, s^2 I_3). W has orthogonal columns, so the exact
# posterior p(z|x, c) = N(A (x - b_c), (I + W^T W / s^2)^-1) is diagonal and a linear encoder can be exact;
# p(c|x) is a softmax of a linear function of x, so a linear classifier can be exact too.

S = 0.5
W = torch.tensor([[0.6, -0.64], [0.8, 0.48], [0.0, 0.0]])                            # columns orthogonal
BC = torch.tensor([[1.0, -1.0, 0.5], [-1.0, 0.5, 0.0], [0.0, 1.0, -1.0]])          # (3 classes, 3)
SIGMA = W @ W.T + S**2 * torch.eye(3)
POST_COV = torch.linalg.inv(torch.eye(2) + W.T @ W / S**2)
A = POST_COV @ W.T / S**2                                                             # (2, 3)


def _linear_model(cls, cfg_cls, **kw):
    m = cls(cfg_cls(latent_dim=2, layers=0, decoder="gaussian", classes=3, **kw), (3,), "continuous")
    with torch.no_grad():
        dec = m.p_x.net.net[0]                                 # input (z, one-hot c) -> mean W z + b_c
        dec.weight.copy_(torch.cat([W, BC.T], 1)), dec.bias.zero_()
        m.p_x.log_std.fill_(math.log(S))
        enc = m.q_z.net.net[0]                                 # (x, c) -> rows: 2 means, then 2 std logits
        enc.weight.zero_(), enc.bias.zero_()
        enc.weight[:2, :3].copy_(A), enc.weight[:2, 3:].copy_(-A @ BC.T)
        std = POST_COV.diagonal().sqrt()
        enc.bias[2:].copy_(torch.log(torch.expm1(std - m.q_z.min_std)))
    return m


def _exact(x):
    log_px_c = torch.stack([D.MultivariateNormal(b, SIGMA).log_prob(x) for b in BC])   # (3, N)
    return log_px_c, torch.logsumexp(log_px_c, 0) - math.log(3)


def test_cvae_linear_gaussian_bounds_are_the_analytic_log_likelihoods():
    assert torch.allclose(POST_COV, torch.diag(POST_COV.diagonal()), atol=1e-7)      # W^T W diagonal
    torch.manual_seed(0)
    m = _linear_model(CVAE, CVAEConfig)
    x = D.MultivariateNormal(BC[1], SIGMA).sample((6,))
    log_px_c, log_px = _exact(x)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    # q(z|x, c) is the exact posterior: every log-weight is log p(x|c), so even a 1-draw ELBO is exact
    assert torch.allclose(m.log_likelihood(x, "elbo", k=1, y=y), log_px_c[y, torch.arange(6)], atol=1e-4)
    assert torch.allclose(m.log_likelihood(x, "iwae", k=5), log_px, atol=1e-4)   # marginal over c
    assert torch.equal(m.classify(x), log_px_c.argmax(0))                          # the Bayes classifier


def test_cvae_with_a_wider_encoder_has_a_gap_that_iwae_closes():
    torch.manual_seed(0)
    m = _linear_model(CVAE, CVAEConfig)
    with torch.no_grad():                                          # std 1.5x the posterior's: a loose q
        std = 1.5 * POST_COV.diagonal().sqrt()
        m.q_z.net.net[0].bias[2:].copy_(torch.log(torch.expm1(std - m.q_z.min_std)))
    x = D.MultivariateNormal(BC[0], SIGMA).sample((4,))
    y = torch.zeros(4, dtype=torch.long)
    exact = _exact(x)[0][0]
    elbo, iwae = m.log_likelihood(x, "elbo", k=20000, y=y), m.log_likelihood(x, "iwae", k=2000, y=y)
    assert (elbo < exact - 0.2).all()                                # measured gap 0.42 to 0.46 nats, seeds 0-4
    assert (iwae - exact).abs().max() < 0.05                         # measured at most 0.020, seeds 0-4


def test_svae_bounds_are_exact_with_exact_posteriors():
    """With q(z|x, c) and q(c|x) exact, U(x) = log p(x) and L(x, c) = log p(x, c), per example and draw."""
    torch.manual_seed(0)
    m = _linear_model(SVAE, SVAEConfig, alpha=0.0)
    prec = torch.linalg.inv(SIGMA)
    with torch.no_grad():                                          # logit_c = b_c^T S^-1 x - b_c^T S^-1 b_c / 2
        cls = m.q_y.net.net[0]
        cls.weight.copy_(BC @ prec), cls.bias.copy_(-0.5 * ((BC @ prec) * BC).sum(1))
    x = torch.cat([D.MultivariateNormal(b, SIGMA).sample((3,)) for b in BC])         # (9, 3)
    log_px_c, log_px = _exact(x)
    assert torch.allclose(m.log_likelihood(x, "elbo", k=1), log_px, atol=1e-4)       # Kingma eq. 7
    # the training loss: -L for labelled rows, -U for the others; its analytic KL makes one draw noisy, so
    # average 20,000 draws (measured error at most 0.018 nats, seeds 0-4)
    y, n = torch.tensor([0, -1, 2, -1, 1, -1, -1, 2, -1]), 20_000
    with torch.no_grad():
        per, extra, _ = m.bound(x.repeat(n, 1), y.repeat(n))
    per, lab = per.view(n, 9).mean(0), y >= 0
    assert torch.allclose(-per[lab], log_px_c[y[lab], lab.nonzero().squeeze(1)] - math.log(3), atol=0.04)
    assert torch.allclose(-per[~lab], log_px[~lab], atol=0.04)
    assert extra == 0


# --- training: the conditional models learn what they condition on -------------------------------------------

def _two_class_line(n=2000, seed=0):
    """Class c in {0, 1} at -2 + 4c on a line, std 0.3; 2-d points (x, 0.3 * noise)."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randint(2, (n,), generator=g)
    x = torch.stack([-2 + 4 * c + 0.3 * torch.randn(n, generator=g), 0.3 * torch.randn(n, generator=g)], 1)
    return x, c


def _dataset(name="two-line"):
    (xtr, ytr), (xte, yte) = _two_class_line(), _two_class_line(500, 1)
    return Dataset(name, xtr, xte, "continuous", ytr, yte)


def test_cgan_generates_the_asked_class(tmp_path):
    torch.manual_seed(0)
    m = jk.train("cgan", data=_dataset(), steps=400, out=tmp_path / "cgan", classes=2, latent_dim=2, hidden=32,
                 layers=2, batch_size=64, iw=True, log_every=100, ckpt_every=400, device="cpu")
    for c, centre in ((0, -2.0), (1, 2.0)):
        x = m.sample(500, y=c)
        assert ((x[:, 0] - centre).abs() < 1.0).float().mean() > 0.9    # measured 1.0 (seeds 0-2)


def test_svae_classifies_from_few_labels(tmp_path):
    """5% labels (50 of 1,000 per class); a classifier trained on them alone would also do well here, so the
    check is that the semi-supervised objective learns the labelled classes, not just clusters."""
    torch.manual_seed(0)
    ds = _dataset()
    m = jk.train("svae", data=ds, steps=300, out=tmp_path / "svae", classes=2, latent_dim=2, hidden=32,
                 layers=1, batch_size=64, labelled=0.05, alpha=1.0, log_every=100, ckpt_every=300, device="cpu")
    acc = (m.classify(ds.test) == ds.test_labels).float().mean()
    assert acc > 0.95                                                  # measured 1.0 (seeds 0-2)


# --- user-facing paths ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("model,opts", [("cgan", ["iw=true"]), ("cvae", ["aa=true"]), ("svae", ["aa=true", "labelled=0.1"]),
                                        ("vae", ["aa=true", "aa_temperature=3"]), ("gan", ["iw=true"])])
def test_cli_trains_and_samples(cli, tmp_path, model, opts):
    run = tmp_path / model
    code, _, err = cli("train", model, "--data", "digits", "--steps", "3", "--out", run, "hidden=16", "layers=1",
                       "latent_dim=2", "batch_size=16", "device=cpu", "binarize=dynamic", *opts)
    assert code == 0, err
    code, _, err = cli("sample", run, "--n", "5", "--out", tmp_path / "x.npy")
    assert code == 0, err
    m = jk.load(run, device="cpu")
    if model in ("cgan", "cvae", "svae"):
        assert m.sample(4, y=torch.tensor([0, 1, 2, 3])).shape == (4, 1, 8, 8)
    if model in ("cvae", "svae"):
        x = jk.data.load("digits").test[:5]
        assert m.encode(x).shape == (5, 2) and m.classify(x).shape == (5,)
        assert m.log_likelihood(x, "iwae", k=3).shape == (5,)


def test_bad_labels_are_one_line_errors(tmp_path):
    for model in ("cvae", "svae", "cgan"):                          # grid25 has 25 labels, classes=10 by default
        with pytest.raises(JointKLError, match="out of range for classes=10; set classes="):
            jk.train(model, data="grid25", steps=1, out=tmp_path / model, hidden=8, layers=1)
    with pytest.raises(JointKLError, match="set labelled=1"):
        jk.train("cgan", data="digits", steps=1, out=tmp_path / "b", hidden=8, layers=1, labelled=0.5)
    with pytest.raises(JointKLError, match="needs labelled data"):
        jk.train("svae", data=torch.rand(100, 3), steps=1, out=tmp_path / "c", hidden=8, layers=1)
    with pytest.raises(JointKLError, match="aa_temperature"):
        jk.train("vae", data="digits", steps=1, out=tmp_path / "d", aa=True, aa_temperature=0.0)
