"""The derivation itself, against truth: analytic KLs in both directions, an implicit term handed the exact
log-ratio equal to the explicit model, direction swaps, refusals, and the derived discriminator's player; the
estimator options: one unrolled step against the hand-written second-order loss, unrolling leaving D's own
player bitwise as it was, spectral normalization bounding every layer's largest singular value by 1."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.distributions as D
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from jointkl.declare import (KL, NLL, Adversarial, Data, Declaration, Declared, Factor, Joint, Partial, Player,
                             Prior, standard_normal, uniform_labels)
from jointkl.errors import JointKLError
from jointkl.joints import Dirac, Gaussian, Implicit
from jointkl.nets import build
from tests.helpers import adam_updates

M_Q, S_Q = torch.tensor([0.3, -1.2]), torch.tensor([0.7, 1.9])
M_P, S_P = torch.tensor([-0.5, 0.4]), torch.tensor([1.3, 0.6])


def closed_form(m1, s1, m2, s2) -> float:
    """KL(N(m1, s1^2) || N(m2, s2^2)) for diagonal Gaussians, summed over dimensions."""
    return float((torch.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5).sum())


class Head(nn.Module):
    """q(z) = N(m, diag s^2) with learnable m and log s, fed nothing."""

    def __init__(self, m, s):
        super().__init__()
        self.m, self.log_s = nn.Parameter(m.clone()), nn.Parameter(s.log())
        self.event_shape = (m.shape[0],)

    def forward(self, batch):
        return D.Independent(D.Normal(self.m, self.log_s.exp()), 1)


@dataclass(frozen=True)
class Cfg:
    direction: str = "qp"


class Declares(Declared):
    """A test model whose declaration is the function `how(self)`."""
    name, Config = "declares", Cfg
    how = None

    def declare(self):
        return type(self).how(self)


def model(how, cfg=Cfg(), shape=(0,)):
    cls = type("M", (Declares,), {"how": staticmethod(how)})
    return cls(cfg, shape, "continuous")


def gaussians(self):
    self.q_z = Head(M_Q, S_Q)
    prior = Prior(lambda n, ref: D.Independent(D.Normal(M_P.expand(n, 2), S_P.expand(n, 2)), 1), 2)
    p, q = Joint("p", z=prior), Joint("q", z=Factor(self.q_z))
    a, b = (q, p) if self.cfg.direction == "qp" else (p, q)
    return Declaration(p, q, [Player("model", [self.q_z], [KL(a, b)])])


@pytest.mark.parametrize("direction,want", [("qp", closed_form(M_Q, S_Q, M_P, S_P)),
                                            ("pq", closed_form(M_P, S_P, M_Q, S_Q))])
def test_all_explicit_declaration_is_the_analytic_kl_both_ways(direction, want):
    m = model(gaussians, Cfg(direction))
    loss, logs = m.loss("model", torch.zeros(5, 0))
    assert loss.item() == pytest.approx(want, rel=1e-6)
    assert set(logs) == {"kl_z"}
    # the swap is not the same number: KL is not symmetric here
    assert closed_form(M_Q, S_Q, M_P, S_P) != pytest.approx(closed_form(M_P, S_P, M_Q, S_Q), rel=1e-2)


def test_analytic_gradient_matches_the_closed_form():
    m = model(gaussians)
    loss, _ = m.loss("model", torch.zeros(1, 0))
    loss.backward()
    assert torch.allclose(m.q_z.m.grad, (M_Q - M_P) / S_P**2, atol=1e-6)          # d KL / d m_q


class ExactRatio(nn.Module):
    """log q(z|x) - log p(z) computed from q's own network: the optimal adversary's T (AVB Prop. 1)."""

    def __init__(self, q_z):
        super().__init__()
        self.q_z = [q_z]                                           # not a submodule: no parameters of its own

    def forward(self, x, z):
        return self.q_z[0](x).log_prob(z) - standard_normal(2).dist(z.shape[0], z).log_prob(z)


def vae_like(self):
    torch.manual_seed(0)
    self.q_z = Gaussian(3, 2, hidden=8, layers=1)
    self.p_x = Gaussian(2, 3, hidden=8, layers=1)
    implicit = self.cfg.direction == "implicit"
    q = Joint("q", x=Data(), z=Factor(self.q_z, given="x", kind="implicit" if implicit else None))
    p = Joint("p", z=standard_normal(2), x=Factor(self.p_x, given="z"))
    term = (KL(q, p, estimate={"z": Adversarial(net=ExactRatio(self.q_z), name="T")}) if implicit
            else KL(q, p, analytic=False))
    return Declaration(p, q, [Player("model", [self.q_z, self.p_x], [term])])


def test_implicit_term_with_the_exact_ratio_equals_the_explicit_model():
    x = torch.randn(16, 3)
    out = {}
    for how in ("explicit", "implicit"):
        m = model(vae_like, Cfg(how), (3,))
        torch.manual_seed(1)
        loss, logs = m.loss("model", x)
        grads = torch.autograd.grad(loss, [*m.q_z.parameters(), *m.p_x.parameters()])
        out[how] = loss, grads, logs
    (l1, g1, logs1), (l2, g2, logs2) = out["explicit"], out["implicit"]
    assert torch.allclose(l1, l2, rtol=1e-6, atol=1e-7)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(g1, g2))
    assert set(logs1) == {"nll_x", "kl_z"} and set(logs2) == {"nll_x", "ratio_z"}
    assert [p.name for p in model(vae_like, Cfg("implicit"), (3,)).players()] == ["disc", "model"]


def test_derived_discriminator_is_a_player_before_its_user():
    def gan(self):
        self.G = Implicit(1, 2, noise_dim=2, hidden=8, layers=1)
        p = Joint("p", z=standard_normal(1), x=Factor(self.G, given="z"))
        q = Joint("q", x=Data())
        return Declaration(p, q, [Player("gen", [self.G], [KL(p, q, on="x", estimator=Adversarial(hidden=8))])])
    m = model(gan, shape=(2,))
    players = m.players()
    assert [p.name for p in players] == ["disc", "gen"]
    assert {id(t) for t in players[0].params} == {id(t) for t in m.D.parameters()}
    loss, logs = m.loss("disc", torch.randn(8, 2))
    assert set(logs) == {"d_real", "d_fake"} and torch.isfinite(loss)


@pytest.mark.parametrize("how,words", [
    (lambda self: Declaration(*implicit_joints(self), [Player("m", [self.E], [KL(*implicit_joints(self)[::-1])])]),
     "log q(z|.) has no density (implicit) and is not constant; give KL(..., estimate={'z': Adversarial()})"),
    (lambda self: Declaration(*implicit_joints(self), [Player("m", [self.E], [KL(implicit_joints(self)[1],
                                                                                  implicit_joints(self)[0], on="z")])]),
     "a marginal has no density to expand; give it an estimator"),
    (lambda self: Declaration(*implicit_joints(self), [Player("m", [self.E], [NLL(implicit_joints(self)[1], "z",
                                                                                  implicit_joints(self)[0])])]),
     "NLL of z under q: its factor has no density (implicit)"),
])
def test_impossible_derivations_are_refused_in_one_line(how, words):
    with pytest.raises(JointKLError) as e:
        model(how, shape=(3,))
    assert words in str(e.value) and "\n" not in str(e.value)


def implicit_joints(self):
    if not hasattr(self, "E"):
        self.E = Implicit(3, 2, noise_dim=2, hidden=8, layers=1)
        self.p_x = Gaussian(2, 3, hidden=8, layers=1)
    q = Joint("q", x=Data(), z=Factor(self.E, given="x"))
    p = Joint("p", z=standard_normal(2), x=Factor(self.p_x, given="z"))
    return p, q


def test_a_factor_given_a_later_variable_is_refused():
    with pytest.raises(JointKLError, match="factor x of p is given z, which p does not define before x"):
        Joint("p", x=Factor(Gaussian(2, 3, hidden=4, layers=1), given="z"), z=standard_normal(2))


MEANS = torch.tensor([-2.0, 0.5, 3.0])                     # p(x|y) = N(MEANS[y], 1), p(y) uniform over 3


class Mixture(nn.Module):
    """p(x|y) for one-hot y."""

    def __init__(self):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(()))

    def forward(self, y):
        return D.Independent(D.Normal((y @ MEANS + self.shift)[:, None], 1.0), 1)


class ExactPosterior(nn.Module):
    """q(y|x) = p(y|x) of the mixture, exactly."""

    def forward(self, x):
        return D.Categorical(logits=D.Normal(MEANS, 1.0).log_prob(x))          # x (B, 1) -> (B, 3)


def mixture(self):
    self.p_x = Mixture()
    q = Joint("q", x=Data(), y=Partial(ExactPosterior(), 3))
    p = Joint("p", y=uniform_labels(3), x=Factor(self.p_x, given="y"))
    return Declaration(p, q, [Player("m", [self.p_x], [KL(q, p)])])


def test_enumerated_label_gives_the_exact_negative_log_likelihoods():
    """With q(y|x) exact, KL(q || p) per row is -log p(x, y) where y is given and -log p(x) where it is summed
    out (Kingma et al. eqs. 6-7; no sampling is involved)."""
    m = model(mixture, shape=(1,))
    x, y = torch.tensor([[-1.0], [0.2], [2.5], [4.0]]), torch.tensor([0, -1, 2, -1])
    components = D.Normal(MEANS, 1.0).log_prob(x) - torch.log(torch.tensor(3.0))     # log p(x, y), (4, 3)
    want = torch.where(y >= 0, components.gather(1, y.clamp_min(0)[:, None]).squeeze(1),
                       torch.logsumexp(components, 1))
    for rows in ([0], [1], [2], [3]):
        loss, _ = m.loss("m", x[rows], y[rows])
        assert loss.item() == pytest.approx(-want[rows].item(), abs=1e-5)
    loss, _ = m.loss("m", x, None)                         # no labels at all: every row summed out
    assert loss.item() == pytest.approx(-torch.logsumexp(components, 1).mean().item(), abs=1e-5)


def test_a_partial_variable_in_the_generative_joint_is_refused():
    def bad(self):
        self.p_x = Mixture()
        p = Joint("p", x=Data(), y=Partial(ExactPosterior(), 3))
        return Declaration(p, Joint("q", x=Data(), y=uniform_labels(3)), [Player("m", [self.p_x], [])])
    with pytest.raises(JointKLError, match="one Partial variable, in its inference joint q"):
        model(bad, shape=(1,))


# --- estimator options: spectral normalization (Miyato et al. 2018) and unrolled steps (Metz et al. 2017) ----

def linear_gan(self):
    """G(z) = A z + c and D(x) = w.x + b (both one linear layer), p's prior draws kept in `_noise`."""
    torch.manual_seed(0)
    self.G = Dirac(2, 2, hidden=4, layers=0)
    c = self.cfg
    p = Joint("p", z=standard_normal(2), x=Factor(self.G, given="z"))
    q = Joint("q", x=Data())
    est = Adversarial(gen_loss=c.gen_loss, hidden=4, layers=c.d_depth, unroll=c.unroll, unroll_lr=c.unroll_lr,
                      spectral_norm=c.spectral_norm)
    return Declaration(p, q, [Player("gen", [self.G], [KL(p, q, on="x", estimator=est)], share_noise=True)])


