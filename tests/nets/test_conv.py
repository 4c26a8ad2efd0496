"""DCGAN-style conv nets (`arch=dcgan`): shapes for 28/32/64 px, every image model training with them, the
one-line error on non-image data, MLP models bitwise unchanged, and a conv discriminator's logit against a
known log density ratio."""
from __future__ import annotations

import csv
import hashlib
import math

import pytest
import torch
import torch.nn.functional as F
import yaml

import jointkl as jk
from jointkl.errors import JointKLError
from jointkl.joints import Gaussian, Implicit
from jointkl.nets import MLP, ConvDecoder, ConvEncoder, build, repeat_call
from jointkl.nets.conv import halvings
from jointkl.objectives import get

SIZES = {28: (2, 7), 32: (3, 4), 64: (4, 4)}     # side -> (stride-2 layers, side after them)


@pytest.mark.parametrize("side,halves", [(28, 2), (32, 3), (64, 4), (8, 1), (16, 2), (7, 0), (2, 0), (30, 1)])
def test_halvings_follow_the_size(side, halves):
    assert halvings(side, side) == halves          # halve while even and the half is >= 4


@pytest.mark.parametrize("side", SIZES)
@pytest.mark.parametrize("channels", [1, 3])
def test_encoder_and_decoder_shapes(side, channels):
    torch.manual_seed(0)
    layers, last = SIZES[side]
    x, c = torch.rand(3, channels, side, side), F.one_hot(torch.tensor([0, 1, 2]), 10).float()
    enc = build("dcgan", (channels, side, side), (2, 8), hidden=0, layers=0, extra_dim=10)
    assert isinstance(enc, ConvEncoder)
    convs = [m for m in enc.trunk if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == layers and convs[-1].out_channels == 64 * 2 ** (layers - 1)
    assert enc.trunk(x).shape == (3, convs[-1].out_channels * last * last)
    out = enc(x, c)
    assert out.shape == (3, 2, 8)
    assert not torch.equal(out, enc(x, c.roll(1, 0)))                 # the extra input is used
    plain = build("dcgan", (channels, side, side), 1, 0, 0)
    assert plain(x).shape == (3, 1)

    dec = build("dcgan", 8, (2, channels, side, side), 0, 0, extra_dim=10)   # a Gaussian's mean and std logits
    assert isinstance(dec, ConvDecoder)
    assert dec(torch.randn(3, 8), c).shape == (3, 2, channels, side, side)
    assert build("dcgan", 8, (channels, side, side), 0, 0)(torch.randn(3, 8)).shape == (3, channels, side, side)


def test_build_falls_back_to_the_mlp():
    assert type(build("mlp", (1, 28, 28), 1, 16, 2)) is MLP
    assert type(build("mlp", 8, (1, 28, 28), 16, 2)) is MLP
    assert type(build("dcgan", 8, 1, 16, 2)) is MLP                     # vectors in, vector out (AAE's D(z))
    with pytest.raises(JointKLError, match="unknown arch 'resnet'; choose one of mlp, dcgan"):
        build("resnet", 8, 1, 16, 2)


def test_conditionals_take_conv_nets():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32)
    q = Gaussian((3, 32, 32), 8, arch="dcgan")(x)
    assert q.rsample().shape == (4, 8) and q.log_prob(q.rsample()).shape == (4,)
    p = Gaussian(8, (3, 32, 32), arch="dcgan")(torch.randn(4, 8))        # per-pixel std: (2, 3, 32, 32) outputs
    assert p.rsample().shape == (4, 3, 32, 32) and p.log_prob(x).shape == (4,)
    assert (p.stddev > 0).all()
    # an implicit encoder runs its conv trunk once per x; in eval mode that equals feeding x repeated k times
    imp = Implicit((3, 32, 32), 8, noise_dim=4, arch="dcgan").eval()
    eps = torch.randn(5 * 4, 4)
    direct = imp.net(x.repeat(5, 1, 1, 1), eps)
    assert torch.allclose(repeat_call(imp.net, x, 5, eps), direct, atol=1e-5)
    assert imp(x).rsample((5,)).shape == (5, 4, 8)


