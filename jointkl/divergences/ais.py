"""Annealed importance sampling (Neal 2001) of log p(x) for decoder-based models, as in Wu et al. (2016).

    target         p(x) = integral of p(z) p(x|z) dz, the normalizer of the unnormalized posterior p(z) p(x|z)
    path           geometric: f_t(z) = p(z) p(x|z)^beta_t, 0 = beta_0 < ... < beta_T = 1 (sigmoid-spaced)
    weights        z_0 ~ p(z); log w = sum_t (beta_t - beta_{t-1}) log p(x|z_{t-1}), z_t ~ HMC leaving f_t invariant
    estimate       log p(x) ~= log mean_chains exp(log w): E[w] = p(x), so by Jensen a stochastic lower bound
    transitions    Hamiltonian Monte Carlo, `leapfrog` steps; the step size is adapted per example towards the
                   acceptance rate `target_accept` (x1.02 above, x0.98 below, as in Wu et al.'s code), from past
                   acceptances only, so each transition still leaves f_t invariant; each chain's step is jittered
                   by uniform(1 -+ `jitter`) per transition (halved the log-weight spread on a 2-d Gaussian)

AVB Sec. 5.2 evaluates with 1,000 intermediate distributions and 5 chains; Wu et al. use 10 leapfrog steps and a
target acceptance of 0.65. With T = 1 the estimate is importance sampling from the prior (no transition).
Batched over examples and chains ((chains, B, d) latents); runs wherever the model's parameters are.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Callable

import torch
from torch import Tensor

from jointkl.errors import JointKLError

LogDensity = Callable[[Tensor], Tensor]     # z (C, B, d) -> (C, B)


@dataclass(frozen=True)
class AISConfig:
    steps: int = 1000               # intermediate distributions T (AVB Sec. 5.2)
    chains: int = 5                 # independent chains per example (AVB Sec. 5.2)
    leapfrog: int = 10              # leapfrog steps per HMC transition (Wu et al. 2016)
    step_size: float = 0.1          # initial HMC step size, then adapted per example
    target_accept: float = 0.65     # acceptance rate the step size is steered to (Wu et al. 2016)
    max_step_size: float = 0.5      # the adapted step size stays in [1e-4, max_step_size] (Wu et al.'s code)
    jitter: float = 0.5             # each transition scales the step size by uniform(1 - jitter, 1 + jitter)
    schedule: str = "sigmoid"       # sigmoid (dense near both ends) | linear
    sigmoid_width: float = 4.0      # beta = rescaled sigmoid(linspace(-w, w)); Wu et al.'s code uses 4

    def __post_init__(self):
        if self.steps < 1 or self.chains < 1 or self.leapfrog < 1 or not self.step_size > 0:
            raise JointKLError(f"AIS needs steps >= 1, chains >= 1, leapfrog >= 1 and step_size > 0; got {self}")
        if not 0 <= self.jitter < 1 or not self.max_step_size > 0:
            raise JointKLError(f"AIS needs 0 <= jitter < 1 and max_step_size > 0; got {self}")
        if not 0 < self.target_accept < 1:
            raise JointKLError(f"AIS target_accept must lie in (0, 1); got {self.target_accept}")
        if self.schedule not in ("sigmoid", "linear"):
            raise JointKLError(f"unknown AIS schedule {self.schedule!r}; choose sigmoid or linear")


def ais_config(**options) -> AISConfig:
    """AISConfig from keyword options, with a one-line error for an unknown one."""
    names = {f.name for f in fields(AISConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise JointKLError(f"unknown AIS option {unknown[0]!r}; choose from: {', '.join(sorted(names))}")
    return AISConfig(**options)


def schedule(cfg: AISConfig, device=None) -> Tensor:
    """beta_0 = 0, ..., beta_T = 1 in float64. (T + 1,)"""
    t = torch.linspace(0, 1, cfg.steps + 1, dtype=torch.float64, device=device)
    if cfg.schedule == "linear":
        return t
    s = torch.sigmoid(cfg.sigmoid_width * (2 * t - 1))
    return (s - s[0]) / (s[-1] - s[0])


def _terms(log_prior: LogDensity, log_lik: LogDensity, z: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """log p(z), log p(x|z) and their gradients in z, detached; kept apart so any beta reuses them."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        lp, ll = log_prior(z), log_lik(z)                                  # (C, B) each
        g_lp, = torch.autograd.grad(lp.sum(), z)                           # (C, B, d)
        g_ll, = torch.autograd.grad(ll.sum(), z)                           # (C, B, d)
    return lp.detach(), ll.detach(), g_lp, g_ll


