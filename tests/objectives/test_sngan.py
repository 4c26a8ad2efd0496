"""SN-GAN against truth: after training updates every Linear / Conv layer of D has largest singular value
<= 1 (Miyato et al. 2018; conv kernels as (out, in*k*k) matrices), and spectral_norm=false is the GAN bitwise."""
import pytest
import torch
from torch import nn

from jointkl.objectives.gan import GAN, GANConfig
from jointkl.objectives.sngan import SNGAN, SNGANConfig
from tests.helpers import adam_updates, each_players_loss_and_grads


def singular_values(m) -> list[float]:
    return [float(torch.linalg.matrix_norm(mod.weight.detach().flatten(1), 2)) for mod in m.D.modules()
            if isinstance(mod, (nn.Linear, nn.Conv2d))]


@pytest.mark.parametrize("arch,shape,steps,layers", [("mlp", (2,), 30, 3), ("dcgan", (1, 8, 8), 3, 3)])
def test_every_layer_of_d_has_largest_singular_value_at_most_one(arch, shape, steps, layers):
    torch.manual_seed(0)
    x = torch.randn(32, *shape) * 2 if arch == "mlp" else torch.rand(32, *shape)
    kind = "continuous" if arch == "mlp" else "image"
    m = adam_updates(SNGAN(SNGANConfig(latent_dim=2, hidden=32, layers=2, arch=arch), shape, kind), x, steps)
    sv = singular_values(m)
    assert len(sv) == layers and max(sv) <= 1 + 1e-3
    if arch == "mlp":                                   # the same training without it leaves D's layers above 1
        torch.manual_seed(0)
        plain = adam_updates(GAN(GANConfig(latent_dim=2, hidden=32, layers=2), shape, kind), x, steps)
        assert max(singular_values(plain)) > 1.5


def test_without_spectral_norm_it_is_the_gan_exactly():
    x = torch.randn(16, 2)
    out = []
    for cls, cfg in ((GAN, GANConfig), (SNGAN, SNGANConfig)):
        kw = dict(latent_dim=2, hidden=16, layers=1)
        torch.manual_seed(0)
        m = cls(cfg(**kw) if cls is GAN else cfg(**kw, spectral_norm=False), (2,), "continuous")
        out.append(each_players_loss_and_grads(m, x))
    for (la, ga), (lb, gb) in zip(*out):
        assert torch.equal(la, lb) and all(torch.equal(a, b) for a, b in zip(ga, gb))
