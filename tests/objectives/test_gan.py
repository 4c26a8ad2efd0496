"""GAN against known truths: Su's regularizer is zero at a period's first generator step and active after an
update, and Hu et al.'s importance-weighted GAN (IWGAN, Hu eq. 16) by hand, for the GAN and the conditional GAN."""
import pytest
import torch
from torch import nn

from jointkl.divergences.importance import discriminator_weights
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
