"""Every option goes through one validator (jointkl.training.config.check): types, ranges, sizes a network can
have, devices that exist. A hostile option, a tampered config.yaml, a bad argument to a model's methods and a
run file that cannot be read are each one line, never a traceback."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import shutil

import pytest
import torch
import yaml

from jointkl.errors import JointKLError
from jointkl.objectives import MODELS
from jointkl.training.config import TrainConfig, from_dict, validate

# (model, data, options, words the error line holds)
HOSTILE = [
    ("gan", "grid25", ["binarize=dynamic"], "binarize=dynamic draws every value as a probability"),
    ("gan", "grid25", ["g_batchnorm=true", "batch_size=1"], "needs at least 2 rows per batch"),
    ("vae", "binary2x2", ["latent_dim=0"], "latent_dim=0 is out of range; it must be at least 1"),
    ("gan", "grid25", ["betas=[0.5]"], "betas=[0.5] must be a list of 2 numbers"),
    ("gan", "grid25", ["betas=[0.5,1.0]"], "each of them must be less than 1"),
    ("vae", "binary2x2", ["--seed", "1" * 23], "seed=" + "1" * 23 + " is out of range; it must be at most 2**63 - 1"),
    ("vae", "binary2x2", ["seed=-1"], "seed=-1 is out of range; it must be at least 0"),
    ("vae", "binary2x2", ["hidden=" + "9" * 400], "hidden=999999999999...(400 characters) is out of range"),
    ("vae", "binary2x2", ["device=meta"], "device='meta' is not a device to train on"),
    ("vae", "binary2x2", ["device=cuda:99"], "cuda:99"),
    ("vae", "binary2x2", ["steps=true"], "steps=True has the wrong type; expected int"),
    ("vae", "binary2x2", ["layers=-1"], "layers=-1 is out of range; it must be at least 0"),
    ("gan", "grid25", ["d_steps=0"], "d_steps=0 is out of range; it must be at least 1"),
    ("gan", "grid25", ["d_steps=-2"], "d_steps=-2 is out of range"),
    ("gan", "grid25", ["g_steps=0"], "g_steps=0 is out of range"),
    ("gan", "grid25", ["lr=inf"], "lr=inf is out of range; it must be finite"),
    ("gan", "grid25", ["lr_d=nan"], "lr_d=nan is out of range"),
    ("gan", "grid25", ["lr=0"], "lr=0.0 is out of range; it must be greater than 0"),
    ("gan", "grid25", ["reg=-5"], "reg=-5.0 is out of range; it must be at least 0"),
    ("gan", "grid25", ["lr_d=true"], "lr_d=True has the wrong type"),
    ("gan", "grid25", ["iw=1"], "iw=1 has the wrong type"),
    ("infogan", "grid25", ["info=-1"], "info=-1.0 is out of range"),
    ("em", "grid25", ["components=0"], "components=0 is out of range"),
    ("vae", "binary2x2", ["threads=100000"], "threads=100000 is out of range; it must be at most 4096"),
]


@pytest.mark.parametrize("model, data, options, words", HOSTILE, ids=[" ".join(c[2])[:30] for c in HOSTILE])
def test_hostile_option_is_one_line_and_creates_nothing(cli, tmp_path, model, data, options, words):
    out = tmp_path / "out"
    small = [] if model == "em" or any(o.startswith("hidden=") for o in options) else ["hidden=8", "layers=1"]
    line = cli.error("train", model, "--data", data, "--out", out, "steps=3", "device=cpu", *small, *options)
    assert words in line, line
    assert len(line) < 300
    assert not out.exists()


def test_cuda_without_cuda_is_one_line(cli, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    line = cli.error("train", "vae", "--data", "binary2x2", "--out", tmp_path / "o", "device=cuda")
    assert "CUDA is not available" in line


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_models_defaults_pass_the_validator(name):
    validate(MODELS[name].Config())


def test_configs_built_in_python_are_checked_too():
    with pytest.raises(JointKLError, match="steps=True has the wrong type"):
        TrainConfig(steps=True)
    with pytest.raises(JointKLError, match="seed=-3 is out of range"):
        TrainConfig(seed=-3)
    with pytest.raises(JointKLError, match="latent_dim=-3 is out of range"):
        from_dict(MODELS["vae"].Config, {"latent_dim": -3})


# --- a tampered config.yaml: one line whether the run is opened by sample, eval or --resume -----------------

def _tamper(run, **model_config):
    path = run / "config.yaml"
    meta = yaml.safe_load(path.read_text())
    meta["model_config"].update(model_config)
    path.write_text(yaml.safe_dump(meta, sort_keys=False))


@pytest.mark.parametrize("change, words", [
    (dict(latent_dim=-3), "latent_dim=-3 is out of range"),
    (dict(hidden=-1), "hidden=-1 is out of range"),
    (dict(decoder="poisson"), "poisson"),
    (dict(latent_dim=3), "does not fit"),          # another latent size than the checkpoint's
])
@pytest.mark.parametrize("command", ["sample", "eval", "resume"])
def test_tampered_config_is_one_line(cli, trained_run, tmp_path, change, words, command):
    _tamper(trained_run, **change)
    argv = {"sample": ["sample", trained_run, "--out", tmp_path / "s.npy"],
            "eval": ["eval", trained_run, "--k", "2", "--n", "10"],
            "resume": ["train", "vae", "--out", trained_run, "--resume", "--steps", "30"]}[command]
    line = cli.error(*argv)
    assert words in line, line


# --- the model's methods ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vae():
    cls = MODELS["vae"]
    return cls(cls.Config(hidden=8, layers=1, latent_dim=2), (4,), "binary").eval()


@pytest.mark.parametrize("call, words", [
    (lambda m: m.sample(-1), "vae.sample: n=-1 is out of range"),
    (lambda m: m.sample(0), "n=0 is out of range"),
    (lambda m: m.sample(2.5), "vae.sample: n must be a whole number; got 2.5"),
    (lambda m: m.sample(True), "n must be a whole number; got True"),
    (lambda m: m.log_likelihood(torch.zeros(3, 4), k=0), "vae.log_likelihood: k=0 is out of range"),
    (lambda m: m.log_likelihood(torch.zeros(3, 4), "iwae", 1.5), "k must be a whole number"),
    (lambda m: m.encode("pixels"), "vae.encode: x must be a tensor or an array of numbers"),
    (lambda m: m.decode(torch.tensor(0.5)), "vae.decode: z must be a batch"),
    (lambda m: m.reconstruct(torch.zeros(2, 5)), "input has shape (2, 5)"),
])
def test_bad_arguments_to_a_models_methods_are_one_line(vae, call, words):
    with pytest.raises(JointKLError) as e:
        call(vae)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_good_arguments_pass_unchanged(vae):
    torch.manual_seed(0)
    assert vae.sample(3).shape == (3, 4) and vae.sample(torch.tensor(2)).shape == (2, 4)
    assert vae.log_likelihood(torch.zeros(3, 4), "iwae", k=2).shape == (3,)
    assert vae.reconstruct([[0.0, 1.0, 0.0, 1.0]]).shape == (1, 4)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_models_methods_are_checked(name):
    from jointkl.objectives.base import Objective
    cls = MODELS[name]
    for method in Objective.CHECKED:
        fn = getattr(cls, method)
        assert fn is getattr(Objective, method) or getattr(fn, "checked", False), (name, method)


# --- run files that cannot be read ------------------------------------------------------------------------

def test_metrics_csv_that_is_not_utf8_is_set_aside_on_resume(cli, trained_run):
    (trained_run / "metrics.csv").write_bytes(b"step,vae/loss\n5,\xff\xfe\x00garbage\n")
    code, _, err = cli("train", "vae", "--out", trained_run, "--resume", "--steps", "25")
    assert code == 0 and "Traceback" not in err, err
    lines = [x for x in err.splitlines() if x.startswith("jointkl:")]
    assert len(lines) == 1 and "metrics.csv is unreadable" in lines[0] and "metrics.csv.corrupt" in lines[0]
    assert (trained_run / "metrics.csv.corrupt").read_bytes().startswith(b"step,vae/loss\n5,\xff")
    assert (trained_run / "metrics.csv").read_text().splitlines()[0].startswith("step,")


class NotAllowed:
    """A class torch's weights-only unpickler refuses."""


