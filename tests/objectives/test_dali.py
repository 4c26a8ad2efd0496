"""DALI against exact answers: eq. 9 is the Gaussian negative log-density, eq. 10 assembles it with
lambda = 1/d, the l2 variant is a squared error, and the f variant's discriminator learns the KL (eq. 8)."""
import math

import pytest
import torch
import torch.distributions as D

import jointkl as jk
from jointkl.divergences.ratio import generator_loss
from jointkl.joints import Dirac
from jointkl.divergences.ratio import kl_value
from jointkl.objectives.dali import DALI, DALIConfig

TINY = dict(hidden=16, layers=1, batch_size=32, log_every=5, ckpt_every=10, device="cpu")


def eq9(z, mu, var):
    """DALI eq. 9 as printed: 1/2 sum_j (z_j - mu_j)^2 / sigma_j^2 + log sigma_j^2 + log 2 pi."""
    return 0.5 * ((z - mu) ** 2 / var + var.log() + math.log(2 * math.pi)).sum(-1)


def q_z(m, x):
    """q(z|x) of eq. 9, the declared encoder's distribution."""
    return m.decl.q["z"].net(x)


def logit(m, x):
    """D's logit (the f variant reads it as T(x) of eq. 8)."""
    return m.D(x).squeeze(1)


def model(**cfg):
    torch.manual_seed(0)
    return DALI(DALIConfig(**{"latent_dim": 3, "hidden": 16, "layers": 2, **cfg}), (2,), "continuous").double()


