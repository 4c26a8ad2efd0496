"""Semi-supervised VAE, Kingma et al. (2014) M2, with Hu's AA switch (AA-SVAE, Hu Tables 2-4).

    generative joint   p(x, c, z) = p(c) p(z) p(x|c, z),  p(c) uniform over the classes, p(z) = N(0, I)
    inference joint    labelled rows:   p_data(x, c) q(z|x, c)
                       unlabelled rows: p_data(x) q(c|x) q(z|x, c),  q(c|x) a classifier
    KL direction       KL(q || p), i.e. maximize the bounds (Kingma eqs. 6, 7, 9)
                         L(x, c) = E_q(z|x,c)[log p(x|c, z) + log p(c) + log p(z) - log q(z|x, c)]
                         U(x)    = sum_c q(c|x) L(x, c) + H(q(c|x))
                         J^a     = sum_labelled L + sum_unlabelled U - a E_labelled[-log q(c|x)]
    estimators         analytic KL for z, reparameterized z, exact sum over c (enumeration)

Declared as the VAE with a `Partial` label: observed on labelled rows, summed out under q(c|x) on the others
(`jointkl.declare.Partial`), p(c) = `uniform_labels`, and the classification term as an extra term. Per batch
(labels -1 = unlabelled; the trainer's `labelled` keeps a class-balanced fraction of the labels, 0.01: 1 %):
    loss = mean_i [-L(x_i, c_i) if labelled else -U(x_i)] + alpha * mean_labelled[-log q(c_i|x_i)],
so alpha = 0.1 is Kingma's a = 0.1 N (his J sums over the N data points, ours averages). Encoder and decoder
are the CVAE's; q(c|x) is the only new network. `aa=true` is the VAE's adversary activation (Hu eq. 17,
supplement eqs. 44-46) with D(x) on x alone; samples x ~ p(x|c, z), c ~ p(c), enter as unlabelled rows (-U),
because eq. 44's p_theta0(x|y=0) carries no label. `classify(x)` = argmax q(c|x) (Hu Table 4);
`log_likelihood(x, "elbo")` is U(x), "iwae" enumerates c (see cvae).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from jointkl.declare import Extra, Partial, uniform_labels
from jointkl.joints import Categorical
from jointkl.objectives.cvae import CVAE, CVAEConfig
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class SVAEConfig(CVAEConfig):
    alpha: float = 0.1              # weight of -log q(c|x) on labelled rows; Kingma's a = 0.1 N


@register
class SVAE(CVAE):
    """Semi-supervised VAE (Kingma et al. 2014 M2): classifier q(c|x), labelled and unlabelled bounds; AA switch."""

    name, Config = "svae", SVAEConfig
    critic_labels = False                               # D(x) sees x alone: samples carry no label
    log_names = {"x": "bound", "y": "bound", "z": "bound"}   # -L(x, c) or -U(x), summed over its pieces

    def label_factors(self):
        c = self.cfg
        self.q_y = Categorical(self.data_shape, c.classes, c.hidden, c.layers, arch=c.arch)   # conv under dcgan
        return {"y": Partial(self.q_y, c.classes)}, {"y": uniform_labels(c.classes)}

    def declare(self):
        decl = super().declare()                    # the VAE's KL(q || p): -L on labelled rows, -U on the others
        vae = decl.players[0]
        vae.nets.append(self.q_y)
        vae.minimize.append(self.cfg.alpha * Extra(name="ce", fn=self.cross_entropy))        # Kingma eq. 9
        return decl

    def cross_entropy(self, at) -> torch.Tensor:
        """E_labelled[-log q(c|x)], the classifier's term of Kingma eq. 9."""
        s = at(self.decl.q)
        y = s.batch["y"]
        given = y >= 0
        return (-self.q_y(s.x).log_prob(y.clamp_min(0)) * given).sum() / given.sum().clamp_min(1)

    @torch.no_grad()
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """argmax_c q(c|x). (B,)"""
        return self.q_y(self.check_input(x)).probs.argmax(-1)

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, method: str = "elbo", k: int = 1, y=None) -> torch.Tensor:
        """"elbo" without labels: Kingma's U(x) (eq. 7), its ELBO(x|c) averaged over k draws; otherwise as cvae."""
        if method != "elbo" or y is not None:
            return super().log_likelihood(x, method, k, y=y)
        x = self.check_input(x)
        q = self.q_y(x)
        bounds = self.class_bounds(x, "elbo", k) - math.log(self.cfg.classes)          # L(x, c), (classes, B)
        return (q.probs.T * bounds).sum(0) + q.entropy()