# every image model with arch=dcgan: which of its nets are conv nets, and a few training steps on digits (8x8)
MODELS = [
    ("gan", {"reg": 1.0, "g_steps": 2}, {"G.net": ConvDecoder, "D": ConvEncoder}),
    ("cgan", {"iw": True}, {"G.net": ConvDecoder, "D": ConvEncoder}),
    ("vae", {"aa": True}, {"q_z.net": ConvEncoder, "p_x.net": ConvDecoder, "D": ConvEncoder}),
    ("cvae", {"aa": True}, {"q_z.net": ConvEncoder, "p_x.net": ConvDecoder, "D": ConvEncoder}),
    ("svae", {"aa": True}, {"q_z.net": ConvEncoder, "p_x.net": ConvDecoder, "q_y.net": ConvEncoder,
                            "D": ConvEncoder}),
    ("dali", {}, {"G.net": ConvDecoder, "D": ConvEncoder, "E.net": ConvEncoder}),
    ("dali", {"encoder_on_disc_features": True, "variant": "f"}, {"G.net": ConvDecoder, "D": ConvEncoder, "E.net": MLP}),
    ("ali", {"loss": "vi_full"}, {"q_z.net": ConvEncoder, "p_x.net": ConvDecoder, "D": ConvEncoder}),
    ("ali", {"encoder": "dirac", "decoder": "gaussian"}, {"q_z.net": ConvEncoder, "p_x.net": ConvDecoder}),
    ("aae", {"encoder": "gaussian", "decoder": "dirac"}, {"q_z.net": ConvEncoder, "p_x.net": ConvDecoder, "D": MLP}),
    ("avb", {"adaptive_contrast": True, "ac_samples": 4}, {"q_z.net": ConvEncoder, "p_x.net": ConvDecoder,
                                                            "T.net": ConvEncoder}),
]


@pytest.mark.parametrize("name,opts,nets", MODELS, ids=[f"{m[0]}-{i}" for i, m in enumerate(MODELS)])
def test_models_train_with_dcgan(tmp_path, name, opts, nets):
    model = jk.train(name, data="digits", steps=3, out=tmp_path / "run", arch="dcgan", latent_dim=2, batch_size=16,
                     log_every=1, ckpt_every=3, device="cpu", **opts)
    for path, cls in nets.items():
        assert type(model.get_submodule(path)) is cls, path
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and all(math.isfinite(float(v)) for r in rows for k, v in r.items() if k != "step")
    torch.manual_seed(0)
    assert model.sample(5).shape == (5, 1, 8, 8)
    if name != "gan" and name != "cgan":
        assert model.encode(torch.rand(5, 1, 8, 8)).shape == (5, 2)
    again = jk.load(tmp_path / "run")                                  # BN buffers round-trip the checkpoint
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_cli_trains_dcgan_on_mnist(cli, tmp_path):
    out = tmp_path / "run"
    code, _, err = cli("train", "gan", "--data", "mnist5k", "--steps", "1", "--out", out, "arch=dcgan",
                       "batch_size=8", "latent_dim=4")
    assert code == 0, err
    assert yaml.safe_load((out / "config.yaml").read_text())["model_config"]["arch"] == "dcgan"
    model = jk.load(out)
    assert [m.out_channels for m in model.D.trunk if isinstance(m, torch.nn.Conv2d)] == [64, 128]   # MNIST net
    assert model.sample(2).shape == (2, 1, 28, 28)


IMAGE_MODELS = ["gan", "cgan", "vae", "cvae", "svae", "dali", "ali", "aae", "avb"]


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_dcgan_needs_images(name):
    cls = get(name)
    with pytest.raises(JointKLError, match=r"^arch=dcgan needs image data \(C, H, W\); use arch=mlp for data of "
                                           r"shape \(2,\)$"):
        cls(cls.Config(arch="dcgan"), (2,), "continuous")
    with pytest.raises(JointKLError, match="needs images with even sides of at least 8 px .* got 2x2; use arch=mlp"):
        cls(cls.Config(arch="dcgan"), (1, 2, 2), "binary")            # binary2x2
    with pytest.raises(JointKLError, match="arch='conv' is not known; choose mlp, dcgan"):
        cls(cls.Config(arch="conv"), (1, 28, 28), "image")


def test_cli_error_on_toy_data(cli):
    line = cli.error("train", "vae", "--data", "grid25", "arch=dcgan")
    assert "arch=dcgan needs image data (C, H, W); use arch=mlp" in line


