"""The Python interface: `train` a registered model on a dataset into a run folder, `load` it back.

Both are thin: `jointkl.run` builds and launches runs (and is what the command line, torchrun's processes and
`jointkl reproduce` use too)."""
from __future__ import annotations

from pathlib import Path

from jointkl import run as runs
from jointkl.objectives.base import Objective
from jointkl.training.trainer import Callback


def train(model: str | None = None, data=None, steps: int | None = None, seed: int | None = None,
          out: str | Path | None = None, force: bool = False, resume: bool = False,
          callbacks: tuple[Callback, ...] = (), progress: bool | None = None, preset: str | None = None,
          config: str | Path | None = None, **options) -> Objective:
    """Train `model` on `data` (a registered name, a .npy/.npz path, an array or a Dataset) and return it.

    `options` are fields of `TrainConfig` or of the model's config (e.g. latent_dim=8, lr=1e-3, reg=5).
    `preset` (e.g. "dali/grid25", see `jointkl.presets`) or `config` (a settings YAML file, or a run's
    config.yaml) supply model, data and options first; what is given here beats them. Without either, the
    model's own defaults are used (the command line picks the preset MODEL/DATA by itself).
    The run folder gets config.yaml, metrics.csv, TensorBoard events, samples/ and checkpoints/;
    `callbacks` (`jointkl.training.trainer.Callback`) see every step, log and checkpoint.
    `resume=True` continues the run in `out` from its newest checkpoint (`model` may be left out: the run's own).
    Under torchrun every process calls it and they train data-parallel (jointkl.training.distributed).
    """
    if steps is not None:
        options["steps"] = steps
    if seed is not None:
        options["seed"] = seed
    return runs.launch(model, data, out, force, resume, tuple(callbacks), progress, preset, config, **options)


def load(run: str | Path, device: str = "auto", step: int | None = None) -> Objective:
    """The model of a run at its newest checkpoint that passes its checksums (or at `step`), in eval mode."""
    return runs.load(run, device, step)
