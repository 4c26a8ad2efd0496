"""Generative adversarial network (Goodfellow et al. 2014) as a joint KL, with Su's regularizer.

    generative joint   p(x, z) = p(z) delta(x - G(z)),  p(z) = N(0, I)                        (Su eq. 12-13)
    inference joint    q(x) = p_data(x)
    KL direction       KL(p(x) || q(x)) of the marginals on x (Su eq. 14, with his q and p named ours)
    estimators         D by logistic regression, data positive (Su eq. 16); its logit estimates
                       log p_data(x) - log p(x) (eq. 18)
    generator loss     -E log D(G(z)) ("nonsaturating", Su eq. 20) or E log(1 - D(G(z))) ("minimax"),
                       plus reg * mean_pixels (G(z) - G_old(z))^2, Su eq. 26 (KL(p || p_old), eq. 25).

Su's own joints carry an indicator y: his q(x, y) mixes data (y=1) and G's samples (y=0) half and half, his
p(x, y) = p_data(x) p(y|x) with p(y=1|x) = D(x); minimizing KL(q(x, y) || p(x, y)) (eq. 13-14) alternately in D
and G gives the above.

Importance weighting (`iw=true`, IWGAN, Hu eq. 16 and supplement eqs. 36-43): the generator's per-sample
losses are weighted by w~_i = softmax_i(logit D(G(z_i))) over the batch, i.e. w_i = D/(1 - D) normalized
(supplement eq. 40), detached (eq. 43); D trains as in the plain GAN. Uniform D gives w~ = 1/B, the plain GAN.

G_old is the generator at the start of the current generator period; all `g_steps` updates of a period
share one z batch (`share_z=true`, as in Su's own code, which uses reg=5 and g_steps=2). With g_steps=1 the
regularizer's gradient is exactly zero, because G = G_old where it is evaluated: use g_steps >= 2 with reg > 0
(tested). The squared distance is averaged over data dimensions, so reg has the scale of Su's code.
`g_batchnorm=true` puts batch norm after every hidden layer of G (DCGAN's generator, ALI's toy nets; built into
`arch=dcgan`); a trained or loaded model is in eval mode, so its samples use the running statistics.
`g_act=relu` gives G ReLU hidden units (DCGAN's generator) while D keeps LeakyReLU(0.2).
With `classes > 0` (cgan) a one-hot label y joins both joints as data and feeds G and D.
`arch=dcgan` (image data): G is a DCGAN deconv generator and D a conv discriminator (`jointkl.nets.conv`);
CGAN's one-hot c joins G's input vector and D's conv features.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jointkl.declare import Adversarial, AdversarialOptions, Data, Declaration, Declared
from jointkl.declare import Factor, Joint, KL, Labels, Player, Proximal, standard_normal
from jointkl.joints import Dirac
from jointkl.objectives.registry import register


@dataclass(frozen=True)
class GANConfig(AdversarialOptions):
    latent_dim: int = 8
    hidden: int = 128
    layers: int = 3
    arch: Literal["mlp", "dcgan"] = "mlp"   # dcgan: conv G and D, image data only (hidden/layers then unused)
    loss: Literal["nonsaturating", "minimax"] = "nonsaturating"   # generator loss (Su eq. 20)
    reg: float = 0.0                # Su eq. 26 weight (lambda); 0 disables
    iw: bool = False                # importance-weighted generator loss (IWGAN, Hu eq. 16)
    g_steps: int = 1                # generator updates per outer step (Su's code: 2)
    share_z: bool = True            # the g_steps updates reuse one z batch (Su's code); false: a new z each (Fig. 2)
    d_steps: int = 1                # discriminator updates per outer step (n_critic)
    lr: float = 1e-3


@register
class GAN(Declared):
    """GAN with minimax or non-saturating generator loss and Su's regularizer reg=lambda (Su eq. 16, 20, 26)."""

    name, Config = "gan", GANConfig
    classes = 0                                                    # one-hot label size (cgan)

    def declare(self):
        c, y = self.cfg, ("y",) if self.classes else ()
        self.G = Dirac(c.latent_dim + self.classes, self.data_shape, c.hidden, c.layers, arch=c.arch,
                       batchnorm=c.g_batchnorm, act=c.g_act)
        labels = {"y": Labels(self.classes)} if self.classes else {}
        p = Joint("p", **labels, z=standard_normal(c.latent_dim),
                  x=Factor(self.G, given=("z", *y), squash=self.data_kind != "continuous"))
        q = Joint("q", **labels, x=Data())
        d = Adversarial(gen_loss=c.loss, name="D", hidden=c.hidden, layers=c.layers, steps=c.d_steps,
                        lr=c.lr_d or c.lr, betas=c.betas, iw=c.iw)
        gen = Player("gen", [self.G], [KL(p, q, on=("x", *y), estimator=d, name="adv"), c.reg * Proximal("x", p)],
                     c.lr, c.betas, c.g_steps, share_noise=c.share_z)
        return Declaration(p, q, [gen])
