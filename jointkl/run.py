"""Building and launching a run: options → resolved config → model, prepared data, trainer, run folder.

The one place that turns a model name, a data reference and `key=value` options into a `Trainer`: used by
`jointkl.train` and `jointkl.load`, by the `jointkl` command, by every process of a torchrun launch and by
`jointkl reproduce` (its cache check and its time estimate). A run folder's `config.yaml` records what
`from_config` needs to build the same run again: the model, the data reference, the data's shape and kind,
and both resolved configs.
"""
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
from jointkl.training import checkpoint, distributed
from jointkl.training.config import TrainConfig, from_dict, split_options, to_dict
from jointkl.training.trainer import Callback, Trainer, resolve_device

CONFIG = "config.yaml"
DEFAULT_DATA = "grid25"


def dataset(data) -> datasets.Dataset:
    """A `Dataset` from a registered name, a .npy/.npz path, an array/tensor, or a `Dataset` (returned as is)."""
    if data is None:
        raise JointKLError("this run was trained on in-memory data, which is not stored with it; "
                           "pass the same data again (data=... in Python, --data FILE on the command line)")
    if isinstance(data, datasets.Dataset):
        return data
    if isinstance(data, (str, Path)):
        return datasets.load(str(data))
    return datasets.from_array(data)


def data_ref(data) -> str | None:
    """What config.yaml records to find the data again: a registered name, an absolute file path, or
    None for in-memory arrays."""
    if isinstance(data, (str, Path)):
        return str(Path(data).resolve()) if str(data).lower().endswith((".npy", ".npz")) else str(data)
    return None


def read_config(run: str | Path) -> dict:
    """A run folder's config.yaml, checked field by field (a truncated or hand-mangled file is one error)."""
    path = Path(run) / CONFIG
    if not path.exists():
        raise JointKLError(f"no run at {run}: {CONFIG} is missing; train one with `jointkl train MODEL --out {run}`")
    try:
        meta = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError):
        meta = None
    ok = (isinstance(meta, dict) and isinstance(meta.get("model"), str) and isinstance(meta.get("data"), (str, type(None)))
          and isinstance(meta.get("data_shape"), list) and isinstance(meta.get("data_kind"), str)
          and isinstance(meta.get("train"), dict) and isinstance(meta.get("model_config"), dict))
    if not ok:
        raise JointKLError(f"{path} is corrupt; retrain the run with --force")
    return meta


def from_config(meta: dict) -> tuple[Objective, TrainConfig]:
    """The model (freshly initialized) and trainer config a run's config.yaml describes."""
    cls = objectives.get(meta["model"])
    net = cls(from_dict(cls.Config, meta["model_config"]), tuple(meta["data_shape"]), meta["data_kind"])
    return net, from_dict(TrainConfig, meta["train"])


def trainer_for(net: Objective, ds: datasets.Dataset, tcfg: TrainConfig, out: str | Path | None,
                callbacks: tuple[Callback, ...] = (), progress: bool | None = None) -> Trainer:
    """A trainer for `net` on `ds` prepared as `tcfg` asks (fixed binarization, train fraction, label mask)."""
    prepared = datasets.prepare(ds, tcfg.binarize, tcfg.train_fraction, tcfg.labelled, tcfg.seed, net.labels, net.name)
    return Trainer(net, prepared, tcfg, out, callbacks=callbacks, progress=progress)


def build(model: str, data=None, options: dict | None = None, out: str | Path | None = None,
          callbacks: tuple[Callback, ...] = (), progress: bool | None = None) -> tuple[Trainer, dict]:
    """A new run's trainer and the config.yaml it records; the network is initialized from the run's seed.
    Bad options (types, ranges, names the model rejects) are one `JointKLError` here, before anything is written."""
    options = dict(options or {})
    data = DEFAULT_DATA if data is None else data
    cls = objectives.get(model)
    tcfg, mcfg = split_options(options, cls.Config, model)
    ds = dataset(data)
    torch.manual_seed(tcfg.seed)   # network initialization is part of the seeded run
    try:
        trainer = trainer_for(cls(mcfg, ds.shape, ds.kind), ds, tcfg, out, callbacks, progress)
    except (ValueError, RuntimeError) as e:   # e.g. an unknown loss name, a negative size, a negative lr
        msg, given = " ".join(str(e).split()), " ".join(f"{k}={v}" for k, v in options.items())
        raise JointKLError(f"invalid options for model {model} ({given or 'defaults'}): {msg}") from None
    meta = {"model": model, "data": data_ref(data), "data_name": ds.name, "data_shape": list(ds.shape),
            "data_kind": ds.kind, "train": to_dict(tcfg), "model_config": to_dict(mcfg)}
    return trainer, meta


def default_out(model: str, data, seed: int) -> Path:
    name = dataset(DEFAULT_DATA if data is None else data).name
    return Path("runs") / f"{model}-{name}-seed{seed}"


