"""Conditional distributions: a network maps the conditioning variables to a `torch.distributions` object.

Every conditional returns a Distribution whose event is the whole variable (`Independent` over its
dimensions), so `log_prob` is a joint log-density per example and `rsample` is reparameterized where the
family allows it. The network is `jointkl.nets.build(arch, in_dim, ...)`: `in_dim` is the first input's size or
shape (an image (C, H, W) gets a conv encoder under arch="dcgan") and `extra_dim` the size of further vector
inputs such as a one-hot label. Dirac and Implicit conditionals have samples but no density: the papers replace their
density ratios by an adversary (Su eq. 12; AVB Sec. 3).
"""
from __future__ import annotations

import math

import torch
import torch.distributions as D
import torch.nn.functional as F
from torch import nn

from jointkl.errors import JointKLError
from jointkl.nets import build, features, repeat_call

Shape = int | tuple[int, ...]


def _shape(s: Shape) -> tuple[int, ...]:
    return (s,) if isinstance(s, int) else tuple(s)


class Conditional(nn.Module):
    """`forward(*inputs) -> Distribution` with event shape `event_shape`."""

    def __init__(self, in_dim: Shape, event_shape: Shape, out_shape: Shape, hidden: int, layers: int,
                 net: nn.Module | None, arch: str = "mlp", extra_dim: int = 0, batchnorm: bool = False,
                 act: str = "leaky_relu"):
        super().__init__()
        self.event_shape = _shape(event_shape)
        self.net = net if net is not None else build(arch, in_dim, _shape(out_shape), hidden, layers, extra_dim,
                                                     batchnorm, act)


class _TwoNets(nn.Module):
    """Two networks on the same inputs, their outputs stacked on dim 1: (B, 2, *shape)."""

    def __init__(self, *nets: nn.Module):
        super().__init__()
        self.mu, self.s = nets

    def forward(self, *h: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.mu(*h), self.s(*h)], 1)


LINKS = ("softplus", "logvar")


class Gaussian(Conditional):
    """N(mu(h), diag sigma(h)^2), reparameterized. `std`: None = predicted per input,
    "global" = one learned std per dimension, a float = fixed. `separate`: with std=None, mu and sigma come
    from two networks that share nothing (DALI Sec. 4), instead of one network's two output halves. `link`:
    how the second output s becomes sigma, "softplus" (softplus(s)) or "logvar" (exp(s / 2): s is the log
    variance, as in the VAE's and ALI's code)."""

    def __init__(self, in_dim: Shape, event_shape: Shape, hidden: int = 256, layers: int = 2,
                 std: float | str | None = None, net: nn.Module | None = None, min_std: float = 1e-3,
                 arch: str = "mlp", extra_dim: int = 0, batchnorm: bool = False, act: str = "leaky_relu",
                 separate: bool = False, link: str = "softplus"):
        if link not in LINKS:
            raise JointKLError(f"unknown std link {link!r}; choose one of {', '.join(LINKS)}")
        shape = _shape(event_shape)
        if separate and std is None and net is None:
            net = _TwoNets(*[build(arch, in_dim, shape, hidden, layers, extra_dim, batchnorm, act) for _ in range(2)])
        super().__init__(in_dim, shape, (2, *shape) if std is None else shape, hidden, layers, net, arch, extra_dim,
                         batchnorm, act)
        self.std, self.min_std, self.link = std, min_std, link
        if std == "global":
            self.log_std = nn.Parameter(torch.zeros(shape))

    def forward(self, *h: torch.Tensor) -> D.Distribution:
        out = self.net(*h)
        if self.std is None:
            mu, s = out.unbind(1)                                     # (B, *event) each
            std = (F.softplus(s) if self.link == "softplus" else (0.5 * s).exp()) + self.min_std
        elif self.std == "global":
            mu, std = out, self.log_std.exp().clamp_min(self.min_std).expand_as(out)
        else:
            mu, std = out, torch.full_like(out, float(self.std))
        return D.Independent(D.Normal(mu, std), len(self.event_shape))


class Bernoulli(Conditional):
    """Independent Bernoulli pixels with logits from the network."""

    def __init__(self, in_dim: Shape, event_shape: Shape, hidden: int = 256, layers: int = 2,
                 net: nn.Module | None = None, arch: str = "mlp", extra_dim: int = 0, batchnorm: bool = False,
                 act: str = "leaky_relu"):
        super().__init__(in_dim, event_shape, event_shape, hidden, layers, net, arch, extra_dim, batchnorm, act)

    def forward(self, *h: torch.Tensor) -> D.Distribution:
        # no support check: grey values in [0, 1] are scored by the same cross-entropy
        return D.Independent(D.Bernoulli(logits=self.net(*h), validate_args=False), len(self.event_shape))


class Categorical(Conditional):
    """A categorical variable with `k` classes."""

    def __init__(self, in_dim: Shape, k: int, hidden: int = 256, layers: int = 2, net: nn.Module | None = None,
                 arch: str = "mlp", extra_dim: int = 0):
        super().__init__(in_dim, (), k, hidden, layers, net, arch, extra_dim)

    def forward(self, *h: torch.Tensor) -> D.Distribution:
        return D.Categorical(logits=self.net(*h))


class Delta(D.Distribution):
    """A point mass: samples are the value itself (gradients flow), and there is no density."""

    arg_constraints: dict = {}
    has_rsample = True

    def __init__(self, value: torch.Tensor, event_dim: int):
        self.value = value
        cut = value.dim() - event_dim
        super().__init__(value.shape[:cut], value.shape[cut:], validate_args=False)

    @property
    def mean(self) -> torch.Tensor:
        return self.value

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        return self.value.expand(torch.Size(sample_shape) + self.value.shape)

    def log_prob(self, value):
        raise NotImplementedError("a Dirac conditional has no density; estimate its ratio with an adversary")


