"""Adversarially learned inference, ALI / BiGAN (Dumoulin et al. 2017; Donahue et al. 2017), as Su derives
it in "ALI under GAN framework" (Su eqs. 35-43).

    generative joint   p(x, z) = p(z) p(x|z),      p(z) = N(0, I), x = G(z) or N(G(z), diag s^2)
    inference joint    q(x, z) = p_data(x) q(z|x), z = E(x) or N(mu(x), diag sigma(x)^2), reparameterized
    KL direction       KL(p(x, z) || q(x, z)) of the whole joints, by one adversary (Su eqs. 35-37: his
                       indicator y says which joint drew the pair, p(y=1|x, z) = D(x, z))
    ratio estimator    D(x, z) = p(y=1|x, z) on concatenated pairs, logistic, inference pairs as the real
                       class (eq. 38); at its optimum logit D = log q(x, z) - log p(x, z) (eq. 39)
    encoder + decoder  one player, on the logits l_q of (x, E(x)) and l_p of (G(z), z):
                       "minimax"        E_q log D + E_p log(1 - D)        (eq. 42)
                       "nonsaturating"  -E_q log(1 - D) - E_p log D       (eq. 43)
                       "vi"             -E_q log D - E_p log D            (eq. 41, Su's own)
                       "vi_full"        eq. 41 + E_p -log q(z|x), x from p held fixed (eq. 40, Gaussian encoder)

Su names the two sides the other way round (his p is our q). Eq. 41 drops two terms of eq. 40. One, the
decoder's KL to its previous self, has zero gradient at the current decoder. The other,
E_p log(q_old(z|x) / q(z|x)), has a nonzero gradient w.r.t. the encoder. So under "vi" the encoder's
gradient is exactly minus its "minimax" gradient: it makes its pairs easier to tell apart. The decoder's
gradient equals its "nonsaturating" gradient (tests/objectives/test_ali.py checks both), so eq. 41 is another
game (`jointkl reproduce su-ali` trains the three losses on grid25). "vi_full" puts the dropped encoder term back
(its value is zero at q = q_old, its encoder gradient is that of E_p -log q(z|x), DALI's cycle term); the
decoder's KL term stays out, as its gradient is zero.
For image data the decoder's output goes through a sigmoid, as in GAN.generate. `g_batchnorm` and `g_act` act
on the decoder, as on GAN's G. `arch=dcgan` (image data): encoder and D(x, z) are conv nets, z joining D's conv
features of x before its FC layer; the decoder is a deconv generator (`jointkl.nets.conv`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jointkl.declare import Adversarial, AdversarialOptions, Data, Declaration, Declared
from jointkl.declare import Factor, Joint, KL, NLL, Player, standard_normal
from jointkl.errors import JointKLError
from jointkl.joints import decoder, encoder
from jointkl.nets import build
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class ALIConfig(AdversarialOptions):
    latent_dim: int = 8
    hidden: int = 256
    layers: int = 3
    arch: Literal["mlp", "dcgan"] = "mlp"   # dcgan: conv encoder, decoder and D; image data only
    encoder: Literal["gaussian", "dirac"] = "gaussian"   # gaussian: reparameterized (Su); dirac: z = E(x) (BiGAN)
    decoder: Literal["dirac", "gaussian"] = "dirac"      # dirac: x = G(z); gaussian: learned global std (Su)
    loss: Literal["minimax", "nonsaturating", "vi", "vi_full"] = "nonsaturating"   # Su eq. 42 | 43 | 41 | 40
    lr: float = 1e-3                # encoder and decoder


@register
class ALI(Declared):
    """ALI / BiGAN: a discriminator on (x, z) pairs; minimax, nonsaturating or vi generator loss (Su eqs. 38-43)."""

    name, Config = "ali", ALIConfig

    def declare(self):
        c, d = self.cfg, self.cfg.latent_dim
        if c.loss == "vi_full" and c.encoder != "gaussian":
            raise JointKLError("loss=vi_full needs encoder=gaussian (eq. 40 has log q(z|x))")
        self.q_z = encoder(c.encoder, self.data_shape, d, c.hidden, c.layers, c.arch)
        self.p_x = decoder(c.decoder, d, self.data_shape, c.hidden, c.layers, c.arch, c.g_batchnorm, c.g_act)
        self.D = build(c.arch, self.data_shape, 1, c.hidden, c.layers, extra_dim=d)    # logit of D(x, z), eq. 38
        q = Joint("q", x=Data(), z=Factor(self.q_z, given="x"))
        p = Joint("p", z=standard_normal(d), x=Factor(self.p_x, given="z", squash=self.data_kind != "continuous"))
        adv = Adversarial(gen_loss="vi" if c.loss == "vi_full" else c.loss, net=self.D, lr=c.lr_d or c.lr,
                          betas=c.betas, logs=("d_q", "d_p"))
        terms = [KL(p, q, estimator=adv, name=None)]
        if c.loss == "vi_full":            # eq. 40's E_p log(q_old(z|x) / q(z|x)): its gradient, x from p held
            terms.append(NLL(q, "z", under=p, detach=("x",), name="nll_p"))
        return Declaration(p, q, [Player("gen", [self.q_z, self.p_x], terms, c.lr, c.betas)])
