"""Conditional VAE (Sohn et al. 2015; Kingma et al. 2014's M2 with observed labels), with Hu's AA switch.

    generative joint   p(x, z | c) = p(z) p(x|z, c),        p(z) = N(0, I), c the one-hot label
    inference joint    q(x, z | c) = p_data(x|c) q(z|x, c),  q(z|x, c) = N(mu(x, c), diag sigma(x, c)^2)
    KL direction       KL(q || p) = E_data[-ELBO(x|c)] + const, ELBO(x|c) = E_q log p(x|z, c) - KL(q(z|x, c) || p(z))
    estimators         as the VAE (Su eq. 7): analytic KL, reparameterized reconstruction

The VAE with a one-hot label concatenated to the inputs of encoder and decoder; nothing else changes, and
`aa=true` is the VAE's adversary activation (Hu eq. 17, supplement eqs. 44-46) with a label-conditional D(x, c)
and samples drawn with the batch's labels (AA-CVAE, Hu Table 3). `log_likelihood(x, y=labels)` bounds
log p(x|c); without labels it bounds log p(x) = log sum_c p(c) p(x|c) with a uniform p(c) (enumeration), and
`classify` picks argmax_c of the bound (the model as a Bayes classifier).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from jointkl.declare import Labels, as_labels, one_hot
from jointkl.divergences.importance import chunked_bound
from jointkl.errors import JointKLError
from jointkl.objectives.registry import register
from jointkl.objectives.vae import VAE, VAEConfig


@dataclass(frozen=True)
class CVAEConfig(VAEConfig):
    classes: int = 10               # number of labels c (grid25: 25)


@register
class CVAE(VAE):
    """Conditional VAE q(z|x, c), p(x|z, c) with a one-hot label c; AA switch (Hu eq. 17, Table 3)."""

    name, Config = "cvae", CVAEConfig
    labels = True

    @property
    def classes(self) -> int:
        return self.cfg.classes

    def label_factors(self):
        return {"y": Labels(self.cfg.classes)}, {"y": Labels(self.cfg.classes)}   # given with every x

    def condition(self, y):
        return (one_hot(y, self.cfg.classes, self.name),)

    def labels_for(self, x: torch.Tensor, y) -> torch.Tensor:
        return self.classify(x) if y is None else as_labels(y, x.shape[0], self.cfg.classes, x.device)

    # --- capabilities ---------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, y: int | torch.Tensor | None = None) -> torch.Tensor:
        """n draws x ~ p(x|z, c); c = y (an int or (n,) labels), or c ~ uniform when y is None."""
        c = self.condition(as_labels(y, n, self.cfg.classes, self.device))
        return self.p_x(self.prior(n).sample(), *c).sample()

    @torch.no_grad()
    def encode(self, x: torch.Tensor, y=None) -> torch.Tensor:
        """Mean of q(z|x, c); c = y, or the model's own `classify(x)` when y is None."""
        x = self.check_input(x)
        return self.q_z(x, *self.condition(self.labels_for(x, y))).mean

    @torch.no_grad()
    def decode(self, z: torch.Tensor, y=None) -> torch.Tensor:
        """Mean of p(x|z, c); c = y, or uniform at random when y is None."""
        z = torch.as_tensor(z, dtype=torch.float32, device=self.device)
        return self.p_x(z, *self.condition(as_labels(y, z.shape[0], self.cfg.classes, self.device))).mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y=None) -> torch.Tensor:
        x = self.check_input(x)
        y = self.labels_for(x, y)
        return self.decode(self.encode(x, y), y)

    @torch.no_grad()
    def classify(self, x: torch.Tensor, k: int = 10) -> torch.Tensor:
        """argmax_c of the ELBO of log p(x|c) (k draws): the generative model read as a classifier. (B,)"""
        return self.class_bounds(self.check_input(x), "elbo", k).argmax(0)

    @torch.no_grad()
    def class_bounds(self, x: torch.Tensor, method: str, k: int) -> torch.Tensor:
        """The bound on log p(x|c) for every class c. (classes, B)"""
        return torch.stack([self.conditional_bound(x, torch.full((x.shape[0],), c, device=x.device), method, k)
                            for c in range(self.cfg.classes)])

    @torch.no_grad()
    def conditional_bound(self, x: torch.Tensor, y: torch.Tensor, method: str, k: int, chunk: int = 100_000):
        """ELBO (mean of k log-weights) or IWAE bound (Burda et al. 2016) on log p(x|c), c = y. (B,)"""
        def log_w(xb, yb):                                               # (k, b)
            c = self.condition(yb)[0]                                    # (b, classes)
            q = self.q_z(xb, c)
            z = q.sample((k,))                                           # (k, b, d)
            return (self.p_x(z.flatten(0, 1), c.repeat(k, 1)).log_prob(xb.repeat(k, *[1] * (xb.dim() - 1)))
                    .view(k, -1) + self.prior(1).log_prob(z) - q.log_prob(z))
        return chunked_bound(log_w, method, k, chunk, x, y)

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, method: str = "elbo", k: int = 1, y=None) -> torch.Tensor:
        """Per example: a bound on log p(x|c) with labels y, else on log p(x) = log sum_c p(c) p(x|c) (uniform
        p(c)); "elbo" or "iwae" with k draws of z per class. Either way a lower bound in expectation."""
        if method not in ("elbo", "iwae"):
            raise JointKLError(f"unknown likelihood method {method!r} for {self.name}; choose elbo or iwae")
        x = self.check_input(x)
        if y is not None:
            return self.conditional_bound(x, as_labels(y, x.shape[0], self.cfg.classes, x.device), method, k)
        return torch.logsumexp(self.class_bounds(x, method, k), 0) - math.log(self.cfg.classes)   # (B,)