@dataclass(frozen=True)
class GanCfg:
    gen_loss: str = "nonsaturating"
    d_depth: int = 0
    unroll: int = 0
    unroll_lr: float | None = 0.5
    spectral_norm: bool = False


def gen_loss_and_grads(cfg, x):
    m = model(linear_gan, cfg, (2,))
    m.begin("gen")
    torch.manual_seed(1)
    loss, _ = m.loss("gen", x)
    return m, loss, torch.autograd.grad(loss, list(m.G.parameters()))


@pytest.mark.parametrize("gen_loss", ["nonsaturating", "minimax"])
def test_one_unrolled_step_is_the_hand_computed_second_order_loss(gen_loss):
    """unroll=1: D's parameters after one gradient step on its logistic loss at this batch, w1 = w - lr dL/dw
    with dL/dw = -mean (1 - s(l_real)) x_real + mean s(l_fake) x_fake (and the same for b), written out by
    hand; the generator's loss at (w1, b1) and its gradient, which includes the path through w1(G)."""
    x = torch.randn(16, 2) + 1.0
    m, loss, grads = gen_loss_and_grads(GanCfg(gen_loss, unroll=1), x)
    z = m._noise[("p", "z")]
    A, c = (t.detach().clone().requires_grad_() for t in (m.G.net.net[0].weight, m.G.net.net[0].bias))
    w, b = m.D.net[0].weight.detach()[0], m.D.net[0].bias.detach()[0]
    xf = z @ A.T + c
    s_real, s_fake = torch.sigmoid(x @ w + b), torch.sigmoid(xf @ w + b)
    gw = -((1 - s_real)[:, None] * x).mean(0) + (s_fake[:, None] * xf).mean(0)
    gb = -(1 - s_real).mean() + s_fake.mean()
    w1, b1 = w - 0.5 * gw, b - 0.5 * gb
    logit = xf @ w1 + b1
    want = F.softplus(-logit).mean() if gen_loss == "nonsaturating" else -F.softplus(logit).mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    want_grads = torch.autograd.grad(want, [A, c], retain_graph=True)
    assert all(torch.allclose(g, h, rtol=1e-5, atol=1e-7) for g, h in zip(grads, want_grads))
    # the second-order path matters: with w1, b1 held fixed the gradient is another one
    logit_fixed = xf @ w1.detach() + b1.detach()
    fixed = F.softplus(-logit_fixed).mean() if gen_loss == "nonsaturating" else -F.softplus(logit_fixed).mean()
    assert not torch.allclose(torch.autograd.grad(fixed, [A, c])[0], want_grads[0], atol=1e-4)


