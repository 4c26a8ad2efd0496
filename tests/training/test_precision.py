"""Mixed precision (`precision=fp32|bf16|fp16`): bf16 trains a VAE to the ELBO float32 reaches, with float32
parameters and optimizer state; the players' losses run under autocast only when asked; a run killed mid-way and
resumed is bitwise equal to the uninterrupted one in bf16, and in fp16 with its gradient scalers' state in the
checkpoint (fp16 needs CUDA: on the CPU it is exercised by letting the trainer autocast to float16 there); an
unknown precision and fp16 off CUDA are one line each. Timings are not tests: benchmarks/bench_precision.py."""
import pytest
import torch

import jointkl as jk
from jointkl.data import load
from jointkl.errors import JointKLError
from jointkl.training import trainer as trainer_module
from jointkl.training.config import TrainConfig
from jointkl.training.trainer import Trainer

VAE = dict(hidden=32, layers=1, latent_dim=2, batch_size=64, device="cpu", log_every=100, ckpt_every=1000,
           progress=False)


class Killed(Exception):
    pass


def _test_elbo(model) -> float:
    """The VAE's mean ELBO on binary2x2's test split, 10 draws, in float32 (nats per example)."""
    test = load("binary2x2").test
    torch.manual_seed(0)
    with torch.no_grad():
        return float(-sum(model.loss("vae", test)[0] for _ in range(10)) / 10)


def test_bf16_trains_a_vae_to_the_float32_elbo(tmp_path):
    """binary2x2 (4 binary pixels; 16 patterns, so a uniform model has ELBO -log 16 = -2.77): 400 steps in fp32 and
    in bf16 from the same seed. Measured on seeds 0-2: the bf16 ELBO is within 6e-4 nats of fp32's (-2.14 to -2.23);
    the tolerance is 0.05 nats. The bf16 weights are not fp32's (autocast did run) and stay float32, as does Adam's
    state."""
    seen = {}
    original = Trainer.fit

    def keep(self, *a, **kw):
        seen[self.cfg.precision] = self
        return original(self, *a, **kw)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Trainer, "fit", keep)
        m32 = jk.train("vae", data="binary2x2", steps=400, out=tmp_path / "fp32", **VAE)
        m16 = jk.train("vae", data="binary2x2", steps=400, out=tmp_path / "bf16", precision="bf16", **VAE)
    e32, e16 = _test_elbo(m32), _test_elbo(m16)
    assert e32 > -2.4 and e16 > -2.4, (e32, e16)                    # learned well beyond uniform (-2.77)
    assert abs(e16 - e32) < 0.05, (e32, e16)
    a, b = m32.state_dict(), m16.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)               # bf16 really changed the arithmetic
    assert all(v.dtype == torch.float32 for v in b.values() if v.is_floating_point())
    for opt in seen["bf16"].opts.values():
        for st in opt.state.values():
            assert all(v.dtype == torch.float32 for k, v in st.items() if k != "step"), st.keys()
    assert seen["bf16"].scalers == {}                                  # bf16 needs no loss scaling


def test_losses_are_autocast_only_when_asked(tmp_path, monkeypatch):
    """fp32: no autocast, no scaler state in the checkpoint (the default changes nothing); bf16: every
    gradient-trained player's loss (both GAN players) runs under CPU autocast to bfloat16."""
    seen = []
    original = Trainer._loss

    def spy(self, player, batch):
        seen.append((self.cfg.precision, player, torch.is_autocast_enabled("cpu"),
                     torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None))
        return original(self, player, batch)
    monkeypatch.setattr(Trainer, "_loss", spy)
    opts = dict(hidden=16, layers=1, latent_dim=2, batch_size=32, steps=2, ckpt_every=2, device="cpu", progress=False)
    jk.train("gan", data="grid25", out=tmp_path / "fp32", **opts)
    jk.train("gan", data="grid25", out=tmp_path / "bf16", precision="bf16", **opts)
    assert {(p, on, dt) for prec, p, on, dt in seen if prec == "fp32"} == {("disc", False, None), ("gen", False, None)}
    assert {(p, on, dt) for prec, p, on, dt in seen if prec == "bf16"} == {("disc", True, torch.bfloat16),
                                                                           ("gen", True, torch.bfloat16)}
    state = torch.load(tmp_path / "fp32" / "checkpoints" / "step-00000002" / "state.pt", weights_only=True)
    assert "scalers" not in state


