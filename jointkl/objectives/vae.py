"""Variational autoencoder (Kingma & Welling 2014) as a joint KL (Su eq. 5-7).

    generative joint   p(x, z) = p(z) p(x|z),      p(z) = N(0, I), p(x|z) Bernoulli or Gaussian
    inference joint    q(x, z) = p_data(x) q(z|x), q(z|x) = N(mu(x), diag sigma(x)^2)
    KL direction       KL(q(x, z) || p(x, z)) = E_data[-ELBO(x)] + const        (Su eq. 5)
    estimators         analytic KL(q(z|x) || p(z)); reparameterized E_q[log p(x|z)]  (Su eq. 7)

Su names the two sides the other way round (his p is our q); the loss is the same.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributions as D

from jointkl.divergences.importance import iwae_bound
from jointkl.divergences.kl import kl
from jointkl.errors import JointKLError
from jointkl.joints import Gaussian, decoder
from jointkl.objectives.base import Objective, Player
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class VAEConfig:
    latent_dim: int = 8
    hidden: int = 256
    layers: int = 2
    decoder: str = "auto"       # auto (bernoulli for binary/image data, gaussian otherwise) | bernoulli | gaussian
    lr: float = 1e-3


def decoder_kind(choice: str, data_kind: str) -> str:
    return ("gaussian" if data_kind == "continuous" else "bernoulli") if choice == "auto" else choice


class LatentVariableModel(Objective):
    """Shared pieces of models with a prior p(z), a decoder p(x|z) and an encoder q(z|x)."""

    def prior(self, n: int) -> D.Distribution:
        zeros = torch.zeros(n, self.latent_dim, device=self.device)
        return D.Independent(D.Normal(zeros, torch.ones_like(zeros)), 1)

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.p_x(self.prior(n).sample()).sample()

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.q_z(self.check_input(x)).mean

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.p_x(torch.as_tensor(z, dtype=torch.float32, device=self.device)).mean

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, method: str = "elbo", k: int = 1, chunk: int = 100_000):
        """Per-example bound on log p(x): ELBO (mean of k log-weights) or IWAE (Burda et al. 2016)."""
        if method not in ("elbo", "iwae"):
            raise JointKLError(f"unknown likelihood method {method!r} for {self.name}; choose elbo or iwae")
        x = self.check_input(x)
        out, b = [], max(1, chunk // max(k, 1))
        for xb in x.split(b):
            q = self.q_z(xb)
            z = q.sample((k,))                                            # (k, B, d)
            log_w = (self.p_x(z.flatten(0, 1)).log_prob(xb.repeat(k, *[1] * (xb.dim() - 1))).view(k, -1)
                     + self.prior(1).log_prob(z) - q.log_prob(z))        # (k, B)
            out.append(log_w.mean(0) if method == "elbo" else iwae_bound(log_w))
        return torch.cat(out)


@register
class VAE(LatentVariableModel):
    """Variational autoencoder: Gaussian encoder, Bernoulli or Gaussian decoder (Su eq. 7)."""

    name, Config = "vae", VAEConfig

    def __init__(self, cfg: VAEConfig, data_shape, data_kind):
        super().__init__(cfg, data_shape, data_kind)
        x_dim = int(torch.Size(data_shape).numel())
        self.q_z = Gaussian(x_dim, cfg.latent_dim, cfg.hidden, cfg.layers)
        self.p_x = decoder(decoder_kind(cfg.decoder, data_kind), cfg.latent_dim, data_shape, cfg.hidden, cfg.layers)

    def players(self):
        return [Player("vae", list(self.parameters()), lr=self.cfg.lr)]

    def loss(self, player, x):
        q = self.q_z(x)
        z = q.rsample()                                                   # (B, d)
        rec = -self.p_x(z).log_prob(x)                                    # (B,)
        kl_z = kl(q, self.prior(x.shape[0]))                              # (B,) analytic
        return (rec + kl_z).mean(), {"rec": rec.mean(), "kl": kl_z.mean()}