def test_unroll_changes_the_generator_gradient_and_not_the_discriminator():
    x = torch.randn(16, 2)
    base = GanCfg(d_depth=1)
    _, l0, g0 = gen_loss_and_grads(base, x)
    m, l3, g3 = gen_loss_and_grads(GanCfg(d_depth=1, unroll=3), x)
    assert not torch.allclose(g0[0], g3[0])                        # the generator sees the unrolled D
    before = {k: v.clone() for k, v in m.D.state_dict().items()}
    m.loss("gen", x)[0].backward()
    assert all(torch.equal(before[k], v) for k, v in m.D.state_dict().items())   # D itself is untouched
    disc = {}
    for cfg in (base, GanCfg(d_depth=1, unroll=3)):               # the discriminator's player: the same, bitwise
        mm = model(linear_gan, cfg, (2,))
        torch.manual_seed(2)
        loss, logs = mm.loss("disc", x)
        disc[cfg.unroll] = loss, torch.autograd.grad(loss, list(mm.D.parameters())), logs
    assert torch.equal(disc[0][0], disc[3][0])
    assert all(torch.equal(a, b) for a, b in zip(disc[0][1], disc[3][1]))


def test_spectral_norm_bounds_every_layer_of_a_derived_and_a_given_discriminator():
    """After training updates (Adam, lr 0.05, both players), each Linear / Conv layer's effective weight has
    largest singular value <= 1 (+1e-3, the power iteration's lag); without it the same training leaves a layer
    far above 1."""
    def trained(cfg, how, x, steps):
        m = model(how, cfg, tuple(x.shape[1:]))
        adam_updates(m, x, steps)
        return [float(torch.linalg.matrix_norm(mod.weight.detach().flatten(1), 2)) for mod in m.D.modules()
                if isinstance(mod, (nn.Linear, nn.Conv2d))]

    def conv_gan(self):                                            # a given conv D on 8x8 images
        torch.manual_seed(0)
        self.G = Dirac(2, (1, 8, 8), hidden=8, layers=1)
        self.D = build("dcgan", (1, 8, 8), 1, 8, 1)
        p = Joint("p", z=standard_normal(2), x=Factor(self.G, given="z", squash=True))
        return Declaration(p, Joint("q", x=Data()), [Player("gen", [self.G], [
            KL(p, Joint("q", x=Data()), on="x",
               estimator=Adversarial(net=self.D, spectral_norm=self.cfg.spectral_norm))])])

    x = torch.randn(32, 2) * 2
    sn = trained(GanCfg(d_depth=2, spectral_norm=True), linear_gan, x, 30)
    plain = trained(GanCfg(d_depth=2), linear_gan, x, 30)
    assert len(sn) == 3 and max(sn) <= 1 + 1e-3 and max(plain) > 1.5
    images = torch.rand(16, 1, 8, 8)
    conv = trained(GanCfg(spectral_norm=True), conv_gan, images, 3)
    assert len(conv) == 3 and max(conv) <= 1 + 1e-3                # a conv (as out x in*k*k), two linears


