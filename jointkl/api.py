"""The Python interface: `train` a registered model on a dataset into a run folder, `load` it back."""
from __future__ import annotations

import os
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
    if data is None:
        raise JointKLError("this run was trained on in-memory data, which is not stored with it; "
                           "pass the same data again (data=... in Python, --data FILE on the command line)")
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


def _data_ref(data) -> str | None:
    """What config.yaml records to find the data again: a registered name, an absolute file path, or
    None for in-memory arrays."""
    if isinstance(data, (str, Path)):
        return str(Path(data).resolve()) if str(data).lower().endswith((".npy", ".npz")) else str(data)
    return None


def train(model: str, data=None, steps: int | None = None, seed: int | None = None,
          out: str | Path | None = None, force: bool = False, resume: bool = False, **options) -> Objective:
    """Train `model` on `data` (a registered name, a .npy/.npz path, an array or a Dataset) and return it.

    `options` are fields of `TrainConfig` or of the model's config (e.g. latent_dim=8, lr=1e-3, reg=5).
    The run folder gets config.yaml, metrics.csv, TensorBoard events, samples/ and checkpoints/.
    Under torchrun every process calls it and they train data-parallel (jointkl.training.distributed).
    """
    if steps is not None:
        options["steps"] = steps
    if seed is not None:
        options["seed"] = seed
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        from jointkl.training import distributed      # one of torchrun's processes: join the others first
        return distributed.train(model, data=data, out=out, force=force, resume=resume, **options)
    if resume:
        if out is None:
            raise JointKLError("resume needs the run directory: pass --out RUN (out=...)")
        return _resume(Path(out), options, data)
    data = "grid25" if data is None else data
    cls = objectives.get(model)
    tcfg, mcfg = split_options(options, cls.Config, model)
    ds = _dataset(data)
    out = Path(out) if out is not None else Path("runs") / f"{model}-{ds.name}-seed{tcfg.seed}"
    torch.manual_seed(tcfg.seed)   # network initialization is part of the seeded run
    try:   # builds and validates model and trainer options before --force deletes anything
        net = cls(mcfg, ds.shape, ds.kind)
        trainer = Trainer(net, ds, tcfg, out)
    except (ValueError, RuntimeError) as e:   # e.g. an unknown loss name, a negative size, a negative lr
        msg, given = " ".join(str(e).split()), " ".join(f"{k}={v}" for k, v in options.items())
        raise JointKLError(f"invalid options for model {model} ({given or 'defaults'}): {msg}") from None
    _prepare_dir(out, force)
    meta = {"model": model, "data": _data_ref(data), "data_name": ds.name, "data_shape": list(ds.shape), "data_kind": ds.kind,
            "train": to_dict(tcfg), "model_config": to_dict(mcfg)}
    (out / CONFIG).write_text(yaml.safe_dump(meta, sort_keys=False))
    trained = trainer.fit()
    trained.run_dir = out
    return trained


def _read_config(run: Path) -> dict:
    path = run / CONFIG
    if not path.exists():
        raise JointKLError(f"no run at {run}: {CONFIG} is missing; train one with `jointkl train MODEL --out {run}`")
    try:
        meta = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError):
        meta = None
    # fail early on a truncated or hand-mangled file: every field `_build` reads, with its type
    ok = (isinstance(meta, dict) and isinstance(meta.get("model"), str) and isinstance(meta.get("data"), (str, type(None)))
          and isinstance(meta.get("data_shape"), list) and isinstance(meta.get("data_kind"), str)
          and isinstance(meta.get("train"), dict) and isinstance(meta.get("model_config"), dict))
    if not ok:
        raise JointKLError(f"{path} is corrupt; retrain the run with --force")
    return meta


def _build(meta: dict) -> tuple[Objective, TrainConfig]:
    cls = objectives.get(meta["model"])
    net = cls(from_dict(cls.Config, meta["model_config"]), tuple(meta["data_shape"]), meta["data_kind"])
    return net, from_dict(TrainConfig, meta["train"])


def _resume(out: Path, options: dict, data=None) -> Objective:
    meta = _read_config(out)
    unknown = set(options) - {"steps"}
    if unknown:
        raise JointKLError(f"a resumed run keeps its config; only steps can change (got {', '.join(sorted(unknown))})")
    if "steps" in options:
        meta["train"]["steps"] = int(options["steps"])
        (out / CONFIG).write_text(yaml.safe_dump(meta, sort_keys=False))
    net, tcfg = _build(meta)
    ds = _dataset(meta["data"] if data is None else data)
    trained = Trainer(net, ds, tcfg, out).fit(resume=True)
    trained.run_dir = out
    return trained


def load(run: str | Path, device: str = "auto", step: int | None = None) -> Objective:
    """The model of a run at its newest checkpoint that passes its checksums (or at `step`), in eval mode."""
    run = Path(run)
    meta = _read_config(run)
    net, _ = _build(meta)
    path, weights, _ = checkpoint.load_latest(run / "checkpoints", with_state=False, step=step)
    try:
        net.load_state_dict(weights)
    except RuntimeError:
        raise JointKLError(f"checkpoint {path} does not fit the model described in {run / CONFIG} "
                           "(was the config edited?); retrain the run with --force") from None
    net.run_dir = run
    return net.to(resolve_device(device)).eval()
