"""AAE, with ALI where the two share a path: both models from the API (train, load, sample, encode, decode,
reconstruct) and from the CLI, with one-line errors for bad options."""
import pytest
import torch

import jointkl as jk
from jointkl.data import load as load_data
from jointkl.errors import JointKLError

TINY = dict(hidden=16, layers=1, latent_dim=2, batch_size=32, log_every=5, ckpt_every=10, device="cpu")


@pytest.mark.parametrize("model,data,opts", [
    ("ali", "grid25", dict(loss="vi")),
    ("ali", "digits", dict(loss="minimax", encoder="dirac", decoder="gaussian")),
    ("aae", "grid25", dict(encoder="gaussian", decoder="dirac")),
    ("aae", "digits", dict(loss="minimax")),
])
def test_train_load_sample_encode_reconstruct(tmp_path, model, data, opts):
    trained = jk.train(model, data=data, steps=10, out=tmp_path / "run", **TINY, **opts)
    m = jk.load(tmp_path / "run", device="cpu")
    x = load_data(data).test[:5]
    assert m.sample(7).shape == (7, *x.shape[1:])
    assert m.encode(x).shape == (5, 2)
    assert m.decode(torch.zeros(3, 2)).shape == (3, *x.shape[1:])
    x_hat = m.reconstruct(x)
    assert x_hat.shape == x.shape
    if data == "digits":                                                  # image data: decoder output in [0, 1]
        assert 0 <= x_hat.min() and x_hat.max() <= 1
    torch.manual_seed(0)
    s1 = trained.sample(4)
    torch.manual_seed(0)
    assert torch.equal(m.sample(4), s1)                                   # the checkpoint is the trained model


def test_cli_trains_both_and_rejects_bad_options(cli, tmp_path):
    argv = [f"{k}={v}" for k, v in TINY.items()]
    for model in ("ali", "aae"):
        code, _, err = cli("train", model, "--data", "grid25", "--steps", "3", "--out", tmp_path / model, *argv)
        assert code == 0, err
    assert "option loss='bogus' is not known; choose minimax, nonsaturating, vi, vi_full" in cli.error("train", "ali", "--data", "grid25", "--out", tmp_path / "x",
                                                   "loss=bogus", *argv)
    assert "option loss='vi' is not known; choose nonsaturating, minimax" in cli.error("train", "aae", "--data", "grid25", "--out", tmp_path / "y",
                                                "loss=vi", *argv)
    with pytest.raises(JointKLError, match="encoder='flow' is not known; choose gaussian, dirac"):
        jk.train("ali", data="grid25", steps=1, out=tmp_path / "z", encoder="flow", **TINY)
