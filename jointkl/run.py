"""Building and launching a run: options → resolved config → model, prepared data, trainer, run folder.

The one place that turns a model name, a data reference and `key=value` options into a `Trainer`: used by
`jointkl.train` and `jointkl.load`, by the `jointkl` command, by every process of a torchrun launch and by
`jointkl reproduce` (its cache check and its time estimate). A run folder's `config.yaml` records what
`from_config` needs to build the same run again: the model, the data reference, the data's shape and kind,
and both resolved configs, with the marker `jointkl_run: 1` that tells the folder is a run.

The run folder has one writer: `train` holds an OS lock on `RUN/.lock` (which names its PID) from its first
look at the folder to its end, so a second train, resume or --force on it is refused; the OS drops the lock
when the process dies, however it dies. `--force` deletes only what jointkl writes in a run folder (and
refuses if anything else is there); it never empties the working directory or a folder holding it.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import yaml

from jointkl import data as datasets
from jointkl import objectives, presets, provenance
from jointkl.errors import JointKLError, one_line
from jointkl.objectives.base import Objective
from jointkl.objectives.registry import record
from jointkl.training import checkpoint, distributed
from jointkl.training.config import TrainConfig, from_dict, split_options, to_dict
from jointkl.training.trainer import Callback, Trainer, resolve_device

try:
    import fcntl
except ImportError:          # not POSIX: no lock (one writer is then the user's business)
    fcntl = None

CONFIG = "config.yaml"
DEFAULT_DATA = "grid25"
MARKER = "jointkl_run"       # config.yaml's `jointkl_run: 1`: the folder is a jointkl run
LOCK = ".lock"               # the writer's lock file, holding its PID
CKPTS = "checkpoints"
# What jointkl writes in a run folder, and nothing else is ever deleted by --force: top-level files (and the
# config.yaml temporary of an interrupted write), and per folder what may be inside it.
OWN_FILES = {CONFIG, "metrics.csv", "eval.json", "DIVERGED", LOCK}
OWN_TMP_FILE = re.compile(r"\.tmp-config\.yaml-\d+")
OWN_DIRS = {   # folder -> what may be in it (checkpoint folders are looked into as well, by `foreign`)
    CKPTS: lambda p: p.is_dir() and (checkpoint.STEP.fullmatch(p.name) or checkpoint.TMP.fullmatch(p.name)),
    "samples": lambda p: p.is_file() and re.fullmatch(r"step-\d{8}\.png", p.name),
    "tb": lambda p: p.is_file() and p.name.startswith("events.out.tfevents."),
}
CKPT_FILES = {*checkpoint.FILES, checkpoint.MANIFEST}


def dataset(data) -> datasets.Dataset:
    """A `Dataset` from a registered name, a .npy/.npz path, an array/tensor, a map-style torch Dataset, or a
    `jointkl.data.Dataset` (returned as is)."""
    if data is None:
        raise JointKLError("this run was trained on in-memory data, which is not stored with it; "
                           "pass the same data again (data=... in Python, --data FILE on the command line)")
    if isinstance(data, datasets.Dataset):
        return data
    if isinstance(data, (str, Path)):
        return datasets.load(str(data))
    return datasets.from_object(data)          # arrays, tensors, memory maps, torch Datasets


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
          and isinstance(meta.get("train"), dict) and isinstance(meta.get("model_config"), dict)
          and all(isinstance(meta.get(k), (str, type(None))) for k in ("module", "module_file")))
    if not ok:
        raise JointKLError(f"{path} is corrupt; retrain the run with --force")
    return meta


def from_config(meta: dict) -> tuple[Objective, TrainConfig]:
    """The model (freshly initialized) and trainer config a run's config.yaml describes. Both configs go through
    the options' validator (`from_dict`), so a hand-edited or tampered file (`latent_dim: -3`, `decoder: poisson`,
    a data shape that is no shape) is one `JointKLError` line, whether the run is opened by sample, eval or
    --resume. A user model is imported again from the module the run recorded (`module:`, `module_file:`)."""
    cls = objectives.get(meta["model"], meta.get("module"), meta.get("module_file"))
    try:
        shape = tuple(meta["data_shape"])
        if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 2 ** 31 for d in shape):
            raise JointKLError(f"data_shape {meta['data_shape']} is not a shape")
        mcfg, tcfg = from_dict(cls.Config, meta["model_config"]), from_dict(TrainConfig, meta["train"])
        net = cls(mcfg, shape, meta["data_kind"])
    except (JointKLError, ValueError, RuntimeError, TypeError, KeyError, IndexError) as e:
        msg = str(e) if isinstance(e, JointKLError) else " ".join(str(e).split())[:200]
        raise JointKLError(f"the run's {CONFIG} does not describe a model that can be built ({msg}); restore the "
                           "file, or retrain the run with --force") from None
    return net, tcfg


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
    meta = {MARKER: 1, "model": model, **record(model), "data": data_ref(data), "data_name": ds.name,
            "data_shape": list(ds.shape), "data_kind": ds.kind, "train": to_dict(tcfg), "model_config": to_dict(mcfg),
            "code": provenance.code()}           # what trained it (the results page prints it)
    return trainer, meta


def settings(model: str | None = None, data=None, options: dict | None = None, preset: str | None = None,
             config: str | Path | None = None, auto_preset: bool = False) -> tuple[str, object, dict, str | None]:
    """(model, data, options, preset name) of a new run, each source beating the one before: a settings file
    (`config`: a preset-format YAML file, or a run's own config.yaml), or a shipped preset (`preset`, or with
    `auto_preset` the one named MODEL/DATA when it exists), then `model`, `data` and `options` as given."""
    options = dict(options or {})
    if preset is not None and config is not None:
        raise JointKLError("pass --preset or --config, not both (a settings file may name its base preset)")
    base_model, base_data, base, name = None, None, {}, None
    if config is not None:
        base_model, base_data, base = _settings_file(Path(config))
    elif preset is not None:
        p = presets.get(preset)
        base_model, base_data, base, name = p.model, p.data, p.options, p.name
    model, data = model or base_model, data if data is not None else base_data
    if model is None:
        raise JointKLError("no model given: name one (jointkl train MODEL) or pass a --config/--preset that names one")
    if preset is not None and base_model is not None and model != base_model:
        raise JointKLError(f"preset {preset} is for model {base_model}; got model {model}. Drop one of them")
    if auto_preset and config is None and preset is None:
        found = presets.find(model, DEFAULT_DATA if data is None else data)
        if found is not None:
            base, name = found.options, found.name
    return model, data, {**base, **options}, name


def _settings_file(path: Path) -> tuple[str | None, object, dict]:
    """The model, data and options of a --config file: a run's config.yaml, or the presets' format."""
    if not path.is_file():
        raise JointKLError(f"no settings file at {path}; pass a YAML file (a run's config.yaml, or the format of "
                           "`jointkl train ... --print-config`)")
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        raw = None
    if isinstance(raw, dict) and ("model_config" in raw or "train" in raw):     # a run's own config.yaml
        meta = read_config(path.parent) if path.name == CONFIG else raw
        if not (isinstance(meta.get("train"), dict) and isinstance(meta.get("model_config"), dict)):
            raise JointKLError(f"{path} looks like a run's config.yaml but is corrupt; restore it")
        return meta.get("model"), meta.get("data"), {**meta["train"], **meta["model_config"]}
    p = presets.load_file(path)
    return p.model, p.data, p.options


def default_out(model: str, data, seed: int) -> Path:
    name = dataset(DEFAULT_DATA if data is None else data).name
    return Path("runs") / f"{model}-{name}-seed{seed}"


# ---- the run folder: what is jointkl's, one writer -----------------------------------------------------

def _entries(out: Path) -> list[Path]:
    """What is in `out` besides the lock file, sorted by name."""
    return sorted(p for p in out.iterdir() if p.name != LOCK) if out.is_dir() else []


def foreign(out: Path) -> Path | None:
    """The first thing in `out` that jointkl does not write into a run folder (None: everything is its own).
    Links count as foreign: --force never follows one."""
    for p in _entries(out):
        if p.is_symlink():
            return p
        if p.name in OWN_FILES or OWN_TMP_FILE.fullmatch(p.name):
            if not p.is_file():
                return p
            continue
        if p.name not in OWN_DIRS or not p.is_dir():
            return p
        for child in sorted(p.iterdir()):
            if child.is_symlink() or not OWN_DIRS[p.name](child):
                return child
            if p.name == CKPTS and checkpoint.STEP.fullmatch(child.name):   # a temporary may hold anything
                for f in sorted(child.iterdir()):
                    if f.is_symlink() or not f.is_file() or f.name not in CKPT_FILES:
                        return f
    return None


def is_run(out: Path) -> bool:
    """`out` is a jointkl run folder: its config.yaml carries the marker, or (a run from before the marker)
    it has a config.yaml and checkpoints/ in jointkl's step-NNNNNNNN layout."""
    cfg, ckpts = out / CONFIG, out / CKPTS
    if not cfg.is_file():
        return False
    try:
        meta = yaml.safe_load(cfg.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        meta = None
    if isinstance(meta, dict) and meta.get(MARKER) == 1:
        return True
    if not ckpts.is_dir() or ckpts.is_symlink():
        return False
    names = [p.name for p in ckpts.iterdir()]
    return (any(checkpoint.STEP.fullmatch(n) for n in names)
            and all(checkpoint.STEP.fullmatch(n) or checkpoint.TMP.fullmatch(n) for n in names))


def check_out(out: Path, force: bool) -> None:
    """Refuse, touching nothing, a folder a new run may not take: an existing non-empty one without `force`;
    with `force`, the working directory (or a folder holding it), a folder that is not a run, or a run with
    anything in it that jointkl did not write (named)."""
    if out.exists() and not out.is_dir():
        raise JointKLError(f"--out {out} is a file, not a folder; choose another --out")
    entries = _entries(out)
    if not entries:
        return
    if not force:
        raise JointKLError(f"run directory {out} already exists; pass --force (force=True) to overwrite it, "
                           "--resume to continue it, or choose another --out")
    here, target = Path.cwd().resolve(), out.resolve()
    if target == here or target in here.parents:
        where = "the working directory" if target == here else "a folder holding the working directory"
        raise JointKLError(f"refusing to empty {out}: it is {where}; --force never empties it, choose another --out")
    stray = foreign(out)
    if not is_run(out):
        raise JointKLError(f"{out} exists and is not a jointkl run; refusing to delete it ({stray or entries[0]} "
                           "would be lost), choose another --out")
    if stray is not None:
        raise JointKLError(f"refusing to delete run {out}: {stray} was not written by jointkl and would be lost; "
                           "move it out of the run folder, or choose another --out")


def prepare_dir(out: Path, force: bool) -> None:
    """An empty run folder at `out` (its lock file aside): a new or empty folder as it is; an existing run
    only with `force`, and then exactly jointkl's own entries are deleted (`check_out` says what is refused).
    Call it holding the folder (`hold`)."""
    check_out(out, force)
    for p in sorted(_entries(out), key=lambda p: p.name == CONFIG):   # config.yaml last: a run cleared half
        if p.is_dir() and not p.is_symlink():                          # way is still recognized as one
            shutil.rmtree(p)
        else:
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _holder(lock: Path) -> str:
    """The PID written in a lock file (its holder writes it just after taking the lock: wait a moment)."""
    for _ in range(50):
        try:
            text = lock.read_text().strip()
        except OSError:
            text = ""
        if text.isdigit():
            return text
        time.sleep(0.01)
    return "unknown"


@contextmanager
def hold(out: Path):
    """Be the run folder's one writer while inside: an OS lock on `out/.lock` (flock, dropped by the OS if
    the process dies), with this process's PID in the file. Another holder (another process, or another
    `hold` of this one): a `JointKLError` naming its PID. `out` must exist."""
    if fcntl is None:
        yield
        return
    lock = Path(out) / LOCK
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise _write_error(e, lock, "try again") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JointKLError(f"run {out} is in use by another jointkl process (pid {_holder(lock)}); wait for it to "
                           "finish or stop it, then try again") from None
    try:
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:
            raise _write_error(e, lock, "try again") from None
        yield
    finally:
        os.close(fd)                     # drops the lock; the file stays (removing it would race a newcomer)


def _write_error(e: BaseException, what: Path, then: str) -> JointKLError:
    """A failed write in the run folder as one line: what, why (disk full, no permission), what to do."""
    name = getattr(e, "filename", None)
    target = f"{name}" if name else f"to {what}"
    return JointKLError(f"could not write {target} ({checkpoint.write_error(e)}); free space or fix permissions, "
                        f"then {then}")


def _write_config(out: Path, meta: dict, then: str) -> None:
    """config.yaml, replaced whole (a crash leaves the old file or the new one)."""
    tmp = out / f".tmp-{CONFIG}-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(yaml.safe_dump(meta, sort_keys=False))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out / CONFIG)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise JointKLError(f"could not write {out / CONFIG} ({checkpoint.write_error(e)}); free space or fix "
                           f"permissions, then {then}") from None


