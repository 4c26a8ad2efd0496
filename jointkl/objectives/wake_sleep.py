"""Wake-sleep (Hinton et al. 1995) for a Helmholtz machine with binary latent layers (Hu eq. 14).

    generative joint   p_theta(x, h) = p(h_L) prod_{l<L} p(h_l | h_{l+1}) p(x | h_1), every factor a product
                       of Bernoullis (sigmoid belief layers), p(h_L) with learned biases
    inference joint    q_lambda(x, h) = p_data(x) q(h_1 | x) prod_{l>1} q(h_l | h_{l-1}), Bernoullis likewise
    KL direction       wake:  KL(q_lambda(x, h) || p_theta(x, h)) in theta  = -E_data E_q log p(x, h) + const
                       sleep: KL(p_theta(x, h) || q_lambda(x, h)) in lambda = -E_p log q(h | x) + const
    estimators         plain Monte Carlo: ancestral samples, no reparameterization needed, because each
                       phase differentiates only the log-density, never the sampler
    losses             wake:  -E_{x ~ data, h ~ q(h|x)} log p_theta(x, h)          (Hu eq. 14, top)
                       sleep: -E_{(x, h) ~ p_theta} log q_lambda(h | x)             (Hu eq. 14, bottom)
    declared as        wake: NLL of every factor of p under q's draws; sleep: NLL of every factor of q under
                       p's draws (the KLs' other pieces are the fixed data's and q's or p's own entropies,
                       which the other player's parameters do not touch)

The wake phase fits the generator to data completed by the recognition net; the sleep phase fits the
recognition net to "dreams" (h, x) drawn from the generator. Neither phase follows the gradient of one
common objective; at a fixed generator the sleep optimum of a factorial q matches the exact posterior
marginals p(h_i = 1 | x) (tested by enumeration: excess KL < 0.005 nats). Two players, "wake" (theta) then
"sleep" (lambda). `layers=0` makes every conditional a logistic layer (the classic Helmholtz machine);
`layers >= 1` puts deterministic hidden layers inside each conditional. Data must be binary: use
`binarize=dynamic` (or `fixed`) for grey images. `log_likelihood` estimates log p(x) by importance sampling from
q ("elbo": mean log-weight, "iwae": the k-sample bound) or computes it exactly by enumerating every latent
configuration ("exact", up to 20 latent bits in all). `encode(x)` gives q(h_1 = 1 | x), `decode(h_1)`
p(x = 1 | h_1). Tested: on binary2x2 with 3 latent bits, 1,000 steps climb to an exact log-likelihood of
-1.389 ... -1.396 (optimum -log 4 = -1.386).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from jointkl.declare import NLL, Data, Declaration, Declared, Draws, Extra, Factor, Joint, Player
from jointkl.errors import JointKLError
from jointkl.joints import Bernoulli, BernoulliPrior
from jointkl.objectives.registry import register

MAX_EXACT_BITS = 20


@dataclass(frozen=True)
class WakeSleepConfig:
    latent_dim: int = 64            # binary units per stochastic layer
    stochastic_layers: int = 1      # L: h_1 (next to x) ... h_L (top, with the learned prior)
    hidden: int = 256               # width of deterministic hidden layers inside each conditional
    layers: int = 0                 # deterministic hidden layers per conditional (0: sigmoid belief layers)
    lr: float = 1e-3                # wake (generative) rate
    lr_sleep: float | None = None   # sleep (recognition) rate; defaults to lr
    betas: tuple[float, float] = (0.9, 0.999)


@register
class WakeSleep(Declared):
    """Wake-sleep, Helmholtz machine with binary latents: wake fits p to q-samples, sleep q to dreams (Hu eq. 14)."""

    name, Config = "wake_sleep", WakeSleepConfig

    def declare(self):
        cfg, data_shape = self.cfg, self.data_shape
        if self.data_kind == "continuous":
            raise JointKLError("wake_sleep models binary data; use binary or [0, 1] image data with "
                               "binarize=dynamic (e.g. --data mnist5k binarize=dynamic)")
        if cfg.latent_dim < 1 or cfg.stochastic_layers < 1:
            raise JointKLError("wake_sleep needs latent_dim >= 1 and stochastic_layers >= 1")
        x_dim, d, L = int(torch.Size(data_shape).numel()), cfg.latent_dim, cfg.stochastic_layers
        self.prior_logits = nn.Parameter(torch.zeros(d))                                 # p(h_L)
        self.p_h = nn.ModuleList(Bernoulli(d, d, cfg.hidden, cfg.layers) for _ in range(L - 1))   # p(h_l | h_{l+1})
        self.p_x = Bernoulli(d, data_shape, cfg.hidden, cfg.layers)                      # p(x | h_1)
        self.q_h = nn.ModuleList(Bernoulli(x_dim if l == 0 else d, d, cfg.hidden, cfg.layers) for l in range(L))
        h = [f"h{l + 1}" for l in range(L)]                                              # h1 next to x
        p = {h[-1]: Factor(BernoulliPrior(self.prior_logits))}                     # p(h_L)
        for l in reversed(range(L - 1)):
            p[h[l]] = Factor(self.p_h[l], given=h[l + 1])
        p = Joint("p", **p, x=Factor(self.p_x, given=h[0]))
        q = Joint("q", x=Data(), **{h[l]: Factor(self.q_h[l], given="x" if l == 0 else h[l - 1]) for l in range(L)})
        log_p = Extra("log_pxh", lambda at: self.log_joint(p, at(q)), weight=0.0)        # diagnostics
        log_q = Extra("log_qhx", lambda at: self.log_joint(q, at(p)), weight=0.0)
        wake = [NLL(p, v, under=q, name=None) for v in ("x", *h)]                         # Hu eq. 14, top
        sleep = [NLL(q, v, under=p, name=None) for v in h]                                # Hu eq. 14, bottom
        return Declaration(p, q, [Player("wake", [self.prior_logits, self.p_h, self.p_x], [*wake, log_p], cfg.lr,
                                         cfg.betas),
                                  Player("sleep", [self.q_h], [*sleep, log_q], cfg.lr_sleep or cfg.lr, cfg.betas)])

    @property
    def latent_dim(self) -> int:
        return self.cfg.latent_dim

    # --- capabilities (`sample(n)`: x ~ p(x, h), top-down, from the declared joint) ----------------------
    @torch.no_grad()
    def encode(self, x):
        """q(h_1 = 1 | x), the recognition probabilities of the first latent layer. (B, d)"""
        return self.q_h[0](self.check_input(x)).mean

    @torch.no_grad()
    def decode(self, h):
        """p(x = 1 | h_1), the pixel probabilities. (B, *data_shape)"""
        return self.p_x(torch.as_tensor(h, dtype=torch.float32, device=self.device)).mean

    @torch.no_grad()
    def log_likelihood(self, x, method: str = "elbo", k: int = 1, chunk: int = 100_000):
        """Per-example log p(x): "elbo" and "iwae" from k draws of q(h|x) (derived from the joints), or "exact"
        by enumeration."""
        if method not in ("elbo", "iwae", "exact"):
            raise JointKLError(f"unknown likelihood method {method!r} for {self.name}; choose elbo, iwae or exact")
        if method == "exact":
            return self.exact_log_likelihood(self.check_input(x))
        return super().log_likelihood(x, method, k, chunk)

    def all_latents(self, start: int = 0, stop: int | None = None) -> list[torch.Tensor]:
        """Latent configurations number start..stop-1 of h_1..h_L (binary expansion), as L tensors (M, d)."""
        d, L = self.cfg.latent_dim, self.cfg.stochastic_layers
        if d * L > MAX_EXACT_BITS:
            raise JointKLError(f"exact log-likelihood enumerates 2^{d * L} latent states; it allows at most "
                               f"{MAX_EXACT_BITS} latent bits, use method=iwae")
        idx = torch.arange(start, 2 ** (d * L) if stop is None else stop, device=self.device)
        bits = (idx[:, None] >> torch.arange(d * L, device=self.device)) & 1       # (M, L d)
        return list(bits.float().split(d, 1))

    def exact_log_likelihood(self, x: torch.Tensor, block: int = 4096) -> torch.Tensor:
        """log p(x) = logsumexp_h log p(x, h) over all 2^(L d) latent states, `block` states at a time. (B,)"""
        total = 2 ** (self.cfg.latent_dim * self.cfg.stochastic_layers)
        self.all_latents(0, 0)                                                    # checks the size first
        parts = []
        for start in range(0, total, block):
            hs = self.all_latents(start, min(start + block, total))
            logits = self.p_x.net(hs[0]).flatten(1)                               # (M, D)
            log_px_h = x.flatten(1) @ logits.T - F.softplus(logits).sum(1)        # (B, M): sum_i x_i l_i - log(1+e^l_i)
            at = Draws(self.decl.p, {"x": hs[0]})                                 # h set, x only sizes the batch
            at.values.update({f"h{l + 1}": h for l, h in enumerate(hs)})
            parts.append(torch.logsumexp(log_px_h + self.log_joint(self.decl.p, at, skip=("x",)), 1))   # (B,)
        return torch.stack(parts).logsumexp(0)
