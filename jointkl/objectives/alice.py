"""ALICE (Li et al. 2017): ALI plus the conditional-entropy term, in its explicit form.

    joints, KL, estimator   ALI's (Su eqs. 35-43): KL(p(x, z) || q(x, z)) by D(x, z) on whole pairs
    added term              rec * E_q[-log p(x|z)], x ~ p_data, z ~ q(z|x): the cycle x -> E(x) -> G(z) -> x,
                            whose cross-entropy bounds the conditional entropy H^pi(x|z) that ALICE adds to
                            ALI (Li et al. 2017 Sec. 3: its explicit form, an l_k cycle reconstruction; here l2
                            for a deterministic G, the NLL for a Gaussian decoder)

In declaration terms the added term is `rec * NLL(p, "x", under=q)`: p's factor of x scored at q's draws
(for ALI's Dirac decoder the squared error |x - G(E(x))|^2 summed over dimensions, as DALI's Table 1 scores
reconstruction). Encoder and decoder minimize it with the adversarial term; D is ALI's. rec = 0 is ALI
exactly (tests/objectives/test_alice.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from jointkl.declare import NLL
from jointkl.objectives.ali import ALI, ALIConfig
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class ALICEConfig(ALIConfig):
    rec: float = 1.0                # weight of the cycle (conditional-entropy) term; 0 is ALI


@register
class ALICE(ALI):
    """ALICE: ALI plus the explicit conditional-entropy (cycle reconstruction) term of x (Li et al. 2017)."""

    name, Config = "alice", ALICEConfig

    def declare(self):
        decl = super().declare()
        decl.players[0].minimize.append(self.cfg.rec * NLL(decl.p, "x", under=decl.q, name="rec"))
        return decl
