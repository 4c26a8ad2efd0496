"""Semi-supervised VAE, Kingma et al. (2014) M2, with Hu's AA switch (AA-SVAE, Hu Tables 2-4).

    generative joint   p(x, c, z) = p(c) p(z) p(x|c, z),  p(c) uniform over the classes, p(z) = N(0, I)
    inference joint    labelled rows:   p_data(x, c) q(z|x, c)
                       unlabelled rows: p_data(x) q(c|x) q(z|x, c),  q(c|x) a classifier
    KL direction       KL(q || p), i.e. maximize the bounds (Kingma eqs. 6, 7, 9)
                         L(x, c) = E_q(z|x,c)[log p(x|c, z) + log p(c) + log p(z) - log q(z|x, c)]
                         U(x)    = sum_c q(c|x) L(x, c) + H(q(c|x))
                         J^a     = sum_labelled L + sum_unlabelled U - a E_labelled[-log q(c|x)]
    estimators         analytic KL for z, reparameterized z, exact sum over c (enumeration)

Per batch (labels -1 = unlabelled, from the trainer's `labelled` option):
    loss = mean_i [-L(x_i, c_i) if labelled else -U(x_i)] + alpha * mean_labelled[-log q(c_i|x_i)],
so alpha = 0.1 is Kingma's a = 0.1 N (his J sums over the N data points, ours averages). Encoder and decoder
are the CVAE's; q(c|x) is the only new network. `aa=true` is the VAE's adversary activation (Hu eq. 17,
supplement eqs. 44-46) with D(x) on x alone; samples x ~ p(x|c, z), c ~ p(c), enter as unlabelled rows (-U),
because eq. 44's p_theta0(x|y=0) carries no label. `classify(x)` = argmax q(c|x) (Hu Table 4);
`log_likelihood(x, "elbo")` is U(x), "iwae" enumerates c (see cvae).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from jointkl.errors import JointKLError
from jointkl.joints import Categorical
from jointkl.objectives.cvae import CVAE, CVAEConfig
from jointkl.objectives.registry import register
from jointkl.objectives.vae import VAE


@dataclass(frozen=True)
class SVAEConfig(CVAEConfig):
    alpha: float = 0.1              # weight of -log q(c|x) on labelled rows; Kingma's a = 0.1 N


@register
class SVAE(CVAE):
    """Semi-supervised VAE (Kingma et al. 2014 M2): classifier q(c|x), labelled and unlabelled bounds; AA switch."""

    name, Config = "svae", SVAEConfig
    critic_dim = 0                                      # D(x) sees x alone: samples carry no label
    critic = VAE.critic                                 # (not the CVAE's D(x, c))

    def __init__(self, cfg: SVAEConfig, data_shape, data_kind):
        super().__init__(cfg, data_shape, data_kind)
        self.q_y = Categorical(data_shape, cfg.classes, cfg.hidden, cfg.layers, arch=cfg.arch)   # conv under dcgan

    def neg_bounds(self, x: torch.Tensor) -> torch.Tensor:
        """-L(x, c) for every class c, one draw of z each. (classes, B)"""
        k, b = self.cfg.classes, x.shape[0]
        c = F.one_hot(torch.arange(k, device=x.device).repeat_interleave(b), k).float()   # (k*B, k)
        rec, kl_z = self.neg_elbo(x.repeat(k, *[1] * (x.dim() - 1)), c)                   # (k*B,) each
        return (rec + kl_z).view(k, b) + math.log(k)                                      # -log p(c) = log k

    def bound(self, x, y):
        if (y >= self.cfg.classes).any():
            raise JointKLError(f"label {int(y.max())} is out of range for classes={self.cfg.classes}; "
                               f"set classes={int(y.max()) + 1}")
        q = self.q_y(x)                                                   # q(c|x), batch (B,)
        nl = self.neg_bounds(x)                                           # (k, B)
        labelled = y >= 0                                                 # (B,)
        c = y.clamp_min(0)
        neg_u = (q.probs.T * nl).sum(0) - q.entropy()                     # -U(x), (B,)
        per = torch.where(labelled, nl.gather(0, c[None]).squeeze(0), neg_u)
        ce = (-q.log_prob(c) * labelled).sum() / labelled.sum().clamp_min(1)
        return per, self.cfg.alpha * ce, {"bound": per.mean(), "ce": ce}

    def fake(self, n, y):
        c = torch.randint(self.cfg.classes, (n,), device=self.device)     # c ~ p(c)
        x = self.p_x(self.prior(n).sample(), *self.condition(c)).sample()
        return x, torch.full_like(c, -1)                                  # enter unlabelled

    @torch.no_grad()
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """argmax_c q(c|x). (B,)"""
        return self.q_y(self.check_input(x)).probs.argmax(-1)

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, method: str = "elbo", k: int = 1, y=None) -> torch.Tensor:
        """"elbo" without labels: Kingma's U(x) (eq. 7), its ELBO(x|c) averaged over k draws; otherwise as cvae."""
        if method != "elbo" or y is not None:
            return super().log_likelihood(x, method, k, y)
        x = self.check_input(x)
        q = self.q_y(x)
        bounds = self.class_bounds(x, "elbo", k) - math.log(self.cfg.classes)          # L(x, c), (classes, B)
        return (q.probs.T * bounds).sum(0) + q.entropy()
