"""Models against known truths: EM on a known mixture, the VAE's bounds on a linear-Gaussian model and
on the 2x2 binary images, Su's regularizer, and bitwise-equal resumed runs."""
import csv
import math

import pytest
import torch
import torch.distributions as D

import jointkl as jk
from jointkl.data import from_array, load as load_data
from jointkl.objectives.gan import GAN, GANConfig
from jointkl.objectives.vae import VAE, VAEConfig
from jointkl.training.trainer import Trainer

TINY = dict(hidden=32, layers=1, log_every=5)


def test_em_recovers_mixture_means(tmp_path):
    g = torch.Generator().manual_seed(0)
    means = torch.tensor([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    z = torch.randint(3, (3000,), generator=g)
    x = means[z] + 0.7 * torch.randn(3000, 2, generator=g)
    model = jk.train("em", data=from_array(x), steps=50, out=tmp_path / "em", components=3)
    found = model.means[torch.cdist(means, model.means).argmin(1)]        # match components
    assert (found - means).norm(dim=1).max() < 0.1
    with open(tmp_path / "em" / "metrics.csv") as f:
        ll = [float(r["em/log_px"]) for r in csv.DictReader(f)]
    assert all(b >= a - 1e-5 for a, b in zip(ll, ll[1:]))                   # EM never decreases log p(x)


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


def test_su_regularizer_is_zero_on_first_step_and_active_on_second():
    torch.manual_seed(0)
    model = GAN(GANConfig(latent_dim=2, hidden=16, layers=1, reg=5.0, g_steps=2), (2,), "continuous")
    trainer_like = torch.optim.Adam(model.G.parameters(), lr=1e-2)
    x = torch.randn(64, 2)
    model.begin("gen")
    _, logs1 = model.loss("gen", x)
    loss, _ = model.loss("gen", x)
    loss.backward()
    trainer_like.step()
    _, logs3 = model.loss("gen", x)
    assert logs1["reg"] == 0                 # G equals G_old at the period's first step
    assert logs3["reg"] > 0                  # after an update, G(z) moved away from G_old(z) on the same z


class Killed(Exception):
    pass


def test_lr_decays_linearly_to_its_final_fraction(tmp_path, monkeypatch):
    seen = []
    original = Trainer.train_step

    def spy(self):
        out = original(self)
        seen.append([g["lr"] for o in self.opts.values() for g in o.param_groups])
        return out
    monkeypatch.setattr(Trainer, "train_step", spy)
    jk.train("gan", data="grid25", out=tmp_path / "r", **{**TINY, "steps": 11, "lr": 1e-3, "lr_d": 2e-3, "lr_decay": 0.1})
    assert seen[0] == [2e-3, 1e-3]                                   # step 1 runs at the players' own rates
    assert seen[5] == pytest.approx([2e-3 * 0.55, 1e-3 * 0.55])      # half way
    assert seen[-1] == pytest.approx([2e-4, 1e-4])                   # the last step at lr_decay x


@pytest.mark.parametrize("model,data,opts", [
    ("gan", "grid25", dict(g_steps=2, reg=5.0, latent_dim=2, lr_decay=0.1)),
    ("vae", "mnist5k", dict(binarize="dynamic", latent_dim=4)),
    ("dali", "grid25", dict(g_batchnorm=True, latent_dim=2)),       # batch-norm running statistics resume too
])
def test_resume_is_bitwise_equal(tmp_path, monkeypatch, model, data, opts):
    opts = {**TINY, **opts, "steps": 40, "ckpt_every": 15, "batch_size": 32, "sample_every": 10}
    full = jk.train(model, data=data, out=tmp_path / "full", **opts)

    original = Trainer.train_step

    def dying(self):
        if self.step == 33:                  # killed mid-run, 3 steps after the checkpoint at 30
            raise Killed
        return original(self)
    monkeypatch.setattr(Trainer, "train_step", dying)
    with pytest.raises(Killed):
        jk.train(model, data=data, out=tmp_path / "cut", **opts)
    monkeypatch.setattr(Trainer, "train_step", original)
    resumed = jk.train(model, out=tmp_path / "cut", resume=True)

    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "full" / "metrics.csv").read_text() == (tmp_path / "cut" / "metrics.csv").read_text()