@pytest.mark.parametrize("feats, separate", [(False, False), (True, False), (False, True), (True, True)])
def test_eq9_is_the_gaussian_negative_log_density(feats, separate):
    m, g = model(encoder_on_disc_features=feats, separate_heads=separate), torch.Generator().manual_seed(1)
    x, z = torch.randn(64, 2, generator=g, dtype=torch.float64), torch.randn(64, 3, generator=g, dtype=torch.float64)
    q = q_z(m, x)
    mu, var = q.mean, q.variance                                           # (64, 3) each
    ref = D.Independent(D.Normal(mu, var.sqrt()), 1).log_prob(z)
    torch.testing.assert_close(-q.log_prob(z), eq9(z, mu, var), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(-ref, eq9(z, mu, var), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("link", ["softplus", "logvar"])
def test_separate_heads_share_nothing_mu_ignores_the_sigma_net(link):
    """Sec. 4's two networks: mu(x) is the first net's output alone, sigma(x) = softplus(s) + floor, or
    exp(s / 2) + floor when s is the log variance, and no parameter of one net moves the other's output."""
    m, x = model(separate_heads=True, std_link=link), torch.randn(8, 2, dtype=torch.float64)
    net = m.E.net
    q, s = q_z(m, x), net.s(x)
    torch.testing.assert_close(q.mean, net.mu(x), rtol=0, atol=0)
    sigma = torch.nn.functional.softplus(s) if link == "softplus" else torch.exp(s).sqrt()
    torch.testing.assert_close(q.stddev, sigma + m.cfg.min_std, rtol=1e-12, atol=1e-12)
    q.mean.sum().backward()
    assert all(p.grad is None or not p.grad.any() for p in net.s.parameters())
    assert all(p.grad is not None and p.grad.any() for p in net.mu.parameters())
    assert not {id(p) for p in net.mu.parameters()} & {id(p) for p in net.s.parameters()}


def test_unknown_std_link_is_one_clear_error():
    with pytest.raises(jk.JointKLError, match="std_link='exp'.*softplus, logvar"):
        model(std_link="exp")


@pytest.mark.parametrize("variant", ["gan", "l2"])
def test_generator_loss_is_eq10_with_lambda_one_over_d(variant):
    """Lrec = -E log D(G(z)) + (1/d) E L(z, E(G(z))) on the same z (Algorithm 1)."""
    m, x = model(variant=variant), torch.randn(32, 2, dtype=torch.float64)
    torch.manual_seed(5)
    loss, _ = m.loss("gen", x)
    torch.manual_seed(5)
    z = torch.randn(32, 3, dtype=torch.float64)                            # the same draw as inside loss
    fake = m.G(z).rsample()
    q = q_z(m, fake)
    expected = generator_loss(logit(m, fake), "nonsaturating") + eq9(z, q.mean, q.variance).mean() / 3
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)


def test_l2_variant_is_squared_error():
    m, g = model(variant="l2"), torch.Generator().manual_seed(2)
    x, z = torch.randn(64, 2, generator=g, dtype=torch.float64), torch.randn(64, 3, generator=g, dtype=torch.float64)
    mu = q_z(m, x).mean.detach().requires_grad_()
    nll = -D.Independent(D.Normal(mu, 1.0), 1).log_prob(z)
    torch.testing.assert_close(-q_z(m, x).log_prob(z), 0.5 * (z - mu).pow(2).sum(1) + 1.5 * math.log(2 * math.pi))
    nll.sum().backward()
    torch.testing.assert_close(mu.grad, mu.detach() - z)                    # the gradient of 0.5 |z - mu|^2


def test_f_discriminator_learns_the_kl():
    """The f variant's D, trained alone against a fixed affine generator, estimates KL(data || G)."""
    torch.manual_seed(0)
    m = DALI(DALIConfig(latent_dim=1, hidden=64, layers=2, variant="f"), (1,), "continuous")
    m.G = Dirac(1, (1,), layers=0)                                         # G(z) = a z + b
    with torch.no_grad():
        m.G.net.net[0].weight.fill_(1.5), m.G.net.net[0].bias.fill_(1.0)  # Q = N(1, 1.5^2)
    opt = torch.optim.Adam(m.D.parameters(), lr=3e-3, betas=(0.5, 0.999))
    for _ in range(1500):
        loss, _ = m.loss("disc", torch.randn(512, 1))                      # data P = N(0, 1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        est = kl_value(logit(m, torch.randn(100_000, 1)), logit(m, m.sample(100_000)))
    kl = D.kl_divergence(D.Normal(0.0, 1.0), D.Normal(1.0, 1.5))
    assert abs(est - kl) < 0.05, (float(est), float(kl))


@pytest.mark.parametrize("variant,feats", [("gan", False), ("f", False), ("l2", True)])
def test_api_trains_and_has_its_capabilities(tmp_path, variant, feats):
    m = jk.train("dali", data="grid25", steps=10, out=tmp_path / "r", latent_dim=2, variant=variant,
                 encoder_on_disc_features=feats, **TINY)
    x = torch.randn(7, 2)
    assert m.sample(5).shape == (5, 2)
    assert m.encode(x).shape == (7, 2) and m.decode(torch.randn(4, 2)).shape == (4, 2)
    assert m.reconstruct(x).shape == (7, 2)
    loaded = jk.load(tmp_path / "r", device="cpu")
    torch.testing.assert_close(loaded.reconstruct(x), m.reconstruct(x))


def test_players_split_the_parameters_as_in_algorithm_1():
    m = model(encoder_on_disc_features=True)
    disc, gen = ({id(p) for p in pl.params} for pl in m.players())
    assert disc == {id(p) for p in m.D.parameters()}
    assert gen == {id(p) for p in [*m.G.parameters(), *m.E.parameters()]}
    loss, _ = m.loss("gen", torch.randn(8, 2, dtype=torch.float64))        # the cycle term runs through D's features
    loss.backward(inputs=[*m.G.parameters(), *m.E.parameters()])
    assert all(p.grad is None for p in m.D.parameters())


def test_cli_on_images(cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = cli("train", "dali", "--data", "mnist5k", "--steps", "3", "--out", out, "latent_dim=4",
                       *(f"{k}={v}" for k, v in TINY.items()))
    assert code == 0, err
    m = jk.load(out, device="cpu")
    x = torch.rand(3, 1, 28, 28)
    rec = m.reconstruct(x)
    assert rec.shape == x.shape and 0 <= rec.min() and rec.max() <= 1     # sigmoid output for image data
    assert m.encode(x).shape == (3, 4) and m.sample(2).shape == (2, 1, 28, 28)
    line = cli.error("train", "dali", "--steps", "1", "--out", tmp_path / "bad", "variant=wgan")
    assert "variant" in line and "gan, f, f-swapped, l2" in line
