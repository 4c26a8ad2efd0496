"""SN-GAN (Miyato et al. 2018): the GAN with spectral normalization of every layer of D.

    joints, KL and losses   the GAN's (Su eqs. 12-20): KL(p(x) || q(x)) by a logistic D, G on its logits
    estimator               D's every Linear / Conv weight W used as W / sigma(W), sigma(W) its largest singular
                            value by one power iteration per forward pass (Miyato et al. Sec. 2 and Algorithm 1;
                            a conv kernel as its (out, in*k*k) matrix, as torch reshapes it)

A change of the estimator only: `Adversarial(spectral_norm=True)`, set here by the Config field of that name
(`jointkl.declare.ESTIMATOR_OPTIONS`), so every GAN option applies. Truth (tests/objectives/test_sngan.py):
after training updates every layer of D has largest singular value <= 1 (up to the power iteration's lag).
"""
from __future__ import annotations

from dataclasses import dataclass

from jointkl.objectives.gan import GAN, GANConfig
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class SNGANConfig(GANConfig):
    spectral_norm: bool = True      # false is the plain GAN


@register
class SNGAN(GAN):
    """SN-GAN: the GAN with spectral normalization of D's layers (Miyato et al. 2018)."""

    name, Config = "sngan", SNGANConfig
