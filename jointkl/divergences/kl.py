"""KL divergence between two explicit distributions: analytic when known, Monte Carlo otherwise.

Su (2018) eq. 4 writes every model as minimising KL(p(x, z) || q(x, z)); the pieces that have a
density (a Gaussian encoder vs. a Gaussian prior, as in the VAE loss under eq. 4) are estimated here.
"""

import torch
from torch import Tensor
from torch.distributions import Distribution


def _draw(q: Distribution, n: int) -> Tensor:
    """n samples from q, reparameterised when q allows it so gradients reach q's parameters."""
    shape = torch.Size([n])
    return q.rsample(shape) if q.has_rsample else q.sample(shape)  # (n, *batch, *event)


def mc_kl(q: Distribution, p: Distribution, n: int = 1) -> Tensor:
    """Monte-Carlo KL(q || p) = E_q[log q(z) - log p(z)] over n samples z ~ q.

    Unbiased; differentiable in q's parameters when q has ``rsample`` (reparameterisation trick,
    Su 2018 under eq. 4). Returns a tensor of q's batch shape.
    """
    if n < 1:
        raise ValueError(f"mc_kl needs n >= 1 samples, got n={n}")
    z = _draw(q, n)  # (n, *batch, *event)
    log_ratio = q.log_prob(z) - p.log_prob(z)  # (n, *batch)
    return log_ratio.mean(dim=0)  # (*batch,)


def kl(q: Distribution, p: Distribution, n: int = 1) -> Tensor:
    """KL(q || p): ``torch.distributions.kl_divergence`` when registered, else ``mc_kl`` with n samples.

    Returns a tensor of the (broadcast) batch shape.
    """
    try:
        return torch.distributions.kl_divergence(q, p)  # (*batch,)
    except NotImplementedError:
        return mc_kl(q, p, n)  # (*batch,)
