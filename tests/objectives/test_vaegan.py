"""VAEGAN against truth (Larsen et al. 2016, Algorithm 1), every number by hand from the model's own nets at the
update's z: the encoder's L_prior + L_llike^Dis_l (a unit Gaussian on D's last hidden layer), the decoder's
gamma L_llike + GAN loss on reconstructions and prior samples, D's loss on data vs both; D's loss is the GAN's
plus the reconstructions' negative term; each player's gradient reaches its own networks only."""
import math
from dataclasses import dataclass

import pytest
import torch
import torch.distributions as D
import torch.nn.functional as F

from jointkl.declare import KL, Adversarial, Data, Declaration, Declared, Factor, Joint, Player, standard_normal
from jointkl.errors import JointKLError
from jointkl.joints import Dirac
from jointkl.nets import features
from jointkl.objectives.gan import GAN, GANConfig
from jointkl.objectives.vaegan import VAEGAN, VAEGANConfig

KW = dict(latent_dim=2, hidden=16, layers=1)


def build(**kw):
    torch.manual_seed(0)
    return VAEGAN(VAEGANConfig(**KW, **kw), (2,), "continuous")


def run(m, player, x, seed=3):
    """The loss, logs and the z's G was fed in this update, in order."""
    seen = []
    hook = m.G.register_forward_hook(lambda mod, args, out: seen.append(args[0]))
    torch.manual_seed(seed)
    m.begin(player)
    loss, logs = m.loss(player, x)
    hook.remove()
    return loss, logs, seen


def llike(m, x, z):
    """-log N(Dis_l(x); Dis_l(Dec(z)), I) = |f(x) - f(x~)|^2 / 2 + (F / 2) log 2 pi, per row."""
    fx, fr = features(m.D, x), features(m.D, m.G(z).mean)
    return 0.5 * (fx - fr).pow(2).sum(1) + 0.5 * fx.shape[1] * math.log(2 * math.pi)


def test_discriminator_loss_by_hand_and_it_is_the_gans_plus_the_reconstructions():
    m, x = build(), torch.randn(16, 2)
    loss, logs, (z_p, z_r) = run(m, "disc", x)                     # p's sample first, then the reconstruction
    with torch.no_grad():
        real, fake, recon = (m.D(v).reshape(-1) for v in (x, m.G(z_p).mean, m.G(z_r).mean))
    want = F.softplus(-real).mean() + F.softplus(fake).mean() + F.softplus(recon).mean()    # -L_GAN
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    assert [logs[k].item() for k in ("d_data", "d_p", "d_rec")] == pytest.approx(
        [real.mean().item(), fake.mean().item(), recon.mean().item()], rel=1e-6)
    torch.manual_seed(0)                                           # a GAN with the same G, D and seed
    gan = GAN(GANConfig(**KW), (2,), "continuous")
    gan.G.load_state_dict(m.G.state_dict())
    gan.D.load_state_dict(m.D.state_dict())
    gan_loss, gan_logs, (z_gan,) = run(gan, "disc", x)
    assert torch.equal(z_gan, z_p)
    assert loss.item() - F.softplus(recon).mean().item() == pytest.approx(gan_loss.item(), rel=1e-6)
    assert logs["d_p"].item() == pytest.approx(gan_logs["d_fake"].item(), rel=1e-6)


def test_encoder_loss_and_gradient_by_hand():
    m, x = build(gamma=0.3), torch.randn(16, 2)
    loss, logs, (z,) = run(m, "enc", x)
    qz = m.q_z(x)
    eps = ((z - qz.mean) / qz.stddev).detach()                    # the update's reparameterization noise
    z_hand = qz.mean + qz.stddev * eps
    kl = D.kl_divergence(qz, D.Independent(D.Normal(torch.zeros(16, 2), torch.ones(16, 2)), 1)).mean()
    rec = llike(m, x, z_hand).mean()                               # gamma does not enter the encoder's loss
    assert logs["kl"].item() == pytest.approx(kl.item(), rel=1e-6)
    assert logs["rec"].item() == pytest.approx(rec.item(), rel=1e-6)
    assert loss.item() == pytest.approx((kl + rec).item(), rel=1e-6)
    params = list(m.q_z.parameters())
    for g, w in zip(torch.autograd.grad(loss, params), torch.autograd.grad(kl + rec, params)):
        assert torch.allclose(g, w, atol=1e-5)


