"""EM on a known mixture: it finds the component means, and log p(x) never decreases."""
import csv

import torch

import jointkl as jk
from jointkl.data import from_array


def test_em_recovers_mixture_means(tmp_path):
    g = torch.Generator().manual_seed(0)
    means = torch.tensor([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    z = torch.randint(3, (3000,), generator=g)
    x = means[z] + 0.7 * torch.randn(3000, 2, generator=g)
    model = jk.train("em", data=from_array(x), steps=50, out=tmp_path / "em", components=3)
    found = model.means[torch.cdist(means, model.means).argmin(1)]        # match components
    assert (found - means).norm(dim=1).max() < 0.1
    with open(tmp_path / "em" / "metrics.csv") as f:
        ll = [float(r["em/log_px"]) for r in csv.DictReader(f)]
    assert all(b >= a - 1e-5 for a, b in zip(ll, ll[1:]))                   # EM never decreases log p(x)