class Dirac(Conditional):
    """x = f(h): a deterministic network (GAN generator, deterministic encoder; Su eq. 12)."""

    def __init__(self, in_dim: Shape, event_shape: Shape, hidden: int = 256, layers: int = 2,
                 net: nn.Module | None = None, arch: str = "mlp", extra_dim: int = 0, batchnorm: bool = False,
                 act: str = "leaky_relu"):
        super().__init__(in_dim, event_shape, event_shape, hidden, layers, net, arch, extra_dim, batchnorm, act)

    def forward(self, *h: torch.Tensor) -> D.Distribution:
        return Delta(self.net(*h), len(self.event_shape))


class _ImplicitDist(D.Distribution):
    arg_constraints: dict = {}
    has_rsample = True

    def __init__(self, net: nn.Module, h: tuple[torch.Tensor, ...], noise_dim: int, event_shape):
        self.net, self.h, self.noise_dim = net, h, noise_dim
        super().__init__(h[0].shape[:1], torch.Size(event_shape), validate_args=False)

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        n = math.prod(sample_shape)
        h = [t.repeat(n, *[1] * (t.dim() - 1)) for t in self.h[1:]]      # (n*B, ...)
        eps = torch.randn(n * self.h[0].shape[0], self.noise_dim, device=self.h[0].device)
        x = repeat_call(self.net, self.h[0], n, *h, eps)                   # (n*B, *event); a conv trunk runs once
        return x.view(*sample_shape, *self.batch_shape, *self.event_shape)

    def log_prob(self, value):
        raise NotImplementedError("an implicit conditional has no density; estimate its ratio with an adversary")


class Implicit(Conditional):
    """x = f(h, eps), eps ~ N(0, I): a neural sampler with an intractable density (AVB eq. 3.5)."""

    def __init__(self, in_dim: Shape, event_shape: Shape, noise_dim: int, hidden: int = 256, layers: int = 2,
                 net: nn.Module | None = None, arch: str = "mlp", extra_dim: int = 0):
        # eps joins the inputs last (under dcgan after the conv trunk, with the other vectors)
        super().__init__(in_dim, event_shape, event_shape, hidden, layers, net, arch, extra_dim + noise_dim)
        self.noise_dim = noise_dim

    def forward(self, *h: torch.Tensor) -> D.Distribution:
        return _ImplicitDist(self.net, h, self.noise_dim, self.event_shape)


class BernoulliPrior(nn.Module):
    """p(h) = prod_i Bernoulli(h_i; sigmoid(logits_i)) with no parents, for a batch the size of its input's: the
    learned top prior of a sigmoid belief net. `logits` is held, not registered: it is the model's parameter."""

    def __init__(self, logits: nn.Parameter):
        super().__init__()
        self.held = [logits]

    @property
    def event_shape(self):
        return tuple(self.held[0].shape)

    def forward(self, batch: torch.Tensor) -> D.Distribution:
        logits = self.held[0].expand(batch.shape[0], -1)
        return D.Independent(D.Bernoulli(logits=logits, validate_args=False), 1)


class OnFeatures(nn.Module):
    """head(h(x)), h the last hidden layer of the network `body` (a discriminator's, shared with an encoder as in
    DALI Sec. 4 and Chen et al.'s InfoGAN). Both are held, not registered: they are the model's own modules."""

    def __init__(self, body: nn.Module, head: nn.Module):
        super().__init__()
        self.parts = (body, head)

    @property
    def event_shape(self):
        return self.parts[1].event_shape

    def forward(self, x: torch.Tensor) -> D.Distribution:
        return self.parts[1](features(self.parts[0], x))


def decoder(kind: str, in_dim: int, data_shape: Shape, hidden: int, layers: int, arch: str = "mlp",
            batchnorm: bool = False, act: str = "leaky_relu", data_kind: str = "continuous") -> Conditional:
    """p(x|z) for a data kind: Bernoulli pixels, a Gaussian with a learned global std, or a deterministic
    generator x = G(z) ("dirac"); "auto": Gaussian on continuous data, Bernoulli on binary and image data."""
    if kind == "auto":
        kind = "gaussian" if data_kind == "continuous" else "bernoulli"
    if kind == "bernoulli":
        return Bernoulli(in_dim, data_shape, hidden, layers, arch=arch, batchnorm=batchnorm, act=act)
    if kind == "gaussian":
        return Gaussian(in_dim, data_shape, hidden, layers, std="global", arch=arch, batchnorm=batchnorm, act=act)
    if kind == "dirac":
        return Dirac(in_dim, data_shape, hidden, layers, arch=arch, batchnorm=batchnorm, act=act)
    raise ValueError(f"unknown decoder {kind!r}; choose bernoulli, gaussian or dirac")


def encoder(kind: str, data_shape: Shape, latent_dim: int, hidden: int, layers: int, arch: str = "mlp") -> Conditional:
    """q(z|x): a reparameterized Gaussian N(mu(x), diag sigma(x)^2) or a deterministic z = E(x) ("dirac")."""
    if kind == "gaussian":
        return Gaussian(data_shape, latent_dim, hidden, layers, arch=arch)
    if kind == "dirac":
        return Dirac(data_shape, latent_dim, hidden, layers, arch=arch)
    raise ValueError(f"unknown encoder {kind!r}; choose gaussian or dirac")
