"""Models as declarations: two joints, a KL between them, and an estimator where a density is missing.

A model states its generative joint p and inference joint q as products of factors, and each player the
divergences it minimizes; `Declared` derives every loss from that, creates the discriminators that the
estimators need as players of their own, and refuses (one line, when the model is built) a derivation it
cannot make. See docs/declarations.md for the design and one worked example per estimator.

Factors (a variable given earlier ones):
    Data()                      the data batch: samples only, no density, no parameters
    Labels(classes)             the batch's labels, one-hot (data)
    Partial(net, classes)       labels given on some rows (y >= 0) and summed out exactly on the others under
                                the classifier `net`, q(y|x) (enumeration: Kingma et al. 2014 eq. 7)
    Prior(dist)                 a fixed distribution: samples and log-density, no parameters
    Factor(net, given)          a `jointkl.joints` conditional: explicit (Gaussian, Bernoulli: `log_prob`,
                                reparameterized samples), Dirac (deterministic) or Implicit (noise-fed sampler);
                                the last two have samples and no density
Terms (what a player minimizes; `w * term` weights one):
    KL(a, b, on=None, estimator=None, estimate=None)
        KL(a || b) of the joints (on=None) or of their marginals on `on`. Without `estimator` it is expanded
        variable by variable, E_a[log a(v|.) - log b(v|.)] (Su eq. 4): pieces no parameter touches are dropped
        (the data's entropy, a fixed prior), a pair of densities is the analytic KL where torch.distributions
        registers it and Monte Carlo otherwise, a lone density is its Monte-Carlo cross-entropy; a piece with
        a missing density takes its estimator from `estimate={var: Adversarial(...)}`. With `estimator`, one
        discriminator estimates the whole log-ratio on the variables `on` (GAN, AAE, ALI, DALI's term I).
    NLL(b, var, under=a)        E_a[-log b(var|.)], the cross-entropy of one factor (DALI eq. 9); a Dirac factor
                                scores the mean squared error instead (Su eq. 34's deterministic decoder)
    Proximal(var, under=a)      mean over dimensions of (v - v_old)^2, v_old the value at the start of the
                                player's period on the same noise: Su eq. 25-26's KL(q || q_old) (share_noise=
                                False: the period's first net rerun on each update's new draw; Dirac nets only)
Estimators:
    Adversarial(value="logistic"|"f-kl"|"f-kl-swapped", gen_loss=...)
        for an adversarial KL term, a discriminator that tells samples of b (positive: data, prior, inference
        pairs) from samples of a, so its logit estimates log b - log a (Su eq. 16-18); "f-kl" trains it on the KL
        value function of DALI eq. 8 instead (T ~ 1 + log b/a), "f-kl-swapped" on eq. 8 with its expectations
        swapped (T ~ 1 + log a/b; `disc_value_loss`). The term's player minimizes `gen_loss` of the logits of a's
        samples: "nonsaturating" E softplus(-logit), "minimax" -E softplus(logit), "kl" -E logit (the KL
        estimate itself; +E logit when swapped); when both sides learn (ALI), a function of both logits (Su eqs. 41-43, `pair_loss`),
        except "kl", which stays -E logit on a's samples (VEEGAN: b's side gets no adversarial gradient).
        For a ratio piece of an expanded KL (`estimate=`), T tells a's samples (positive) from a's sample with
        the variable redrawn from b's factor, so T estimates the piece's integrand log a - log b (AVB Prop. 1).
        Options for any model: `spectral_norm` (SN-GAN, Miyato et al. 2018) and `unroll` (Unrolled GAN, Metz et
        al. 2017); a model's Config with a field of that name sets it on its estimators (`ESTIMATOR_OPTIONS`).
        One estimator in several KL terms with the same b and `on` is one discriminator: b's samples positive,
        every term's a-samples negative, its loss the sum of their logistic losses (VAEGAN's L_GAN: data vs
        reconstructions and prior samples); each term's player is scored at its own a's samples.
    Activation(adversarial, temperature, weight)   adversary activation of a KL term (Hu eq. 17)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Literal

import torch
import torch.distributions as D
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from jointkl.divergences.importance import chunked_bound, discriminator_weights
from jointkl.divergences.kl import kl as kl_divergence
from jointkl.divergences.ratio import discriminator_loss, kl_value, moment_match, pair_loss
from jointkl.errors import JointKLError
from jointkl.joints import Dirac, Implicit
from jointkl.nets import build, check_arch
from jointkl.objectives.base import Objective
from jointkl.training.config import validate
from jointkl.training.player import Player as TrainedPlayer

# ---- factors and joints ---------------------------------------------------------------------------------


class Data:
    """The data batch x."""
    kind = "data"


@dataclass
class Labels:
    """The batch's labels y as one-hot vectors of `classes` entries (every label must be given)."""
    classes: int
    kind = "data"


def one_hot(y: torch.Tensor | None, classes: int, model: str) -> torch.Tensor:
    """(B,) int64 labels -> (B, classes) float one-hot; every label must be given and in range."""
    if y is None:
        raise JointKLError(f"model {model} needs labels; train it on labelled data (mnist5k, digits, grid25, ...)")
    if ((y < 0) | (y >= classes)).any():                              # one host read per call
        if (y < 0).any():
            raise JointKLError(f"model {model} needs every label but some rows are unlabelled; set labelled=1 "
                               "(svae learns from partly labelled data)")
        raise JointKLError(f"label {int(y.max())} is out of range for classes={classes}; set classes={int(y.max()) + 1}")
    return F.one_hot(y, classes).float()


def as_labels(y: int | torch.Tensor | None, n: int, classes: int, device) -> torch.Tensor:
    """Labels for n draws: uniform at random when y is None, all y when an int, else the given (n,) tensor."""
    if y is None:
        return torch.randint(classes, (n,), device=device)
    if isinstance(y, int):
        return torch.full((n,), y, dtype=torch.long, device=device)
    y = torch.as_tensor(y, dtype=torch.long, device=device)
    if y.shape != (n,):
        raise JointKLError(f"labels have shape {tuple(y.shape)} but {n} draws were asked for; pass y of shape ({n},)")
    return y


@dataclass
class Partial:
    """Labels y observed on some rows (y >= 0) and unobserved on the others (-1), where the explicit classifier
    `net` (a `jointkl.joints.Categorical` given `given`) infers them. Every piece computed on draws of this
    variable's joint is evaluated at each of the `classes` values and combined, row by row: the given label's
    value on labelled rows; sum_y q(y|x) value_y on the others, whose own piece of y adds -H(q(y|x))
    (Kingma et al. 2014 eqs. 6-7: U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)))."""
    net: nn.Module
    classes: int
    given: tuple[str, ...] = ("x",)
    kind = "partial"


