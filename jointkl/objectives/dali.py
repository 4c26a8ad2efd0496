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
0.5 |z - mu|^2 + const, "DALI-l2"). Eq. 8 as printed puts the data in its first expectation, so its D
estimates KL(p_data || p_G), the reverse of term I; we implement it as printed. Players follow
Algorithm 1: "disc" (D), then "gen" (G and E together), each on its own z batch. With
`encoder_on_disc_features` E reads D's last hidden layer (Sec. 4); only the "disc" player updates those
layers, while G still gets the cycle gradient through them. Encoding is the mean of q(z|x);
reconstruction G(mu(x)) (Sec. 3.5). For image data G's output passes through a sigmoid.
`arch=dcgan` (image data): G is a deconv generator, D and E conv nets (`jointkl.nets.conv`); with
`encoder_on_disc_features` E is an MLP head (1 x hidden) on D's FC-1024 layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributions as D

from jointkl.divergences.ratio import discriminator_loss, generator_loss, kl_value
from jointkl.errors import JointKLError
from jointkl.joints import Dirac, Gaussian
from jointkl.nets import build, check_arch, features
from jointkl.objectives.base import Objective, Player
from jointkl.objectives.registry import register

VARIANTS = ("gan", "f", "l2")


@dataclass(frozen=True)
class DALIConfig:
    latent_dim: int = 8
    hidden: int = 256
    layers: int = 3
    arch: str = "mlp"                      # mlp | dcgan (conv G, D, E; image data only)
    variant: str = "gan"                   # gan | f | l2
    lam: float | None = None               # lambda of eq. 10; None = 1/latent_dim (Sec. 4)
    encoder_on_disc_features: bool = False  # E reads D's last hidden layer (Sec. 4)
    min_std: float = 1e-3                  # floor of q(z|x)'s std (the paper does not state one)
    separate_heads: bool = False           # mu(x) and sigma(x) from two networks, as in Sec. 4 (else one, two halves)
    std_link: str = "softplus"             # sigma(x) = softplus(s(x)), or "logvar": exp(s(x) / 2), s the log variance
    g_batchnorm: bool = False              # batch norm in G's hidden layers (arch=mlp; as DCGAN's G)
    g_act: str = "leaky_relu"              # G's hidden activation (arch=mlp): leaky_relu (0.2) | relu (DCGAN's G)
    lr: float = 1e-3                       # G and E
    lr_d: float | None = None              # defaults to lr
    betas: tuple[float, float] = (0.5, 0.999)


@register
class DALI(Objective):
    """DALI: adversary on x plus the latent cycle term -log q(z|E(G(z))) (eq. 9-10, Algorithm 1)."""

    name, Config = "dali", DALIConfig

    def __init__(self, cfg: DALIConfig, data_shape, data_kind):
        super().__init__(cfg, data_shape, data_kind)
        if cfg.variant not in VARIANTS:
            raise JointKLError(f"unknown DALI variant {cfg.variant!r}; choose one of {', '.join(VARIANTS)}")
        check_arch(cfg.arch, data_shape)
        self.G = Dirac(cfg.latent_dim, data_shape, cfg.hidden, cfg.layers, arch=cfg.arch, batchnorm=cfg.g_batchnorm,
                       act=cfg.g_act)
        self.D = build(cfg.arch, data_shape, 1, cfg.hidden, cfg.layers)
        feats = cfg.encoder_on_disc_features
        # on D's features E only needs a head (the paper's "two separated fully connected networks")
        self.E = Gaussian(self.D.net[-1].in_features if feats else data_shape, cfg.latent_dim, cfg.hidden,
                          1 if feats else cfg.layers, std=1.0 if cfg.variant == "l2" else None, min_std=cfg.min_std,
                          arch=cfg.arch, separate=cfg.separate_heads, link=cfg.std_link)
        self.lam = cfg.lam if cfg.lam is not None else 1.0 / cfg.latent_dim

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    def players(self):
        c = self.cfg
        return [Player("disc", list(self.D.parameters()), c.lr_d or c.lr, c.betas),
                Player("gen", [*self.G.parameters(), *self.E.parameters()], c.lr, c.betas)]

    # --- the three networks ------------------------------------------------------------------------
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        x = self.G(z).rsample()                                    # (B, *data_shape)
        return x if self.data_kind == "continuous" else torch.sigmoid(x)

    def discriminate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's last hidden layer and its logit (the f variant reads the logit as T(x) of eq. 8)."""
        h = features(self.D, x)                                    # (B, hidden), or (B, 1024) under dcgan
        return h, self.D.net[-1](h).squeeze(1)                     # (B, width), (B,)

    def q_z(self, x: torch.Tensor, h: torch.Tensor | None = None) -> D.Distribution:
        """q(z|x) = N(mu(x), diag sigma^2(x)) (eq. 9); h: D's features of x, if already computed."""
        if not self.cfg.encoder_on_disc_features:
            return self.E(x)
        return self.E(h if h is not None else self.discriminate(x)[0])

    # --- Algorithm 1 ---------------------------------------------------------------------------------
    def loss(self, player, x):
        z = torch.randn(x.shape[0], self.latent_dim, device=x.device, dtype=x.dtype)  # (B, d) ~ p(z)
        if player == "disc":
            with torch.no_grad():
                fake = self.generate(z)
            t_real, t_fake = self.discriminate(x)[1], self.discriminate(fake)[1]
            if self.cfg.variant == "f":
                v = kl_value(t_real, t_fake)                        # maximized by D (eq. 8)
                return -v, {"kl_value": v.detach()}
            return discriminator_loss(t_real, t_fake), {"d_real": t_real.mean(), "d_fake": t_fake.mean()}
        fake = self.generate(z)                                     # (B, *data_shape)
        h, t_fake = self.discriminate(fake)
        adv = -t_fake.mean() if self.cfg.variant == "f" else generator_loss(t_fake, "nonsaturating")
        q = self.q_z(fake, h)
        nll = -q.log_prob(z)                                        # (B,) L(z, E(G(z))), eq. 9
        sq = (z - q.mean).pow(2).mean()
        return adv + self.lam * nll.mean(), {"adv": adv, "cycle_nll": nll.mean(), "cycle_sq": sq}

    # --- capabilities ----------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n):
        return self.generate(torch.randn(n, self.latent_dim, device=self.device))

    @torch.no_grad()
    def encode(self, x):
        return self.q_z(self.check_input(x)).mean                  # mu(x), Sec. 3.5

    @torch.no_grad()
    def decode(self, z):
        return self.generate(torch.as_tensor(z, dtype=torch.float32, device=self.device))
