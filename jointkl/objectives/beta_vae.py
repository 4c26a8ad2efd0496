"""beta-VAE (Higgins et al. 2017): the VAE with a weight beta on the KL piece of z (their eq. 4).

    generative joint   p(x, z) = p(z) p(x|z),        as the VAE (Su eq. 5-7)
    inference joint    q(x, z) = p_data(x) q(z|x)
    loss               E_q[-log p(x|z)] + beta KL(q(x, z) || p_data(x) p(z))
                     = E_data[ E_q(z|x)[-log p(x|z)] + beta KL(q(z|x) || p(z)) ]      (Higgins et al. eq. 4)

The KL piece of z is its own KL term between q and a joint that keeps q's data and puts the prior on z, so
its expansion is the analytic KL(q(z|x) || p(z)) alone. beta = 1 is the VAE, loss and gradients exactly
(tests/objectives/test_beta_vae.py); beta > 1 presses q(z|x) towards the factorized prior (Higgins et al.
use beta = 4 on dSprites). The networks and options are the VAE's (adversary activation excluded).
"""
from __future__ import annotations

from dataclasses import dataclass

from jointkl.declare import KL, NLL, Data, Joint, Player, standard_normal
from jointkl.errors import JointKLError
from jointkl.objectives.registry import register
from jointkl.objectives.vae import VAE, VAEConfig


@dataclass(frozen=True)
class BetaVAEConfig(VAEConfig):
    beta: float = 4.0               # weight of KL(q(z|x) || p(z)); 1 is the VAE


@register
class BetaVAE(VAE):
    """beta-VAE: the VAE's KL(q(z|x) || p(z)) weighted by beta (Higgins et al. 2017 eq. 4)."""

    name, Config = "beta_vae", BetaVAEConfig

    def declare(self):
        c = self.cfg
        if c.aa:
            raise JointKLError("beta_vae has no adversary activation; set aa=false (or train vae with aa=true)")
        decl = super().declare()                               # the VAE's networks and joints, same seed order
        p, q = decl.p, decl.q
        prior_z = Joint("prior_z", x=Data(), z=standard_normal(c.latent_dim))       # p_data(x) p(z)
        terms = [NLL(p, "x", under=q, name="rec"), c.beta * KL(q, prior_z, names={"z": "kl"})]
        decl.players = [Player("vae", [self.q_z, self.p_x], terms, lr=c.lr)]
        return decl
