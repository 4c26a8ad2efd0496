"""The MLP generator's options in every model that has them (`g_batchnorm`, `g_act`, as DCGAN's generator):
they change G's hidden layers and nothing else."""
import pytest
import torch

import jointkl as jk
from jointkl.nets import features
from jointkl.objectives import get

TINY = dict(hidden=16, layers=1, batch_size=32, log_every=5, ckpt_every=10, device="cpu")


@pytest.mark.parametrize("name", ["dali", "gan", "ali", "aae"])
def test_g_batchnorm_normalizes_the_generator_only_and_samples_do_not_depend_on_the_batch(tmp_path, name):
    """Batch norm goes into G's hidden layers (DCGAN's generator; ALI's toy nets), nowhere else; a trained model
    decodes in eval mode with its running statistics, so one code's output does not depend on its batch."""
    m = jk.train(name, data="grid25", out=tmp_path / "r", steps=20, latent_dim=2, g_batchnorm=True,
                 **{**TINY, "layers": 2})
    g = m.p_x if name in ("ali", "aae") else m.G
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm1d)]
    assert len(bns) == 2 and all(any(b is mod for mod in g.modules()) for b in bns)
    assert all(b.num_batches_tracked > 0 for b in bns)
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    assert not m.training                                                  # in train mode the gap is O(1)
    torch.testing.assert_close(m.decode(z)[:3], m.decode(z[:3]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["dali", "gan", "ali", "aae"])
def test_g_act_relu_changes_the_generator_only(cli, tmp_path, name):
    """`g_act=relu` (DCGAN's generator) makes G's hidden units ReLUs: its hidden features are >= 0 with exact zeros;
    D's and E's stay LeakyReLU(0.2). An unknown activation is one clear error line."""
    cls = get(name)
    m = cls(cls.Config(latent_dim=2, hidden=16, layers=2, g_act="relu"), (2,), "continuous")
    g = m.p_x if name in ("ali", "aae") else m.G
    relus = [mod for mod in m.modules() if type(mod) is torch.nn.ReLU]
    assert len(relus) == 2 and all(any(r is mod for mod in g.modules()) for r in relus)
    assert all(mod.negative_slope == 0.2 for mod in m.modules() if isinstance(mod, torch.nn.LeakyReLU))
    h = features(g.net, torch.randn(500, 2, generator=torch.Generator().manual_seed(0)))   # (500, 16)
    assert h.min() == 0 and (h == 0).any() and (h > 0).any()
    line = cli.error("train", name, "--data", "grid25", "--steps", "1", "--out", tmp_path / "bad", "g_act=tanh")
    assert "g_act='tanh' is not known" in line and "leaky_relu, relu" in line
