"""VEEGAN against truth (Srivastava et al. 2017, Algorithm 1), every number by hand from the model's own nets
at the update's z: D's logistic loss with data pairs (x, F(x)) positive; the generator's loss -E D(G(z), z)
plus rec * |z - F(G(z))|^2; the adversarial part reaching G only, F learning from the reconstruction only."""
import pytest
import torch
import torch.nn.functional as F

from jointkl.errors import JointKLError
from jointkl.objectives.veegan import VEEGAN, VEEGANConfig

KW = dict(latent_dim=2, hidden=16, layers=1)


def with_z(m, player, x):
    """The loss, logs and the z that G was fed in this update."""
    seen = []
    hook = m.G.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    m.begin(player)
    loss, logs = m.loss(player, x)
    hook.remove()
    return loss, logs, seen[0]


def build(rec):
    torch.manual_seed(0)
    return VEEGAN(VEEGANConfig(**KW, rec=rec), (2,), "continuous")


def test_discriminator_loss_by_hand():
    m, x = build(1.0), torch.randn(16, 2)
    loss, logs, z = with_z(m, "disc", x)
    with torch.no_grad():
        real, fake = m.D(x, m.F(x).mean).reshape(-1), m.D(m.G(z).mean, z).reshape(-1)
    assert loss.item() == pytest.approx((F.softplus(-real).mean() + F.softplus(fake).mean()).item(), rel=1e-6)
    assert logs["d_q"].item() == pytest.approx(real.mean().item(), rel=1e-6)


@pytest.mark.parametrize("rec", [0.0, 1.5])
def test_generator_loss_and_gradients_by_hand(rec):
    m, x = build(rec), torch.randn(16, 2)
    loss, logs, z = with_z(m, "gen", x)
    g_params, f_params = list(m.G.parameters()), list(m.F.parameters())
    grads = torch.autograd.grad(loss, g_params + f_params, allow_unused=True)
    fake = m.G(z).mean
    adv = -m.D(fake, z).reshape(-1).mean()                      # -E_p logit: the KL estimate (their O_LR)
    rec_hand = (z - m.F(fake).mean).pow(2).sum(1).mean()        # |z - F(G(z))|^2
    assert logs["adv"].item() == pytest.approx(adv.item(), rel=1e-6)
    assert logs["rec"].item() == pytest.approx(rec_hand.item(), rel=1e-6)
    assert loss.item() == pytest.approx((adv + rec * rec_hand).item(), rel=1e-6)
    want = torch.autograd.grad(adv + rec * rec_hand, g_params + f_params, allow_unused=True)
    for g, w in zip(grads, want):
        g, w = (torch.zeros(()) if t is None else t for t in (g, w))
        assert torch.allclose(g, w, atol=1e-6)
    f_grads = [g for g in grads[len(g_params):] if g is not None]
    if rec == 0:                                                # the adversarial part does not reach F
        assert all(torch.equal(g, torch.zeros_like(g)) for g in f_grads)
    else:
        assert any(g.abs().max() > 0 for g in f_grads)


def test_encode_is_the_reconstructor():
    m, x = build(1.0), torch.randn(5, 2)
    m.eval()
    assert torch.equal(m.encode(x), m.F(x).mean.detach())


def test_negative_rec_is_refused():
    with pytest.raises(JointKLError, match=r"^option rec=-0.5 is out of range; it must be at least 0$"):
        VEEGAN(VEEGANConfig(**KW, rec=-0.5), (2,), "continuous")
