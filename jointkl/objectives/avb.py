"""Adversarial Variational Bayes (Mescheder et al. 2017): a VAE whose encoder is a black-box sampler.

    generative joint   p(x, z) = p(z) p(x|z),      p(z) = N(0, I), p(x|z) Bernoulli or Gaussian
    inference joint    q(x, z) = p_data(x) q(z|x), z = f(x, eps), eps ~ N(0, I)  (Fig. 2b, eq. 3.7; no density)
    KL direction       KL(q(x, z) || p(x, z)) = E_data[-ELBO(x)] + const                   (eq. 2.4, 3.1)
    ratio estimator    adversary T(x, z), logistic on (x, z ~ q(z|x)) vs (x, z ~ p(z)) (eq. 3.3), optimal at
                       T* = log q(z|x) - log p(z) (Prop. 1, eq. 3.4; tested). T = t(x, z) - log p(z)
                       (`adv_prior`, as the authors' code), so the net t only has to learn log q(z|x).
    model loss         encoder + decoder minimise E_q[T(x, z) - log p(x|z)] (eq. 3.5, 3.7), reparameterized;
                       Algorithm 1 with `adv_steps` adversary updates per model update (Sec. 3.2).
    adaptive contrast  (Sec. 4) r(z|x) = N(mu(x), diag sigma(x)^2), moments of `ac_samples` draws of q(z|x) (1/K
                       normalisation). T contrasts z~ = (z - mu)/sigma with N(0, I) (eq. 4.3), and eq. 4.2's
                       E_q[-T* - log r + log p(x, z)] = E_q[-T*(x, z~) + log p(x|z)] - KL(r(z|x) || p(z)), because
                       log r - log p is quadratic in z and q, r share the first two moments (exactly so for the
                       empirical moments of the same draws). The last KL is analytic.

`log_likelihood(x, "elbo", k)`: the adversary's estimate of the ELBO, mean over k draws of log p(x|z) - T (AC:
minus KL(r||p)). It is NOT a bound: T's error enters with either sign (PAPER-NOTES: it swung above log p(x)).
`log_likelihood(x, "iwae", k)`: log (1/k) sum_i p(x, z_i) / s(z_i|x), z_i ~ s, with an explicit proposal
s(z|x) = 0.9 KDE(z; `fit` draws of q(z|x), Scott bandwidth) + 0.1 p(z) (the prior part bounds the weights by
10 p(x|z)). The mean weight is unbiased for p(x), so this is a stochastic lower bound on log p(x) that tends to
it as k grows, whatever the encoder learned. `AVBVI` is AVB as variational Bayes for a log-density (Sec. 5.1).
`arch=dcgan` (image data): the decoder is a deconv net, the encoder f(x, eps) and T(x, z) conv nets on x with eps
or z joining the conv features before the FC layer; their conv trunks run once per x however many draws of z.

Declared as KL(q || p) with the z-piece log q(z|x) - log p(z) estimated by T (`estimate={"z": Adversarial(...)}`),
Adaptive Contrast as that estimator's `contrast="adaptive"` over `ac_samples` draws per x.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Literal

import torch
import torch.distributions as D

from jointkl.declare import KL, Adversarial, Data, Declaration, Declared, Extra, Factor, Joint, Player
from jointkl.declare import standard_normal
from jointkl.divergences.ais import ais_config, ais_log_likelihood
from jointkl.divergences.importance import kde_iwae, standard_normal_log_prob
from jointkl.divergences.ratio import PriorCorrectedCritic, moment_match
from jointkl.errors import JointKLError
from jointkl.joints import Implicit, decoder
from jointkl.objectives.registry import register
from jointkl.training.trainer import train_without_data


@dataclass(frozen=True)
class AVBConfig:
    latent_dim: int = 8
    noise_dim: int = 16             # size of eps in z = f(x, eps); authors' code: 16 (MNIST), 64 (toy). Keep it
                                    # >= latent_dim, or q(z|x) lives on a manifold and has no density ratio to p(z)
    hidden: int = 256
    layers: int = 2
    arch: Literal["mlp", "dcgan"] = "mlp"   # dcgan: conv encoder, decoder and adversary; image data only
    decoder: Literal["auto", "bernoulli", "gaussian"] = "auto"   # as the VAE's
    adaptive_contrast: bool = False  # Sec. 4
    ac_samples: int = 16            # draws of q(z|x) per x for the moments of r(z|x), eq. 4.2
    adv_hidden: int | None = None   # adversary width; None = hidden
    adv_prior: bool = True          # T = t - log p(z), so the net t learns log q(z|x); False: T = t
    adv_steps: int = 2              # adversary updates per model update (Sec. 3.2; PAPER-NOTES calibration)
    lr: float = 3e-4                # encoder and decoder
    lr_adv: float = 1e-3            # adversary
    betas: tuple[float, float] = (0.5, 0.999)


@register
class AVB(Declared):
    """Adversarial Variational Bayes: black-box encoder, adversary T(x, z), optional Adaptive Contrast (Alg. 1)."""

    name, Config = "avb", AVBConfig

    def declare(self):
        c, shape = self.cfg, self.data_shape
        x_dim, d = int(torch.Size(shape).numel()), c.latent_dim
        self.q_z = Implicit(shape, d, c.noise_dim, c.hidden, c.layers, arch=c.arch)
        self.p_x = (decoder(c.decoder, d, shape, c.hidden, c.layers, c.arch, data_kind=self.data_kind)
                    if x_dim else None)                                    # no x: variational Bayes (AVBVI)
        self.T = PriorCorrectedCritic(shape, d, c.adv_hidden or c.hidden, c.layers, c.adv_prior, c.arch)
        ac = c.adaptive_contrast
        est = Adversarial(net=self.T, name="T", player="adversary", steps=c.adv_steps, lr=c.lr_adv, betas=c.betas,
                          logs=("T_q", "T_p"), contrast="adaptive" if ac else None, samples=c.ac_samples if ac else 1)
        q = Joint("q", x=Data(), z=Factor(self.q_z, given="x"))
        if x_dim:                                                          # eq. 3.7: E_q[T(x, z) - log p(x|z)]
            p = Joint("p", z=standard_normal(d), x=Factor(self.p_x, given="z"))
            terms = [KL(q, p, names={"x": "rec", "z": "kl"}, estimate={"z": est})]
        else:                                                              # Sec. 5.1: E_q[T(z) - log p~(z)]
            p = Joint("p", x=Data(), z=standard_normal(d))
            terms = [KL(q, p, names={"z": "kl"}, estimate={"z": est}),
                     Extra("rec", lambda at: -self.log_lik(at(q).x, at(q)["z"][None])[0])]
        return Declaration(p, q, [Player("vae", [self.q_z, *([self.p_x] if x_dim else [])], terms, c.lr, c.betas)])

    def log_lik(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) for z (K, B, d) -> (K, B)."""
        k = z.shape[0]
        return self.p_x(z.flatten(0, 1)).log_prob(x.repeat(k, *[1] * (x.dim() - 1))).view(k, -1)

    def draw(self, x: torch.Tensor, k: int | None = None):
        """z ~ q(z|x) (K, B, d); what T sees (z, or z~ with AC) (K, B, d); the analytic KL(r||p) (B,) or 0."""
        ac = self.cfg.adaptive_contrast
        z = self.q_z(x).rsample((k or (self.cfg.ac_samples if ac else 1),))   # (K, B, d)
        if not ac:
            return z, z, torch.zeros(z.shape[1], device=z.device)
        z_tilde, r = moment_match(z)
        return z, z_tilde, D.kl_divergence(r, self.prior(z.shape[1]))

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, method: str = "elbo", k: int = 1, fit: int = 1000,
                       chunk: int = 100_000, **ais):
        """Per example: the adversary's ELBO estimate ("elbo", not a bound) or the importance-sampling estimate with
        the KDE + prior proposal ("iwae", a stochastic lower bound on log p(x)); see the module docstring.
        With AC, "elbo" uses at least `ac_samples` draws (they also give r's moments). "ais": AIS with k chains
        from the prior and decoder alone, as for the VAE (the encoder plays no part)."""
        if method == "ais":
            return ais_log_likelihood(self, self.check_input(x), ais_config(**{"chains": k, **ais}))
        if method not in ("elbo", "iwae"):
            raise JointKLError(f"unknown likelihood method {method!r} for {self.name}; choose elbo, iwae or ais")
        x = self.check_input(x)
        if method == "iwae":
            return torch.cat([kde_iwae(lambda z: self.log_lik(xi[None], z[:, None]).squeeze(1),
                                       self.q_z(xi[None]).sample((fit,))[:, 0], k) for xi in x])
        k, out = max(k, self.cfg.ac_samples) if self.cfg.adaptive_contrast else k, []
        for xb in x.split(max(1, chunk // k)):
            z, z_t, kl_rp = self.draw(xb, k)                               # (k, b, d) twice, (b,)
            out.append((self.log_lik(xb, z) - self.T(xb, z_t)).mean(0) - kl_rp)
        return torch.cat(out)

class AVBVI(AVB):
    """AVB as variational Bayes for an unnormalized log-density log_joint(z) (Sec. 5.1): a neural sampler
    z = f(eps) with no x, T(z) contrasting it with N(0, I) (or adaptively, Sec. 4). The model loss is
    E_q[T(z) - (log_joint(z) - log N(z; 0, I))] = KL(q || posterior) - log Z, up to T's error.
    log_joint maps (N, dim) -> (N,). Each of a batch's rows is one draw (AC: `ac_samples` draws per row, so
    use a few rows). AC is much steadier here (tests: Gaussian target within 0.05 sd vs ~0.2 sd without)."""

    def __init__(self, log_joint: Callable[[torch.Tensor], torch.Tensor], dim: int, cfg: AVBConfig = AVBConfig()):
        super().__init__(replace(cfg, latent_dim=dim), (0,), "continuous")
        self.log_joint = log_joint

    def log_lik(self, x, z):
        return (self.log_joint(z.flatten(0, 1)).view(z.shape[:2]) - standard_normal_log_prob(z))   # (K, B)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        return self.q_z(torch.zeros(n, 0, device=self.device)).sample()     # (n, dim)

    def fit(self, steps: int, batch: int = 64, device: str = "cpu", callbacks=(), seed: int = 0) -> "AVBVI":
        """Train with the library's Trainer (same player schedule) on `batch` rows of nothing per step; the
        noise stream goes on from the caller's (seed torch's RNG first for a repeatable run). `callbacks`
        (`jointkl.training.trainer.Callback`) watch the steps, e.g. the KL to a reference posterior (AVB Fig. 3)."""
        return train_without_data(self, steps, batch, device, callbacks, seed)