def _clear_stale(out: Path) -> None:
    """What interrupted writers left: checkpoint temporaries and config.yaml temporaries (under the lock)."""
    checkpoint.remove_stale(out / CKPTS)
    for p in _entries(out):
        if OWN_TMP_FILE.fullmatch(p.name) and p.is_file() and not p.is_symlink():
            p.unlink()


def note(message: str) -> None:
    """A line for the user about what a run does (not an error): on stderr, from rank 0 only."""
    if distributed.context().main:
        print(f"jointkl: {message}", file=sys.stderr)


# ---- resuming ---------------------------------------------------------------------------------------------

def _check_data(out: Path, meta: dict, data) -> None:
    """Data passed to a resumed run must be the run's own (the same name or file; in memory, the same shape)."""
    if isinstance(data, (str, Path)):
        if data_ref(data) != meta["data"]:
            had = meta["data"] if meta["data"] is not None else "in-memory data"
            raise JointKLError(f"run {out} was trained on {had}; got --data {data}. A resumed run keeps its data: "
                               "drop --data, or train a new run into another --out")
        return
    ds = dataset(data)
    if list(ds.shape) != list(meta["data_shape"]) or ds.kind != meta["data_kind"]:
        raise JointKLError(f"run {out} was trained on {meta['data_kind']} data of shape {tuple(meta['data_shape'])}; "
                           f"got {ds.kind} data of shape {tuple(ds.shape)}. Pass the run's own data")


