"""Unrolled GAN (Metz et al. 2017): the generator's loss through k unrolled discriminator updates.

    joints, KL              the GAN's (Su eqs. 12-14): KL(p(x) || q(x)) by a logistic D
    discriminator           as the GAN's: its own player, one update of its loss per step (unchanged)
    generator loss          f_K(theta_G, theta_D) = f(theta_G, theta_D^K(theta_G, theta_D)) (Metz et al. Sec. 2.2):
                            the GAN generator loss at D's parameters after K = `unroll` differentiable
                            gradient-descent steps of D's loss on the same batch, back-propagated through them

A change of the estimator only: `Adversarial(unroll=K)`, set here by the Config fields `unroll`, `unroll_lr`
(`jointkl.declare.ESTIMATOR_OPTIONS`). Defaults follow Metz et al.'s 2-D mixture: K = 5, and the minimax game
(their code minimizes minus D's loss at the unrolled parameters); `loss=nonsaturating` is allowed. The unrolled
steps are plain gradient descent with step `unroll_lr` (None: D's lr), where Metz et al.'s code unrolls D's
own Adam. unroll = 0 is the GAN exactly (tests/objectives/test_unrolled_gan.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jointkl.objectives.gan import GAN, GANConfig
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class UnrolledGANConfig(GANConfig):
    loss: Literal["nonsaturating", "minimax"] = "minimax"   # Metz et al.'s game; nonsaturating also works
    unroll: int = 5                 # K, the unrolled D steps (Metz et al.: 5 on the 2-D mixture); 0 is the GAN
    unroll_lr: float | None = None  # step of the unrolled gradient descent; None: D's lr (lr_d or lr)


@register
class UnrolledGAN(GAN):
    """Unrolled GAN: G's loss at D after `unroll` differentiable updates (Metz et al. 2017 Sec. 2.2)."""

    name, Config = "unrolled_gan", UnrolledGANConfig
