"""Conditional GAN (Mirza & Osindero 2014) with the importance-weighted switch of Hu et al. (2018), IWCGAN.

    generative joint   q(x, y, c) = p_data(x, c)/2 on y=1, p(c) q(x|c)/2 on y=0, x = G(z, c), z ~ N(0, I)
    inference joint    p(x, y, c) = p_data(x, c) p(y|x, c), p(y=1|x, c) = D(x, c)
    KL direction       KL(q || p), alternately, as the GAN (Su eq. 14; Hu eq. 3 with c fed to G and D)
    estimators         D by logistic regression; G by -log D(G(z, c), c) (Hu eq. 2), or with `iw=true` the
                       same per-sample losses weighted by w~_i = softmax_i logit D (Hu eq. 16, supplement eq. 43)

c is the class label as a one-hot vector concatenated to the inputs of G and D; it is the only difference
from `gan`, whose options (Su's regularizer included) all apply. Fake samples in a batch take the batch's
labels, so D cannot tell them apart by their label frequencies. Hu Table 2 (middle) scores the accuracy of a
pre-trained classifier on G(z, c) against c.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from jointkl.objectives.cvae import as_labels, one_hot
from jointkl.objectives.gan import GAN, GANConfig
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class CGANConfig(GANConfig):
    classes: int = 10               # number of labels c (grid25: 25)


@register
class CGAN(GAN):
    """Conditional GAN G(z, c), D(x, c), with the importance-weighted switch iw (Hu eq. 16)."""

    name, Config = "cgan", CGANConfig
    labels = True

    @property
    def cond_dim(self) -> int:
        return self.cfg.classes

    def condition(self, y):
        return (one_hot(y, self.cfg.classes, self.name),)

    @torch.no_grad()
    def sample(self, n: int, y: int | torch.Tensor | None = None) -> torch.Tensor:
        """n draws of G(z, c); c = y (an int or (n,) labels), or uniform over the classes when y is None."""
        c = one_hot(as_labels(y, n, self.cfg.classes, self.device), self.cfg.classes, self.name)
        return self.generate(torch.randn(n, self.latent_dim, device=self.device), c)

    @torch.no_grad()
    def decode(self, z, y: int | torch.Tensor | None = None):
        z = torch.as_tensor(z, dtype=torch.float32, device=self.device)
        c = one_hot(as_labels(y, z.shape[0], self.cfg.classes, self.device), self.cfg.classes, self.name)
        return self.generate(z, c)