def _resume_plan(out: Path, model: str, data, options: dict) -> tuple[dict, int, int]:
    """(the run's config with its new steps, the step it restarts from, the step it trains to), after checking
    the request against the run: the same model, the same data, options equal to the run's own (steps may
    change, but not below the newest checkpoint's step)."""
    meta = read_config(out)
    if model is not None and meta["model"] != model:          # None: the run's own model
        raise JointKLError(f"run {out} is a {meta['model']} run; got model {model}. Resume it with `jointkl train "
                           f"{meta['model']} --out {out} --resume`, or train {model} into another --out")
    if data is not None:
        _check_data(out, meta, data)
    cls = objectives.get(meta["model"], meta.get("module"), meta.get("module_file"))
    old_t, old_m = from_dict(TrainConfig, meta["train"]), from_dict(cls.Config, meta["model_config"])
    new_t, new_m = split_options({**to_dict(old_m), **to_dict(old_t), **options}, cls.Config, meta["model"])
    for key in options:
        if key == "steps":
            continue
        old, new = (getattr(old_m, key), getattr(new_m, key)) if hasattr(old_m, key) else \
            (getattr(old_t, key), getattr(new_t, key))
        if old != new:
            raise JointKLError(f"run {out} was trained with {key}={old}; got {key}={new}. A resumed run keeps its "
                               f"options (only steps can change): drop {key}={new}, or train a new run into "
                               "another --out")
    ckpts = out / CKPTS
    good = checkpoint.newest(ckpts)
    if good is None and checkpoint.list_checkpoints(ckpts):
        checkpoint.load_latest(ckpts, with_state=False)        # says which are corrupt, and raises
    start, steps = (checkpoint.step_of(good) if good else 0), new_t.steps
    if steps < start:
        raise JointKLError(f"steps={steps} is below step {start} of the newest checkpoint of run {out}; pass "
                           f"--steps {start} or more (a run cannot be shortened; train a new one with --force)")
    meta = {MARKER: 1, **{k: v for k, v in meta.items() if k != MARKER}}
    meta["train"] = {**meta["train"], "steps": steps}
    return meta, start, steps


