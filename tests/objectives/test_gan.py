"""GAN against known truths: Su's regularizer is zero at a period's first generator step and active after an
update, and Hu et al.'s importance-weighted GAN (IWGAN, Hu eq. 16) by hand, for the GAN and the conditional GAN."""
import copy

import pytest
import torch
from torch import nn

from jointkl.divergences.importance import discriminator_weights
from jointkl.errors import JointKLError
from jointkl.objectives.cgan import CGAN, CGANConfig
from jointkl.objectives.gan import GAN, GANConfig


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



def test_fresh_z_regularizer_is_the_distance_to_the_periods_first_generator():
    """share_z=false (Su Fig. 2: several z batches per generator period): each update draws a new z and the
    regularizer is mean_dims (G(z) - G_old(z))^2 on that z, G_old the generator at the period's start."""
    torch.manual_seed(0)
    model = GAN(GANConfig(latent_dim=2, hidden=16, layers=1, reg=5.0, g_steps=3, share_z=False), (2,), "continuous")
    g_old, x = copy.deepcopy(model.G), torch.randn(64, 2)
    model.begin("gen")
    _, logs1 = model.loss("gen", x)
    with torch.no_grad():                                                   # an update of G
        for p in model.G.parameters():
            p.add_(0.05 * torch.randn_like(p))
    torch.manual_seed(7)
    _, logs2 = model.loss("gen", x)
    torch.manual_seed(7)
    z = torch.randn(64, 2)                                                  # the draw inside the loss
    expected = (model.G(z).mean - g_old(z).mean).pow(2).mean()
    assert logs1["reg"] == 0
    torch.testing.assert_close(logs2["reg"], expected, rtol=1e-6, atol=0)
    model.begin("gen")                                                      # a new period: G_old = G
    assert model.loss("gen", x)[1]["reg"] == 0


def test_fresh_noise_proximal_of_a_noisy_factor_is_refused():
    from jointkl.declare import Data, Declaration, Declared, Factor, Joint, Player, Proximal, standard_normal
    from jointkl.joints import Gaussian

    class Noisy(Declared):
        name, Config = "noisy", GANConfig

        def declare(self):
            self.G = Gaussian(2, (2,), 8, 1)
            p = Joint("p", z=standard_normal(2), x=Factor(self.G, given="z"))
            return Declaration(p, Joint("q", x=Data()), [Player("gen", [self.G], [Proximal("x", p)], 1e-3)])
    with pytest.raises(JointKLError, match=r"^Proximal\('x'\) of player gen needs the same noise"):
        Noisy(GANConfig(), (2,), "continuous")

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
