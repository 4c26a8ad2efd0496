"""Hu et al. 2018, Lemma 1 (eq. 6) and its optimal-discriminator form (eq. 8), checked by exact sums.

Hu's GAN (Sec. 3.2: eq. 4's p_θ(x|y) in the objectives of eq. 3): y = 0 marks generated x, y = 1 real x,
p(y) uniform; p_θ(x|y=0) = p_gθ(x), p_θ(x|y=1) = p_data(x); the discriminator is q_φ(y=1|x) = D(x) and its
reverse q^r(y|x) = q_φ(1-y|x). The generator maximizes E_{p_θ(x|y)p(y)}[log q^r_φ0(y|x)]: its loss is
-1/2 E_{p_gθ}[log D] (the non-saturating -log D) plus a real-data term free of θ. Lemma 1: with
p_θ0(x) = E_p(y)[p_θ0(x|y)] and q^r(x|y) ∝ q^r_φ0(y|x) p_θ0(x), for any φ0

    ∇θ -E_{p_θ(x|y)p(y)}[log q^r_φ0(y|x)] |θ0
        = ∇θ [E_p(y) KL(p_θ(x|y) || q^r(x|y)) - JSD(p_gθ || p_data)] |θ0                        (eq. 6)

and at the optimal discriminator D* = p_data / (p_data + p_gθ0) (eq. 7) the right side is
∇θ [1/2 KL(p_gθ || p_data) - JSD(p_gθ || p_data)] |θ0 (eq. 8).

Every term is an exact sum here: x takes the K points of `X`, p_gθ is a Gaussian of mean μ and std σ = exp(s)
discretized on them (θ = (μ, s)), p_data a discretized two-mode mixture (Fig. 2's larger and smaller mode).
Gradients by autograd in float64, so the two sides agree to rounding error exactly when the lemma holds.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

import jointkl.plots  # noqa: F401  (selects the Agg backend)
from jointkl.reproduce.base import Context, Result, Row, Table, register

X = torch.linspace(-4, 4, 33, dtype=torch.float64)          # (K,) the points x can take


def gaussian_on_grid(theta: Tensor) -> Tensor:
    """p_gθ on `X`: N(μ, exp(s)^2) renormalized over the grid, θ = (μ, s). (K,)"""
    mu, s = theta[0], theta[1]
    return torch.softmax(-0.5 * ((X - mu) / s.exp()) ** 2, 0)


def theta(mu: float, sigma: float) -> Tensor:
    return torch.tensor([mu, math.log(sigma)], dtype=torch.float64)


P_DATA = 0.7 * gaussian_on_grid(theta(-1.5, 0.6)) + 0.3 * gaussian_on_grid(theta(2.0, 0.5))   # (K,)


def kl(p: Tensor, q: Tensor) -> Tensor:
    """KL(p || q) of two distributions on the same K points (all q > 0)."""
    return (p * (p.log() - q.log())).sum()


def jsd(p: Tensor, q: Tensor) -> Tensor:
    """Jensen-Shannon divergence with the 1/2 weights of Hu eq. 23."""
    m = (p + q) / 2
    return kl(p, m) / 2 + kl(q, m) / 2


def optimal_d(p_g0: Tensor, p_data: Tensor = P_DATA) -> Tensor:
    """D*(x) = q_φ0(y=1|x) = p_data / (p_data + p_gθ0) (Hu eq. 7). (K,)"""
    return p_data / (p_data + p_g0)


def generator_loss(p_g: Tensor, d: Tensor, p_data: Tensor = P_DATA) -> Tensor:
    """-E_{p_θ(x|y)p(y)}[log q^r(y|x)]: q^r(y=0|x) = D(x) on generated x, q^r(y=1|x) = 1 - D(x) on real x."""
    return -(p_g * d.log()).sum() / 2 - (p_data * (1 - d).log()).sum() / 2


def lemma1_rhs(p_g: Tensor, p_g0: Tensor, d: Tensor, p_data: Tensor = P_DATA) -> Tensor:
    """E_p(y) KL(p_θ(x|y) || q^r(x|y)) - JSD(p_gθ || p_data), the right side of eq. 6; `p_g0` and `d` held at θ0."""
    prior = (p_g0 + p_data) / 2                                  # p_θ0(x)
    qr0, qr1 = d * prior, (1 - d) * prior                        # q^r(y|x) p_θ0(x) for y = 0, 1
    return (kl(p_g, qr0 / qr0.sum()) + kl(p_data, qr1 / qr1.sum())) / 2 - jsd(p_g, p_data)


def eq8_rhs(p_g: Tensor, p_data: Tensor = P_DATA) -> Tensor:
    """1/2 KL(p_gθ || p_data) - JSD(p_gθ || p_data), the right side of eq. 8."""
    return kl(p_g, p_data) / 2 - jsd(p_g, p_data)


def grad_at(f: Callable[[Tensor], Tensor], theta0: Tensor) -> Tensor:
    """∇θ f(θ) at θ0."""
    t = theta0.clone().requires_grad_(True)
    return torch.autograd.grad(f(t), t)[0]


def sides(theta0: Tensor, d: Tensor, family=gaussian_on_grid) -> dict[str, Tensor]:
    """The gradients at θ0 of the generator loss and of the right sides of eq. 6 (and eq. 8, meant for D = D*)."""
    p_g0 = family(theta0).detach()
    return {"loss": grad_at(lambda t: generator_loss(family(t), d), theta0),
            "eq6": grad_at(lambda t: lemma1_rhs(family(t), p_g0, d), theta0),
            "eq8": grad_at(lambda t: eq8_rhs(family(t)), theta0)}


THETA0 = [(0.0, 1.0), (-1.0, 0.5), (2.5, 1.5)]                    # (μ, σ) at which the gradients are compared


def other_d() -> Tensor:
    """A discriminator far from optimal, to check eq. 6 where it claims no optimality: σ(1 + x - x^2 / 2)."""
    return torch.sigmoid(1 + X - X ** 2 / 2)


def step_figure(theta0: Tensor, path: Path, lr: float = 2.0) -> Path:
    """Hu Fig. 2 on this grid: p_data, p_gθ0, the posterior q^r(x|y=0) and p_gθ after one gradient step, for a
    discriminator halfway from uniform to optimal, D = (D* + 1/2) / 2, whose q^r(x|y=0) is a mixture of p_gθ0 and
    p_data (at D* itself it is p_data exactly)."""
    import matplotlib.pyplot as plt
    p_g0 = gaussian_on_grid(theta0)
    d = (optimal_d(p_g0) + 0.5) / 2
    qr0 = d * (p_g0 + P_DATA) / 2
    new = gaussian_on_grid(theta0 - lr * sides(theta0, d)["loss"])
    fig, ax = plt.subplots(figsize=(6, 3))
    for p, label in [(P_DATA, "p_data"), (p_g0, "p_gθ0"), (qr0 / qr0.sum(), "q^r(x|y=0)"), (new, "p_gθ, one step")]:
        ax.plot(X, p.detach(), marker=".", label=label)
    ax.set(xlabel="x", ylabel="probability", title=f"one generator step from θ0 (lr {lr}), D = (D* + 1/2) / 2")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def hu_lemma1(ctx: Context, out: Path) -> Result:
    rows, worst = [], 0.0
    for mu, sigma in THETA0:
        t0 = theta(mu, sigma)
        d_star = optimal_d(gaussian_on_grid(t0))
        for d_name, d, eqs in [("D*", d_star, ("eq6", "eq8")), ("σ(1 + x - x²/2)", other_d(), ("eq6",))]:
            g = sides(t0, d)
            for eq in eqs:
                worst = max(worst, float((g["loss"] - g[eq]).abs().max() / g[eq].abs().max()))
                rows += [Row(f"θ0 = (μ {mu:g}, σ {sigma:g}), D = {d_name}", f"{name}, {eq[:2]}. {eq[2:]}",
                             [float(g["loss"][i])], float(g[eq][i]))
                         for i, name in enumerate(("∂/∂μ", "∂/∂log σ"))]
    rows.append(Row("all of the above", "largest |ours - paper| / max |paper| of a gradient", [worst], None, "lower"))
    out.mkdir(parents=True, exist_ok=True)
    fig = step_figure(theta(*THETA0[0]), out / "lemma1-step.png")
    note = (f"ours: the gradient of the GAN generator's loss -E_p(y)p_θ(x|y)[log q^r(y|x)] at θ0; paper: the "
            "gradient of the right side of Lemma 1 (eq. 6, any D) or of eq. 8 (D = D* of eq. 7), the value the "
            "paper says it equals. Every expectation is an exact sum over 33 points, float64, so ours - paper is "
            "rounding error and its better/worse label means nothing. Verdict: reproduced when the largest relative "
            f"difference (here {worst:.1e}) is at most 1e-9.")
    return Result(rows, "reproduced" if worst <= 1e-9 else "not reproduced", note, [fig])


register(Table("hu-lemma1", "Hu Lemma 1: the GAN generator's gradient as KL minus JSD (eqs. 6, 8)",
               "A Gaussian generator discretized on 33 points of [-4, 4] (θ = mean, log std), data a two-mode "
               "discretized mixture; D fixed at the optimal D* (eq. 7) or at a non-optimal σ(1 + x - x²/2); the "
               "generator loss's gradient against the right sides of eqs. 6 and 8 at three θ0, all by exact sums "
               "(no training, the same at every scale).", hu_lemma1, seeds=1, probed=False))
