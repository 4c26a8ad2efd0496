"""VAEGAN (Larsen et al. 2016, "Autoencoding beyond pixels"): a VAE whose reconstruction is scored in a
discriminator's features, and a GAN whose D tells data from reconstructions and prior samples.

    joints             p(z, x) = p(z) delta(x - Dec(z)), q(x, z) = p_data(x) q(z|x)   (the VAE's, Dirac decoder)
    reconstructions    rec(x~): x ~ p_data, z ~ q(z|x), x~ = Dec(z)
    L_prior            KL(q(z|x) || p(z))                                                    (eq. 5)
    L_llike^Dis_l      -E_q(z|x) log N(Dis_l(x); Dis_l(Dec(z)), I)   (eqs. 6-7: a Gaussian on D's l-th layer)
    L_GAN              log Dis(x) + log(1 - Dis(Dec(z))) + log(1 - Dis(Dec(z_p))), z_p ~ p(z)    (Algorithm 1)
    players            Enc: L_prior + L_llike;  Dec: gamma L_llike + GAN;  Dis: -L_GAN         (Algorithm 1)

In declaration terms: the feature reconstruction is the VAE's NLL of x, `NLL(p_l, "x", under=q)`, under a joint
p_l whose factor of x is that Gaussian in D's features (l: D's last hidden layer, `jointkl.nets.features`;
Larsen et al. take a deep conv layer), so only its density differs from the VAE's; the GAN is two adversarial
KL terms sharing one estimator, KL(p(x) || data) and KL(rec(x) || data): one D, data positive, both kinds of
sample negative, its loss the sum (`jointkl.declare`: a shared estimator). Dis does not learn from L_llike and
the encoder not from L_GAN (Sec. 2.2, "limiting error signals"): each player owns its networks only. Dec's GAN
part is `loss`: "nonsaturating" -log Dis(x~) (Algorithm 1 read with D's sign flipped, as written there) or
"minimax" log(1 - Dis(x~)) (the authors' code). The reconstruction in the GAN term is its own draw of
z ~ q(z|x) (the paper reuses L_llike's). Truth: tests/objectives/test_vaegan.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.distributions as D

from jointkl.declare import KL, NLL, Adversarial, AdversarialOptions, Data, Declaration, Declared, Factor, Joint
from jointkl.declare import Player, standard_normal
from jointkl.joints import Dirac, Gaussian
from jointkl.nets import build, features
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class VAEGANConfig(AdversarialOptions):
    latent_dim: int = 8
    hidden: int = 256
    layers: int = 3
    arch: Literal["mlp", "dcgan"] = "mlp"   # dcgan: conv encoder and D, deconv decoder; image data only
    gamma: float = 1.0              # weight of L_llike in the decoder's loss (Larsen et al. Algorithm 1)
    loss: Literal["nonsaturating", "minimax"] = "nonsaturating"   # the decoder's GAN loss (minimax: authors' code)
    lr: float = 1e-3                # encoder and decoder


class FeatureGaussian:
    """N(Dis_l(x); Dis_l(x~), I) as a density of x (eq. 6), summed over D's features."""

    def __init__(self, mean: torch.Tensor, feats):
        self.mean, self.feats = mean, feats

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return D.Normal(self.mean, 1.0).log_prob(self.feats(x)).sum(-1)                  # (B,)


@register
class VAEGAN(Declared):
    """VAE/GAN: a VAE reconstructing in D's features, D on data vs reconstructions and samples (Larsen et al.)."""

    name, Config = "vaegan", VAEGANConfig

    def declare(self):
        c = self.cfg
        d, h, n, shape, squash = c.latent_dim, c.hidden, c.layers, self.data_shape, self.data_kind != "continuous"
        self.q_z = Gaussian(shape, d, h, n, arch=c.arch)
        self.G = Dirac(d, shape, h, n, arch=c.arch, batchnorm=c.g_batchnorm, act=c.g_act)
        self.D = build(c.arch, shape, 1, h, n)

        def decoded(z):                                       # x~ = Dec(z) (through a sigmoid on [0, 1] data)
            x = self.G(z).mean
            return torch.sigmoid(x) if squash else x

        def in_features(z):                                   # p_l(x|z): the Gaussian on Dis_l
            return FeatureGaussian(features(self.D, decoded(z)), lambda x: features(self.D, x))

        def reconstruction(x):                                # x~ = Dec(z), z ~ q(z|x): a sampler of x
            return self.G(self.q_z(x).rsample())
        reconstruction.event_shape = self.G.event_shape       # what D's input order reads

        q = Joint("q", x=Data(), z=Factor(self.q_z, given="x"))
        p = Joint("p", z=standard_normal(d), x=Factor(self.G, given="z", squash=squash))
        p_l = Joint("p_l", z=standard_normal(d), x=Factor(in_features, given="z"))
        rec = Joint("rec", x=Factor(reconstruction, squash=squash, kind="implicit"))
        prior_z = Joint("prior_z", x=Data(), z=standard_normal(d))           # p_data(x) p(z): L_prior alone
        adv = Adversarial(gen_loss=c.loss, net=self.D, lr=c.lr_d or c.lr, betas=c.betas, logs=("d_data", "d_p"))
        llike = NLL(p_l, "x", under=q, name="rec")
        enc = Player("enc", [self.q_z], [KL(q, prior_z, names={"z": "kl"}), llike], c.lr, c.betas)
        dec = Player("dec", [self.G], [c.gamma * NLL(p_l, "x", under=q, name="rec"),
                                       KL(p, q, on="x", estimator=adv, name="adv_p"),
                                       KL(rec, q, on="x", estimator=adv, name="adv_rec")], c.lr, c.betas)
        return Declaration(p, q, [enc, dec])