@pytest.mark.parametrize("gamma,gen", [(1.0, "nonsaturating"), (0.25, "minimax"), (0.0, "nonsaturating")])
def test_decoder_loss_and_gradient_by_hand(gamma, gen):
    m, x = build(gamma=gamma, loss=gen), torch.randn(16, 2)
    loss, logs, (z_q, z_p, z_r) = run(m, "dec", x)                 # L_llike's z, the prior's, the reconstruction's
    z_q, z_p, z_r = (z.detach() for z in (z_q, z_p, z_r))
    rec = llike(m, x, z_q).mean()
    lp, lr = (m.D(m.G(z).mean).reshape(-1) for z in (z_p, z_r))
    g = (lambda t: F.softplus(-t).mean()) if gen == "nonsaturating" else (lambda t: -F.softplus(t).mean())
    want = gamma * rec + g(lp) + g(lr)
    assert [logs[k].item() for k in ("rec", "adv_p", "adv_rec")] == pytest.approx(
        [rec.item(), g(lp).item(), g(lr).item()], rel=1e-6)
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)
    params = list(m.G.parameters())
    for got, w in zip(torch.autograd.grad(loss, params), torch.autograd.grad(want, params)):
        assert torch.allclose(got, w, atol=1e-5)


def test_each_player_owns_its_networks_and_d_comes_before_the_decoder():
    m = build()
    ids = {name: {id(p) for p in getattr(m, name).parameters()} for name in ("q_z", "G", "D")}
    players = {p.name: {id(t) for t in p.params} for p in m.players()}
    assert [p.name for p in m.players()] == ["enc", "disc", "dec"]
    assert players == {"enc": ids["q_z"], "disc": ids["D"], "dec": ids["G"]}


def test_samples_encode_and_reconstruct_use_the_decoder_and_encoder_means():
    m, x = build(), torch.randn(5, 2)
    m.eval()
    assert torch.equal(m.encode(x), m.q_z(x).mean.detach())
    assert torch.allclose(m.reconstruct(x), m.G(m.q_z(x).mean).mean.detach())
    assert m.sample(7).shape == (7, 2) and m.latent_dim == 2


@pytest.mark.parametrize("opts,words", [({"gamma": -1.0}, r"^option gamma=-1.0 is out of range; it must be at least 0$"),
                                        ({"loss": "vi"}, r"^option loss='vi' is not known; choose nonsaturating, minimax$")])
def test_bad_options_are_refused(opts, words):
    with pytest.raises(JointKLError, match=words):
        build(**opts)


@dataclass(frozen=True)
class _Cfg:
    pass


class _SharedOtherB(Declared):
    """One estimator for KL(p || data) and KL(data || p2): another b, which one D cannot estimate."""
    name, Config = "_shared_other_b", _Cfg

    def declare(self):
        self.G = Dirac(2, (2,), 8, 1)
        p = Joint("p", z=standard_normal(2), x=Factor(self.G, given="z"))
        p2 = Joint("p2", z=standard_normal(2), x=Factor(self.G, given="z"))
        q = Joint("q", x=Data())
        adv = Adversarial(hidden=8, layers=1)
        terms = [KL(p, q, on="x", estimator=adv), KL(q, p2, on="x", estimator=adv)]
        return Declaration(p, q, [Player("gen", [self.G], terms)])


def test_a_shared_estimator_of_another_b_is_refused_in_one_line():
    with pytest.raises(JointKLError) as e:
        _SharedOtherB(_Cfg(), (2,), "continuous")
    assert "one discriminator shared by KL terms needs the same logistic Adversarial" in str(e.value)
    assert "\n" not in str(e.value)
