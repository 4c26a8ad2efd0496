"""Adversarially learned inference, ALI / BiGAN (Dumoulin et al. 2017; Donahue et al. 2017), as Su derives
it in "ALI under GAN framework" (Su eqs. 35-43).

    generative joint   p(x, z) = p(z) p(x|z),      p(z) = N(0, I), x = G(z) or N(G(z), diag s^2)
    inference joint    q(x, z) = p_data(x) q(z|x), z = E(x) or N(mu(x), diag sigma(x)^2), reparameterized
    KL direction       KL(m(x, z, y) || q(x, z) p(y|x, z)), m = q(x, z)/2 on y=1, p(x, z)/2 on y=0: y says
                       which joint drew the pair, p(y=1|x, z) = D(x, z) (Su eqs. 35-37)
    ratio estimator    D(x, z) = p(y=1|x, z) on concatenated pairs, logistic, inference pairs as the real
                       class (eq. 38); at its optimum logit D = log q(x, z) - log p(x, z) (eq. 39)
    encoder + decoder  one player, on the logits l_q of (x, E(x)) and l_p of (G(z), z):
                       "minimax"        E_q log D + E_p log(1 - D)        (eq. 42)
                       "nonsaturating"  -E_q log(1 - D) - E_p log D       (eq. 43)
                       "vi"             -E_q log D - E_p log D            (eq. 41, Su's own)
                       "vi_full"        eq. 41 + E_p -log q(z|x), x from p held fixed (eq. 40, Gaussian encoder)

Su names the two sides the other way round (his p is our q). Eq. 41 drops two terms of eq. 40. One, the
decoder's KL to its previous self, has zero gradient at the current decoder. The other,
E_p log(q_old(z|x) / q(z|x)), has a nonzero gradient w.r.t. the encoder. So under "vi" the encoder's
gradient is exactly minus its "minimax" gradient: it makes its pairs easier to tell apart. The decoder's
gradient equals its "nonsaturating" gradient (tests/objectives/test_ali.py checks both). "vi_full" puts the
dropped encoder term back (its value is zero at q = q_old, its encoder gradient is that of E_p -log q(z|x),
DALI's cycle term); the decoder's KL term stays out, as its gradient is zero.
For image data the decoder's output goes through a sigmoid, as in GAN.generate. `arch=dcgan` (image data):
encoder and D(x, z) are conv nets, z joining D's conv features of x before its FC layer; the decoder is a
deconv generator (`jointkl.nets.conv`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from jointkl.divergences.ratio import discriminator_loss, generator_loss
from jointkl.errors import JointKLError
from jointkl.joints import Dirac, Gaussian
from jointkl.nets import build, check_arch
from jointkl.objectives.base import Player
from jointkl.objectives.registry import register
from jointkl.objectives.vae import LatentVariableModel

LOSSES = ("minimax", "nonsaturating", "vi", "vi_full")
CONDITIONALS = ("gaussian", "dirac")


def pair_loss(logit_q: torch.Tensor, logit_p: torch.Tensor, kind: str) -> torch.Tensor:
    """Encoder + decoder loss on D's logits of inference pairs (logit_q) and generative pairs (logit_p)."""
    if kind == "minimax":          # eq. 42: E_q log D + E_p log(1 - D), minus D's own loss
        return -discriminator_loss(logit_q, logit_p)
    if kind == "nonsaturating":    # eq. 43: D's loss with the labels swapped
        return discriminator_loss(logit_p, logit_q)
    if kind in ("vi", "vi_full"):  # eq. 41: -E_q log D - E_p log D
        return generator_loss(logit_q, "nonsaturating") + generator_loss(logit_p, "nonsaturating")
    raise JointKLError(f"unknown ALI loss {kind!r}; choose one of {', '.join(LOSSES)}")


@dataclass(frozen=True)
class ALIConfig:
    latent_dim: int = 8
    hidden: int = 256
    layers: int = 3
    arch: str = "mlp"               # mlp | dcgan (conv encoder, decoder and D; image data only)
    encoder: str = "gaussian"       # gaussian (reparameterized, Su) | dirac (z = E(x), BiGAN)
    decoder: str = "dirac"          # dirac (x = G(z)) | gaussian (learned global std, Su)
    loss: str = "nonsaturating"     # minimax (eq. 42) | nonsaturating (eq. 43) | vi (eq. 41) | vi_full (eq. 40)
    g_batchnorm: bool = False       # batch norm in the decoder's hidden layers (arch=mlp; as DCGAN's G)
    g_act: str = "leaky_relu"       # the decoder's hidden activation (arch=mlp): leaky_relu (0.2) | relu
    lr: float = 1e-3                # encoder and decoder
    lr_d: float | None = None       # defaults to lr
    betas: tuple[float, float] = (0.5, 0.999)