def _killed_and_resumed(tmp_path, monkeypatch, model, data, opts):
    """(uninterrupted model, model killed 3 steps after its checkpoint at 30 and resumed, the cut run's folder)."""
    opts = {**opts, "steps": 40, "ckpt_every": 15, "batch_size": 32, "sample_every": 10, "log_every": 5,
            "device": "cpu"}
    full = jk.train(model, data=data, out=tmp_path / "full", **opts)
    original = Trainer.train_step

    def dying(self):
        if self.step == 33:
            raise Killed
        return original(self)
    monkeypatch.setattr(Trainer, "train_step", dying)
    with pytest.raises(Killed):
        jk.train(model, data=data, out=tmp_path / "cut", **opts)
    monkeypatch.setattr(Trainer, "train_step", original)
    resumed = jk.train(model, out=tmp_path / "cut", resume=True)
    return full, resumed


def _assert_same_run(tmp_path, full, resumed):
    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "full" / "metrics.csv").read_text() == (tmp_path / "cut" / "metrics.csv").read_text()


@pytest.mark.parametrize("model,data,opts", [
    ("vae", "mnist5k", dict(binarize="dynamic", latent_dim=4, hidden=32, layers=1)),
    ("gan", "grid25", dict(g_steps=2, reg=5.0, latent_dim=2, hidden=32, layers=1, lr_decay=0.1)),
])
def test_bf16_resume_is_bitwise_equal(tmp_path, monkeypatch, model, data, opts):
    full, resumed = _killed_and_resumed(tmp_path, monkeypatch, model, data, {**opts, "precision": "bf16"})
    _assert_same_run(tmp_path, full, resumed)


def test_fp16_scaler_state_is_checkpointed_and_resume_is_bitwise_equal(tmp_path, monkeypatch):
    """fp16 as on CUDA (autocast to float16, a GradScaler per player), run on the CPU by letting the trainer
    autocast to float16 there. A growth interval of 4 steps makes the scale change during the run, so a resume
    that did not restore it would diverge from the uninterrupted run."""
    monkeypatch.setattr(trainer_module, "autocast_dtype",
                        lambda precision, device: torch.float16 if precision == "fp16" else None)
    real = torch.amp.GradScaler
    monkeypatch.setattr(torch.amp, "GradScaler", lambda device: real(device, init_scale=2.0 ** 10, growth_interval=4))
    full, resumed = _killed_and_resumed(tmp_path, monkeypatch, "gan", "grid25",
                                        dict(latent_dim=2, hidden=16, layers=1, precision="fp16"))
    _assert_same_run(tmp_path, full, resumed)
    state = torch.load(tmp_path / "cut" / "checkpoints" / "step-00000030" / "state.pt", weights_only=True)
    assert set(state["scalers"]) == {"disc", "gen"}
    assert all(s["scale"] != 2.0 ** 10 for s in state["scalers"].values()), state["scalers"]   # it did grow

    del state["scalers"]["gen"]                       # a checkpoint without a player's scaler does not fit: one line
    from jointkl.training import checkpoint
    weights, _ = checkpoint.load_latest(tmp_path / "cut" / "checkpoints")[1:]
    cfg = TrainConfig(steps=40, batch_size=32, device="cpu", precision="fp16")
    with pytest.raises(JointKLError, match="does not fit the model and options"):
        t = Trainer(resumed.train(), _prepared("grid25"), cfg, progress=False)
        t.restore((weights, state))


def _prepared(name):
    from jointkl.data import prepare
    return prepare(load(name))


def test_unknown_precision_is_one_line(cli, tmp_path):
    with pytest.raises(JointKLError, match=r"precision='fp8' is not known; choose fp32, bf16, fp16"):
        TrainConfig(precision="fp8")
    line = cli.error("train", "vae", "--data", "binary2x2", "--steps", "2", "--out", tmp_path / "a",
                     "precision=half", "device=cpu")
    assert "precision='half' is not known; choose fp32, bf16, fp16" in line, line
    line = cli.error("train", "vae", "--data", "binary2x2", "--steps", "2", "--out", tmp_path / "b",
                     "precision=16", "device=cpu")
    assert "precision=16 is not known" in line, line


def test_fp16_off_cuda_is_one_line_suggesting_bf16(cli, tmp_path):
    line = cli.error("train", "vae", "--data", "binary2x2", "--steps", "2", "--out", tmp_path / "r",
                     "precision=fp16", "device=cpu", "hidden=8", "layers=1", "latent_dim=2")
    assert "precision=fp16 needs CUDA" in line and "use precision=bf16" in line, line
