"""Variational autoencoder (Kingma & Welling 2014) as a joint KL (Su eq. 5-7).

    generative joint   p(x, z) = p(z) p(x|z),      p(z) = N(0, I), p(x|z) Bernoulli or Gaussian
    inference joint    q(x, z) = p_data(x) q(z|x), q(z|x) = N(mu(x), diag sigma(x)^2)
    KL direction       KL(q(x, z) || p(x, z)) = E_data[-ELBO(x)] + const        (Su eq. 5)
    estimators         analytic KL(q(z|x) || p(z)); reparameterized E_q[log p(x|z)]  (Su eq. 7)
    loss               E_data[-E_q(z|x) log p(x|z) + KL(q(z|x) || p(z))]               (Su eq. 7)

Su names the two sides the other way round (his p is our q); the loss is the same. `decoder=auto`: Bernoulli
pixels on binary and image data (grey values scored by the same cross-entropy), a Gaussian with one learned std
per dimension on continuous data. `log_likelihood(x, "elbo", k)` is the mean of k log-weights, "iwae" the
k-sample bound of Burda et al. (2016).

Adversary activation (`aa=true`, AA-VAE, Hu eq. 17 and supplement eqs. 44-46). Hu's Lemma 2 reads the VAE as
KL(q_eta(z|x,y) q^r(y|x) || p_theta(z,y|x)) over x ~ p_theta0(x) = (p_data(x) + p_theta0(x|z)p(z))/2, y the
real/fake indicator, with a perfect discriminator whose reversal q^r(y=0|x) is 1 on data and 0 on samples:
only data then reach the VAE term (y=0 selects q(z|x) and p(x|z); y=1 selects constants). AA replaces it by a
learned D(x) = q_phi(y=1|x), trained by logistic regression on data vs samples x ~ p(x|z), z ~ p(z), one
sample per data point (eq. 46, supplement I.2), and weights the VAE term of every x by q^r_phi(y=0|x) = D(x):

    loss = E_data[w(x) l(x)] + aa_weight * E_{x ~ p_theta0}[w(x) l(x)],   l = -ELBO, w = sigmoid(logit D / T)

(eq. 44 without its constant terms, which carry no gradient for theta and eta, and without Lemma 2's factor
1/2; samples and weights are detached). T = `aa_temperature` > 1 smooths D (supplement I.2: {1, 1.5, 3, 5}).
With D perfect, w = 1 on data and 0 on samples and the loss is the plain VAE's (tested).

`arch=dcgan` (image data): q(z|x), D(x) are conv encoders and p(x|z) a deconv decoder (`jointkl.nets.conv`);
a one-hot label (cvae, svae) joins the encoders' conv features and the decoder's input vector.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from jointkl.declare import KL, Activation, Adversarial, Data, Declaration, Declared, Factor, Joint, Player
from jointkl.declare import standard_normal
from jointkl.joints import Gaussian, decoder
from jointkl.nets import build
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class VAEConfig:
    latent_dim: int = 8
    hidden: int = 256
    layers: int = 2
    arch: Literal["mlp", "dcgan"] = "mlp"   # dcgan: conv encoder, decoder and D; image data only
    decoder: Literal["auto", "bernoulli", "gaussian"] = "auto"   # auto: bernoulli for binary/image data
    lr: float = 1e-3
    aa: bool = False            # adversary activation (Hu eq. 17): a learned D weights data and model samples
    aa_temperature: float = 1.0  # T in the weights sigmoid(logit / T); Hu supplement I.2 picks from {1, 1.5, 3, 5}
    aa_weight: float = 1.0      # weight of the samples' term (1: eq. 44's equal mix of data and samples)
    lr_d: float | None = None   # D's learning rate (aa only); defaults to lr


@register
class VAE(Declared):
    """Variational autoencoder: Gaussian encoder, Bernoulli or Gaussian decoder (Su eq. 7); AA switch (Hu eq. 17)."""

    name, Config = "vae", VAEConfig
    classes = 0                 # one-hot label size joining q(z|x, y), p(x|z, y) and D(x, y) (cvae)
    critic_labels = True        # the AA critic reads the label too (svae: False, D(x) alone)
    log_names = {"x": "rec", "z": "kl"}

    def label_factors(self) -> tuple[dict, dict]:
        """The label factor of q and of p, by name (cvae, svae); built after the other networks."""
        return {}, {}

    def declare(self):
        c, k, y = self.cfg, self.classes, ("y",) if self.classes else ()
        self.q_z = Gaussian(self.data_shape, c.latent_dim, c.hidden, c.layers, arch=c.arch, extra_dim=k)
        self.p_x = decoder(c.decoder, c.latent_dim + k, self.data_shape, c.hidden, c.layers, c.arch,
                           data_kind=self.data_kind)
        aa = None
        if c.aa:                                   # on a forked RNG: every other net starts as in the plain model
            with torch.random.fork_rng(devices=[]):
                self.D = build(c.arch, self.data_shape, 1, c.hidden, c.layers, extra_dim=k if self.critic_labels else 0)
            aa = Activation(Adversarial(net=self.D, lr=c.lr_d or c.lr), c.aa_temperature, c.aa_weight,
                            ("x", *y) if self.critic_labels else ("x",))
        q_y, p_y = self.label_factors()
        q = Joint("q", x=Data(), **q_y, z=Factor(self.q_z, given=("x", *y)))
        p = Joint("p", **p_y, z=standard_normal(c.latent_dim), x=Factor(self.p_x, given=("z", *y)))
        elbo = KL(q, p, names=self.log_names, activation=aa)              # -ELBO, Su eq. 7
        return Declaration(p, q, [Player("vae", [self.q_z, self.p_x], [elbo], lr=c.lr)])
