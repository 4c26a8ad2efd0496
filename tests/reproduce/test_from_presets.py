"""Entries' runs and report text from presets: a job per seed with the preset's data and options at the scale,
and the settings described once, shared options first."""
from __future__ import annotations

from pathlib import Path

from jointkl import presets
from jointkl.reproduce.base import Context
from jointkl.reproduce.from_presets import describe_runs, nets_of, preset_jobs


def test_jobs_take_the_scales_data_and_options():
    quick = preset_jobs(Context("quick", 2), [("out/vae-{s}", "vae/mnist5k-avb-8d")])
    full = preset_jobs(Context("full", 1), [("out/vae-{s}", "vae/mnist5k-avb-8d")])
    assert [(j.data, j.out) for j in quick] == [("mnist5k", Path("out/vae-0")), ("mnist5k", Path("out/vae-1"))]
    assert quick[0].options == {**presets.get("vae/mnist5k-avb-8d").at("quick"), "ckpt_every": 40, "seed": 0}
    assert full[0].data == "mnist" and full[0].options["arch"] == "dcgan" and "data" not in full[0].options


def test_settings_are_described_once_shared_then_each_runs_own():
    text = describe_runs({"GAN": "gan/mnist5k-hu", "IWGAN": "gan/mnist5k-hu-iw"}, "default")
    assert text.startswith("Settings at the default scale (jointkl/presets): on mnist5k, every run batch_size 100")
    assert "GAN: preset gan/mnist5k-hu; IWGAN: preset gan/mnist5k-hu-iw (iw yes)." in text
    assert "steps 3000" in text and text.count("lr_d") == 1
    two = describe_runs({"a": "ada/mnist5k-digits-hu", "b": "ada/mnist5k-mnistm-hu"}, "full")
    assert "a: preset ada/mnist5k-digits-hu (on mnist5k-digits)" in two and "every run" in two
    assert nets_of("gan/mnist5k-hu", "default") == "MLPs 2x256"
    assert nets_of("gan/mnist5k-hu", "full") == "DCGAN-style conv nets"