class UniformOneHot(D.OneHotCategorical):
    """The uniform distribution over `classes` one-hot labels, drawn with one `randint` (its log-density is
    -log classes)."""

    def __init__(self, n: int, classes: int, ref: torch.Tensor):
        super().__init__(logits=torch.zeros(n, classes, device=ref.device, dtype=ref.dtype), validate_args=False)
        self.ref = ref

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        n, k = self.batch_shape[0], self.event_shape[0]
        y = torch.randint(k, (*sample_shape, n), device=self.ref.device)
        return F.one_hot(y, k).to(self.ref.dtype)


def uniform_labels(classes: int) -> "Prior":
    """p(y) uniform over `classes` one-hot labels."""
    return Prior(lambda n, ref: UniformOneHot(n, classes, ref), classes)


@dataclass
class Prior:
    """A fixed distribution of `dim` entries: `dist(n, ref)` is a batch of n of them on `ref`'s device and dtype."""
    dist: Callable[[int, torch.Tensor], D.Distribution]
    dim: int
    kind = "prior"


def standard_normal(dim: int) -> Prior:
    """p(z) = N(0, I) on `dim` entries."""
    def dist(n: int, ref: torch.Tensor) -> D.Distribution:
        zeros = torch.zeros(n, dim, device=ref.device, dtype=ref.dtype)
        return D.Independent(D.Normal(zeros, torch.ones_like(zeros)), 1)
    return Prior(dist, dim)


class Factor:
    """A conditional network of `jointkl.joints` given earlier variables; `squash` maps its samples through a
    sigmoid (a generator's output on [0, 1] data, whose net returns logits)."""

    def __init__(self, net: nn.Module, given: str | tuple[str, ...] = (), squash: bool = False,
                 kind: str | None = None):
        self._net, self.squash, self.owner = net, squash, None
        self.given = (given,) if isinstance(given, str) else tuple(given)
        # `kind="implicit"` treats an explicit conditional as a sampler only (its density is not used)
        self.kind = kind or ("dirac" if isinstance(net, Dirac) else "implicit" if isinstance(net, Implicit)
                             else "explicit")


    def __call__(self, draws: "Draws") -> D.Distribution:
        """The conditional at `draws`' values of its parents; a factor with none is fed the batch (its size)."""
        return self.net(*(draws[g] for g in self.given)) if self.given else self.net(draws.x)

    @property
    def net(self) -> nn.Module:
        """The network, looked up on the model by attribute when it is one of its modules (so a module swapped in
        later is the one used, as for the discriminators)."""
        if self.owner is not None:
            return getattr(self.owner[0], self.owner[1])
        return self._net


class Joint:
    """A product of factors in sampling order: `Joint(z=Prior(...), x=Factor(G, given="z"))`."""

    def __init__(self, name: str, **factors):
        self.name, self.factors = name, factors
        seen: set[str] = set()
        for var, f in factors.items():
            missing = [g for g in getattr(f, "given", ()) if g not in seen]
            if missing:
                raise JointKLError(f"factor {var} of {name} is given {missing[0]}, which {name} does not define "
                                   f"before {var}; order the factors as they are sampled")
            seen.add(var)

    def __getitem__(self, var: str):
        return self.factors[var]

    def __contains__(self, var: str) -> bool:
        return var in self.factors

    def has_density(self, var: str) -> bool:
        return self[var].kind in ("prior", "explicit")

    def parents(self, var: str) -> list[str]:
        """var's parents in the joint's sampling order (so prior draws always come in that order)."""
        order = list(self.factors)
        return sorted(getattr(self[var], "given", ()), key=order.index)

    def trained(self, var: str) -> bool:
        """Whether a parameter shapes var's samples: its own factor's or an ancestor's."""
        f = self[var]
        return f.kind not in ("data", "prior") or any(self.trained(g) for g in getattr(f, "given", ()))


# ---- estimators and terms -------------------------------------------------------------------------------

GEN_LOSSES = ("nonsaturating", "minimax", "kl", "vi")
ESTIMATOR_OPTIONS = ("spectral_norm", "unroll", "unroll_lr")   # Config fields that set every Adversarial's option


@dataclass(frozen=True)
class EstimatorOptions:
    """The estimator options as a model's config fields (a config inherits them: `jointkl train gan
    spectral_norm=true unroll=3`); they apply to every adversarial term of the model (`Adversarial`)."""
    spectral_norm: bool = False                      # SN-GAN: spectral normalization of every discriminator layer
    unroll: int = 0                                  # Unrolled GAN: D steps unrolled into the generator's loss
    unroll_lr: float | None = None                   # step of the unrolled D updates (None: D's lr)


@dataclass(frozen=True)
class AdversarialOptions(EstimatorOptions):
    """The config fields every model with a generator and a discriminator has (each model's own fields follow)."""
    lr_d: float | None = None                        # the discriminators' learning rate (None: lr)
    betas: tuple[float, float] = (0.5, 0.999)        # Adam's (beta1, beta2) for every player (DCGAN's 0.5)
    g_batchnorm: bool = False                        # batch norm in the generator's hidden layers (arch=mlp)
    g_act: Literal["leaky_relu", "relu"] = "leaky_relu"   # generator's hidden activation (arch=mlp; relu: DCGAN's)


