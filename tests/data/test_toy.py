"""The toy sets (jointkl.data.toy): the mixtures' modes, the 2x2 binary images, Eight Schools."""
import math

import pytest
import torch

from jointkl.data import load


@pytest.mark.parametrize("name,std,k", [("grid25", 0.05, 25), ("ring8", 0.02, 8)])
def test_mixture_modes(name, std, k):
    d = load(name)
    means = d.meta["means"]
    assert means.shape == (k, 2) and d.meta["std"] == std
    if name == "grid25":
        g = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        assert set(map(tuple, means.tolist())) == {(float(a), float(b)) for a in g for b in g}
    else:
        assert torch.allclose(means.norm(dim=1), torch.full((8,), 2.0), atol=1e-6)
    for x, y in ((d.train, d.train_labels), (d.test, d.test_labels)):
        nearest = torch.cdist(x, means).argmin(dim=1)
        assert torch.equal(nearest, y)
        resid = x - means[y]
        assert abs(resid.std().item() - std) < 0.03 * std
        assert resid.mean(0).abs().max() < 0.01 * std * 10
        counts = torch.bincount(y, minlength=k).double()
        assert (counts / len(y) - 1 / k).abs().max() < 0.02  # roughly equal weights
    assert not torch.equal(d.train[: len(d.test)], d.test)  # different seeds


def test_binary2x2():
    d = load("binary2x2")
    flat_test = d.test.reshape(4, 4)
    assert torch.equal(flat_test, torch.eye(4))
    assert torch.equal(d.test_labels, torch.arange(4))
    flat = d.train.reshape(-1, 4)
    assert torch.unique(flat, dim=0).shape[0] == 4
    assert torch.equal(flat.sum(1), torch.ones(4000))
    assert torch.equal(flat.argmax(1), d.train_labels)
    assert torch.equal(torch.bincount(d.train_labels), torch.full((4,), 1000))
    assert math.isclose(d.meta["optimum_loglik"], -math.log(4))


def test_eight_schools():
    d = load("eight_schools")
    y = [28, 8, -3, 7, -1, 1, 18, 12]
    s = [15, 10, 16, 11, 9, 11, 10, 18]
    assert d.train[:, 0].tolist() == y and d.train[:, 1].tolist() == s
    assert torch.equal(d.train, d.test)
    assert d.meta["y"].tolist() == y and d.meta["sigma"].tolist() == s