# sha256 of the state dict of each model built with torch.manual_seed(0) and hidden=16, layers=2, measured with
# the code before the arch option existed (torch 2.13, CPU): arch=mlp must build the same nets in the same order
BEFORE = [
    ("gan", {}, "b5b6a4c2f5add1c2", "cd35d09512f1e41b"),
    ("gan", {"iw": True}, "b5b6a4c2f5add1c2", "cd35d09512f1e41b"),
    ("cgan", {}, "1d75dc0f19390799", "2daed4b4f30c2488"),
    ("vae", {}, "b6c4ac0e056322ae", "07a914a0f9cfdfc7"),
    ("vae", {"aa": True}, "a7d18c03cd770d29", "f4ab9c1b8fdba4de"),
    ("cvae", {"aa": True}, "706f070d0adb564e", "154090f2e1219687"),
    ("svae", {"aa": True}, "6c86a594cd2f8ff6", "463dd24484f0171b"),
    ("dali", {}, "fbd2d1402f51f037", "7b1bee35a813756a"),
    ("dali", {"encoder_on_disc_features": True, "variant": "l2"}, "cda1f02e39ca0d77", "97ab5b4722c19397"),
    ("ali", {}, "d7a156840e8a8d20", "4fffeb72e59ce817"),
    ("ali", {"encoder": "dirac", "decoder": "gaussian"}, "0a26caa25decc2ef", "c4a3633c541f1880"),
    ("aae", {}, "5ccf40264348a0a7", "a93c13a312f6f805"),
    ("aae", {"encoder": "gaussian", "decoder": "dirac"}, "0738d142bde46022", "a5026451fa44e201"),
    ("avb", {}, "6a594c6c44e81dbd", "aed3797bbee140f7"),
    ("avb", {"adaptive_contrast": True}, "6a594c6c44e81dbd", "aed3797bbee140f7"),
]


@pytest.mark.parametrize("name,opts,on_image,on_vector", BEFORE)
def test_mlp_models_unchanged(name, opts, on_image, on_vector):
    cls = get(name)
    for (shape, kind), want in ((((1, 8, 8), "image"), on_image), (((2,), "continuous"), on_vector)):
        torch.manual_seed(0)
        model = cls(cls.Config(hidden=16, layers=2, **opts), shape, kind)
        h = hashlib.sha256()
        for k, v in model.state_dict().items():
            h.update(k.encode())
            h.update(v.contiguous().numpy().tobytes())
        assert h.hexdigest()[:16] == want, (name, opts, shape)


def test_conv_discriminator_learns_known_log_ratio():
    """x = +-m T + s eps on 16x16 images, T a unit-norm plus sign: log p+(x)/p-(x) = 2 m <T, x> / s^2 exactly,
    the optimal logistic logit. The conv D (conv 64 s2, conv 128 s2 + BN, FC 1024) trained for 150 steps on
    fresh batches of both classes, read in eval mode: over seeds 0-3 the mean |logit - truth| was 0.44-0.58
    and the correlation 0.979-0.983 (the truth's sd is 2.8; a constant logit errs by ~2.3 on average)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(100)
    side, m, s = 16, 0.5, 0.5
    T = torch.zeros(1, side, side)
    T[0, 4:12, 7:9] = T[0, 7:9, 4:12] = 1
    T /= T.norm()

    def draw(n: int, sign: float) -> torch.Tensor:
        return sign * m * T + s * torch.randn(n, 1, side, side, generator=g)

    D = ConvEncoder((1, side, side), 1)
    opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    y = torch.cat([torch.ones(64), torch.zeros(64)])
    for _ in range(150):      # one batch of both classes, so BN's batch statistics carry no label
        loss = F.binary_cross_entropy_with_logits(D(torch.cat([draw(64, 1), draw(64, -1)])).squeeze(1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.cat([draw(1000, 1), draw(1000, -1)])
    with torch.no_grad():
        logit = D.eval()(x).squeeze(1)
    truth = 2 * m * (x * T).flatten(1).sum(1) / s**2
    assert (logit - truth).abs().mean() < 0.8
    assert torch.corrcoef(torch.stack([logit, truth]))[0, 1] > 0.95
