"""VEEGAN (Srivastava et al. 2017): a generator, an inverse network F(x) -> z, a discriminator on (z, x)
pairs, and the reconstruction of z.

    generative joint   p(z, x) = p0(z) delta(x - G(z)),   p0 = N(0, I)
    inference joint    q(x, z) = p_data(x) delta(z - F(x)),  F the reconstructor (an inverse of G)
    objective          O(G, F) = KL(p(z, x) || q(x, z)) + rec * E_p0 ||z - F(G(z))||^2      (their Sec. 3)
    estimator          D(x, z) by logistic regression, data pairs (x, F(x)) positive, so its logit estimates
                       log q - log p; the KL is estimated by its value on generated pairs, -E_p logit ("kl":
                       their O_LR, whose D is positive on generated pairs: the same logit, negated)
    players            D on its logistic loss; G and F together on O_LR (Algorithm 1: the adversarial part
                       reaches G only, through x = G(z); F learns from the reconstruction of z)

In declaration terms, ALI's pair of joints with a deterministic encoder, the KL's generator loss "kl"
(a's logits only), and `rec * NLL(q, "z", under=p)`: q's Dirac factor of z scored at p's draws, the squared
error |z - F(G(z))|^2 summed over z's entries (their d(z, F(x)) = squared l2). rec = 0 leaves the adversarial
game with that loss (tests/objectives/test_veegan.py). `encode(x)` is F(x).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jointkl.declare import KL, NLL, Adversarial, Data, Declaration, Declared, Factor, Joint
from jointkl.declare import AdversarialOptions, Player, standard_normal
from jointkl.joints import Dirac
from jointkl.nets import build
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class VEEGANConfig(AdversarialOptions):
    latent_dim: int = 8
    hidden: int = 256
    layers: int = 3
    arch: Literal["mlp", "dcgan"] = "mlp"   # dcgan: conv F and D, deconv G; image data only
    rec: float = 1.0                # weight of E ||z - F(G(z))||^2; 0 leaves the adversarial game
    lr: float = 1e-3                # G and F


@register
class VEEGAN(Declared):
    """VEEGAN: G(z), reconstructor F(x), D(x, z), and the reconstruction of z (Srivastava et al. 2017)."""

    name, Config = "veegan", VEEGANConfig

    def declare(self):
        c = self.cfg
        d, h, n, arch, shape = c.latent_dim, c.hidden, c.layers, c.arch, self.data_shape
        self.G = Dirac(d, shape, h, n, arch=arch, batchnorm=c.g_batchnorm, act=c.g_act)
        self.F = Dirac(shape, d, h, n, arch=arch)
        self.D = build(arch, shape, 1, h, n, extra_dim=d)                # logit of D(x, z)
        p = Joint("p", z=standard_normal(d), x=Factor(self.G, given="z", squash=self.data_kind != "continuous"))
        q = Joint("q", x=Data(), z=Factor(self.F, given="x"))
        adv = Adversarial(gen_loss="kl", net=self.D, lr=c.lr_d or c.lr, betas=c.betas, logs=("d_q", "d_p"))
        terms = [KL(p, q, estimator=adv, name="adv"), c.rec * NLL(q, "z", under=p, name="rec")]
        return Declaration(p, q, [Player("gen", [self.G, self.F], terms, c.lr, c.betas)])

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim
