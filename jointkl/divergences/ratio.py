"""Adversarial density-ratio estimation with a logistic (Jensen-Shannon) discriminator.

A discriminator D(x) = sigmoid(logit(x)) trained to tell samples of p_real from samples of p_fake
(Su 2018 eq. 16; Hu 2018 eq. 1) is optimal at D = p_real / (p_real + p_fake) (Su 2018 eq. 18), so
its logit is the log density ratio log p_real(x) - log p_fake(x) (AVB, Mescheder 2017, Prop. 1).
The generator then plays against it (Hu 2018 eq. 2).
"""

import torch
import torch.distributions as D
import torch.nn.functional as F
from torch import Tensor, nn

from jointkl.divergences.importance import standard_normal_log_prob
from jointkl.errors import JointKLError
from jointkl.nets import build, repeat_call

GENERATOR_LOSSES = ("minimax", "nonsaturating")


def discriminator_loss(logit_real: Tensor, logit_fake: Tensor) -> Tensor:
    """Binary cross-entropy with logits, Su 2018 eq. 16: -E_real log D - E_fake log(1 - D).

    With D = sigmoid(logit): -log D = softplus(-logit) and -log(1 - D) = softplus(logit).
    Minimised at logit = log p_real(x) / p_fake(x) (Su 2018 eq. 18; AVB Prop. 1). Scalar.
    """
    loss_real = F.softplus(-logit_real).mean()  # ()
    loss_fake = F.softplus(logit_fake).mean()  # ()
    return loss_real + loss_fake


def generator_loss(logit_fake: Tensor, kind: str) -> Tensor:
    """Generator loss on the discriminator's logits of generated samples (Hu 2018 eqs. 1-2). Scalar.

    "minimax":       E_fake log(1 - D)  = -E softplus(logit)   (the original GAN game, saturates)
    "nonsaturating": -E_fake log D      =  E softplus(-logit)  (Hu 2018 eq. 2, the label-flipped loss)
    """
    if kind == "minimax":
        return -F.softplus(logit_fake).mean()  # ()
    if kind == "nonsaturating":
        return F.softplus(-logit_fake).mean()  # ()
    raise ValueError(f"unknown generator loss {kind!r}; choose one of {', '.join(GENERATOR_LOSSES)}")


def log_ratio(logit: Tensor) -> Tensor:
    """Log density ratio log p_real(x) - log p_fake(x) read off an optimal discriminator's logit.

    Identity: at the optimum D = p_real / (p_real + p_fake) (Su 2018 eq. 18), so
    logit = log D - log(1 - D) = log p_real - log p_fake; AVB Prop. 1 uses this as
    T*(x, z) = log q(z|x) - log p(z). Kept as a named function so call sites say what they mean.
    """
    return logit


def generator_loss_per_sample(logit_fake: Tensor, kind: str) -> Tensor:
    """`generator_loss` before the batch mean, one value per sample (same shape as logit_fake), so that an
    importance-weighted GAN can weight the samples (Hu eq. 16): sum_i w~_i loss_i."""
    if kind == "minimax":
        return -F.softplus(logit_fake)
    if kind == "nonsaturating":
        return F.softplus(-logit_fake)
    raise ValueError(f"unknown generator loss {kind!r}; choose one of {', '.join(GENERATOR_LOSSES)}")


def activated_weight(logit: Tensor, temperature: float = 1.0) -> Tensor:
    """The reversed discriminator's weight of the VAE term, q^r_phi(y=0|x) = q_phi(y=1|x) = D(x), of an
    adversary-activated VAE (Hu eq. 17, supplement eq. 44), detached (eq. 44 trains theta and eta only; D
    learns by eq. 46). `temperature` T > 1 smooths it, sigmoid(logit / T) (supplement I.2), which lets more
    generated samples in. A perfect discriminator (logit = +inf on data, -inf on samples) gives weights 1
    and 0, the plain VAE (Lemma 2)."""
    return torch.sigmoid(logit.detach() / temperature)


def kl_value(t_real: Tensor, t_fake: Tensor) -> Tensor:
    """f-GAN value for KL(p_real || p_fake) (DALI eq. 8; f(u) = u log u, f*(t) = exp(t - 1)):
    E_real T - E_fake exp(T - 1) <= KL, with equality at T* = 1 + log p_real/p_fake. Scalar."""
    return t_real.mean() - torch.exp(t_fake - 1).mean()


PAIR_LOSSES = ("minimax", "nonsaturating", "vi")


def pair_loss(logit_b: Tensor, logit_a: Tensor, kind: str) -> Tensor:
    """The generator loss when both sides learn (ALI's encoder and decoder, Su eqs. 41-43), on the logits of b's
    samples (the positive class: ALI's inference pairs) and of a's. Scalar.

    "minimax"        E_b log D + E_a log(1 - D)        (eq. 42: minus D's own loss)
    "nonsaturating"  -E_b log(1 - D) - E_a log D       (eq. 43: D's loss with the labels swapped)
    "vi"             -E_b log D - E_a log D            (eq. 41, Su's own)
    """
    if kind == "minimax":
        return -discriminator_loss(logit_b, logit_a)
    if kind == "nonsaturating":
        return discriminator_loss(logit_a, logit_b)
    if kind == "vi":
        return generator_loss(logit_b, "nonsaturating") + generator_loss(logit_a, "nonsaturating")
    raise JointKLError(f"unknown pair loss {kind!r}; choose one of {', '.join(PAIR_LOSSES)}")


def moment_match(z: Tensor) -> tuple[Tensor, D.Distribution]:
    """Adaptive contrast (AVB eqs. 4.2-4.3): z (K, B, d) draws of q(z|x) -> the normalized z~ = (z - mu) / sigma
    (K, B, d) and the Gaussian r(z|x) with the draws' mean and std (1/K normalization)."""
    mu, std = z.mean(0), z.std(0, correction=0).clamp_min(1e-4)          # (B, d) each
    return (z - mu) / std, D.Independent(D.Normal(mu, std), 1)


class PriorCorrectedCritic(nn.Module):
    """T(x, z) = t(x, z) - log N(z; 0, I) (or t alone, `add_prior=False`): a critic whose logistic optimum is
    log q(z|x) - log N(z; 0, I) (AVB Prop. 1, eq. 3.4), so that with a standard-normal prior (or the r_0 of
    Adaptive Contrast's normalized z~, eq. 4.3) the network t only has to learn log q(z|x), as in the AVB
    authors' code. t is `jointkl.nets.build(arch, x_shape, 1, ..., extra_dim=latent_dim)`: z joins x (under
    dcgan, after the conv trunk, which runs once per x however many draws of z)."""

    def __init__(self, x_shape: int | tuple[int, ...], latent_dim: int, hidden: int, layers: int,
                 add_prior: bool = True, arch: str = "mlp"):
        super().__init__()
        self.net, self.add_prior = build(arch, x_shape, 1, hidden, layers, extra_dim=latent_dim), add_prior

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        """x (B, ...) and z (K, B, d) -> T (K, B); x is shared by the K draws. z (B, d): one draw per row -> (B,)."""
        if z.dim() == 2:
            return self(x, z[None])[0]
        k = z.shape[0]
        t = repeat_call(self.net, x, k, z.flatten(0, 1)).view(k, -1)      # (K, B)
        return t - standard_normal_log_prob(z) if self.add_prior else t