def _model_at(meta: dict, weights: dict, run: Path, device: str, path: Path | None = None) -> Objective:
    """The run's model with `weights` (from checkpoint `path`), in eval mode on `device`."""
    net, _ = from_config(meta)
    try:
        net.load_state_dict(weights)
    except RuntimeError:
        which = f"checkpoint {path}" if path is not None else f"the checkpoint of {run}"
        raise JointKLError(f"{which} does not fit the model described in {run / CONFIG} "
                           "(was the config edited?); retrain the run with --force") from None
    net.run_dir = run
    return net.to(resolve_device(device)).eval()


# ---- training ---------------------------------------------------------------------------------------------

class _Followers:
    """Rank 0's word to the other processes of a launch (none in one process): the run they build beside it,
    or why there is none."""

    def __init__(self, active: bool):
        self.active, self.sent = active, False

    def send(self, request: dict) -> None:
        if self.active:
            distributed.broadcast_object(request)
            self.sent = True

    def abort(self, message: str) -> None:
        if not self.active:
            return
        if self.sent:
            distributed.abort(message)         # they wait for the starting state (a no-op once it was sent)
        else:
            self.send({"abort": message})


def train(model: str | None, data=None, out: str | Path | None = None, force: bool = False, resume: bool = False,
          callbacks: tuple[Callback, ...] = (), progress: bool | None = None, preset: str | None = None,
          config: str | Path | None = None, auto_preset: bool = False, **options) -> Objective:
    """Train a new run into `out`, or resume it, holding the run folder as its one writer.

    A new run's model, data and options come from `settings` (a settings file or a preset, then what is given).

    In one process, or on rank 0 of several; the other ranks (see `launch`) build what rank 0 tells them and
    train beside it without touching the folder. Every refusal is a `JointKLError` before anything is written;
    a failed write (disk full, no permission) is one naming the file or folder."""
    ctx = distributed.context()
    if ctx.active:
        distributed.setup()                          # a new run's first message (the group itself is kept)
        if not ctx.main:
            return _follow(distributed.broadcast_object(), callbacks, progress)
    followers = _Followers(ctx.active)
    try:
        if resume and force:
            raise JointKLError("--resume continues a run and --force replaces it; pass one of them")
        if resume:
            if preset is not None or config is not None:
                raise JointKLError("a resumed run keeps its own settings; drop --preset/--config")
            return _resume(model, data, out, options, callbacks, progress, followers)
        model, data, options, chosen = settings(model, data, options, preset, config, auto_preset)
        return _new(model, data, out, force, options, callbacks, progress, followers, chosen)
    except BaseException as e:
        followers.abort(str(e) if isinstance(e, JointKLError) else f"process 0 stopped: {one_line(e)}")
        raise


