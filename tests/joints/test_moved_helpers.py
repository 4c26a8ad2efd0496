"""Helpers moved out of the model files: the chunked ELBO/IWAE loop (cvae, wake_sleep) and AVB's KDE-proposal
importance sampler, against one-pass and closed-form values."""
import math

import pytest
import torch

from jointkl.divergences.importance import chunked_bound, iwae_bound, kde_iwae, standard_normal_log_prob


def test_chunked_bound_matches_one_pass_and_refuses_unknown_methods():
    torch.manual_seed(0)
    log_w = torch.randn(5, 7)                                               # (k, B)
    fn = lambda r: log_w[:, r]                                              # noqa: E731
    rows = torch.arange(7)
    torch.testing.assert_close(chunked_bound(fn, "elbo", 5, 10, rows), log_w.mean(0))   # 2 rows a chunk
    torch.testing.assert_close(chunked_bound(fn, "iwae", 5, 10, rows), iwae_bound(log_w))
    with pytest.raises(ValueError, match="elbo or iwae"):
        chunked_bound(fn, "exact", 5, 10, rows)


def test_standard_normal_log_prob():
    z = torch.randn(4, 3)
    torch.testing.assert_close(standard_normal_log_prob(z), torch.distributions.Normal(0, 1).log_prob(z).sum(-1))


def test_kde_iwae_recovers_a_known_marginal():
    """z ~ N(0, 1), x | z ~ N(z, 1): p(x) = N(x; 0, 2); KDE centres drawn from the exact posterior N(x/2, 1/2)."""
    torch.manual_seed(0)
    x = 0.7
    centres = x / 2 + math.sqrt(0.5) * torch.randn(2000, 1)
    log_lik = lambda z: torch.distributions.Normal(z[:, 0], 1.0).log_prob(torch.tensor(x))   # noqa: E731
    est = kde_iwae(log_lik, centres, 20000)
    truth = torch.distributions.Normal(0.0, math.sqrt(2)).log_prob(torch.tensor(x))
    assert est.shape == (1,) and abs(float(est) - float(truth)) < 0.02
