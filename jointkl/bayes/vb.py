"""Gaussian variational Bayes (ADVI, Kucukelbir et al. 2015): the baselines of AVB Sec. 5.1 / Fig. 3.

    generative joint   p(y, z) = exp(log_joint(z)), known up to its normalizer p(y)
    inference joint    q(z) = N(z; m, diag s^2) ("mean-field") or N(z; m, L L^T) ("full-rank", L lower
                       triangular with a positive diagonal)
    KL direction       KL(q(z) || p(z | y)) = log p(y) - ELBO, ELBO = E_q[log p(y, z)] + H[q]       (AVB eq. 2.4)
    estimator          none needed: H[q] is analytic; E_q[log p(y, z)] by `batch` reparameterized draws per step

Trained by the library's Trainer with one player (Adam), as `AVBVI` is; `sample(n)` draws from q.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributions as D
from torch import nn

from jointkl.objectives.base import Objective, Player
from jointkl.training.trainer import train_without_data


@dataclass(frozen=True)
class GaussianVBConfig:
    full_rank: bool = False         # False: diagonal covariance (ADVI mean-field); True: Cholesky factor (full-rank)
    init_std: float = 1.0           # q starts at N(0, init_std^2 I), as Stan's ADVI (omega = 0)
    lr: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.999)


class GaussianVB(Objective):
    """q(z) Gaussian, maximizing the reparameterized ELBO of an unnormalized log-density log_joint: (N, dim) -> (N,)."""

    name, Config = "gaussian-vb", GaussianVBConfig

    def __init__(self, log_joint: Callable[[torch.Tensor], torch.Tensor], dim: int,
                 cfg: GaussianVBConfig = GaussianVBConfig()):
        super().__init__(cfg, (0,), "continuous")
        self.log_joint, self.dim = log_joint, dim
        self.loc = nn.Parameter(torch.zeros(dim))
        self.log_diag = nn.Parameter(torch.full((dim,), float(torch.tensor(cfg.init_std).log())))
        # strictly-lower part of L (full-rank only); the diagonal stays exp(log_diag) > 0
        self.off_diag = nn.Parameter(torch.zeros(dim, dim)) if cfg.full_rank else None

    def q(self) -> D.Distribution:
        if self.off_diag is None:
            return D.Independent(D.Normal(self.loc, self.log_diag.exp()), 1)
        return D.MultivariateNormal(self.loc, scale_tril=self.off_diag.tril(-1) + torch.diag(self.log_diag.exp()))

    def players(self):
        return [Player("q", list(self.parameters()), self.cfg.lr, self.cfg.betas)]

    def loss(self, player, x, y=None):
        q = self.q()
        z = q.rsample((x.shape[0],))                                    # (batch, dim): one draw per row of x
        elbo = self.log_joint(z).mean() + q.entropy()
        return -elbo, {"elbo": elbo}

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.q().sample((n,))                                    # (n, dim)

    def fit(self, steps: int, batch: int = 64, device: str = "cpu", callbacks=(), seed: int = 0) -> "GaussianVB":
        """Train with the library's Trainer, `batch` draws per step (as `AVBVI.fit`)."""
        return train_without_data(self, steps, batch, device, callbacks, seed)
