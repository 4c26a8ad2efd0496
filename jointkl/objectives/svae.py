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

Not yet a declaration: its label is observed on some rows and summed out exactly on the others, which the
declaration API (jointkl.declare) cannot state yet; the networks are the declared CVAE's, the loss is written here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from jointkl.divergences.kl import kl
from jointkl.divergences.ratio import activated_weight, discriminator_loss
from jointkl.errors import JointKLError
from jointkl.joints import Categorical
from jointkl.objectives.base import Player
from jointkl.objectives.cvae import CVAE, CVAEConfig
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class SVAEConfig(CVAEConfig):
    alpha: float = 0.1              # weight of -log q(c|x) on labelled rows; Kingma's a = 0.1 N


@register
class SVAE(CVAE):
    """Semi-supervised VAE (Kingma et al. 2014 M2): classifier q(c|x), labelled and unlabelled bounds; AA switch."""

    name, Config = "svae", SVAEConfig
    critic_labels = False                               # D(x) sees x alone: samples carry no label

    def __init__(self, cfg: SVAEConfig, data_shape, data_kind):
        super().__init__(cfg, data_shape, data_kind)
        self.q_y = Categorical(data_shape, cfg.classes, cfg.hidden, cfg.layers, arch=cfg.arch)   # conv under dcgan

    def players(self):
        model = Player("vae", [p for n, p in self.named_parameters() if not n.startswith("D.")], lr=self.cfg.lr)
        if not self.cfg.aa:
            return [model]
        return [Player("disc", list(self.D.parameters()), lr=self.cfg.lr_d or self.cfg.lr), model]

    def neg_elbo(self, x: torch.Tensor, *c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-log p(x|z, c), z ~ q(z|x, c) reparameterized, and the analytic KL(q(z|x, c) || p(z)); (B,) each."""
        q = self.q_z(x, *c)
        z = q.rsample()                                                   # (B, d)
        return -self.p_x(z, *c).log_prob(x), kl(q, self.prior(x.shape[0]))

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        return self.D(x).squeeze(1)                                       # (B,), D(x) on x alone

    def loss(self, player, x, y=None):
        if not self.cfg.aa:
            per, extra, logs = self.bound(x, y)
            return per.mean() + extra, logs
        if player == "vae":                            # data terms first
            per, extra, logs = self.bound(x, y)
        with torch.no_grad():
            x_fake, y_fake = self.fake(x.shape[0], y)  # as many samples as data (supplement I.2)
        if player == "disc":                           # eq. 46: logistic regression, data vs samples
            logit_real, logit_fake = self.critic(x), self.critic(x_fake)
            return discriminator_loss(logit_real, logit_fake), {"d_real": logit_real.mean(), "d_fake": logit_fake.mean()}
        per_fake, _, _ = self.bound(x_fake, y_fake)
        w = activated_weight(self.critic(x), self.cfg.aa_temperature)              # (B,)
        w_fake = activated_weight(self.critic(x_fake), self.cfg.aa_temperature)    # (B,)
        loss = (w * per).mean() + self.cfg.aa_weight * (w_fake * per_fake).mean() + extra
        return loss, {**logs, "w_real": w.mean(), "w_fake": w_fake.mean()}

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