def _new(model, data, out, force, options, callbacks, progress, followers: _Followers, chosen=None) -> Objective:
    seed = options.get("seed", TrainConfig.seed)
    out = Path(out) if out is not None else default_out(model, data, seed)
    trainer, meta = build(model, data, options, out, callbacks, progress)   # bad options: nothing written
    if chosen:                                                                # where the settings came from
        head = {k: v for k, v in meta.items() if k not in ("train", "model_config")}
        meta = {**head, "preset": chosen, "train": meta["train"], "model_config": meta["model_config"]}
    check_out(out, force)                                                     # nothing of a user's touched
    then = "run the command again"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _write_error(e, out, then) from None
    with hold(out):
        try:
            prepare_dir(out, force)                  # again under the lock: another writer may have come first
        except OSError as e:
            raise _write_error(e, out, then) from None
        if chosen:
            note(f"preset {chosen}: {presets.get(chosen).about} (options given here override it; --print-config "
                 "shows all)")
        followers.send({"model": model, "data": data, "out": out, "options": options, "meta": None, "resume": False})
        _write_config(out, meta, then)
        return _fit(trainer, out, resume=False)


def _resume(model, data, out, options, callbacks, progress, followers: _Followers) -> Objective:
    if out is None:
        raise JointKLError("resume needs the run directory: pass --out RUN (out=...)")
    out = Path(out)
    read_config(out)                                 # no run there: one error, nothing created
    then = "resume with --resume"
    with hold(out):
        try:
            _clear_stale(out)
        except OSError as e:
            raise _write_error(e, out, then) from None
        meta, start, steps = _resume_plan(out, model, data, options)
        tcfg = from_dict(TrainConfig, meta["train"])
        if start >= steps:
            _, weights, _ = checkpoint.load_latest(out / CKPTS, with_state=False)
            net = _model_at(meta, weights, out, tcfg.device)
            followers.send({"done": True, "meta": meta, "weights": weights, "out": out})
            note(f"run {out} is already trained to step {start}; raise --steps to train further")
            net.already_trained = True
            return net
        torch.manual_seed(tcfg.seed)                 # from step 0, the network starts as the new run's did
        net, tcfg = from_config(meta)
        trainer = trainer_for(net, dataset(meta["data"] if data is None else data), tcfg, out, callbacks, progress)
        followers.send({"model": meta["model"], "data": data, "out": out, "options": options, "meta": meta,
                        "resume": start > 0})
        if start == 0:
            note(f"run {out} stopped before its first checkpoint; training it from step 0")
        if meta != read_config(out):
            _write_config(out, meta, then)
        return _fit(trainer, out, resume=start > 0)


