"""VAE against known truths: with linear nets its IWAE bound converges to a linear-Gaussian model's analytic
log p(x), the bound on the 2x2 binary images (AVB Table 1), and Hu et al.'s AA switch (Hu eq. 17, supplement eqs.
44-46): with a perfect discriminator AA-VAE is the VAE (Lemma 2), also for CVAE and SVAE."""
import math

import pytest
import torch
import torch.distributions as D
import torch.nn.functional as F

import jointkl as jk
from jointkl.data import load as load_data
from jointkl.objectives.cvae import CVAE, CVAEConfig
from jointkl.objectives.svae import SVAE, SVAEConfig
from jointkl.objectives.vae import VAE, VAEConfig
from tests.helpers import svae_neg_bound


def test_vae_iwae_converges_to_linear_gaussian_log_px():
    """A VAE with linear nets is a linear-Gaussian model: log p(x) = log N(x; b, W W^T + s^2 I)."""
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=2, layers=0, decoder="gaussian"), (3,), "continuous")
    W, b, s = torch.tensor([[1.0, 0.5], [-0.3, 0.8], [0.2, -1.0]]), torch.tensor([0.1, -0.2, 0.3]), 0.5
    post_cov = torch.linalg.inv(torch.eye(2) + W.T @ W / s**2)            # exact posterior p(z|x)
    A = post_cov @ W.T / s**2
    with torch.no_grad():
        model.p_x.net.net[0].weight.copy_(W), model.p_x.net.net[0].bias.copy_(b)
        model.p_x.log_std.fill_(math.log(s))
        enc = model.q_z.net.net[0]                                          # rows: 2 means, then 2 std logits
        enc.weight.zero_(), enc.bias.zero_()
        enc.weight[:2].copy_(A), enc.bias[:2].copy_(-A @ b)
        std = 1.5 * post_cov.diagonal().sqrt()                              # deliberately too wide
        enc.bias[2:].copy_(torch.log(torch.expm1(std - model.q_z.min_std)))
    x = torch.tensor([[0.5, -1.0, 1.2], [-1.0, 0.3, 0.0]])
    log_px = D.MultivariateNormal(b, W @ W.T + s**2 * torch.eye(3)).log_prob(x)
    elbo = model.log_likelihood(x, "elbo", k=20000)
    iwae = {k: model.log_likelihood(x, "iwae", k=k) for k in (10, 1000)}
    assert (elbo < log_px - 0.1).all()                                      # the wide q leaves a gap
    assert (iwae[10] > elbo).all()
    assert (iwae[1000] - log_px).abs().max() < 0.05


def test_vae_binary2x2_log_likelihood(tmp_path):
    """AVB Table 1 reports -1.568 for a VAE; the optimum is -log 4 = -1.386."""
    model = jk.train("vae", data="binary2x2", steps=3000, out=tmp_path / "vae", latent_dim=2, hidden=256,
                     log_every=500, ckpt_every=3000)
    torch.manual_seed(0)
    ll = model.log_likelihood(load_data("binary2x2").test, "iwae", k=5000).mean()
    assert -1.60 <= ll <= -math.log(4) + 1e-3


# --- AA-VAE: Hu eq. 17, supplement eqs. 44-46, Lemma 2 ------------------------------------------------------

def _make(cls, cfg_cls, aa, **kw):
    torch.manual_seed(0)
    return cls(cfg_cls(latent_dim=2, hidden=16, layers=1, aa=aa, **kw), (1, 4, 4), "binary")


AA_MODELS = [(VAE, VAEConfig, {}, None),
             (CVAE, CVAEConfig, {"classes": 3}, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])),
             (SVAE, SVAEConfig, {"classes": 3}, torch.tensor([0, -1, 2, -1, -1, 1, -1, -1]))]


class ConstantCritic(torch.nn.Module):
    """D's logit: the same value for every input."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, t, *labels):
        return torch.full((t.shape[0], 1), self.value)


class PerfectCritic(torch.nn.Module):
    """D's logit: +inf on the rows of `x` (data), -inf on anything else (the model's samples)."""

    def __init__(self, x):
        super().__init__()
        self.x = x

    def forward(self, t, *labels):
        is_data = (t.flatten(1)[:, None] == self.x.flatten(1)[None]).all(-1).any(1)
        return torch.where(is_data, math.inf, -math.inf)[:, None]


@pytest.mark.parametrize("cls,cfg,kw,y", AA_MODELS)
def test_aa_with_a_perfect_discriminator_is_the_plain_vae(cls, cfg, kw, y):
    """Lemma 2: q*(y=1|x) = 1 on data and 0 on samples gives weights 1 and 0, and the AA loss (without the
    factor 1/2) and its gradients are the plain model's, exactly."""
    torch.manual_seed(2)
    x = torch.bernoulli(torch.full((8, 1, 4, 4), 0.3))
    plain, aa = _make(cls, cfg, False, **kw), _make(cls, cfg, True, aa_temperature=3.0, **kw)
    aa.load_state_dict({**plain.state_dict(), **{k: v for k, v in aa.state_dict().items() if k.startswith("D.")}})
    aa.D = PerfectCritic(x)                                                              # the perfect q*(y|x)
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
    m.D = ConstantCritic(2.0)
    torch.manual_seed(1)
    loss, _ = m.loss("vae", x, y)
    torch.manual_seed(1)                                    # the same draws, in the loss's order
    with torch.no_grad():
        if cls is SVAE:                                     # Kingma eqs. 6-7 by hand; samples enter unlabelled
            given = y >= 0                                  # + alpha E_labelled[-log q(c|x)], alpha = 0.1
            per, extra = svae_neg_bound(m, x, y), 0.1 * (-m.q_y(x).log_prob(y.clamp_min(0))[given]).mean()
            c = F.one_hot(torch.randint(3, (8,)), 3).float()
            x_fake = m.p_x(m.prior(8).sample(), c).sample()
            per_fake = svae_neg_bound(m, x_fake, torch.full((8,), -1))
        else:                                               # -ELBO by hand from the declared networks
            c = () if y is None else (F.one_hot(y, 3).float(),)

            def neg_elbo(t):
                q = m.q_z(t, *c)
                z = q.rsample()
                return -m.p_x(z, *c).log_prob(t) + D.kl_divergence(q, m.prior(8))
            per, extra = neg_elbo(x), 0.0
            x_fake = m.p_x(m.prior(8).sample(), *c).sample()
            per_fake = neg_elbo(x_fake)
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
