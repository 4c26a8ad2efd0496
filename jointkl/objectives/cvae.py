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

from dataclasses import dataclass

import torch

from jointkl.declare import Labels
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

    @torch.no_grad()
    def classify(self, x: torch.Tensor, k: int = 10) -> torch.Tensor:
        """argmax_c of the ELBO of log p(x|c) (k draws): the generative model read as a classifier. (B,)"""
        return self.class_bounds(self.check_input(x), "elbo", k).argmax(0)