def _fit(trainer: Trainer, out: Path, resume: bool) -> Objective:
    """trainer.fit, with a failed write in the run folder (metrics, samples, TensorBoard) as one line."""
    try:
        trained = trainer.fit(resume=resume)
    except OSError as e:
        raise _write_error(e, out, "resume with --resume") from None
    trained.run_dir = out
    return trained


def launch(model: str | None, data=None, out: str | Path | None = None, force: bool = False, resume: bool = False,
           callbacks: tuple[Callback, ...] = (), progress: bool | None = None, preset: str | None = None,
           config: str | Path | None = None, auto_preset: bool = False, **options) -> Objective:
    """`train` on every process of a torchrun launch (one process: exactly `train`).

    Rank 0 trains as `train` does and alone touches the run folder: it takes the folder's lock, checks and
    prepares it, then sends the other ranks its request (its arguments, or the run's config when resuming),
    and they build the same model, data and trainer and train beside it. A refusal on rank 0 before training
    starts is sent to the others, so that every process stops with it instead of waiting. A process group the
    caller made is used as it is (every rank calls `train`)."""
    args = (model, data, out, force, resume, callbacks, progress, preset, config, auto_preset)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or torch.distributed.is_initialized():
        return train(*args, **options)
    distributed.setup()
    try:
        return train(*args, **options)
    finally:
        distributed.teardown()


def _follow(request: dict, callbacks: tuple[Callback, ...] = (), progress: bool | None = None) -> Objective:
    """A rank > 0: build what rank 0 builds from its request, then train beside it without writing anything
    (its own `callbacks` see its steps)."""
    if "abort" in request:
        raise JointKLError(request["abort"])
    meta, data, out = request["meta"], request["data"], request["out"]
    if request.get("done"):                                 # resumed at its last step: rank 0's weights
        return _model_at(meta, request["weights"], out, from_dict(TrainConfig, meta["train"]).device)
    try:
        if meta is not None:                                # resume: the run's own config, from rank 0
            net, tcfg = from_config(meta)
            trainer = trainer_for(net, dataset(meta["data"] if data is None else data), tcfg, out, callbacks, progress)
        else:                                               # as `build` makes it on rank 0; `out` is never written
            trainer, _ = build(request["model"], data, dict(request["options"]), out, callbacks, progress)
    except Exception as e:  # rank 0 met the same problem (bad options, missing data) and sends its word
        msg = distributed.start_message()
        raise JointKLError(msg.get("abort") or f"process {distributed.context().rank} could not build the run: {e}") \
            from None
    trained = trainer.fit(resume=request["resume"])
    trained.run_dir = out
    return trained


def load(run: str | Path, device: str = "auto", step: int | None = None) -> Objective:
    """The model of a run at its newest checkpoint that passes its checksums (or at `step`), in eval mode."""
    run = Path(run)
    meta = read_config(run)
    path, weights, _ = checkpoint.load_latest(run / CKPTS, with_state=False, step=step)
    net = _model_at(meta, weights, run, device, path)
    net.checkpoint_step = checkpoint.step_of(path)          # which weights these are (eval records it)
    return net


def matches(out: str | Path, model: str, data: str, options: dict) -> TrainConfig | None:
    """The resolved trainer config if the run folder `out` was trained with the same model, data and fully
    resolved options (defaults included; a config field added since counts as its default, which is what the
    run trained with); None otherwise (also for an unreadable config.yaml)."""
    cfg = Path(out) / CONFIG
    if not cfg.exists():
        return None
    try:
        meta = yaml.safe_load(cfg.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    if not isinstance(meta, dict):
        return None
    cls = objectives.get(model)
    tcfg, mcfg = split_options(dict(options), cls.Config, model)
    same = (meta.get("model") == model and meta.get("data") == data
            and {**to_dict(TrainConfig()), **(meta.get("train") or {})} == to_dict(tcfg)
            and {**to_dict(cls.Config()), **(meta.get("model_config") or {})} == to_dict(mcfg))
    return tcfg if same else None


def finished(out: str | Path, steps: int) -> bool:
    """The run folder holds its final checkpoint (step `steps`)."""
    return checkpoint.exists(Path(out) / CKPTS, steps)