@dataclass
class Adversarial:
    """A discriminator estimating log b - log a (see the module docstring). `net`: the network (built from the
    variables' shapes when None, `hidden` x `layers`); `name`: its attribute; `player`: its player; `steps`, `lr`,
    `betas`: its player's updates per outer step and optimizer; `iw`: importance-weight the generator's
    per-sample losses by softmax(logit) over the batch (IWGAN, Hu eq. 16).

    `spectral_norm`: every Linear and Conv layer of the discriminator (derived or given) divides its weight by
    its largest singular value, estimated by one power iteration per training forward pass
    (`torch.nn.utils.parametrizations.spectral_norm`; a conv kernel as its (out, in*k*k) matrix; Miyato et
    al. 2018 Sec. 2). SN-GAN is the GAN with it.
    `unroll`: k > 0 computes the term's generator-side loss with the discriminator's parameters after k
    differentiable updates of its own loss on the same draws (Metz et al. 2017 Sec. 2.2: f_K = f(theta_G,
    theta_D^K(theta_G, theta_D))). Gradients flow through the unrolled steps into the generator (second order,
    as Metz et al. do). The unrolled steps are plain gradient descent with step `unroll_lr` (None: the
    discriminator player's lr) -- Metz et al.'s code unrolls D's own Adam from its current moments, which a
    model does not see. The unrolled parameters are a function of the real ones: the discriminator's own player,
    its parameters and its buffers (e.g. spectral norm's u, v) are unchanged. k = 0 is the plain term."""
    value: str = "logistic"
    gen_loss: str = "nonsaturating"
    net: nn.Module | None = None
    name: str = "D"
    player: str = "disc"
    steps: int = 1
    lr: float | None = None
    betas: tuple[float, float] | None = None
    hidden: int = 256
    layers: int = 2
    iw: bool = False
    logs: tuple[str, str] = ("d_real", "d_fake")     # names of the mean logits of b's and a's samples
    also: list = field(default_factory=list)         # more terms the discriminator's player minimizes, on its draws
    contrast: str | None = None                      # "adaptive": AVB's Adaptive Contrast (ratio pieces, eq. 4.2-4.3)
    samples: int = 1                                 # draws per x under Adaptive Contrast (its moments)
    spectral_norm: bool = False                      # SN-GAN: spectral normalization of D's layers
    unroll: int = 0                                  # Unrolled GAN: D steps unrolled into the generator's loss
    unroll_lr: float | None = None                   # the unrolled steps' gradient-descent step (None: D's lr)

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        """Refuse bad option values, one line each."""
        if self.value not in ADV_VALUES:
            raise JointKLError(f"unknown adversarial value {self.value!r}; choose {', '.join(ADV_VALUES)}")
        if self.value == "f-kl-swapped" and self.gen_loss != "kl":
            raise JointKLError(f"value='f-kl-swapped' has T ~ 1 + log a/b, which only gen_loss='kl' (E_a T) reads; "
                               f"got gen_loss={self.gen_loss!r}")
        if self.gen_loss not in GEN_LOSSES:
            raise JointKLError(f"unknown generator loss {self.gen_loss!r}; choose one of {', '.join(GEN_LOSSES)}")
        if self.contrast not in (None, "adaptive"):
            raise JointKLError(f"unknown contrast {self.contrast!r}; choose None or adaptive")
        if self.samples < 1 or (self.contrast == "adaptive" and self.samples < 2):
            raise JointKLError(f"samples={self.samples}: Adaptive Contrast needs at least 2 draws per x for its moments")
        if not isinstance(self.spectral_norm, bool):
            raise JointKLError(f"spectral_norm={self.spectral_norm!r}: set spectral_norm=true or spectral_norm=false")
        if isinstance(self.unroll, bool) or not isinstance(self.unroll, int) or self.unroll < 0:
            raise JointKLError(f"unroll={self.unroll!r}: set an integer >= 0, the discriminator steps unrolled into "
                               "the generator's loss (0: none; Metz et al. use 5)")
        if self.unroll_lr is not None and not self.unroll_lr > 0:
            raise JointKLError(f"unroll_lr={self.unroll_lr}: set a step > 0 for the unrolled discriminator updates, "
                               "or None for the discriminator's lr")


ADV_VALUES = ("logistic", "f-kl", "f-kl-swapped")