@register
class ALI(LatentVariableModel):
    """ALI / BiGAN: a discriminator on (x, z) pairs; minimax, nonsaturating or vi generator loss (Su eqs. 38-43)."""

    name, Config = "ali", ALIConfig

    def __init__(self, cfg: ALIConfig, data_shape, data_kind):
        super().__init__(cfg, data_shape, data_kind)
        pair_loss(torch.zeros(1), torch.zeros(1), cfg.loss)               # validate the name now
        for what in ("encoder", "decoder"):
            if getattr(cfg, what) not in CONDITIONALS:
                raise JointKLError(f"unknown {what} {getattr(cfg, what)!r}; choose one of {', '.join(CONDITIONALS)}")
        if cfg.loss == "vi_full" and cfg.encoder != "gaussian":
            raise JointKLError("loss=vi_full needs encoder=gaussian (eq. 40 has log q(z|x))")
        check_arch(cfg.arch, data_shape)
        d, h, n, arch = cfg.latent_dim, cfg.hidden, cfg.layers, cfg.arch
        self.q_z = (Gaussian(data_shape, d, h, n, arch=arch) if cfg.encoder == "gaussian"
                    else Dirac(data_shape, d, h, n, arch=arch))
        g = dict(arch=arch, batchnorm=cfg.g_batchnorm, act=cfg.g_act)
        self.p_x = (Gaussian(d, data_shape, h, n, std="global", **g) if cfg.decoder == "gaussian"
                    else Dirac(d, data_shape, h, n, **g))
        self.D = build(arch, data_shape, 1, h, n, extra_dim=d)            # logit of D(x, z)

    def players(self):
        c = self.cfg
        return [Player("disc", list(self.D.parameters()), c.lr_d or c.lr, c.betas),
                Player("gen", [*self.q_z.parameters(), *self.p_x.parameters()], c.lr, c.betas)]

    def generate(self, z: torch.Tensor, mean: bool = False) -> torch.Tensor:
        p = self.p_x(z)
        x = p.mean if mean else p.rsample()                               # (B, *data_shape)
        return x if self.data_kind == "continuous" else torch.sigmoid(x)

    def loss(self, player, x):
        with torch.set_grad_enabled(player == "gen" and torch.is_grad_enabled()):
            z_q = self.q_z(x).rsample()                                   # (B, d) ~ q(z|x)
            z_p = torch.randn_like(z_q)                                   # (B, d) ~ p(z)
            x_p = self.generate(z_p)                                      # (B, *data_shape) ~ p(x|z)
        logit_q, logit_p = self.D(x, z_q).squeeze(1), self.D(x_p, z_p).squeeze(1)   # (B,), (B,)
        logs = {"d_q": logit_q.mean(), "d_p": logit_p.mean()}
        if player == "disc":
            return discriminator_loss(logit_q, logit_p), logs             # eq. 38
        loss = pair_loss(logit_q, logit_p, self.cfg.loss)
        if self.cfg.loss == "vi_full":                                    # eq. 40's E_p log(q_old(z|x) / q(z|x))
            logs["nll_p"] = -self.q_z(x_p.detach()).log_prob(z_p).mean()
            loss = loss + logs["nll_p"]
        return loss, logs

    # --- capabilities ----------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n):
        return self.generate(self.prior(n).sample())

    @torch.no_grad()
    def decode(self, z):
        return self.generate(torch.as_tensor(z, dtype=torch.float32, device=self.device), mean=True)

    def log_likelihood(self, x, method="elbo", k=1, chunk=100_000):
        if self.cfg.encoder == "dirac" or self.cfg.decoder == "dirac" or self.data_kind != "continuous":
            return self._missing("explicit likelihood (it needs encoder=gaussian decoder=gaussian, continuous data)")
        return super().log_likelihood(x, method, k, chunk)
