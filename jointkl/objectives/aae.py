"""Adversarial autoencoder, AAE (Makhzani et al. 2015), as Su derives it in "AAE under GAN framework":
a GAN with x and z exchanged, plus a reconstruction term (Su eqs. 27-34).

    generative joint   p(x, z) = p(z) p(x|z), p(z) = N(0, I), p(x|z) Bernoulli, Gaussian or delta(x - G(z))
    inference joint    q(x, z) = p_data(x) q(z|x), q(z|x) = delta(z - E(x)) (Su eq. 27) or N(mu(x), diag sigma(x)^2)
    KL direction       KL(q(z) || p(z)) of the aggregated posterior against the prior: the GAN KL with x and
                       z exchanged (eqs. 28-29), plus lam times the reconstruction term
    ratio estimator    D(z) = probability that z came from the prior, logistic (eq. 30); its logit
                       estimates log p(z) - log q(z)
    encoder + decoder  one player: generator_loss(D(E(x))) + lam * rec(x, G(E(x)))          (eq. 33-34)
                       rec = |x - G(E(x))|^2 summed over dimensions (decoder=dirac, Su's eq. 34)
                       or -log p(x|z) for a Bernoulli / Gaussian decoder

Su names the two sides the other way round (his p is our q). Samples are G(z) for z ~ p(z), taken as
the decoder's mean; for image data a dirac decoder's output goes through a sigmoid, as in GAN.generate.
`g_batchnorm` and `g_act` act on the decoder, as on GAN's G.
`arch=dcgan` (image data): conv encoder and deconv decoder (`jointkl.nets.conv`); D(z) stays an MLP.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from jointkl.declare import Adversarial, AdversarialOptions, Data, Declaration, Declared
from jointkl.declare import Factor, Joint, KL, NLL, Player, standard_normal
from jointkl.joints import decoder, encoder
from jointkl.nets import MLP
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class AAEConfig(AdversarialOptions):
    latent_dim: int = 8
    hidden: int = 256
    layers: int = 3
    arch: Literal["mlp", "dcgan"] = "mlp"   # dcgan: conv encoder and decoder, image data only; D(z) is an MLP
    encoder: Literal["dirac", "gaussian"] = "dirac"   # dirac: z = E(x) (Su eq. 27); gaussian: reparameterized
    decoder: Literal["auto", "bernoulli", "gaussian", "dirac"] = "auto"   # auto: bernoulli for binary/image data
    lam: float = 1.0                # weight of the reconstruction term (lambda of eq. 34)
    loss: Literal["nonsaturating", "minimax"] = "nonsaturating"   # encoder's adversarial loss (eq. 33)
    lr: float = 1e-3                # encoder and decoder


@register
class AAE(Declared):
    """Adversarial autoencoder: a discriminator on z against N(0, I) plus reconstruction (Su eq. 30, 34)."""

    name, Config = "aae", AAEConfig

    def declare(self):
        c, d = self.cfg, self.cfg.latent_dim
        self.q_z = encoder(c.encoder, self.data_shape, d, c.hidden, c.layers, c.arch)
        self.p_x = decoder(c.decoder, d, self.data_shape, c.hidden, c.layers, c.arch, c.g_batchnorm, c.g_act,
                           self.data_kind)
        self.D = MLP(d, 1, c.hidden, c.layers)                            # logit of D(z)
        q = Joint("q", x=Data(), z=Factor(self.q_z, given="x"))
        p = Joint("p", z=standard_normal(d),
                  x=Factor(self.p_x, given="z", squash=c.decoder == "dirac" and self.data_kind != "continuous"))
        adv = Adversarial(gen_loss=c.loss, net=self.D, lr=c.lr_d or c.lr, betas=c.betas, logs=("d_prior", "d_enc"))
        terms = [KL(q, p, on="z", estimator=adv, name="adv"), c.lam * NLL(p, "x", under=q, name="rec")]   # eq. 33-34
        return Declaration(p, q, [Player("ae", [self.q_z, self.p_x], terms, c.lr, c.betas)])

    @torch.no_grad()
    def sample(self, n):
        """G(z) for z ~ p(z), the decoder's mean."""
        return self.decode(self.prior(n).sample())