def _rewrite_state(ckpt, obj=None, raw: bytes | None = None):
    if raw is None:
        torch.save(obj, ckpt / "state.pt")
    else:
        (ckpt / "state.pt").write_bytes(raw)
    manifest = json.loads((ckpt / "manifest.json").read_text())
    manifest["sha256"]["state.pt"] = hashlib.sha256((ckpt / "state.pt").read_bytes()).hexdigest()
    (ckpt / "manifest.json").write_text(json.dumps(manifest))      # the checksums pass: only unpickling fails


@pytest.mark.parametrize("payload", ["forbidden class", "not a pickle"])
def test_state_that_torch_refuses_to_unpickle_is_one_line(cli, trained_run, payload):
    newest = trained_run / "checkpoints" / "step-00000020"
    if payload == "forbidden class":
        _rewrite_state(newest, {"step": 20, "x": NotAllowed()})
    else:
        _rewrite_state(newest, raw=pickle.dumps("hello")[:5] + b"\x00" * 50)
    line = cli.error("train", "vae", "--out", trained_run, "--resume", "--steps", "30")
    assert f"checkpoint {newest} cannot be read" in line and "delete that folder" in line, line
    shutil.rmtree(newest)                                  # as the message says: resume from the one before
    code, _, err = cli("train", "vae", "--out", trained_run, "--resume", "--steps", "30")
    assert code == 0, err


def test_state_with_the_wrong_shapes_is_one_line(cli, trained_run):
    newest = trained_run / "checkpoints" / "step-00000020"
    state = torch.load(newest / "state.pt", weights_only=True)
    state["optimizers"] = {}
    _rewrite_state(newest, state)
    line = cli.error("train", "vae", "--out", trained_run, "--resume", "--steps", "30")
    assert f"checkpoint {newest} does not fit the model and options of config.yaml" in line, line


def test_train_config_fields_all_have_rules():
    """Every TrainConfig number is covered by a rule keyed by its name (not only the any-number fallback)."""
    from jointkl.training.config import _range
    for f in dataclasses.fields(TrainConfig):
        if f.type in ("int", "float"):
            lo, hi, _, _ = _range(f.name, int if f.type == "int" else float)
            assert lo >= 0, f.name