def ais(log_prior: LogDensity, log_lik: LogDensity, z0: Tensor, cfg: AISConfig = AISConfig(),
        return_accept: bool = False):
    """log of the AIS estimate of the integral of p(z) p(x|z), per example (B,).

    log_prior and log_lik map z (C, B, d) to (C, B); z0 (C, B, d) holds C chains' draws from p(z) per example.
    With return_accept, also the mean HMC acceptance probability per example (B,).
    """
    betas = schedule(cfg).tolist()
    z, (c, b, _) = z0.detach(), z0.shape
    eps = torch.full((b, 1), cfg.step_size, dtype=z.dtype, device=z.device)   # (B, 1): one step size per example
    lp, ll, g_lp, g_ll = _terms(log_prior, log_lik, z)
    log_w = torch.zeros(c, b, dtype=torch.float64, device=z.device)          # (C, B)
    accept_sum = torch.zeros(b, dtype=torch.float64, device=z.device)
    for t in range(1, len(betas)):
        beta = betas[t]
        log_w += (beta - betas[t - 1]) * ll.double()                       # log f_t/f_{t-1} at z_{t-1}
        if t == cfg.steps:
            break                                                          # no transition after the last weight
        # HMC transition leaving f_t = p(z) p(x|z)^beta invariant; U = -log f_t, leapfrog with half steps at the ends
        u = -lp - beta * ll                                                # (C, B)
        p0 = torch.randn_like(z)                                           # (C, B, d) momentum
        # a step size jittered per chain and transition (drawn independently of z, so HMC stays exact) breaks the
        # resonance of a fixed trajectory length with the period of a near-Gaussian target
        h = eps * (1 + cfg.jitter * (2 * torch.rand(c, b, 1, dtype=z.dtype, device=z.device) - 1))   # (C, B, 1)
        zn, p = z, p0 + 0.5 * h * (g_lp + beta * g_ll)
        for i in range(cfg.leapfrog):
            zn = zn + h * p
            lpn, lln, g_lpn, g_lln = _terms(log_prior, log_lik, zn)
            p = p + (h if i < cfg.leapfrog - 1 else 0.5 * h) * (g_lpn + beta * g_lln)
        un = -lpn - beta * lln
        log_accept = (u + 0.5 * p0.pow(2).sum(-1)) - (un + 0.5 * p.pow(2).sum(-1))   # (C, B), -delta H
        prob = log_accept.clamp(max=0).exp().nan_to_num(0.0)               # a NaN proposal is rejected
        take = torch.rand_like(prob) < prob                                # (C, B)
        keep = take[..., None]
        z, g_lp, g_ll = torch.where(keep, zn, z), torch.where(keep, g_lpn, g_lp), torch.where(keep, g_lln, g_ll)
        lp, ll = torch.where(take, lpn, lp), torch.where(take, lln, ll)
        rate = prob.mean(0)                                                # (B,) expected acceptance
        accept_sum += rate.double()
        eps = (eps * torch.where(rate > cfg.target_accept, 1.02, 0.98).to(eps)[:, None]).clamp(1e-4, cfg.max_step_size)
    log_px = torch.logsumexp(log_w, 0) - math.log(c)                       # (B,)
    return (log_px, accept_sum / max(cfg.steps - 1, 1)) if return_accept else log_px


@torch.no_grad()
def ais_log_likelihood(model, x: Tensor, cfg: AISConfig = AISConfig(), chunk: int = 512,
                       return_accept: bool = False):
    """Per-example AIS log p(x) for a model with `prior(n)` (a distribution over z) and `p_x(z)` (the decoder),
    e.g. any `LatentVariableModel`. Examples are processed `chunk` at a time, each with `cfg.chains` chains."""
    out, acc = [], []
    for xb in x.split(chunk):
        n = xb.shape[0]
        rep = (cfg.chains, *[1] * (xb.dim() - 1))

        def log_lik(z: Tensor, xb=xb, rep=rep) -> Tensor:
            return model.p_x(z.flatten(0, 1)).log_prob(xb.repeat(*rep)).view(z.shape[:2])   # (C, B)

        prior = model.prior(n)                                             # batch (B,), event (d,)
        r = ais(prior.log_prob, log_lik, prior.sample((cfg.chains,)), cfg, return_accept=True)
        out.append(r[0])
        acc.append(r[1])
    log_px = torch.cat(out).to(torch.float32)
    return (log_px, torch.cat(acc)) if return_accept else log_px