@dataclass(frozen=True)
class OptionCfg:
    spectral_norm: bool = False
    unroll: int = 0
    unroll_lr: float | None = None


def test_config_fields_set_the_options_on_every_adversarial_term():
    def gan(self):
        self.G = Dirac(1, 2, hidden=4, layers=0)
        p = Joint("p", z=standard_normal(1), x=Factor(self.G, given="z"))
        return Declaration(p, Joint("q", x=Data()), [Player("gen", [self.G], [
            KL(p, Joint("q", x=Data()), on="x", estimator=Adversarial(hidden=4, layers=1))])])
    m = model(gan, OptionCfg(spectral_norm=True, unroll=2, unroll_lr=0.1), (2,))
    est = m._discs["disc"].est
    assert (est.spectral_norm, est.unroll, est.unroll_lr) == (True, 2, 0.1)
    assert all(parametrize.is_parametrized(mod, "weight") for mod in m.D.modules() if isinstance(mod, nn.Linear))
    with pytest.raises(JointKLError, match=r"^unroll=-1: set an integer >= 0") as e:
        model(gan, OptionCfg(unroll=-1), (2,))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("opts,words", [
    (dict(unroll=-2), "unroll=-2: set an integer >= 0"),
    (dict(unroll=1.5), "unroll=1.5: set an integer >= 0"),
    (dict(unroll=True), "unroll=True: set an integer >= 0"),
    (dict(unroll_lr=0.0), "unroll_lr=0.0: set a step > 0"),
    (dict(spectral_norm="yes"), "spectral_norm='yes': set spectral_norm=true or spectral_norm=false"),
])
def test_bad_estimator_options_are_refused_in_one_line(opts, words):
    with pytest.raises(JointKLError) as e:
        Adversarial(**opts)
    assert str(e.value).startswith(words) and "\n" not in str(e.value)


