"""Conditional GAN (Mirza & Osindero 2014) with the importance-weighted switch of Hu et al. (2018), IWCGAN.

    generative joint   p(x, z, c) = p_data(c) p(z) delta(x - G(z, c)), z ~ N(0, I)
    inference joint    q(x, c) = p_data(x, c)
    KL direction       KL(p(x, c) || q(x, c)), alternately, as the GAN (Su eq. 14; Hu eq. 3 with c fed to G and D)
    estimators         D by logistic regression; G by -log D(G(z, c), c) (Hu eq. 2), or with `iw=true` the
                       same per-sample losses weighted by w~_i = softmax_i logit D (Hu eq. 16, supplement eq. 43)

c is the class label as a one-hot vector concatenated to the inputs of G and D; it is the only difference
from `gan`, whose options (Su's regularizer included) all apply. Fake samples in a batch take the batch's
labels, so D cannot tell them apart by their label frequencies; `sample(n, y)` draws with labels y (an int or
(n,) labels; None: uniform). Hu Table 2 (middle) scores the accuracy of a pre-trained classifier on G(z, c)
against c.
"""
from __future__ import annotations

from dataclasses import dataclass

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
    def classes(self) -> int:
        return self.cfg.classes