def disc_value_loss(value: str, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """The discriminator's loss on the logits of b's samples (pos) and a's (neg): "logistic" (T ~ log b/a);
    "f-kl" minus DALI eq. 8 as printed, E_b T - E_a exp(T - 1), whose maximum is KL(b || a) at T = 1 + log b/a;
    "f-kl-swapped" minus eq. 8 with its expectations swapped, E_a T - E_b exp(T - 1): KL(a || b), T = 1 + log a/b,
    the direction of the term KL(a || b) itself (DALI Sec. 3.4's text: term I, KL(p(x|z) || q(x)))."""
    if value == "f-kl":
        return -kl_value(pos, neg)
    if value == "f-kl-swapped":
        return -kl_value(neg, pos)
    return discriminator_loss(pos, neg)


SN_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def spectral_normalize(net: nn.Module) -> nn.Module:
    """Spectral normalization (Miyato et al. 2018) on every Linear and Conv layer of `net`, in place, once."""
    for m in [m for m in net.modules() if isinstance(m, SN_LAYERS)]:
        if not parametrize.is_parametrized(m, "weight"):
            _spectral_norm(m)
    return net


@dataclass
class Activation:
    """Adversary activation of a KL term (Hu eq. 17, supplement eqs. 44-46): a discriminator D tells data
    (positive) from the model's own samples on the variables `on`; the term's per-example value l is weighted by
    w = sigmoid(logit D / temperature), detached, on data and on as many samples x ~ p (entering with weight
    `weight`): E_data[w l] + weight E_p[w l]. A perfect D gives the plain term (Hu Lemma 2)."""
    adversarial: Adversarial
    temperature: float = 1.0
    weight: float = 1.0
    on: tuple[str, ...] = ("x",)


class Term:
    weight: float = 1.0
    name: str = ""

    def __rmul__(self, w: float) -> "Term":
        self.weight = self.weight * float(w)
        return self


@dataclass(eq=False)
class KL(Term):
    a: Joint
    b: Joint
    on: tuple[str, ...] | str | None = None
    estimator: Adversarial | None = None
    estimate: dict = field(default_factory=dict)
    name: str | None = "kl"                         # None: not logged
    weight: float = 1.0
    names: dict = field(default_factory=dict)      # log names of the expanded pieces, by variable
    analytic: bool = True                           # False: a pair of densities by Monte Carlo on the drawn sample
    activation: Activation | None = None            # Hu eq. 17


@dataclass(eq=False)
class NLL(Term):
    b: Joint
    var: str
    under: Joint
    name: str = "nll"
    weight: float = 1.0
    detach: tuple[str, ...] = ()                    # parents of var held fixed (Su eq. 40: x from p)


@dataclass(eq=False)
class Extra(Term):
    """A term the joints do not give: `fn(at)` with `at(joint)` the update's draws of a joint, (B,) or ();
    weight 0 logs a diagnostic."""
    name: str = "extra"
    fn: Callable | None = None
    weight: float = 1.0


@dataclass(eq=False)
class Proximal(Term):
    var: str
    under: Joint
    name: str = "reg"
    weight: float = 1.0


@dataclass
class Player:
    """A group of networks and the terms it minimizes; the discriminators its adversarial terms need become
    players of their own, placed before it (Algorithm 1 of AVB and DALI: adversary first)."""
    name: str
    nets: list[nn.Module | nn.Parameter]
    minimize: list[Term]
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    steps: int = 1
    share_noise: bool = False          # every update of a period reuses its first update's prior draws (Su's code)


@dataclass
class Declaration:
    p: Joint
    q: Joint
    players: list[Player]


# ---- drawing from a joint -------------------------------------------------------------------------------


class Draws:
    """One ancestral sample of a joint for one update, drawn lazily in the order variables are asked for;
    prior draws come from `noise` when the player shares them over its period."""

    def __init__(self, joint: Joint, batch: dict[str, torch.Tensor], noise: dict | None = None):
        self.joint, self.batch, self.noise = joint, batch, noise
        self.x = batch["x"]                                 # sets the batch size and device of prior draws
        self.values: dict[str, torch.Tensor] = {}
        self.dists: dict[str, D.Distribution] = {}

    def dist(self, var: str) -> D.Distribution:
        if var not in self.dists:
            f = self.joint[var]
            if f.kind == "prior":
                self.dists[var] = f.dist(self.x.shape[0], self.x)
            else:
                for g in self.joint.parents(var):
                    self[g]
                self.dists[var] = f(self)
        return self.dists[var]

    def __getitem__(self, var: str) -> torch.Tensor:
        if var not in self.values:
            f = self.joint[var]
            if f.kind in ("data", "partial"):          # a partial variable: given on every (enumerated) row
                v = self.batch[var]
            elif f.kind == "prior":
                key = (self.joint.name, var)
                if self.noise is not None and key in self.noise:
                    v = self.noise[key]
                else:                                       # rsample where it exists: torch's standard-normal path
                    d = self.dist(var)
                    v = d.rsample() if d.has_rsample else d.sample()
                    if self.noise is not None:
                        self.noise[key] = v
            else:
                d = self.dist(var)
                v = d.rsample() if d.has_rsample else d.sample()
                v = torch.sigmoid(v) if f.squash else v
            self.values[var] = v
        return self.values[var]

    def log_prob(self, var: str, at: "Draws") -> torch.Tensor:
        """log of this joint's factor of var, at `at`'s values of var and of its parents here. (B,)"""
        f = self.joint[var]
        if f.kind == "prior":
            return f.dist(at.x.shape[0], at.x).log_prob(at[var])
        return f(at).log_prob(at[var])


# ---- the derived model ----------------------------------------------------------------------------------


@dataclass
class Piece:
    """One summand of a player's loss: how it is computed, its log name and weight."""
    kind: str                        # "nll" | "kl" | "adv" | "ratio" | "sq" | "prox"
    term: Term
    var: str | None = None
    disc: "Disc | None" = None
    name: str = ""
    weight: float = 1.0
    activation: "Disc | None" = None  # set on the first piece of an adversary-activated term
    activated: bool = False

    def __post_init__(self):
        self.name, self.weight = self.name or self.term.name, self.weight * self.term.weight


@dataclass
class Disc:
    """A derived discriminator: its network, estimator, the two joints, the variables it reads."""
    est: Adversarial
    a: Joint
    b: Joint
    vars: tuple[str, ...]
    contrast: str | None = None      # a ratio piece: the variable b's factor replaces in a's sample
    more: list = field(default_factory=list)   # the other terms' Discs sharing this estimator (their a's negative)


class Declared(Objective):
    """A model whose players and losses are derived from `declare()` (a `Declaration`)."""

    def __init__(self, cfg, data_shape, data_kind):
        super().__init__(cfg, data_shape, data_kind)
        validate(cfg)                                     # ranges and Literal choices: one line, before any net
        if hasattr(cfg, "arch"):
            check_arch(cfg.arch, self.data_shape)
        self.decl = self.declare()
        self._estimator_options()
        self.shapes = {"x": tuple(data_shape)}
        names = {id(m): n for n, m in self._modules.items()}
        for j in (self.decl.p, self.decl.q):
            for f in j.factors.values():
                if isinstance(f, Factor) and id(f._net) in names:
                    f.owner = (self, names[id(f._net)])
        self._plan = {}                                   # player name -> list of Pieces
        self._discs: dict[str, Disc] = {}                 # discriminator player name -> Disc
        self._order: list[tuple[str, Player | Disc]] = []
        for pl in self.decl.players:
            prox = [t for t in pl.minimize if isinstance(t, Proximal) and t.under[t.var].kind != "dirac"]
            if prox and not pl.share_noise:
                raise JointKLError(f"Proximal({prox[0].var!r}) of player {pl.name} needs the same noise over the "
                                   "period (share_noise=True) unless its factor is a deterministic (Dirac) net")
            pieces = [pc for t in pl.minimize for pc in self._derive(t)]
            for pc in pieces:
                for disc in (pc.disc, pc.activation):
                    if disc is not None and disc.est.player not in self._discs:
                        self._discs[disc.est.player] = disc
                        self._order.append((disc.est.player, disc))
                    elif disc is not None:                  # a second term of one estimator (`_share`)
                        first = self._discs[disc.est.player]
                        if all(disc.a is not d.a for d in (first, *first.more)):
                            self._share(first, disc)
            self._plan[pl.name] = pieces
            self._order.append((pl.name, pl))
        self._noise: dict = {}
        self._old: dict = {}
        partial = [(j, v) for j in (self.decl.p, self.decl.q) for v, f in j.factors.items() if isinstance(f, Partial)]
        if len(partial) > 1 or any(isinstance(f, Partial) for f in self.decl.p.factors.values()):
            raise JointKLError("a declaration may have one Partial variable, in its inference joint q; give p a "
                               "prior over it (e.g. uniform_labels)")
        self._partial = partial[0] if partial else None

    def declare(self) -> Declaration:
        raise NotImplementedError

    def _share(self, first: Disc, other: Disc) -> None:
        """One estimator in two KL terms of other a's: its discriminator also takes `other.a`'s samples as
        negatives (see the module docstring); refused unless it is the same logistic estimator of the same b."""
        if other.est is not first.est or other.b is not first.b or other.vars != first.vars \
                or first.contrast or other.contrast or first.est.value != "logistic":
            raise JointKLError(f"discriminator player {first.est.player} estimates KL({first.a.name} || "
                               f"{first.b.name}) and KL({other.a.name} || {other.b.name}); one discriminator "
                               "shared by KL terms needs the same logistic Adversarial, the same b and the same on")
        first.more.append(other)

    def _estimator_options(self) -> None:
        """A Config field named in ESTIMATOR_OPTIONS sets that option on the declaration's estimators:
        `spectral_norm=true` on every discriminator; `unroll`, `unroll_lr` on every adversarial KL term's
        (the only place they apply). A default value (false, 0, None) leaves the declared option as it is."""
        opts = {k: getattr(self.cfg, k) for k in ESTIMATOR_OPTIONS if hasattr(self.cfg, k)}
        if not opts:
            return
        for pl in self.decl.players:
            for t in pl.minimize:
                if not isinstance(t, KL):
                    continue
                others = [*t.estimate.values(), *([t.activation.adversarial] if t.activation else [])]
                for est in [e for e in (t.estimator, *others) if e is not None]:
                    if opts.get("spectral_norm"):
                        est.spectral_norm = opts["spectral_norm"]
                    if est is t.estimator:
                        if opts.get("unroll"):
                            est.unroll = opts["unroll"]
                        if opts.get("unroll_lr") is not None:
                            est.unroll_lr = opts["unroll_lr"]
                    est.check()

    # --- derivation ---------------------------------------------------------------------------------------
    def _shape(self, joint: Joint, var: str) -> tuple[int, ...]:
        f = joint[var]
        if isinstance(f, (Labels, Partial)):
            return (f.classes,)
        if f.kind == "data":
            return self.shapes["x"]
        if f.kind == "prior":
            return (f.dim,)
        return tuple(f.net.event_shape)

    def _disc(self, est: Adversarial, a: Joint, b: Joint, vars_: tuple[str, ...], contrast: str | None = None) -> Disc:
        if est.player in self._discs:                      # its Disc for this a (another a: `_share`)
            known = [d for d in (self._discs[est.player], *self._discs[est.player].more) if d.a is a]
            if known:
                return known[0]
        if est.also and not hasattr(est, "pieces"):
            est.pieces = [pc for t in est.also for pc in self._derive(t)]
        if est.net is None:
            shapes = sorted((self._shape(a, v) for v in vars_), key=len, reverse=True)   # an image first
            extra = sum(int(torch.Size(s).numel()) for s in shapes[1:])
            est.net = build(getattr(self.cfg, "arch", "mlp"), shapes[0], 1, est.hidden, est.layers, extra_dim=extra)
        if not hasattr(self, est.name):
            setattr(self, est.name, est.net)
        if est.unroll and (contrast is not None or any(est is t.activation.adversarial for pl in self.decl.players
                                                       for t in pl.minimize if getattr(t, "activation", None))):
            where = f"the ratio piece of {contrast}" if contrast else "an activation"
            raise JointKLError(f"unroll={est.unroll} applies to an adversarial KL term (KL(..., estimator="
                               f"Adversarial(unroll=k))), not to {where}; set unroll=0 there")
        if est.spectral_norm:
            spectral_normalize(getattr(self, est.name))
        return Disc(est, a, b, vars_, contrast)

    def _derive(self, t: Term) -> list[Piece]:
        if isinstance(t, NLL):
            kind = t.b[t.var].kind
            if kind in ("data", "implicit"):
                raise JointKLError(f"NLL of {t.var} under {t.b.name}: its factor has no density ({kind}); "
                                   "write a KL with an Adversarial estimator instead")
            return [Piece("sq" if kind == "dirac" else "nll", t, t.var)]
        if isinstance(t, Proximal):
            return [Piece("prox", t, t.var)]
        if isinstance(t, Extra):
            return [Piece("extra", t)]
        if not isinstance(t, KL):
            raise JointKLError(f"unknown term {t!r}; use KL, NLL, Proximal or Extra")
        on = (t.on,) if isinstance(t.on, str) else tuple(t.on or ())
        a, b = t.a, t.b
        if t.estimator is not None:
            vars_ = on or tuple(a.factors)
            missing = [v for v in vars_ if v not in a or v not in b]
            if missing:
                raise JointKLError(f"KL({a.name} || {b.name}) on {missing[0]}: {a.name if missing[0] not in a else b.name} "
                                   f"has no variable {missing[0]}")
            return [Piece("adv", t, None, self._disc(t.estimator, a, b, vars_))]
        if on:
            raise JointKLError(f"KL({a.name} || {b.name}) on {', '.join(on)}: a marginal has no density to expand; "
                               "give it an estimator, e.g. KL(..., estimator=Adversarial())")
        if set(a.factors) != set(b.factors):
            raise JointKLError(f"KL({a.name} || {b.name}): the joints have other variables ({', '.join(a.factors)} vs "
                               f"{', '.join(b.factors)}); state the marginal with on=(...) and an estimator")
        pieces = []
        act = None
        if t.activation is not None:                        # D tells b... the data side (a = q) from p's samples
            act = self._disc(t.activation.adversarial, b, a, t.activation.on)
        for v in a.factors:                                 # E_a[log a(v|.) - log b(v|.)], Su eq. 4
            a_const = a[v].kind in ("data", "prior", "partial")   # the data's entropy, a fixed prior's: constants
                                                                  # (a partial variable's: see `_enumerated`)
            if v in t.estimate:
                est = t.estimate[v]
                if est.contrast and b[v].kind != "prior":
                    raise JointKLError(f"Adaptive Contrast of {v} needs a fixed prior for {v} in {b.name}; "
                                       f"{b.name}'s {v} is {b[v].kind}")
                parents = tuple(dict.fromkeys((*a[v].given, *getattr(b[v], "given", ()))))
                pieces.append(Piece("ratio", t, v, self._disc(est, a, b, (*parents, v), contrast=v),
                                    name=t.names.get(v, f"ratio_{v}")))
            elif a.has_density(v) and b.has_density(v):
                pieces.append(Piece("kl", t, v, name=t.names.get(v, f"kl_{v}")))
            elif a_const and b.has_density(v):
                pieces.append(Piece("nll", NLL(b, v, a), v, name=t.names.get(v, f"nll_{v}"), weight=t.weight))
            elif a_const and not a.trained(v) and b[v].kind == "data":
                continue                                    # both sides fixed: a constant
            else:
                # the side to name: the one whose missing density matters (a's data or prior is a constant)
                j = a if not a.has_density(v) and not a_const else b
                raise JointKLError(f"KL({a.name} || {b.name}): log {j.name}({v}|.) has no density ({j[v].kind}) "
                                   f"and is not constant; give KL(..., estimate={{'{v}': Adversarial()}})")
        if act is not None:
            pieces[0].activation = act                      # the first piece carries the term's activation
            for pc in pieces:
                pc.activated = True
        return pieces

    # --- training -----------------------------------------------------------------------------------------
    def players(self) -> list[TrainedPlayer]:
        out = []
        for name, pl in self._order:
            if isinstance(pl, Disc):
                e, first = pl.est, self._first_player(name)
                out.append(TrainedPlayer(name, list(getattr(self, e.name).parameters()), e.lr or first.lr,
                                         e.betas or first.betas, e.steps))
            else:
                params = [p for net in pl.nets for p in ([net] if isinstance(net, nn.Parameter) else net.parameters())]
                out.append(TrainedPlayer(name, params, pl.lr, pl.betas, pl.steps))
        return out

    def _first_player(self, disc: str) -> Player:
        return next(pl for pl in self.decl.players if any(d and d.est.player == disc for pc in self._plan[pl.name]
                                                          for d in (pc.disc, pc.activation)))

    def begin(self, player: str) -> None:
        self._noise, self._old = {}, {}

    def _player(self, name: str) -> Player | Disc:
        return dict(self._order)[name]

    def batch(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The data variables of a batch: x, and y one-hot where a joint has labels."""
        out = {"x": x}
        for j in (self.decl.p, self.decl.q):
            for var, f in j.factors.items():
                if isinstance(f, Labels) and var not in out:
                    out[var] = one_hot(y, f.classes, self.name)
                elif isinstance(f, Partial):                # raw labels, -1 where unobserved
                    y = torch.full_like(x[:, 0].flatten(), -1, dtype=torch.long) if y is None else y
                    if (y >= f.classes).any():
                        raise JointKLError(f"label {int(y.max())} is out of range for classes={f.classes}; "
                                           f"set classes={int(y.max()) + 1}")
                    out[var] = y
        return out

    @staticmethod
    def _repeat(batch: dict, k: int) -> dict:
        """k draws per row: the batch repeated k times (rows i, B + i, ... share x_i)."""
        return batch if k == 1 else {v: t.repeat(k, *[1] * (t.dim() - 1)) for v, t in batch.items()}

    def _particles(self, name: str) -> int:
        who = self._player(name)
        if isinstance(who, Disc):
            return who.est.samples if who.est.contrast else 1
        return max([pc.disc.est.samples for pc in self._plan[name] if pc.kind == "ratio" and pc.disc.est.contrast]
                   or [1])

    def loss(self, player, x, y=None):
        self._current = player
        who, batch = self._player(player), self._repeat(self.batch(x, y), self._particles(player))
        if isinstance(who, Disc):
            return self._disc_loss(who, batch)
        total, logs, rows, per = 0.0, {}, 0.0, 0.0       # per-example sums are averaged once, at the end
        pieces = self._plan[player]
        values = self._evaluate(pieces, batch, logs, self._noise if who.share_noise else None)
        for pc, value in zip(pieces, values):               # (B,) or ()
            if pc.activated:
                per = per + pc.weight * value               # l(x) of an activated term, (B,)
            elif value.dim():
                rows = rows + pc.weight * value
            else:
                total = total + pc.weight * value
            if pc.name:
                logs[pc.name] = logs.get(pc.name, 0.0) + (value.mean() if value.dim() else value)
        total = total + (rows.mean() if torch.is_tensor(rows) else rows)
        act = next((pc.activation for pc in pieces if pc.activation is not None), None)
        if act is not None:
            total = total + self._activated(act, per, [pc for pc in pieces if pc.activated], batch, logs)
        return total, logs

    def _activated(self, d: "Disc", per: torch.Tensor, pieces: list, batch: dict, logs: dict) -> torch.Tensor:
        """E_data[w l] + weight E_p[w l], Hu eq. 44 (its constants dropped, samples and weights detached)."""
        act = next(t.activation for t in (pc.term for pc in pieces) if isinstance(t, KL) and t.activation)
        with torch.no_grad():
            fake = Draws(d.a, batch)                        # the model's samples, as many as data
            fake_batch = {**batch, **{v: fake[v] for v in d.vars}}
            if self._partial is not None and self._partial[1] not in d.vars:   # samples carry no label
                fake_batch[self._partial[1]] = torch.full_like(batch[self._partial[1]], -1)
        per_fake = sum(pc.weight * v for pc, v in zip(pieces, self._evaluate(pieces, fake_batch, {})))   # (B,)
        w = torch.sigmoid(self._logit(d, Draws(d.b, batch)).detach() / act.temperature)
        w_fake = torch.sigmoid(self._logit(d, Draws(d.b, fake_batch)).detach() / act.temperature)
        logs["w_real"], logs["w_fake"] = w.mean(), w_fake.mean()
        return (w * per).mean() + act.weight * (w_fake * per_fake).mean()

    def _evaluate(self, pieces: list[Piece], batch: dict, logs: dict, noise: dict | None = None) -> list[torch.Tensor]:
        """Each piece's value on one draw of the joints for `batch`, (B,) or (); with a `Partial` variable, the
        pieces drawn from its joint are enumerated over its values (`_enumerated`)."""
        def drawer(b: dict):
            draws: dict[str, Draws] = {}

            def at(j: Joint) -> Draws:
                if j.name not in draws:
                    draws[j.name] = Draws(j, b, noise)
                return draws[j.name]
            return at

        at = drawer(batch)
        if self._partial is None:
            return [self._piece(pc, at, logs) for pc in pieces]
        joint, var = self._partial
        f, k = joint[var], joint[var].classes
        n, labels = batch["x"].shape[0], batch[var]
        every = {v: t.repeat(k, *[1] * (t.dim() - 1)) for v, t in batch.items() if v != var}   # rows y*B + i
        every[var] = F.one_hot(torch.arange(k, device=labels.device).repeat_interleave(n), k).to(batch["x"].dtype)
        at_every, q_y = drawer(every), None
        out = []
        for pc in pieces:
            if getattr(pc.term, "a", getattr(pc.term, "under", None)) is not joint:
                out.append(self._piece(pc, at, logs))
                continue
            if q_y is None:
                q_y = f.net(*(batch[g] for g in f.given))                  # q(y|x), batch (B,)
            value = self._piece(pc, at_every, logs).view(k, n)             # at every y, (k, B)
            given = labels >= 0
            enumerated = (q_y.probs.T * value).sum(0)                      # sum_y q(y|x) value_y, (B,)
            if pc.var == var:                                              # y's own piece: + E_q log q(y|x)
                enumerated = enumerated - q_y.entropy()
            out.append(torch.where(given, value.gather(0, labels.clamp_min(0)[None]).squeeze(0), enumerated))
        return out

    def _piece(self, pc: Piece, at, logs: dict) -> torch.Tensor:
        t = pc.term
        if pc.kind == "nll":
            s = at(t.under)
            if t.detach:
                held = Draws(t.under, s.batch)
                held.values = {v: s[v].detach() if v in t.detach else s[v] for v in (*t.b[pc.var].given, pc.var)}
                s = held
            return -s.log_prob(pc.var, s) if t.b is t.under else -at(t.b).log_prob(pc.var, s)
        if pc.kind == "sq":                                 # |v - f(parents)|^2 summed (Su eq. 34)
            s = at(t.under)
            pred = Draws(t.b, s.batch)
            pred.values = {g: s[g] for g in t.b[pc.var].given}
            return (s[pc.var] - pred[pc.var]).pow(2).flatten(1).sum(1)
        if pc.kind == "extra":
            return t.fn(at)
        if pc.kind == "kl":
            s = at(t.a)
            if not t.analytic:                              # log a(v|.) - log b(v|.) at a's draw of v
                return s.dist(pc.var).log_prob(s[pc.var]) - self._b_dist(t.b, pc.var, s).log_prob(s[pc.var])
            return kl_divergence(s.dist(pc.var), self._b_dist(t.b, pc.var, s))
        if pc.kind == "prox":
            s = at(t.under)
            v, f = s[pc.var], t.under[pc.var]
            if self._player(self._current).share_noise:     # one noise per period: v_old is its first value
                v_old = self._old.setdefault(pc.var, v.detach())
            else:                                           # new noise each update: the period's first net, rerun
                old = self._old.setdefault(pc.var, {k: w.detach().clone() for k, w in f.net.state_dict().items()})
                with torch.no_grad():
                    v_old = torch.func.functional_call(f.net, old, tuple(s[g] for g in f.given)).mean
                v_old = torch.sigmoid(v_old) if f.squash else v_old
            return (v - v_old).pow(2).flatten(1).mean(1)
        d = pc.disc
        w = self._unrolled(d, at) if pc.kind == "adv" and d.est.unroll else None   # Metz et al. Sec. 2.2
        if pc.kind == "adv" and self._both_trained(d) and d.est.gen_loss != "kl":   # Su eqs. 41-43, both logits
            if d.b is self.decl.q:                          # the inference joint's pair first
                lb = self._logit(d, at(d.b), params=w)
                la = self._logit(d, at(d.a), params=w)
            else:
                la = self._logit(d, at(d.a), params=w)
                lb = self._logit(d, at(d.b), params=w)
            logs[d.est.logs[0]], logs[d.est.logs[1]] = lb.mean(), la.mean()
            return pair_loss(lb, la, d.est.gen_loss)
        s = at(d.a)
        if pc.kind == "ratio" and d.est.contrast:          # AVB eq. 4.2: T on z~, plus the analytic KL(r || p)
            z_t, r = self._contrast(d, s[pc.var])
            kl_rp = D.kl_divergence(r, d.b[pc.var].dist(r.batch_shape[0], s.x))          # (B,)
            return self._logit(d, s, {pc.var: z_t}) + kl_rp.repeat(d.est.samples)
        logit = self._logit(d, s, params=w)                 # (B,)
        if pc.kind == "ratio":                              # T estimates the integrand log a - log b itself
            return logit
        if d.est.gen_loss == "kl":                          # the KL(a || b) estimate: T ~ 1 + log b/a, or
            per = logit if d.est.value == "f-kl-swapped" else -logit    # 1 + log a/b when swapped
        elif d.est.gen_loss == "minimax":
            per = -F.softplus(logit)
        else:
            per = F.softplus(-logit)
        if d.est.iw:                                        # Hu eq. 16: sum_i w~_i loss_i
            w = discriminator_weights(logit[:, None])       # (B,), detached
            logs["ess"] = 1.0 / w.pow(2).sum()              # effective sample size of the weights
            return (w * per).sum()
        return per

    def _both_trained(self, d: "Disc") -> bool:
        return any(d.b.trained(v) for v in d.vars) and any(d.a.trained(v) for v in d.vars)

    def _b_dist(self, b: Joint, var: str, s: Draws) -> D.Distribution:
        f = b[var]
        if f.kind == "prior":
            return f.dist(s.x.shape[0], s.x)
        return f(s)

    def _logit(self, d: Disc, s: Draws, override: dict | None = None, params: dict | None = None) -> torch.Tensor:
        """The discriminator's logits at s (`override`: other values of some variables; `params`: the net's
        parameters and buffers by name, e.g. unrolled ones). (B,)"""
        net = getattr(self, d.est.name)                     # by name: a module swapped in later is used
        override = override or {}
        inputs = tuple(override[v] if v in override else s[v] for v in self._input_order(d))
        out = net(*inputs) if params is None else torch.func.functional_call(net, params, inputs)
        return out.reshape(-1)

    def _unrolled(self, d: Disc, at) -> dict:
        """The discriminator's parameters after `unroll` gradient-descent steps on its own loss at this update's
        draws of both joints (drawn as its player would: the inference joint's first), each step
        differentiable, so the generator's gradient flows through them (Metz et al. 2017 Sec. 2.2); its buffers
        are copies, so the real ones stay as they are."""
        net = getattr(self, d.est.name)
        params = dict(net.named_parameters())
        buffers = {k: b.clone() for k, b in net.named_buffers()}
        sa, sb = at(d.a), at(d.b)
        for s in ((sb, sa) if d.b is self.decl.q else (sa, sb)):
            for v in d.vars:
                s[v]
        lr = d.est.unroll_lr or d.est.lr or self._first_player(d.est.player).lr
        graph = torch.is_grad_enabled()                     # under no_grad the steps need no graph of their own
        with torch.enable_grad():
            for _ in range(d.est.unroll):
                state = {**params, **buffers}
                pos, neg = self._logit(d, sb, params=state), self._logit(d, sa, params=state)
                loss = disc_value_loss(d.est.value, pos, neg)
                grads = torch.autograd.grad(loss, list(params.values()), create_graph=graph)
                params = {k: p - lr * g for (k, p), g in zip(params.items(), grads)}
        return {**params, **buffers}

    def _contrast(self, d: Disc, z: torch.Tensor):
        """z~ and r(z|x) of the K draws per x in z (K*B, d) (rows i, B + i, ... of one x)."""
        z_t, r = moment_match(z.view(d.est.samples, -1, *z.shape[1:]))   # (K, B, d), batch (B,)
        return z_t.flatten(0, 1), r

    def _input_order(self, d: Disc) -> tuple[str, ...]:
        return tuple(sorted(d.vars, key=lambda v: (-len(self._shape(d.a, v)), v != "x")))   # an image, then x

    def _disc_loss(self, d: Disc, batch: dict):
        with torch.no_grad():                               # the inference joint's sample first (data first)
            sa, sb = Draws(d.a, batch), Draws(d.b, batch)
            first, second = (sb, sa) if d.b is self.decl.q and d.contrast is None else (sa, sb)
            for v in d.vars:
                first[v]
            if d.contrast is not None:                      # a's sample with var redrawn from b's factor
                sb.values = {v: sa[v] for v in d.vars if v != d.contrast}
            for v in d.vars:
                second[v]
        # the positive class: b's samples for an adversarial term (logit ~ log b - log a), a's for a ratio piece
        # (T ~ log a - log b, the piece's integrand: AVB's T); the positive logits are computed first
        pos, neg = (sa, sb) if d.contrast is not None else (sb, sa)
        over = {d.contrast: self._contrast(d, sa[d.contrast])[0]} if d.est.contrast else None
        logit_pos, logit_neg = self._logit(d, pos, over), self._logit(d, neg)
        if d.est.value != "logistic":                       # DALI eq. 8, maximized by the discriminator
            loss = disc_value_loss(d.est.value, logit_pos, logit_neg)
            logs = {"kl_value": -loss.detach()}
        else:
            names = d.est.logs
            loss = discriminator_loss(logit_pos, logit_neg)
            logs = {names[0]: logit_pos.mean(), names[1]: logit_neg.mean()}
            for m in d.more:                                # a shared estimator: each other term's a negative
                with torch.no_grad():
                    sm = Draws(m.a, batch)
                    for v in m.vars:
                        sm[v]
                logit = self._logit(d, sm)
                loss, logs[f"d_{m.a.name}"] = loss + F.softplus(logit).mean(), logit.mean()
        for pc in getattr(d.est, "pieces", ()):             # e.g. InfoGAN's info term for D's shared body
            value = self._piece(pc, lambda j: sa if j is d.a else sb if j is d.b else Draws(j, batch), logs)
            value = value.mean() if value.dim() else value
            loss, logs[pc.name] = loss + pc.weight * value, value
        return loss, logs

    # --- capabilities, from the joints ------------------------------------------------------------------
    def _label_vars(self) -> dict[str, int]:
        """The label variables (name -> classes): those q reads with x (`Labels`) or infers (`Partial`)."""
        return {v: f.classes for v, f in self.decl.q.factors.items() if isinstance(f, (Labels, Partial))}

    def _labels(self, n: int, y) -> dict:
        """One-hot labels for n rows: y (an int or (n,) labels), or uniform at random when y is None."""
        return {v: one_hot(as_labels(y, n, k, self.device), k, self.name) for v, k in self._label_vars().items()}

    def _draws(self, joint: Joint, x: torch.Tensor, labels: dict, **values) -> Draws:
        """Draws of `joint` with x, the labels and `values` fixed (a label with a prior in p is set, not drawn)."""
        s = Draws(joint, {"x": x, **labels})
        s.values.update(labels if joint is self.decl.p else {}, **values)
        return s

    def _label_of(self, x: torch.Tensor, y):
        """x's label: y, or the model's own `classify(x)` when y is None."""
        if y is not None:
            return y
        return self.classify(x) if hasattr(self, "classify") else self._missing("classifier (pass labels y)")

    @torch.no_grad()
    def sample(self, n: int, y: int | torch.Tensor | None = None) -> torch.Tensor:
        """n draws of x from the generative joint p; labelled models take y (an int or (n,) labels; None:
        uniform)."""
        return self._draws(self.decl.p, self._ref(n, 0), self._labels(n, y))["x"]

    @torch.no_grad()
    def decode(self, z: torch.Tensor, y: int | torch.Tensor | None = None) -> torch.Tensor:
        """The mean of p(x|z) (a generator's output for a Dirac one); labelled models take y (None: uniform)."""
        z = torch.as_tensor(z, dtype=torch.float32, device=self.device)
        f, mean = self.decl.p["x"], self._draws(self.decl.p, z, self._labels(z.shape[0], y), z=z).dist("x").mean
        return torch.sigmoid(mean) if getattr(f, "squash", False) else mean

    @torch.no_grad()
    def encode(self, x: torch.Tensor, y=None, draws: int = 100) -> torch.Tensor:
        """The mean of q(z|x) (of `draws` samples for an implicit encoder); a labelled model's q(z|x, y) takes
        y, or classifies x when y is None."""
        if "z" not in self.decl.q:
            return self._missing("encoder")
        x = self.check_input(x)
        labels = self._labels(x.shape[0], self._label_of(x, y)) if self._label_vars() else {}
        d = self._draws(self.decl.q, x, labels).dist("z")
        return d.rsample((draws,)).mean(0) if self.decl.q["z"].kind == "implicit" else d.mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y=None) -> torch.Tensor:
        """decode(encode(x)), with one label for both: y, or the model's own `classify(x)` when y is None."""
        x = self.check_input(x)
        if not self._label_vars():
            return self.decode(self.encode(x))
        y = self._label_of(x, y)
        return self.decode(self.encode(x, y), y)

    @property
    def latent_dim(self) -> int:
        f = self.decl.p.factors.get("z")
        return f.dim if isinstance(f, Prior) else self._missing("latent space")

    def prior(self, n: int) -> D.Distribution:
        """p(z) for a batch of n."""
        return self.decl.p["z"].dist(n, self._ref())

    def _ref(self, n: int = 0, *shape: int) -> torch.Tensor:
        """An empty (n, *shape) tensor of the model's device and dtype (what prior draws follow)."""
        t = next(iter(self.state_dict().values()))
        return torch.empty(n, *shape, device=t.device, dtype=t.dtype if t.is_floating_point() else None)

    def log_joint(self, joint: Joint, at: Draws, skip: tuple[str, ...] = ()) -> torch.Tensor:
        """log of `joint` at `at`'s values: the sum of its factors' log-densities, labels, data and `skip` left
        out (log p(x, z) with joint=p, log q(z | x) with joint=q). (B,)"""
        vs = [v for v, f in joint.factors.items() if f.kind not in ("data", "partial") and v not in skip
              and v not in self._label_vars()]
        return sum(Draws(joint, at.batch).log_prob(v, at) for v in vs)

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, method: str = "elbo", k: int = 1, chunk: int = 100_000, y=None,
                       **ais):
        """Per-example bound on log p(x) from k draws of the latents h ~ q(h | x), log-weights log p(x, h) -
        log q(h | x): the ELBO (their mean), IWAE (Burda et al. 2016), or AIS (Wu et al. 2016; k chains, `ais`
        options such as steps=1000 go to `jointkl.divergences.ais.AISConfig`). Every factor of both joints needs
        a density. A labelled model bounds log p(x|y) with labels y, and without them log p(x) = log mean_y
        p(x|y) over its uniform p(y), one bound per class."""
        p, q, labels = self.decl.p, self.decl.q, self._label_vars()
        latents = [v for v, f in q.factors.items() if f.kind != "data" and v not in labels]
        needed = [(q, v) for v in latents] + [(p, v) for v in p.factors if v not in labels]
        if not latents or "x" not in p or p["x"].squash or not all(j.has_density(v) for j, v in needed):
            return self._missing("explicit likelihood (it needs a density for every factor of q(h|x) and p(x, h))")
        if method not in ("elbo", "iwae", "ais"):
            raise JointKLError(f"unknown likelihood method {method!r} for {self.name}; choose elbo, iwae or ais")
        if method == "ais" and latents != ["z"]:
            raise JointKLError(f"method='ais' anneals from the prior of one latent z; {self.name}'s latents are "
                               f"{', '.join(latents)}: use elbo or iwae")
        x = self.check_input(x)
        if method == "ais":
            from jointkl.divergences.ais import ais_config, ais_log_likelihood
            return ais_log_likelihood(self, x, ais_config(**{"chains": k, **ais}))
        if ais:
            raise JointKLError(f"options {', '.join(ais)} apply to method='ais' only")
        if labels and y is None:
            return torch.logsumexp(self.class_bounds(x, method, k), 0) - math.log(max(labels.values()))

        def log_w(xb, *yb):                                                # (k, b): rows j*b + i hold x_i
            xs = xb.repeat(k, *[1] * (xb.dim() - 1))
            s = self._draws(q, xs, self._labels(xs.shape[0], yb[0].repeat(k)) if yb else {})
            return (self.log_joint(p, s) - self.log_joint(q, s)).view(k, -1)
        rows = (x, as_labels(y, x.shape[0], max(labels.values()), x.device)) if y is not None else (x,)
        return chunked_bound(log_w, method, k, chunk, *rows)

    @torch.no_grad()
    def class_bounds(self, x: torch.Tensor, method: str = "elbo", k: int = 1) -> torch.Tensor:
        """The bound on log p(x|y) for every class y of a labelled model. (classes, B)"""
        classes = max(self._label_vars().values(), default=0) or self._missing("labels")
        return torch.stack([self.log_likelihood(x, method, k, y=c) for c in range(classes)])