def test_unrolling_a_ratio_piece_is_refused():
    def avb_like(self):
        self.E = Implicit(3, 2, noise_dim=2, hidden=8, layers=1)
        self.p_x = Gaussian(2, 3, hidden=8, layers=1)
        q = Joint("q", x=Data(), z=Factor(self.E, given="x"))
        p = Joint("p", z=standard_normal(2), x=Factor(self.p_x, given="z"))
        return Declaration(p, q, [Player("m", [self.E, self.p_x],
                                         [KL(q, p, estimate={"z": Adversarial(hidden=8, unroll=2)})])])
    with pytest.raises(JointKLError, match="applies to an adversarial KL term .* not to the ratio piece of z") as e:
        model(avb_like, shape=(3,))
    assert "\n" not in str(e.value)


# ---- DALI eq. 8 in both directions: the f-divergence game against closed forms -------------------------------

M_G, S_G = 0.7, 1.6                       # the generator x = m + s z, z ~ N(0, 1); the data are N(0, 1)


class Affine(nn.Module):
    def __init__(self):
        super().__init__()
        self.m, self.log_s = nn.Parameter(torch.tensor(M_G)), nn.Parameter(torch.tensor(S_G).log())

    def forward(self, z):
        return self.m + self.log_s.exp() * z


class ExactT(nn.Module):
    """The optimal T of eq. 8 at the generator's present (detached) parameters: 1 + log p_data/p_G, or
    1 + log p_G/p_data when swapped."""

    def __init__(self, g, swapped):
        super().__init__()
        self.g, self.sign = [g], -1.0 if swapped else 1.0

    def forward(self, x):
        g = self.g[0]
        log_pg = D.Normal(g.m.detach(), g.log_s.detach().exp()).log_prob(x)
        return (1 + self.sign * (D.Normal(0.0, 1.0).log_prob(x) - log_pg)).squeeze(-1)


def f_game(self):
    self.g = Affine()
    p = Joint("p", z=standard_normal(1), x=Factor(Dirac(1, (1,), net=self.g), given="z"))
    q = Joint("q", x=Data())
    swapped = self.cfg.direction == "swapped"
    adv = Adversarial("f-kl-swapped" if swapped else "f-kl", "kl", net=ExactT(self.g, swapped), name="T")
    return Declaration(p, q, [Player("gen", [self.g], [KL(p, q, on="x", estimator=adv)])])


@pytest.mark.parametrize("direction", ["printed", "swapped"])
def test_eq8_value_is_its_kl_and_the_generator_step_is_term_one_either_way(direction):
    """At the optimal T, D's value (eq. 8) is KL(p_data || p_G) as printed and KL(p_G || p_data) swapped; G's
    loss has the gradient of KL(p_G || p_data) (term I, eq. 4) in both: d/dm = m, d/dlog s = s^2 - 1."""
    torch.manual_seed(0)
    m = model(f_game, Cfg(direction), (1,))
    x = torch.randn(400_000, 1)
    _, logs = m.loss("disc", x)
    one, g = torch.tensor([1.0]), torch.tensor([S_G])
    data_g, g_data = closed_form(torch.zeros(1), one, torch.tensor([M_G]), g), closed_form(torch.tensor([M_G]), g,
                                                                                           torch.zeros(1), one)
    assert abs(data_g - g_data) > 0.2                              # the two directions differ here
    assert logs["kl_value"].item() == pytest.approx(data_g if direction == "printed" else g_data, rel=2e-2)
    loss, _ = m.loss("gen", x)
    dm, dlog_s = torch.autograd.grad(loss, [m.g.m, m.g.log_s])
    assert dm.item() == pytest.approx(M_G, rel=2e-2) and dlog_s.item() == pytest.approx(S_G**2 - 1, rel=2e-2)


def test_the_swapped_value_is_read_only_by_the_kl_generator_loss():
    with pytest.raises(JointKLError, match="value='f-kl-swapped' has T ~ 1 \\+ log a/b, which only gen_loss='kl'"):
        Adversarial("f-kl-swapped", "nonsaturating")
