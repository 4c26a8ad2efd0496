"""Helpers that several test files share: a linear-Gaussian class-conditional model whose log-likelihoods are
known (tests/objectives/test_cvae.py, test_svae.py) and a two-class data set on a line (test_cgan.py, test_svae.py)."""
import math

import torch
import torch.distributions as D

from jointkl.data import Dataset


# --- CVAE and SVAE on a linear-Gaussian class-conditional model -------------------------------------------
# p(c) = 1/3, p(z) = N(0, I_2), p(x|z, c) = N(W z + b_c, s^2 I_3). W has orthogonal columns, so the exact
# posterior p(z|x, c) = N(A (x - b_c), (I + W^T W / s^2)^-1) is diagonal and a linear encoder can be exact;
# p(c|x) is a softmax of a linear function of x, so a linear classifier can be exact too.

S = 0.5
W = torch.tensor([[0.6, -0.64], [0.8, 0.48], [0.0, 0.0]])                            # columns orthogonal
BC = torch.tensor([[1.0, -1.0, 0.5], [-1.0, 0.5, 0.0], [0.0, 1.0, -1.0]])          # (3 classes, 3)
SIGMA = W @ W.T + S**2 * torch.eye(3)
POST_COV = torch.linalg.inv(torch.eye(2) + W.T @ W / S**2)
A = POST_COV @ W.T / S**2                                                             # (2, 3)


def linear_model(cls, cfg_cls, **kw):
    m = cls(cfg_cls(latent_dim=2, layers=0, decoder="gaussian", classes=3, **kw), (3,), "continuous")
    with torch.no_grad():
        dec = m.p_x.net.net[0]                                 # input (z, one-hot c) -> mean W z + b_c
        dec.weight.copy_(torch.cat([W, BC.T], 1)), dec.bias.zero_()
        m.p_x.log_std.fill_(math.log(S))
        enc = m.q_z.net.net[0]                                 # (x, c) -> rows: 2 means, then 2 std logits
        enc.weight.zero_(), enc.bias.zero_()
        enc.weight[:2, :3].copy_(A), enc.weight[:2, 3:].copy_(-A @ BC.T)
        std = POST_COV.diagonal().sqrt()
        enc.bias[2:].copy_(torch.log(torch.expm1(std - m.q_z.min_std)))
    return m


def exact_posterior(x):
    log_px_c = torch.stack([D.MultivariateNormal(b, SIGMA).log_prob(x) for b in BC])   # (3, N)
    return log_px_c, torch.logsumexp(log_px_c, 0) - math.log(3)


# --- a two-class data set on a line ------------------------------------------------------------------------

def two_class_line(n=2000, seed=0):
    """Class c in {0, 1} at -2 + 4c on a line, std 0.3; 2-d points (x, 0.3 * noise)."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randint(2, (n,), generator=g)
    x = torch.stack([-2 + 4 * c + 0.3 * torch.randn(n, generator=g), 0.3 * torch.randn(n, generator=g)], 1)
    return x, c


def two_line_dataset(name="two-line"):
    (xtr, ytr), (xte, yte) = two_class_line(), two_class_line(500, 1)
    return Dataset(name, xtr, xte, "continuous", ytr, yte)


def svae_neg_bound(m, x, y):
    """Kingma et al. (2014) eqs. 6-7 by hand from an SVAE's networks: -L(x, c) on labelled rows (y >= 0) and
    -U(x) = -sum_c q(c|x) L(x, c) - H(q(c|x)) on the others, one draw of z per class. (B,)"""
    k, n = m.cfg.classes, x.shape[0]
    c = torch.nn.functional.one_hot(torch.arange(k).repeat_interleave(n), k).float()     # rows c*B + i
    xs = x.repeat(k, *[1] * (x.dim() - 1))
    q = m.q_z(xs, c)
    z = q.rsample()
    nl = (-m.p_x(z, c).log_prob(xs) + D.kl_divergence(q, m.prior(k * n))).view(k, n) + math.log(k)
    q_y = m.q_y(x)
    neg_u = (q_y.probs.T * nl).sum(0) - q_y.entropy()
    return torch.where(y >= 0, nl.gather(0, y.clamp_min(0)[None]).squeeze(0), neg_u)


def each_players_loss_and_grads(m, x, seed=1):
    """Every player's (loss, gradients of its parameters) at one batch, each drawn from the same seed."""
    out = []
    for p in m.players():
        m.begin(p.name)
        torch.manual_seed(seed)
        loss, _ = m.loss(p.name, x)
        out.append((loss, torch.autograd.grad(loss, p.params)))
    return out


def adam_updates(m, x, steps, lr=0.05):
    """`steps` rounds of one Adam update per player on the fixed batch x (a model's losses, no Trainer: the
    tests that need an exact batch); returns m."""
    opts = {p.name: torch.optim.Adam(p.params, lr=lr, betas=p.betas) for p in m.players()}
    for _ in range(steps):
        for p in m.players():
            m.begin(p.name)
            loss, _ = m.loss(p.name, x)
            opts[p.name].zero_grad()
            loss.backward(inputs=p.params)
            opts[p.name].step()
    return m


def registry_kept(folder=None):
    """A fixture body: the model registry (and the modules imported from `folder`) as they were, after the test."""
    import sys
    from jointkl.objectives import MODELS, registry
    stores = (MODELS, registry._PROVIDERS, registry._ENTRY_POINT_MODELS, registry._LOADED_ENTRY_POINTS,
              registry._FILES)
    saved = [type(s)(s) for s in stores]
    yield
    for store, old in zip(stores, saved):
        store.clear()
        store.update(old)
    if folder is not None:
        for name, m in list(sys.modules.items()):
            if str(getattr(m, "__file__", None) or "").startswith(str(folder)):
                del sys.modules[name]
