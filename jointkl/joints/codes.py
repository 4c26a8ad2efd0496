"""A structured code c = [one-hot k, u] (Chen et al. 2016, InfoGAN): one categorical variable k over `classes`
values, written as a one-hot vector, and `continuous` real entries u, independent of k.

`CodeDist` is the distribution of such a code, `uniform_code` its usual prior (k uniform, u ~ U(-1, 1)) and
`Code` the conditional Q(c | h): a categorical over k (logits) and a diagonal Gaussian over u (means and stds)
from one network's output. A part with no entries (classes=0 or continuous=0) is left out.
"""
from __future__ import annotations

import torch
import torch.distributions as D
import torch.nn.functional as F
from torch import nn

from jointkl.joints.conditionals import Conditional, Shape


class CodeDist(D.Distribution):
    """c = [one-hot k, u] for a batch: `cat` the distribution of k (a `Categorical`; None: uniform over `classes`,
    drawn with one `randint`), `cont` the distribution of u (None: no continuous part). `ref` gives the batch
    size, device and dtype of draws. k is drawn before u."""

    arg_constraints: dict = {}
    has_rsample = False

    def __init__(self, classes: int, cat: D.Categorical | None, cont: D.Distribution | None, ref: torch.Tensor):
        self.classes, self.cat, self.cont, self.ref = classes, cat, cont, ref
        width = classes + (cont.event_shape[0] if cont is not None else 0)
        super().__init__(ref.shape[:1], torch.Size([width]), validate_args=False)

    def sample_parts(self, sample_shape=torch.Size()) -> tuple[torch.Tensor, torch.Tensor]:
        """(k, u): the category indices (..., n) and the continuous entries (..., n, continuous)."""
        shape = torch.Size(sample_shape) + self.batch_shape
        k = (self.cat.sample(sample_shape) if self.cat is not None
             else torch.randint(max(self.classes, 1), shape, device=self.ref.device))
        u = self.cont.sample(sample_shape) if self.cont is not None else self.ref.new_zeros(*shape, 0)
        return k, u

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        k, u = self.sample_parts(sample_shape)
        one_hot = F.one_hot(k, self.classes).to(u.dtype) if self.classes else u[..., :0]
        return torch.cat([one_hot, u], -1)                               # (..., n, classes + continuous)

    def log_prob(self, c: torch.Tensor) -> torch.Tensor:
        lp = torch.zeros(c.shape[:-1], device=c.device, dtype=c.dtype)
        if self.classes:
            k = c[..., :self.classes].argmax(-1)
            lp = lp + (self.cat.log_prob(k) if self.cat is not None else -torch.log(c.new_tensor(self.classes)))
        if self.cont is not None:
            lp = lp + self.cont.log_prob(c[..., self.classes:])
        return lp

    @property
    def mean(self) -> torch.Tensor:
        """The probabilities of k, then the means of u."""
        probs = self.cat.probs if self.cat is not None else self.ref.new_full((*self.batch_shape, self.classes),
                                                                               1.0 / max(self.classes, 1))
        return torch.cat([probs[..., :self.classes], *([self.cont.mean] if self.cont is not None else [])], -1)


def uniform_code(classes: int, continuous: int):
    """The prior of a code as `dist(n, ref)` (a `jointkl.declare.Prior`'s): k uniform over `classes`, u ~ U(-1, 1)."""
    def dist(n: int, ref: torch.Tensor) -> CodeDist:
        ones = ref.new_ones(n, continuous)
        return CodeDist(classes, None, D.Independent(D.Uniform(-ones, ones), 1), ref.new_empty(n, 0))
    return dist


class Code(Conditional):
    """Q(c | h): a categorical over k and N(mu(h), diag sigma(h)^2) over u, sigma = softplus(s) + `min_std`, from
    one network's output [logits (classes), mu (continuous), s (continuous)]."""

    def __init__(self, in_dim: Shape, classes: int, continuous: int, hidden: int = 256, layers: int = 2,
                 net: nn.Module | None = None, min_std: float = 1e-2, arch: str = "mlp", extra_dim: int = 0):
        super().__init__(in_dim, classes + continuous, classes + 2 * continuous, hidden, layers, net, arch, extra_dim)
        self.classes, self.continuous, self.min_std = classes, continuous, min_std

    def forward(self, *h: torch.Tensor) -> CodeDist:
        out = self.net(*h)                                               # (B, classes + 2 continuous)
        logits, mu, s = out.split([self.classes, self.continuous, self.continuous], 1)
        cat = D.Categorical(logits=logits) if self.classes else None
        cont = D.Independent(D.Normal(mu, F.softplus(s) + self.min_std), 1) if self.continuous else None
        return CodeDist(self.classes, cat, cont, out[:, :0])
