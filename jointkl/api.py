"""The Python interface: `train` a registered model on a dataset into a run folder, `load` it back."""
from __future__ import annotations

import shutil
from pathlib import Path

import torch
import yaml

from jointkl import data as datasets
from jointkl import objectives
from jointkl.errors import JointKLError
from jointkl.objectives.base import Objective
from jointkl.training import checkpoint
from jointkl.training.config import TrainConfig, from_dict, split_options, to_dict
from jointkl.training.trainer import Trainer, resolve_device

CONFIG = "config.yaml"


def _dataset(data) -> datasets.Dataset:
    if isinstance(data, datasets.Dataset):
        return data
    if isinstance(data, (str, Path)):
        return datasets.load(str(data))
    return datasets.from_array(data)


def _prepare_dir(out: Path, force: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not force:
            raise JointKLError(f"run directory {out} already exists; pass --force (force=True) to overwrite it, "
                               "--resume to continue it, or choose another --out")
        if not (out / CONFIG).exists() and not (out / "checkpoints").exists():
            raise JointKLError(f"{out} exists and is not a jointkl run; refusing to delete it, choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def train(model: str, data="grid25", steps: int | None = None, seed: int | None = None,
          out: str | Path | None = None, force: bool = False, resume: bool = False, **options) -> Objective:
    """Train `model` on `data` (a registered name, a .npy/.npz path, an array or a Dataset) and return it.

    `options` are fields of `TrainConfig` or of the model's config (e.g. latent_dim=8, lr=1e-3, reg=5).
    The run folder gets config.yaml, metrics.csv, TensorBoard events, samples/ and checkpoints/.
    """
    if steps is not None:
        options["steps"] = steps
    if seed is not None:
        options["seed"] = seed
    if resume:
        if out is None:
            raise JointKLError("resume needs the run directory: pass --out RUN (out=...)")
        return _resume(Path(out), options)
    cls = objectives.get(model)
    tcfg, mcfg = split_options(options, cls.Config, model)
    ds = _dataset(data)
    out = Path(out) if out is not None else Path("runs") / f"{model}-{ds.name}-seed{tcfg.seed}"
    _prepare_dir(out, force)
    meta = {"model": model, "data": ds.name, "data_shape": list(ds.shape), "data_kind": ds.kind,
            "train": to_dict(tcfg), "model_config": to_dict(mcfg)}
    (out / CONFIG).write_text(yaml.safe_dump(meta, sort_keys=False))
    torch.manual_seed(tcfg.seed)   # network initialization is part of the seeded run
    net = cls(mcfg, ds.shape, ds.kind)
    trained = Trainer(net, ds, tcfg, out).fit()
    trained.run_dir = out
    return trained


def _read_config(run: Path) -> dict:
    path = run / CONFIG
    if not path.exists():
        raise JointKLError(f"no run at {run}: {CONFIG} is missing; train one with `jointkl train MODEL --out {run}`")
    try:
        meta = yaml.safe_load(path.read_text())
        meta["model"], meta["train"], meta["model_config"]  # noqa: B018  (fail early on a truncated file)
    except (yaml.YAMLError, TypeError, KeyError):
        raise JointKLError(f"{path} is corrupt; retrain the run with --force")
    return meta


def _build(meta: dict) -> tuple[Objective, TrainConfig]:
    cls = objectives.get(meta["model"])
    net = cls(from_dict(cls.Config, meta["model_config"]), tuple(meta["data_shape"]), meta["data_kind"])
    return net, from_dict(TrainConfig, meta["train"])


def _resume(out: Path, options: dict) -> Objective:
    meta = _read_config(out)
    unknown = set(options) - {"steps"}
    if unknown:
        raise JointKLError(f"a resumed run keeps its config; only steps can change (got {', '.join(sorted(unknown))})")
    if "steps" in options:
        meta["train"]["steps"] = int(options["steps"])
        (out / CONFIG).write_text(yaml.safe_dump(meta, sort_keys=False))
    net, tcfg = _build(meta)
    ds = _dataset(meta["data"])
    trained = Trainer(net, ds, tcfg, out).fit(resume=True)
    trained.run_dir = out
    return trained


def load(run: str | Path, device: str = "auto") -> Objective:
    """The model of a run at its newest checkpoint that passes its checksums, in eval mode."""
    run = Path(run)
    meta = _read_config(run)
    net, _ = _build(meta)
    _, weights, _ = checkpoint.load_latest(run / "checkpoints", with_state=False)
    net.load_state_dict(weights)
    net.run_dir = run
    return net.to(resolve_device(device)).eval()
