"""Expectation-maximization for a Gaussian mixture, as alternating minimization of one joint KL (Su eq. 5, 8-11).

    generative joint   p(x, z) = p(z) p(x|z),  p(z) = Categorical(pi), p(x|z=k) = N(mu_k, Sigma_k)
    inference joint    q(x, z) = p_data(x) q(z|x),  q(z|x) free (non-parametric)
    KL direction       KL(q(x, z) || p(x, z))
    E-step (eq. 11)    q(z|x) = p(x|z) p(z) / p(x): the exact posterior makes the KL in z zero (eq. 10)
    M-step (eq. 8)     maximize E_data E_q(z|x)[log p(x, z)] over pi, mu, Sigma: weighted moments, closed form

Both steps are exact, so EM is one closed-form player on the full training set; the log-likelihood is
exact and never decreases (Dempster et al. 1977; tested). `encode(x)` gives the responsibilities q(z|x).

Not a declaration: `jointkl.declare` derives losses for gradient players, and both EM steps are closed-form
argmins (eq. 8, 11) that no loss would state more simply.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributions as D

from jointkl.errors import JointKLError
from jointkl.objectives.base import Objective, Player
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class EMConfig:
    components: int = 3
    min_var: float = 1e-4   # added to each covariance's diagonal, keeps Sigma_k invertible


@register
class EM(Objective):
    """Gaussian mixture fitted by EM: exact posterior (Su eq. 11), then closed-form M-step (eq. 8)."""

    name, Config = "em", EMConfig

    def __init__(self, cfg: EMConfig, data_shape, data_kind):
        super().__init__(cfg, data_shape, data_kind)
        d, k = int(torch.Size(data_shape).numel()), cfg.components
        self.register_buffer("logits", torch.zeros(k))
        self.register_buffer("means", torch.zeros(k, d))
        self.register_buffer("covs", torch.eye(d).repeat(k, 1, 1))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    def players(self):
        return [Player("em", [], closed_form=True, full_batch=True)]

    def joint(self) -> D.MixtureSameFamily:
        return D.MixtureSameFamily(D.Categorical(logits=self.logits),
                                   D.MultivariateNormal(self.means, covariance_matrix=self.covs))

    def posterior(self, x: torch.Tensor) -> torch.Tensor:
        """q(z|x) of Su eq. 11: responsibilities, (N, K)."""
        comp = D.MultivariateNormal(self.means, covariance_matrix=self.covs)
        log_joint = comp.log_prob(x.flatten(1)[:, None]) + self.logits.log_softmax(0)   # (N, K)
        return log_joint.softmax(1)

    @torch.no_grad()
    def update(self, player, x):
        x = x.flatten(1)                                                   # (N, D)
        if x.shape[0] < self.cfg.components:
            raise JointKLError(f"em needs at least components={self.cfg.components} points; got {x.shape[0]}")
        if not self.initialized:                                           # means at distinct random points
            self.means.copy_(x[torch.randperm(x.shape[0], device=x.device)[: self.cfg.components]])
            self.covs.copy_(torch.cov(x.T).reshape(x.shape[1], x.shape[1]).expand_as(self.covs))
            self.initialized.fill_(True)
        r = self.posterior(x)                                              # (N, K)  E-step, eq. 11
        n_k = r.sum(0) + 1e-12                                             # (K,)
        self.logits.copy_((n_k / n_k.sum()).log())                         # M-step, eq. 8
        self.means.copy_(r.T @ x / n_k[:, None])
        diff = x[None] - self.means[:, None]                               # (K, N, D)
        cov = torch.einsum("kn,knd,kne->kde", r.T, diff, diff) / n_k[:, None, None]
        self.covs.copy_(cov + self.cfg.min_var * torch.eye(x.shape[1], device=x.device))
        return {"log_px": self.joint().log_prob(x).mean()}

    @property
    def latent_dim(self) -> int:
        return self.cfg.components

    @torch.no_grad()
    def sample(self, n):
        return self.joint().sample((n,)).view(n, *self.data_shape)

    @torch.no_grad()
    def encode(self, x):
        """The posterior q(z|x) over components, (N, K)."""
        return self.posterior(self.check_input(x))

    @torch.no_grad()
    def decode(self, z):
        """Mean of p(x|z): z is a component index (N,) or posterior probabilities (N, K)."""
        z = torch.as_tensor(z, device=self.device)
        idx = z.argmax(1) if z.dim() == 2 else z.long()
        return self.means[idx].view(-1, *self.data_shape)

    @torch.no_grad()
    def log_likelihood(self, x, method="exact", k=1):
        """Exact log p(x); with the exact posterior the ELBO and the IWAE bound equal it too."""
        if method not in ("exact", "elbo", "iwae"):
            raise JointKLError(f"unknown likelihood method {method!r} for em; choose exact, elbo or iwae")
        return self.joint().log_prob(self.check_input(x).flatten(1))
