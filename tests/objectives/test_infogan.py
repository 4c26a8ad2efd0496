"""Hu et al.'s InfoGAN (Hu eq. 9) against known truths: its categorical code recovers the components of a
4-Gaussian mixture (and without the info term it does not), a continuous code orders a segment, and the generator
loss is eq. 9 by hand."""
import itertools

import pytest
import torch
import torch.nn.functional as F

import jointkl as jk
from jointkl.data import Dataset
from jointkl.errors import JointKLError
from jointkl.objectives.infogan import InfoGAN, InfoGANConfig

MEANS4 = torch.tensor([[-2.0, -2.0], [-2.0, 2.0], [2.0, -2.0], [2.0, 2.0]])


def mixture4(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(4, (n,), generator=g)
    return MEANS4[k] + 0.2 * torch.randn(n, 2, generator=g), k


def best_permutation_accuracy(pred: torch.Tensor, truth: torch.Tensor, k: int) -> float:
    return max(float((torch.tensor(p)[pred] == truth).float().mean()) for p in itertools.permutations(range(k)))


# --- InfoGAN (Hu eq. 9) -----------------------------------------------------------------------------------

def code_purity(model, n: int = 500) -> float:
    """Mean over codes of the share of G(z, c=j) samples in their most frequent component, after matching
    codes to distinct components (1.0: each code generates one component of its own)."""
    counts = torch.zeros(4, 4)
    for j in range(4):
        c = F.one_hot(torch.full((n,), j), 4).float()
        x = model.decode(torch.cat([torch.randn(n, model.cfg.latent_dim), c], 1))       # (n, 2)
        counts[j] = torch.bincount(torch.cdist(x, MEANS4).argmin(1), minlength=4).float()
    return max(sum(float(counts[j, p[j]]) for j in range(4)) for p in itertools.permutations(range(4))) / (4 * n)


def train_infogan(tmp_path, seed, **opts):
    (xtr, ktr), (xte, kte) = mixture4(4000, 0), mixture4(2000, 1)
    ds = Dataset("mix4", xtr, xte, "continuous", ktr, kte)
    model = jk.train("infogan", data=ds, steps=300, seed=seed, out=tmp_path / f"ig{seed}", latent_dim=2,
                     n_categorical=4, n_continuous=0, hidden=64, layers=2, batch_size=128, log_every=100,
                     ckpt_every=300, device="cpu", **opts)
    torch.manual_seed(seed)
    return model, xte, kte


@pytest.mark.parametrize("shared", [False, True])
def test_infogan_recovers_the_categorical_code(tmp_path, shared):
    """The inferred code of real test points matches their component (best permutation of 4 codes; chance
    0.25), and each code generates one component. Measured over seeds 0-2 at 300 steps: accuracy 1.000 and
    purity 1.000 in every seed, separate or shared Q."""
    model, xte, kte = train_infogan(tmp_path, 0, q_on_disc_features=shared)
    assert best_permutation_accuracy(model.classify(xte), kte, 4) > 0.9
    assert code_purity(model) > 0.9
    assert model.encode(xte[:5]).sum(1).allclose(torch.ones(5))              # categorical probabilities


def test_without_the_info_term_the_code_is_ignored(tmp_path):
    """Control: info=0 is a plain GAN fed the code as extra noise, and codes do not pick components.
    Measured purity over seeds 0-2: 0.33, 0.27, 0.28 (vs 1.000 with the info term)."""
    model, _, _ = train_infogan(tmp_path, 1, info=0.0)
    assert code_purity(model) < 0.7


def test_infogan_continuous_code_orders_a_segment(tmp_path):
    """Data uniform on a segment x1 in [-2, 2]: a continuous code c ~ U(-1, 1) with the info term becomes the
    position along it, both in G(z, c) and in the inferred code of real points. Measured |corr| over seeds
    0-2: 1.000, 0.999, 0.992 (generation) and 1.000, 0.999, 0.992 (inference); with info=0: 0.61, 0.08, 0.51."""
    def segment(n, seed):
        g = torch.Generator().manual_seed(seed)
        return torch.stack([4 * torch.rand(n, generator=g) - 2, 0.05 * torch.randn(n, generator=g)], 1)
    ds = Dataset("segment", segment(4000, 0), segment(2000, 1), "continuous")
    m = jk.train("infogan", data=ds, steps=300, seed=0, out=tmp_path / "r", latent_dim=1, n_categorical=0,
                 n_continuous=1, hidden=64, layers=2, batch_size=128, log_every=100, ckpt_every=300, device="cpu")
    torch.manual_seed(0)
    c = torch.linspace(-1, 1, 200)[:, None]
    x = m.decode(torch.cat([torch.randn(200, 1), c], 1))                    # (200, 2), noise drawn too
    corr = lambda a, b: float(torch.corrcoef(torch.stack([a, b]))[0, 1])    # noqa: E731
    assert abs(corr(c[:, 0], x[:, 0])) > 0.95
    assert abs(corr(m.encode(ds.test)[:, 0], ds.test[:, 0])) > 0.95


def test_infogan_generator_loss_is_eq9():
    """gen loss = -log D(G(z, c)) + info * (-log Q(c|G(z, c))) on the same draw, by hand; the D player's
    parameters get no gradient from it."""
    torch.manual_seed(0)
    m = InfoGAN(InfoGANConfig(latent_dim=2, n_categorical=3, n_continuous=2, info=0.7, hidden=16, layers=2),
                (2,), "continuous").double()
    x = torch.randn(16, 2, dtype=torch.float64)
    torch.manual_seed(3)
    loss, _ = m.loss("gen", x)
    torch.manual_seed(3)
    z = torch.randn(16, 2, dtype=torch.float64)                             # the draws in the model's order:
    k = torch.randint(3, (16,))                                              # z ~ N(0, I), then the code
    u = torch.rand(16, 2, dtype=torch.float64) * 2 - 1                       # c = (k ~ U{0..2}, u ~ U(-1, 1))
    fake = m.G(torch.cat([z, F.one_hot(k, 3).double(), u], 1)).mean
    out = m.Q(fake)                                                          # (16, 3 + 2 + 2)
    logq_cat = out[:, :3].log_softmax(1).gather(1, k[:, None]).squeeze(1)
    std = F.softplus(out[:, 5:]) + m.cfg.min_std
    logq_cont = torch.distributions.Normal(out[:, 3:5], std).log_prob(u).sum(1)
    expected = F.softplus(-m.D(fake).squeeze(1)).mean() + 0.7 * -(logq_cat + logq_cont).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-10)
    loss.backward(inputs=[p for pl in m.players() if pl.name == "gen" for p in pl.params])
    assert all(p.grad is None for p in m.D.parameters())


def test_infogan_api_cli_and_errors(tmp_path, cli):
    code, _, err = cli("train", "infogan", "--data", "grid25", "--steps", "3", "--out", tmp_path / "r",
                       "hidden=16", "layers=1", "log_every=1", "device=cpu")
    assert code == 0, err
    m = jk.load(tmp_path / "r", device="cpu")
    assert m.sample(5).shape == (5, 2) and m.encode(torch.randn(7, 2)).shape == (7, 12)
    assert m.decode(torch.randn(4, 12)).shape == (4, 2) and m.decode(torch.randn(4, 20)).shape == (4, 2)
    assert m.reconstruct(torch.randn(3, 2)).shape == (3, 2) and m.classify(torch.randn(3, 2)).shape == (3,)
    with pytest.raises(JointKLError, match="needs a code"):
        InfoGAN(InfoGANConfig(n_categorical=0, n_continuous=0), (2,), "continuous")
    with pytest.raises(JointKLError, match="decode takes"):
        m.decode(torch.randn(4, 5))
