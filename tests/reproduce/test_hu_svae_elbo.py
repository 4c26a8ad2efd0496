"""hu-table4's test ELBO of the SVAE runs (Hu Table 3's SVAE columns): without labels it is Kingma's U(x), a bound
on log p(x) (exact when the posteriors are exact), with labels the bound on log p(x|c)."""
import torch
import torch.distributions as D

from jointkl.objectives.svae import SVAE, SVAEConfig
from jointkl.reproduce import hu
from tests.helpers import BC, SIGMA, exact_posterior, linear_model


def _exact_svae():
    m = linear_model(SVAE, SVAEConfig, alpha=0.0)
    prec = torch.linalg.inv(SIGMA)
    with torch.no_grad():                                          # q(c|x) exact: logit_c = b_c^T S^-1 x - ...
        cls = m.q_y.net.net[0]
        cls.weight.copy_(BC @ prec), cls.bias.copy_(-0.5 * ((BC @ prec) * BC).sum(1))
    return m


def test_svae_test_elbo_without_labels_is_log_px_and_with_labels_log_px_given_c():
    torch.manual_seed(0)
    m = _exact_svae()
    x = torch.cat([D.MultivariateNormal(b, SIGMA).sample((4,)) for b in BC])         # (12, 3)
    y = torch.arange(3).repeat_interleave(4)                                         # (12,)
    log_px_c, log_px = exact_posterior(x)                                            # (3, 12), (12,)
    assert abs(hu.test_elbo(m, x, None) - float(log_px.mean())) < 1e-4               # U(x) = log p(x)
    given = float(log_px_c[y, torch.arange(12)].mean())                              # log p(x|c), true c
    assert abs(hu.test_elbo(m, x, y) - given) < 1e-4
    assert abs(given - float(log_px.mean())) > 0.1                                   # the two differ here


def test_svae_test_elbo_without_labels_is_below_log_px_for_an_inexact_classifier():
    torch.manual_seed(0)
    m = _exact_svae()
    with torch.no_grad():
        m.q_y.net.net[0].bias.add_(torch.tensor([2.0, -1.0, 0.0]))                   # q(c|x) no longer exact
    x = torch.cat([D.MultivariateNormal(b, SIGMA).sample((4,)) for b in BC])
    _, log_px = exact_posterior(x)
    assert hu.test_elbo(m, x, None) < float(log_px.mean()) - 1e-3                    # a strict lower bound
