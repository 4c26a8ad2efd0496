"""Adversarial autoencoder, AAE (Makhzani et al. 2015), as Su derives it in "AAE under GAN framework":
a GAN with x and z exchanged, plus a reconstruction term (Su eqs. 27-34).

    generative joint   p(z) p(y|z), p(z) = N(0, I), p(y=0|z) = D(z)
    inference joint    q(z) = E_data q(z|x), q(z|x) = delta(z - E(x)) (Su eq. 27) or N(mu(x), diag sigma(x)^2)
    KL direction       KL(m(z, y) || p(z) p(y|z)), m = q(z)/2 on y=1, p(z)/2 on y=0: the GAN KL with x and
                       z exchanged (eqs. 28-29)
    ratio estimator    D(z) = probability that z came from the prior, logistic (eq. 30); its logit
                       estimates log p(z) - log q(z)
    encoder + decoder  one player: generator_loss(D(E(x))) + lam * rec(x, G(E(x)))          (eq. 33-34)
                       rec = |x - G(E(x))|^2 summed over dimensions (decoder=dirac, Su's eq. 34)
                       or -log p(x|z) for a Bernoulli / Gaussian decoder

Su names the two sides the other way round (his p is our q). Samples are G(z) for z ~ p(z), taken as
the decoder's mean; for image data a dirac decoder's output goes through a sigmoid, as in GAN.generate.
`arch=dcgan` (image data): conv encoder and deconv decoder (`jointkl.nets.conv`); D(z) stays an MLP.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from jointkl.divergences.ratio import GENERATOR_LOSSES, discriminator_loss, generator_loss
from jointkl.errors import JointKLError
from jointkl.joints import Dirac, Gaussian, decoder
from jointkl.nets import MLP, check_arch
from jointkl.objectives.base import Player
from jointkl.objectives.registry import register
from jointkl.objectives.vae import LatentVariableModel, decoder_kind


@dataclass(frozen=True)
class AAEConfig:
    latent_dim: int = 8
    hidden: int = 256
    layers: int = 3
    arch: str = "mlp"               # mlp | dcgan (conv encoder and decoder, image data only; D(z) is an MLP)
    encoder: str = "dirac"          # dirac (z = E(x), Su eq. 27) | gaussian (reparameterized)
    decoder: str = "auto"           # auto (bernoulli for binary/image, else gaussian) | bernoulli | gaussian | dirac
    lam: float = 1.0                # weight of the reconstruction term (lambda of eq. 34)
    loss: str = "nonsaturating"     # encoder's adversarial loss: nonsaturating (eq. 33) | minimax
    lr: float = 1e-3                # encoder and decoder
    lr_d: float | None = None       # defaults to lr
    g_batchnorm: bool = False       # batch norm in the decoder's hidden layers (arch=mlp; as DCGAN's G)
    g_act: str = "leaky_relu"       # the decoder's hidden activation (arch=mlp): leaky_relu (0.2) | relu
    betas: tuple[float, float] = (0.5, 0.999)


@register
class AAE(LatentVariableModel):
    """Adversarial autoencoder: a discriminator on z against N(0, I) plus reconstruction (Su eq. 30, 34)."""

    name, Config = "aae", AAEConfig

    def __init__(self, cfg: AAEConfig, data_shape, data_kind):
        super().__init__(cfg, data_shape, data_kind)
        if cfg.loss not in GENERATOR_LOSSES:
            raise JointKLError(f"unknown AAE loss {cfg.loss!r}; choose one of {', '.join(GENERATOR_LOSSES)}")
        if cfg.encoder not in ("dirac", "gaussian"):
            raise JointKLError(f"unknown encoder {cfg.encoder!r}; choose dirac or gaussian")
        kind = decoder_kind(cfg.decoder, data_kind)
        if kind not in ("bernoulli", "gaussian", "dirac"):
            raise JointKLError(f"unknown decoder {cfg.decoder!r}; choose auto, bernoulli, gaussian or dirac")
        check_arch(cfg.arch, data_shape)
        d, h, n, arch = cfg.latent_dim, cfg.hidden, cfg.layers, cfg.arch
        self.q_z = (Gaussian(data_shape, d, h, n, arch=arch) if cfg.encoder == "gaussian"
                    else Dirac(data_shape, d, h, n, arch=arch))
        g = dict(arch=arch, batchnorm=cfg.g_batchnorm, act=cfg.g_act)
        self.p_x = Dirac(d, data_shape, h, n, **g) if kind == "dirac" else decoder(kind, d, data_shape, h, n, **g)
        self.D = MLP(d, 1, h, n)                                          # logit of D(z)

    def players(self):
        c = self.cfg
        return [Player("disc", list(self.D.parameters()), c.lr_d or c.lr, c.betas),
                Player("ae", [*self.q_z.parameters(), *self.p_x.parameters()], c.lr, c.betas)]

    def rec(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Per-example reconstruction term of eq. 34: squared error (dirac decoder) or -log p(x|z). (B,)"""
        if isinstance(self.p_x, Dirac):
            return (x - self.generate(z)).pow(2).flatten(1).sum(1)
        return -self.p_x(z).log_prob(x)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        x = self.p_x(z).mean                                               # (B, *data_shape)
        return torch.sigmoid(x) if isinstance(self.p_x, Dirac) and self.data_kind != "continuous" else x

    def loss(self, player, x):
        if player == "disc":
            with torch.no_grad():
                z_q = self.q_z(x).rsample()                                # (B, d) encoded data
            logit_p, logit_q = self.D(self.prior(x.shape[0]).sample()), self.D(z_q)   # (B, 1) each
            return discriminator_loss(logit_p, logit_q), {"d_prior": logit_p.mean(), "d_enc": logit_q.mean()}
        z_q = self.q_z(x).rsample()                                        # (B, d)
        adv = generator_loss(self.D(z_q), self.cfg.loss)                   # eq. 33
        rec = self.rec(x, z_q).mean()
        return adv + self.cfg.lam * rec, {"adv": adv, "rec": rec}

    # --- capabilities ----------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n):
        return self.generate(self.prior(n).sample())

    @torch.no_grad()
    def decode(self, z):
        return self.generate(torch.as_tensor(z, dtype=torch.float32, device=self.device))

    def log_likelihood(self, x, method="elbo", k=1, chunk=100_000):
        if self.cfg.encoder == "dirac" or isinstance(self.p_x, Dirac):
            return self._missing("explicit likelihood (it needs encoder=gaussian and a bernoulli/gaussian decoder)")
        return super().log_likelihood(x, method, k, chunk)