def prepare_dir(out: Path, force: bool) -> None:
    """An empty run folder at `out`; an existing non-empty one only with `force`, and only if it is a run."""
    if out.exists() and any(out.iterdir()):
        if not force:
            raise JointKLError(f"run directory {out} already exists; pass --force (force=True) to overwrite it, "
                               "--resume to continue it, or choose another --out")
        if not (out / CONFIG).exists() and not (out / "checkpoints").exists():
            raise JointKLError(f"{out} exists and is not a jointkl run; refusing to delete it, choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _resume_config(out: Path, options: dict) -> dict:
    """The run's config.yaml with a raised `steps`, the only option a resumed run may change."""
    meta = read_config(out)
    unknown = set(options) - {"steps"}
    if unknown:
        raise JointKLError(f"a resumed run keeps its config; only steps can change (got {', '.join(sorted(unknown))})")
    if "steps" in options:
        meta["train"]["steps"] = int(options["steps"])
    return meta


def train(model: str, data=None, out: str | Path | None = None, force: bool = False, resume: bool = False,
          callbacks: tuple[Callback, ...] = (), progress: bool | None = None, **options) -> Objective:
    """Train in this process (one process, or rank 0 of a launch): a new run into `out`, or resume it."""
    if resume:
        if out is None:
            raise JointKLError("resume needs the run directory: pass --out RUN (out=...)")
        out = Path(out)
        meta = _resume_config(out, options)
        (out / CONFIG).write_text(yaml.safe_dump(meta, sort_keys=False))
        net, tcfg = from_config(meta)
        trainer = trainer_for(net, dataset(meta["data"] if data is None else data), tcfg, out, callbacks, progress)
    else:
        seed = options.get("seed", TrainConfig.seed)
        out = Path(out) if out is not None else default_out(model, data, seed)
        trainer, meta = build(model, data, options, out, callbacks, progress)
        prepare_dir(out, force)
        (out / CONFIG).write_text(yaml.safe_dump(meta, sort_keys=False))
    trained = trainer.fit(resume=resume)
    trained.run_dir = out
    return trained


def launch(model: str, data=None, out: str | Path | None = None, force: bool = False, resume: bool = False,
           callbacks: tuple[Callback, ...] = (), progress: bool | None = None, **options) -> Objective:
    """`train` on every process of a torchrun launch (one process: exactly `train`).

    Rank 0 trains as `train` does and alone touches the run folder; every other rank builds the same model,
    data and trainer from rank 0's request (its arguments, and the run's config when resuming, read by rank 0
    before it rewrites it) and trains beside it. An error on rank 0 before training starts is sent to the
    others, so that every process stops with it instead of waiting."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or torch.distributed.is_initialized():
        return train(model, data, out, force, resume, callbacks, progress, **options)
    ctx = distributed.setup()
    try:
        if not ctx.main:
            return _follow(distributed.broadcast_object())
        try:
            meta = _resume_config(Path(out), options) if resume and out is not None else None
            distributed.broadcast_object({"model": model, "data": data, "out": out, "options": options, "meta": meta})
            return train(model, data, out, force, resume, callbacks, progress, **options)
        except JointKLError as e:
            distributed.abort(str(e))
            raise
    finally:
        distributed.teardown()


def _follow(request: dict) -> Objective:
    """A rank > 0: build what rank 0 builds from its request, then train without writing anything."""
    if "abort" in request:
        raise JointKLError(request["abort"])
    meta, data = request["meta"], request["data"]
    try:
        if meta is not None:                                # resume: the run's own config, from rank 0
            net, tcfg = from_config(meta)
            out = request["out"]
            trainer = trainer_for(net, dataset(meta["data"] if data is None else data), tcfg, out)
        else:                                               # as `build` makes it on rank 0
            options = dict(request["options"])
            out = request["out"] or default_out(request["model"], data, options.get("seed", TrainConfig.seed))
            trainer, _ = build(request["model"], data, options, out)   # `out` is never written by this rank
    except Exception as e:  # rank 0 met the same problem (bad options, missing data) and sends its word
        msg = distributed.start_message()
        raise JointKLError(msg.get("abort") or f"process {distributed.context().rank} could not build the run: {e}") \
            from None
    trained = trainer.fit(resume=meta is not None)
    trained.run_dir = out
    return trained


def load(run: str | Path, device: str = "auto", step: int | None = None) -> Objective:
    """The model of a run at its newest checkpoint that passes its checksums (or at `step`), in eval mode."""
    run = Path(run)
    net, _ = from_config(read_config(run))
    path, weights, _ = checkpoint.load_latest(run / "checkpoints", with_state=False, step=step)
    try:
        net.load_state_dict(weights)
    except RuntimeError:
        raise JointKLError(f"checkpoint {path} does not fit the model described in {run / CONFIG} "
                           "(was the config edited?); retrain the run with --force") from None
    net.run_dir = run
    return net.to(resolve_device(device)).eval()


def matches(out: str | Path, model: str, data: str, options: dict) -> TrainConfig | None:
    """The resolved trainer config if the run folder `out` was trained with the same model, data and fully
    resolved options (defaults included; a config field added since counts as its default, which is what the
    run trained with); None otherwise."""
    cfg = Path(out) / CONFIG
    if not cfg.exists():
        return None
    meta = yaml.safe_load(cfg.read_text())
    cls = objectives.get(model)
    tcfg, mcfg = split_options(dict(options), cls.Config, model)
    same = (meta.get("model") == model and meta.get("data") == data
            and {**to_dict(TrainConfig()), **meta.get("train", {})} == to_dict(tcfg)
            and {**to_dict(cls.Config()), **meta.get("model_config", {})} == to_dict(mcfg))
    return tcfg if same else None


def finished(out: str | Path, steps: int) -> bool:
    """The run folder holds its final checkpoint (step `steps`)."""
    return checkpoint.exists(Path(out) / "checkpoints", steps)
