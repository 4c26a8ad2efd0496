"""The code family of `jointkl.joints.codes` (InfoGAN's c = [one-hot k, u]) against closed forms, and the
held-network conditionals `OnFeatures` and `BernoulliPrior`."""
import math

import torch
import torch.distributions as D
import torch.nn.functional as F
from torch import nn

from jointkl.joints import BernoulliPrior, Code, OnFeatures, uniform_code
from jointkl.nets import MLP, features


def test_uniform_code_draws_k_then_u_and_has_the_uniform_density():
    ref = torch.zeros(5, 2)
    torch.manual_seed(0)
    c = uniform_code(3, 2)(5, ref).sample()                                  # (5, 3 + 2)
    torch.manual_seed(0)
    k, u = torch.randint(3, (5,)), torch.rand(5, 2) * 2 - 1
    torch.testing.assert_close(c, torch.cat([F.one_hot(k, 3).float(), u], 1))
    lp = uniform_code(3, 2)(5, ref).log_prob(c)
    torch.testing.assert_close(lp, torch.full((5,), -math.log(3) - 2 * math.log(2)))


def test_code_posterior_is_a_categorical_times_a_gaussian():
    torch.manual_seed(0)
    q = Code(4, 3, 2, hidden=8, layers=1, min_std=0.1)
    x = torch.randn(6, 4)
    out = q.net(x)
    logits, mu, s = out[:, :3], out[:, 3:5], out[:, 5:]
    c = torch.cat([F.one_hot(torch.tensor([0, 1, 2, 0, 1, 2]), 3).float(), torch.randn(6, 2)], 1)
    want = (D.Categorical(logits=logits).log_prob(c[:, :3].argmax(1))
            + D.Normal(mu, F.softplus(s) + 0.1).log_prob(c[:, 3:]).sum(1))
    dist = q(x)
    torch.testing.assert_close(dist.log_prob(c), want)
    torch.testing.assert_close(dist.mean, torch.cat([logits.softmax(1), mu], 1))
    assert dist.sample().shape == (6, 5) and q.event_shape == (5,)


def test_a_code_may_lack_either_part():
    ref = torch.zeros(4, 1)
    assert uniform_code(0, 2)(4, ref).sample().shape == (4, 2)
    assert uniform_code(3, 0)(4, ref).sample().sum(1).eq(1).all()
    q = Code(2, 0, 1, hidden=4, layers=0)
    assert q(torch.randn(4, 2)).log_prob(torch.zeros(4, 1)).shape == (4,)


def test_on_features_reads_the_last_hidden_layer_of_a_held_network():
    torch.manual_seed(0)
    body, head = MLP(3, 1, 8, 2), Code(8, 2, 0, hidden=8, layers=0)
    q, x = OnFeatures(body, head), torch.randn(5, 3)
    torch.testing.assert_close(q(x).mean, head(features(body, x)).mean)
    assert q.event_shape == (2,) and not list(q.parameters())               # held, not registered


def test_bernoulli_prior_uses_the_held_logits():
    logits = nn.Parameter(torch.tensor([0.0, 2.0]))
    p = BernoulliPrior(logits)
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    want = D.Bernoulli(logits=logits).log_prob(h).sum(1)
    torch.testing.assert_close(p(torch.zeros(3, 0)).log_prob(h), want)
    assert p.event_shape == (2,) and not list(p.parameters())
