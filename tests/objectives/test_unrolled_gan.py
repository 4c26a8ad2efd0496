"""Unrolled GAN against truth: unroll = 0 is the GAN bitwise (both players' losses and gradients); unroll = k
leaves D's own player bitwise as the GAN's and changes G's gradient; G's loss is the GAN generator loss at a
copy of D moved by k gradient-descent steps on D's loss at the same batch (Metz et al. 2017 Sec. 2.2)."""
import copy

import pytest
import torch
import torch.nn.functional as F

from jointkl.divergences.ratio import discriminator_loss
from jointkl.objectives.gan import GAN, GANConfig
from jointkl.objectives.unrolled_gan import UnrolledGAN, UnrolledGANConfig
from tests.helpers import each_players_loss_and_grads

KW = dict(latent_dim=2, hidden=16, layers=1)


def both_players(m, x):
    return each_players_loss_and_grads(m, x)


def build(cls, cfg):
    torch.manual_seed(0)
    return cls(cfg, (2,), "continuous")


@pytest.mark.parametrize("loss", ["minimax", "nonsaturating"])
def test_unroll_zero_is_the_gan_exactly(loss):
    x = torch.randn(16, 2)
    gan = both_players(build(GAN, GANConfig(**KW, loss=loss)), x)
    unrolled = both_players(build(UnrolledGAN, UnrolledGANConfig(**KW, loss=loss, unroll=0)), x)
    for (la, ga), (lb, gb) in zip(gan, unrolled):
        assert torch.equal(la, lb) and all(torch.equal(a, b) for a, b in zip(ga, gb))


def test_unrolling_changes_g_and_not_d():
    x = torch.randn(16, 2)
    (ld0, gd0), (_, gg0) = both_players(build(GAN, GANConfig(**KW, loss="minimax")), x)
    (ld5, gd5), (_, gg5) = both_players(build(UnrolledGAN, UnrolledGANConfig(**KW, unroll_lr=0.5)), x)
    assert torch.equal(ld0, ld5) and all(torch.equal(a, b) for a, b in zip(gd0, gd5))
    assert not all(torch.allclose(a, b) for a, b in zip(gg0, gg5))


def test_generator_loss_is_the_gan_loss_at_d_after_k_sgd_steps():
    x, k, lr = torch.randn(16, 2), 3, 0.2
    m = build(UnrolledGAN, UnrolledGANConfig(**KW, unroll=k, unroll_lr=lr))
    m.begin("gen")
    loss, _ = m.loss("gen", x)
    fake = m.G(m._noise[("p", "z")]).mean.detach()              # the generator's draws of this update
    d = copy.deepcopy(m.D)
    opt = torch.optim.SGD(d.parameters(), lr=lr)
    for _ in range(k):
        opt.zero_grad()
        discriminator_loss(d(x).reshape(-1), d(fake).reshape(-1)).backward()
        opt.step()
    want = -F.softplus(d(fake).reshape(-1)).mean()              # minimax, Metz et al.'s game
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
