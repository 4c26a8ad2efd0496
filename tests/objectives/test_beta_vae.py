"""beta-VAE against truth: beta = 1 is the VAE bitwise (loss, logs, gradients, same seed); beta scales the KL
piece of z only (Higgins et al. 2017 eq. 4), so the decoder's gradient does not depend on beta."""
import pytest
import torch

from jointkl.errors import JointKLError
from jointkl.objectives.beta_vae import BetaVAE, BetaVAEConfig
from jointkl.objectives.vae import VAE, VAEConfig

NET = dict(latent_dim=2, hidden=16, layers=1)


def loss_and_grads(cls, cfg, x, kind):
    torch.manual_seed(0)
    m = cls(cfg, tuple(x.shape[1:]), kind)
    torch.manual_seed(1)
    loss, logs = m.loss("vae", x)
    return m, loss, logs, torch.autograd.grad(loss, [*m.q_z.parameters(), *m.p_x.parameters()])


@pytest.mark.parametrize("shape,kind", [((2,), "continuous"), ((1, 2, 2), "binary")])
def test_beta_one_is_the_vae_exactly(shape, kind):
    x = torch.rand(16, *shape).round() if kind == "binary" else torch.randn(16, *shape)
    _, l0, logs0, g0 = loss_and_grads(VAE, VAEConfig(**NET), x, kind)
    _, l1, logs1, g1 = loss_and_grads(BetaVAE, BetaVAEConfig(**NET, beta=1.0), x, kind)
    assert torch.equal(l0, l1)
    assert logs0.keys() == logs1.keys() and all(torch.equal(logs0[k], logs1[k]) for k in logs0)
    assert all(torch.equal(a, b) for a, b in zip(g0, g1))


def test_beta_weights_the_kl_of_z_and_leaves_the_decoder_gradient():
    x = torch.randn(16, 2)
    m, l1, logs1, _ = loss_and_grads(BetaVAE, BetaVAEConfig(**NET, beta=1.0), x, "continuous")
    _, l4, logs4, _ = loss_and_grads(BetaVAE, BetaVAEConfig(**NET, beta=4.0), x, "continuous")
    assert torch.equal(logs1["kl"], logs4["kl"]) and torch.equal(logs1["rec"], logs4["rec"])
    assert l4.item() == pytest.approx((logs4["rec"] + 4 * logs4["kl"]).item(), rel=1e-6)
    assert l4.item() == pytest.approx((l1 + 3 * logs1["kl"]).item(), rel=1e-6)
    _, _, _, g1 = loss_and_grads(BetaVAE, BetaVAEConfig(**NET, beta=1.0), x, "continuous")
    _, _, _, g4 = loss_and_grads(BetaVAE, BetaVAEConfig(**NET, beta=4.0), x, "continuous")
    n = len(list(m.q_z.parameters()))                   # the encoder's gradients first, then the decoder's
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(g1[n:], g4[n:]))     # decoder: the same
    assert not all(torch.allclose(a, b) for a, b in zip(g1[:n], g4[:n]))             # encoder: not


@pytest.mark.parametrize("opts,words", [(dict(beta=-1.0), "option beta=-1.0 is out of range; it must be at least 0"),
                                        (dict(aa=True), "beta_vae has no adversary activation; set aa=false")])
def test_bad_options_are_refused_in_one_line(opts, words):
    with pytest.raises(JointKLError) as e:
        BetaVAE(BetaVAEConfig(**NET, **opts), (2,), "continuous")
    assert str(e.value).startswith(words) and "\n" not in str(e.value)
