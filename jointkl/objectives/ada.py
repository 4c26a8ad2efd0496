"""Adversarial domain adaptation, ADA (Ganin et al. 2016) in Hu et al.'s formulation (Hu eqs. 1-3, 19).

    generative joint   p_theta(x|y) p(y): a domain y (1 = source, 0 = target; p(y) uniform), a data point z ~ p(z|y),
                       its feature x = F_theta(z) -- an implicit distribution over features            (Hu Sec. 3.1)
    inference joint    q_phi(y|x) = D(x): the domain discriminator reads the feature back to its domain
    KL direction       as in GANs: KL(p_theta(x|y) || q^r(x|y)) per feature step, minus a JSD        (Hu eq. 6)
    estimators         D by logistic regression on features, source vs target (Hu eq. 1 / eq. 3, left);
                       its logit estimates log p_theta(x|y=1) / p_theta(x|y=0)
    losses             disc:     -E_source log D(F(z)) - E_target log(1 - D(F(z)))                    (Hu eq. 1)
                       features: E_source -log f_omega(t | F(z))                                     (Hu eq. 19)
                                 + adv * [-E_source log(1 - D(F(z))) - E_target log D(F(z))]         (Hu eqs. 2-3)

The feature extractor F and the label classifier f_omega are one player ("model"); D is the other ("disc").
`loss=flip` is Hu eq. 2-3 (the domain labels reversed, q^r); `loss=minimax` is the gradient-reversal form of
Ganin et al. (F maximizes D's own loss). `adv=0` is the no-adaptation baseline (F and the classifier see
source labels only; D still trains, to report how separable the domains are). Data: one set whose labelled
rows (y >= 0) are the source domain and whose unlabelled rows (y = -1) are the target domain, e.g.
`mnist5k-mnistm` (jointkl.data.domains). Each domain's terms are averaged over its own rows of the batch,
so both domains weigh 1/2 whatever the mix (p(y) uniform, as in Hu eq. 3) and D's logit estimates
log p_source/p_target without the batch's odds (tested). `classify(x)` predicts labels, `encode(x)` gives the
features F(x), `domain_prob(x)` D(F(x)); no sampler. E.g. `jointkl train ada --data mnist5k-digits --steps 2000`
(`adv=0` for the baseline); the set's `test` rows are the target domain, so
`(m.classify(ds.test) == ds.test_labels).float().mean()` is the target-domain accuracy.

Not yet a declaration: the two domains are the labelled and unlabelled rows of one batch, each averaged over its
own rows, and the feature player adds a supervised classifier on source rows; `jointkl.declare` has no
per-domain batches yet.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from jointkl.errors import JointKLError
from jointkl.nets import MLP
from jointkl.objectives.base import Objective, Player
from jointkl.objectives.registry import register

LOSSES = ("flip", "minimax")


@dataclass(frozen=True)
class ADAConfig:
    classes: int = 10                # labels of the source task
    feat_dim: int = 64               # width of the features x = F(z)
    hidden: int = 256
    layers: int = 2                  # hidden layers of F; the classifier and D have one hidden layer each
    adv: float = 1.0                 # weight of the adversarial term (0: no adaptation, source-only baseline)
    loss: str = "flip"               # flip (Hu eqs. 2-3) | minimax (gradient reversal, Ganin et al.)
    d_steps: int = 1                 # discriminator updates per outer step
    lr: float = 1e-3                 # F and the classifier
    lr_d: float | None = None        # D; defaults to lr
    betas: tuple[float, float] = (0.5, 0.999)


def domain_mean(v: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Mean of v over the selected rows; 0 when the batch holds none of them (that domain's term drops)."""
    return v[rows].mean() if bool(rows.any()) else v.sum() * 0.0


@register
class ADA(Objective):
    """Adversarial domain adaptation: features that fool a domain discriminator feed a classifier (Hu eqs. 1-3, 19)."""

    name, Config = "ada", ADAConfig
    labels = True

    def __init__(self, cfg: ADAConfig, data_shape, data_kind):
        super().__init__(cfg, data_shape, data_kind)
        if cfg.loss not in LOSSES:
            raise JointKLError(f"unknown ADA loss {cfg.loss!r}; choose one of {', '.join(LOSSES)}")
        if cfg.classes < 2 or cfg.adv < 0:
            raise JointKLError(f"ada needs classes >= 2 and adv >= 0 (got classes={cfg.classes}, adv={cfg.adv})")
        x_dim = int(torch.Size(data_shape).numel())
        self.F = torch.nn.Sequential(MLP(x_dim, cfg.feat_dim, cfg.hidden, cfg.layers), torch.nn.LeakyReLU(0.2))
        self.C = MLP(cfg.feat_dim, cfg.classes, cfg.hidden, 1)              # f_omega(t|x), Hu eq. 19
        self.D = MLP(cfg.feat_dim, 1, cfg.hidden, 1)                       # q_phi(y=1|x), y=1: source

    def players(self):
        c = self.cfg
        return [Player("disc", list(self.D.parameters()), c.lr_d or c.lr, c.betas, c.d_steps),
                Player("model", [*self.F.parameters(), *self.C.parameters()], c.lr, c.betas)]

    def domain_logits(self, feats: torch.Tensor) -> torch.Tensor:
        return self.D(feats).squeeze(1)                                    # (B,) log q(y=1|x)/q(y=0|x)

    def loss(self, player, x, y):
        src = y >= 0                                                       # (B,) True: source row
        if bool((y[src] >= self.cfg.classes).any()):
            raise JointKLError(f"labels reach {int(y.max())} but ada has classes={self.cfg.classes}; "
                               f"set classes={int(y.max()) + 1}")
        feats = self.F(x.flatten(1))                                       # (B, feat_dim)
        if player == "disc":
            t = self.domain_logits(feats.detach())
            loss = domain_mean(F.softplus(-t), src) + domain_mean(F.softplus(t), ~src)     # Hu eq. 1
            acc = ((t > 0) == src).float().mean()
            return loss, {"d_loss": loss.detach(), "domain_acc": acc}
        logits = self.C(feats)                                             # (B, classes)
        ce = domain_mean(F.cross_entropy(logits, y.clamp_min(0), reduction="none"), src)   # Hu eq. 19
        logs = {"ce": ce.detach(), "src_acc": domain_mean((logits.argmax(1) == y).float(), src)}
        if self.cfg.adv == 0:
            return ce, logs
        t = self.domain_logits(feats)
        if self.cfg.loss == "flip":                                        # reversed labels q^r (Hu eqs. 2-3)
            adv = domain_mean(F.softplus(t), src) + domain_mean(F.softplus(-t), ~src)
        else:                                                              # minus D's own loss (Ganin et al.)
            adv = -(domain_mean(F.softplus(-t), src) + domain_mean(F.softplus(t), ~src))
        return ce + self.cfg.adv * adv, {**logs, "adv": adv.detach()}

    # --- capabilities ----------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, x):
        """The features F(x). (B, feat_dim)"""
        return self.F(self.check_input(x).flatten(1))

    @torch.no_grad()
    def classify(self, x) -> torch.Tensor:
        """The predicted label argmax_t f_omega(t | F(x)). (B,) int64"""
        return self.C(self.encode(x)).argmax(1)

    @torch.no_grad()
    def domain_prob(self, x) -> torch.Tensor:
        """D(F(x)) = q_phi(y = source | x). (B,)"""
        return torch.sigmoid(self.domain_logits(self.encode(x)))
