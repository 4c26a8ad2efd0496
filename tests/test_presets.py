"""Presets: every shipped setting is valid and trains, files merge their base, a run's settings round-trip
bitwise through --config, and every reproduction entry trains a preset."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from jointkl import objectives, presets
from jointkl.data import DESCRIPTIONS
from jointkl.errors import JointKLError
from jointkl.reproduce import TABLES
from jointkl.reproduce.base import Context
from jointkl.training.config import split_options

TINY = ["hidden=16", "layers=1", "batch_size=32", "log_every=5", "ckpt_every=10", "device=cpu"]


@pytest.mark.parametrize("name", presets.names())
@pytest.mark.parametrize("scale", [None, *presets.SCALES])
def test_every_preset_is_a_valid_setting_of_a_registered_model_and_data(name, scale):
    p = presets.get(name)
    assert p.model in objectives.MODELS and p.data in DESCRIPTIONS and p.data_at(scale) in DESCRIPTIONS and p.about
    tcfg, _ = split_options(p.at(scale), objectives.get(p.model).Config, p.model)   # raises if invalid
    assert tcfg.steps >= 1


def test_base_options_are_overridden_by_the_file_and_scales_by_both(tmp_path):
    (tmp_path / "base.yaml").write_text("options: {lr: 1.0e-3, hidden: 8}\nscales: {quick: {steps: 5, hidden: 4}}\n")
    f = tmp_path / "mine.yaml"
    f.write_text(f"model: vae\ndata: binary2x2\noptions: {{lr: 5.0e-4}}\nscales: {{quick: {{steps: 7}}}}\n")
    p = presets.load_file(f)
    assert p.options == {"lr": 5e-4} and p.at("quick") == {"lr": 5e-4, "steps": 7}
    d = presets.get("dali/grid25")                          # a shipped file with a base
    assert d.at()["lr"] == 5e-4 and d.at("default")["lr"] == 1e-3 and d.at("default")["hidden"] == 128
    assert d.at()["batch_size"] == presets.get("gan/grid25").at()["batch_size"] == 256


def test_a_scale_may_name_its_own_data_inherited_from_the_base(tmp_path):
    """A setting tuned on mnist5k trains full MNIST at the full scale: the scale's data, not an option."""
    f = tmp_path / "mine.yaml"
    f.write_text("model: vae\ndata: mnist5k\nbase: common/mnist5k\noptions: {lr: 5.0e-4}\n")
    p = presets.load_file(f)
    assert [p.data_at(s) for s in (None, *presets.SCALES)] == ["mnist5k", "mnist5k", "mnist5k", "mnist"]
    assert p.at("full") == {"lr": 5e-4, "arch": "dcgan"} and p.at("default") == {"lr": 5e-4}
    with pytest.raises(JointKLError, match="unknown scale 'huge'"):
        p.data_at("huge")


@pytest.mark.parametrize("text,words", [
    ("model: vae\noptions: [1, 2]\n", "options must be a dict"),
    ("model: vae\nsteps: 3\n", "unknown key 'steps'"),
    ("model: vae\n  bad: : yaml\n", "is not valid YAML"),
    ("- just a list\n", "must be a mapping"),
    ("model: vae\nscales: {huge: {steps: 1}}\n", "scales must map quick/default/full"),
    ("model: vae\nscales: {full: {data: [mnist]}}\n", "the data of scale full must be a data set's name"),
])
def test_a_bad_settings_file_is_one_line(tmp_path, text, words):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(JointKLError) as e:
        presets.load_file(f)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_unknown_preset_lists_the_shipped_ones():
    with pytest.raises(JointKLError, match="unknown preset 'dali/mnist'; available: aae/grid25"):
        presets.get("dali/mnist")
    with pytest.raises(JointKLError, match="unknown preset"):
        presets.get("../presets/dali/grid25")


def test_config_round_trip_is_bitwise(tmp_path, cli):
    """A run's own config.yaml as --config trains the same weights; so does what --print-config prints."""
    first, again, printed = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert cli("train", "vae", "--data", "binary2x2", "--steps", "12", "--seed", "4", "--out", first, *TINY)[0] == 0
    assert cli("train", "--config", first / "config.yaml", "--out", again)[0] == 0
    code, text, _ = cli("train", "--config", first / "config.yaml", "--print-config")
    (tmp_path / "printed.yaml").write_text(text)
    assert code == 0 and cli("train", "--config", tmp_path / "printed.yaml", "--out", printed)[0] == 0
    want = load_file(next((first / "checkpoints").glob("step-*")) / "model.safetensors")
    for run in (again, printed):
        got = load_file(next((run / "checkpoints").glob("step-*")) / "model.safetensors")
        assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)


def test_train_picks_the_preset_for_model_and_data_and_says_so(cli):
    code, out, err = cli("train", "vae", "--data", "binary2x2", "--print-config", "lr=2e-3")
    assert code == 0 and out.startswith("# from preset vae/binary2x2")
    assert "hidden: 512" in out and "lr: 0.002" in out                # the preset's, and the override wins
    code, out, _ = cli("train", "vae", "--data", "binary2x2", "--preset", "none", "--print-config")
    assert code == 0 and "hidden: 256" in out and "preset" not in out     # the model's own defaults
    code, out, _ = cli("train", "vae", "--data", "digits", "--print-config")
    assert code == 0 and "preset" not in out                              # none ships for vae on digits


def test_a_preset_takes_key_value_options_without_a_model(cli):
    """`--preset NAME key=value`: the option is an option, not a model name (argparse's first positional)."""
    code, out, _ = cli("train", "--preset", "dali/grid25-f", "separate_heads=true", "lr=5e-4", "--print-config")
    assert code == 0 and out.startswith("# from preset dali/grid25-f") and "model: dali" in out
    assert "separate_heads: true" in out and "lr: 0.0005" in out and "variant: f" in out


def test_a_preset_run_names_the_preset_first_and_records_it(tmp_path, cli):
    code, _, err = cli("train", "vae", "--data", "binary2x2", "--steps", "3", "--out", tmp_path / "r", *TINY)
    assert code == 0 and err.startswith("jointkl: preset vae/binary2x2: ")
    assert "preset: vae/binary2x2" in (tmp_path / "r" / "config.yaml").read_text()


def test_preset_and_model_must_agree_and_resume_keeps_its_settings(tmp_path, cli):
    assert "is for model dali; got model gan" in cli.error("train", "gan", "--preset", "dali/grid25", "--print-config")
    assert "a resumed run keeps its own settings" in cli.error("train", "vae", "--out", tmp_path, "--resume",
                                                              "--preset", "vae/binary2x2")
    assert "no model given" in cli.error("train", "--print-config")


def test_every_reproduction_entry_trains_presets():
    """Fails when an entry trains a setting that is no preset file: every run of every entry, at every scale, is
    a shipped preset's data and options (seed and checkpoint period aside)."""
    shipped = [presets.get(name) for name in presets.names()]
    off = set()
    for scale in presets.SCALES:
        settings = [(p.model, p.data_at(scale), {k: v for k, v in p.at(scale).items() if k != "ckpt_every"})
                    for p in shipped]
        for table, spec in TABLES.items():
            for job in spec.jobs(Context(scale, 2), Path("/nonexistent")) if spec.jobs else []:
                opts = {k: v for k, v in job.options.items() if k not in ("seed", "ckpt_every")}
                if (job.model, job.data, opts) not in settings:
                    off.add(f"{table} at {scale}: {job.model} on {job.data} ({Path(job.out).name})")
    assert not off, f"runs whose settings are no preset file: {sorted(off)[:5]}"
