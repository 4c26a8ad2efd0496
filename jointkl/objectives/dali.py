"""Decomposed Adversarial Learned Inference, DALI (Li et al. 2019): a GAN whose generator also has to
let an encoder recover its latent code.

    generative joint   p(x, z) = p(z) p(x|z),      p(z) = N(0, I), p(x|z) = delta(x - G(z))
    inference joint    q(x, z) = p_data(x) q(z|x), q(z|x) = N(mu(x), diag sigma^2(x))      (eq. 9)
    KL direction       E_p(z) KL(p(x|z) || q(x|z)) + KL(p(z) || q(z))                        (eq. 1)
                       = E_p(z) [KL(p(x|z) || p_data(x)) + E_p(x|z) -log q(z|x)] + const      (eq. 4-5)
    estimators         term I by an adversary on x alone; term II is exact given a Gaussian q(z|x)
    objective          min_{G,E} max_D V(G, D) + lam E_p(z) L(z, E(G(z))),   lam = 1/d       (eq. 10, Sec. 4)

`variant`: "gan" (default; logistic D, non-saturating G, as in Algorithm 1), "f" (D maximizes the KL
value function of eq. 8, G minimizes -E D(G(z)), "DALI-f"), "l2" (identity covariance: L reduces to
0.5 |z - mu|^2 + const, "DALI-l2"). Eq. 8 as printed puts the data in its first expectation, so D's value
estimates KL(p_data || p_G), the reverse of term I; yet at the optimal D, T = 1 + log p_data/p_G, G's loss
-E D(G(z)) has exactly the gradient of term I, KL(p_G || p_data) (tests/test_declare.py). "f-swapped" swaps
eq. 8's expectations (D's value is term I itself; G minimizes +E D(G(z))): the same G gradient at the optimum,
another game on the way there. DALI-f's T is the network's unbounded output, so it wants a smaller rate (the
preset dali/grid25-f says what was measured). `separate_heads`: mu(x) and sigma(x) from two networks that share nothing (Sec. 4 ends its conv
encoder in "two separated fully connected networks"; an MLP on 2-D points has no conv trunk to share), instead
of one network's two output halves. `std_link=logvar` reads sigma's output s as a log variance, sigma =
exp(s/2) (the convention of the VAE's and ALI's code), instead of softplus(s). Players follow
Algorithm 1: "disc" (D), then "gen" (G and E together), each on its own z batch. With
`encoder_on_disc_features` E reads D's last hidden layer (Sec. 4); only the "disc" player updates those
layers, while G still gets the cycle gradient through them. Encoding is the mean of q(z|x);
reconstruction G(mu(x)) (Sec. 3.5). For image data G's output passes through a sigmoid.
`arch=dcgan` (image data): G is a deconv generator, D and E conv nets (`jointkl.nets.conv`); with
`encoder_on_disc_features` E is an MLP head (1 x hidden) on D's FC-1024 layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jointkl.declare import Adversarial, AdversarialOptions, Data, Declaration, Declared
from jointkl.declare import Extra, Factor, Joint, KL, NLL, Player, standard_normal
from jointkl.joints import Dirac, Gaussian, OnFeatures
from jointkl.nets import build
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class DALIConfig(AdversarialOptions):
    latent_dim: int = 8
    hidden: int = 256
    layers: int = 3
    arch: Literal["mlp", "dcgan"] = "mlp"   # dcgan: conv G, D, E; image data only
    variant: Literal["gan", "f", "f-swapped", "l2"] = "gan"   # f: eq. 8's f game; f-swapped: its two expectations
                                           # swapped (term I's direction); l2: unit-variance q(z|x)
    lam: float | None = None               # lambda of eq. 10; None = 1/latent_dim (Sec. 4)
    encoder_on_disc_features: bool = False  # E reads D's last hidden layer (Sec. 4)
    min_std: float = 1e-3                  # floor of q(z|x)'s std (the paper does not state one)
    separate_heads: bool = False           # mu(x) and sigma(x) from two networks, as in Sec. 4 (else one, two halves)
    std_link: Literal["softplus", "logvar"] = "softplus"   # sigma(x) = softplus(s(x)); logvar: exp(s(x) / 2)
    lr: float = 1e-3                       # G and E


@register
class DALI(Declared):
    """DALI: adversary on x plus the latent cycle term -log q(z|E(G(z))) (eq. 9-10, Algorithm 1)."""

    name, Config = "dali", DALIConfig

    def declare(self):
        c, feats = self.cfg, self.cfg.encoder_on_disc_features
        self.G = Dirac(c.latent_dim, self.data_shape, c.hidden, c.layers, arch=c.arch, batchnorm=c.g_batchnorm,
                       act=c.g_act)
        self.D = build(c.arch, self.data_shape, 1, c.hidden, c.layers)
        # on D's features E only needs a head (the paper's "two separated fully connected networks")
        self.E = Gaussian(self.D.net[-1].in_features if feats else self.data_shape, c.latent_dim, c.hidden,
                          1 if feats else c.layers, std=1.0 if c.variant == "l2" else None, min_std=c.min_std,
                          arch=c.arch, separate=c.separate_heads, link=c.std_link)
        q_z = OnFeatures(self.D, self.E) if feats else self.E
        p = Joint("p", z=standard_normal(c.latent_dim),
                  x=Factor(self.G, given="z", squash=self.data_kind != "continuous"))
        q = Joint("q", x=Data(), z=Factor(q_z, given="x"))
        f = c.variant.startswith("f")
        adv = Adversarial({"f": "f-kl", "f-swapped": "f-kl-swapped"}.get(c.variant, "logistic"),
                          "kl" if f else "nonsaturating", net=self.D, lr=c.lr_d or c.lr, betas=c.betas)
        lam = c.lam if c.lam is not None else 1.0 / c.latent_dim
        sq = Extra("cycle_sq", lambda at: (at(p)["z"] - q_z(at(p)["x"]).mean).pow(2).mean(), weight=0.0)   # a log
        terms = [KL(p, q, on="x", estimator=adv, name="adv"),                    # term I, eq. 4 (eq. 8 for f)
                 lam * NLL(q, "z", under=p, name="cycle_nll"), sq]               # term II, eq. 5 and 9
        return Declaration(p, q, [Player("gen", [self.G, self.E], terms, c.lr, c.betas)])
