"""Generative adversarial network (Goodfellow et al. 2014) as a joint KL, with Su's regularizer.

    generative joint   q(x, y) = p_data(x)/2 on y=1, q(x)/2 on y=0, q(x) = E_z delta(x - G(z))  (Su eq. 12-13)
    inference joint    p(x, y) = p_data(x) p(y|x), p(y=1|x) = D(x)
    KL direction       KL(q(x, y) || p(x, y))                                                    (Su eq. 14)
    estimators         D by logistic regression (Su eq. 16); its logit estimates log p_data/q_old (eq. 18)
    generator loss     -E log D(G(z)) ("nonsaturating", Su eq. 20) or E log(1 - D(G(z))) ("minimax"),
                       plus reg * mean_pixels (G(z) - G_old(z))^2, Su eq. 26 (KL(q || q_old), eq. 25).

Importance weighting (`iw=true`, IWGAN, Hu eq. 16 and supplement eqs. 36-43): the generator's per-sample
losses are weighted by w~_i = softmax_i(logit D(G(z_i))) over the batch, i.e. w_i = D/(1 - D) normalized
(supplement eq. 40), detached (eq. 43); D trains as in the plain GAN. Uniform D gives w~ = 1/B, the plain GAN.

G_old is the generator at the start of the current generator period; all `g_steps` updates of a period
share one z batch (as in Su's own code, which uses reg=5 and g_steps=2). With g_steps=1 the
regularizer's gradient is exactly zero, because G = G_old where it is evaluated.
The squared distance is averaged over data dimensions, so reg has the scale of Su's code.
`arch=dcgan` (image data): G is a DCGAN deconv generator and D a conv discriminator (`jointkl.nets.conv`);
CGAN's one-hot c joins G's input vector and D's conv features.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from jointkl.divergences.importance import discriminator_weights
from jointkl.divergences.ratio import discriminator_loss, generator_loss, generator_loss_per_sample
from jointkl.joints import Dirac
from jointkl.nets import build, check_arch
from jointkl.objectives.base import Objective, Player
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class GANConfig:
    latent_dim: int = 8
    hidden: int = 128
    layers: int = 3
    arch: str = "mlp"               # mlp | dcgan (conv G and D, image data only; hidden/layers then unused)
    loss: str = "nonsaturating"     # nonsaturating | minimax
    reg: float = 0.0                # Su eq. 26 weight (lambda); 0 disables
    iw: bool = False                # importance-weighted generator loss (IWGAN, Hu eq. 16)
    g_steps: int = 1                # generator updates per outer step (Su's code: 2)
    d_steps: int = 1                # discriminator updates per outer step (n_critic)
    g_batchnorm: bool = False       # batch norm in G's hidden layers (arch=mlp; DCGAN's G has it built in)
    g_act: str = "leaky_relu"       # G's hidden activation (arch=mlp): leaky_relu (0.2) | relu (DCGAN's G)
    lr: float = 1e-3
    lr_d: float | None = None       # defaults to lr
    betas: tuple[float, float] = (0.5, 0.999)


@register
class GAN(Objective):
    """GAN with minimax or non-saturating generator loss and Su's regularizer reg=lambda (Su eq. 16, 20, 26)."""

    name, Config = "gan", GANConfig
    cond_dim = 0                                                   # size of the extra input c of G and D (CGAN)

    def __init__(self, cfg: GANConfig, data_shape, data_kind):
        super().__init__(cfg, data_shape, data_kind)
        generator_loss(torch.zeros(1), cfg.loss)   # validate the loss name at construction
        check_arch(cfg.arch, data_shape)
        c = self.cond_dim
        self.G = Dirac(cfg.latent_dim + c, data_shape, cfg.hidden, cfg.layers, arch=cfg.arch,
                       batchnorm=cfg.g_batchnorm, act=cfg.g_act)
        self.D = build(cfg.arch, data_shape, 1, cfg.hidden, cfg.layers, extra_dim=c)
        self._z = self._c = self._x_old = None

    def condition(self, y: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """What G(z, *c) and D(x, *c) are also fed for a batch with labels y: nothing here (CGAN: one-hot y)."""
        return ()

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    def players(self):
        c = self.cfg
        return [Player("disc", list(self.D.parameters()), c.lr_d or c.lr, c.betas, c.d_steps),
                Player("gen", list(self.G.parameters()), c.lr, c.betas, c.g_steps)]

    def generate(self, z: torch.Tensor, *c: torch.Tensor) -> torch.Tensor:
        x = self.G(z, *c).rsample()                                # (B, *data_shape)
        return x if self.data_kind == "continuous" else torch.sigmoid(x)

    def begin(self, player):
        self._z = self._c = self._x_old = None

    def loss(self, player, x, y=None):
        c = self.condition(y)                                      # fakes share the batch's labels (CGAN)
        if player == "disc":
            with torch.no_grad():
                fake = self.generate(torch.randn(x.shape[0], self.latent_dim, device=x.device), *c)
            logit_real, logit_fake = self.D(x, *c), self.D(fake, *c)
            return discriminator_loss(logit_real, logit_fake), {"d_real": logit_real.mean(), "d_fake": logit_fake.mean()}
        if self._z is None:                                        # first update of this generator period
            self._z, self._c = torch.randn(x.shape[0], self.latent_dim, device=x.device), c
            with torch.no_grad():
                self._x_old = self.generate(self._z, *c)           # G_old(z), Su eq. 26
        fake = self.generate(self._z, *self._c)
        logit = self.D(fake, *self._c)                             # (B, 1)
        logs = {}
        if self.cfg.iw:                                            # Hu eq. 16: sum_i w~_i loss_i
            w = discriminator_weights(logit)                       # (B,), detached
            adv = (w * generator_loss_per_sample(logit, self.cfg.loss).reshape(-1)).sum()
            logs["ess"] = 1.0 / w.pow(2).sum()                     # effective sample size of the weights
        else:
            adv = generator_loss(logit, self.cfg.loss)
        reg = (fake - self._x_old).pow(2).flatten(1).mean(1).mean()
        return adv + self.cfg.reg * reg, {"adv": adv, "reg": reg, **logs}

    @torch.no_grad()
    def sample(self, n):
        return self.generate(torch.randn(n, self.latent_dim, device=self.device))

    @torch.no_grad()
    def decode(self, z):
        return self.generate(torch.as_tensor(z, dtype=torch.float32, device=self.device))
