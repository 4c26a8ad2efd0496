"""SVAE (Kingma et al.'s M2): its bounds are the exact log-likelihoods when its posteriors are exact, and it
learns to classify from 5 % of the labels."""
import math

import pytest
import torch
import torch.distributions as D

import jointkl as jk
from jointkl.objectives.svae import SVAE, SVAEConfig
from tests.helpers import BC, SIGMA, exact_posterior, linear_model, svae_neg_bound, two_line_dataset


def test_svae_bounds_are_exact_with_exact_posteriors():
    """With q(z|x, c) and q(c|x) exact, U(x) = log p(x) and L(x, c) = log p(x, c), per example and draw."""
    torch.manual_seed(0)
    m = linear_model(SVAE, SVAEConfig, alpha=0.0)
    prec = torch.linalg.inv(SIGMA)
    with torch.no_grad():                                          # logit_c = b_c^T S^-1 x - b_c^T S^-1 b_c / 2
        cls = m.q_y.net.net[0]
        cls.weight.copy_(BC @ prec), cls.bias.copy_(-0.5 * ((BC @ prec) * BC).sum(1))
    x = torch.cat([D.MultivariateNormal(b, SIGMA).sample((3,)) for b in BC])         # (9, 3)
    log_px_c, log_px = exact_posterior(x)
    assert torch.allclose(m.log_likelihood(x, "elbo", k=1), log_px, atol=1e-4)       # Kingma eq. 7
    # the training loss: -L for labelled rows, -U for the others; its analytic KL makes one draw noisy, so
    # average 20,000 draws (measured error at most 0.018 nats, seeds 0-4)
    # (alpha = 0: the loss is the bound alone), row by row
    y, n = torch.tensor([0, -1, 2, -1, 1, -1, -1, 2, -1]), 20_000
    with torch.no_grad():
        per = torch.stack([m.loss("vae", x[i].repeat(n, 1), y[i].repeat(n))[0] for i in range(9)])
    lab = y >= 0
    assert torch.allclose(-per[lab], log_px_c[y[lab], lab.nonzero().squeeze(1)] - math.log(3), atol=0.04)
    assert torch.allclose(-per[~lab], log_px[~lab], atol=0.04)


def test_svae_loss_is_kingma_bounds_by_hand():
    """The declared loss (label enumerated on unlabelled rows) equals eqs. 6-7 and 9 written out by hand, with
    the same draws."""
    torch.manual_seed(0)
    m = linear_model(SVAE, SVAEConfig, alpha=0.7)
    x, y = torch.randn(6, 3), torch.tensor([0, -1, 2, -1, 1, -1])
    torch.manual_seed(1)
    loss, logs = m.loss("vae", x, y)
    torch.manual_seed(1)
    per = svae_neg_bound(m, x, y)
    ce = (-m.q_y(x).log_prob(y.clamp_min(0))[y >= 0]).mean()
    assert loss.item() == pytest.approx((per.mean() + 0.7 * ce).item(), rel=1e-6)
    assert logs["bound"].item() == pytest.approx(per.mean().item(), rel=1e-6)
    assert logs["ce"].item() == pytest.approx(ce.item(), rel=1e-6)


def test_svae_classifies_from_few_labels(tmp_path):
    """5% labels (50 of 1,000 per class); a classifier trained on them alone would also do well here, so the
    check is that the semi-supervised objective learns the labelled classes, not just clusters."""
    torch.manual_seed(0)
    ds = two_line_dataset()
    m = jk.train("svae", data=ds, steps=300, out=tmp_path / "svae", classes=2, latent_dim=2, hidden=32,
                 layers=1, batch_size=64, labelled=0.05, alpha=1.0, log_every=100, ckpt_every=300, device="cpu")
    acc = (m.classify(ds.test) == ds.test_labels).float().mean()
    assert acc > 0.95                                                  # measured 1.0 (seeds 0-2)
