"""The k-NN KL estimator (Wang, Kulkarni & Verdu 2009) against the closed-form KL of Gaussians."""
import math

import pytest
import torch
import torch.distributions as D

from jointkl.eval.knn_kl import knn_kl

N = 4000


def draws(dist: D.Distribution, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    return dist.sample((N,))


@pytest.mark.parametrize("p,q", [
    (D.MultivariateNormal(torch.tensor([0.5, 0.5]), 0.36 * torch.eye(2)),
     D.MultivariateNormal(torch.zeros(2), torch.eye(2))),
    (D.MultivariateNormal(torch.tensor([0.5, -0.3]), torch.tensor([[0.5, 0.2], [0.2, 0.4]])),
     D.MultivariateNormal(torch.tensor([0.0, 0.2]), torch.tensor([[1.0, -0.3], [-0.3, 1.5]]))),
])
def test_matches_closed_form_kl_of_two_gaussians_in_2d(p, q):
    exact = D.kl_divergence(p, q).item()
    est = knn_kl(draws(p, 0), draws(q, 1), k=5)
    # at n = m = 4000, k = 5 the estimator's spread over draws is ~0.03 nats and its bias a few percent
    assert est == pytest.approx(exact, rel=0.1)


def test_is_near_zero_for_one_distribution():
    p = D.MultivariateNormal(torch.tensor([1.0, -2.0]), torch.tensor([[2.0, 0.5], [0.5, 1.0]]))
    assert abs(knn_kl(draws(p, 0), draws(p, 1), k=5)) < 0.03


def test_is_invariant_to_a_shared_similarity_transform():
    """Distances scale by one factor under x -> a R x + b, so the log distance ratios are unchanged."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 3, generator=g, dtype=torch.float64)
    y = 1.3 * torch.randn(600, 3, generator=g, dtype=torch.float64)
    R, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))       # a rotation (or reflection)
    b = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    assert knn_kl(2.5 * x @ R.T + b, 2.5 * y @ R.T + b, k=3) == pytest.approx(knn_kl(x, y, k=3), abs=1e-8)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="dimension"):
        knn_kl(torch.randn(10, 2), torch.randn(10, 3))
    with pytest.raises(ValueError, match="k="):
        knn_kl(torch.randn(10, 2), torch.randn(10, 2), k=10)
    with pytest.raises(ValueError, match="repeated"):
        knn_kl(torch.zeros(10, 2), torch.randn(10, 2), k=1)
    assert math.isfinite(knn_kl(torch.randn(10, 2), torch.randn(3, 2), k=3))
