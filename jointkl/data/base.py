"""The `Dataset` type, the registry of named sets, user arrays and files, and training-time preparation."""
from __future__ import annotations

from dataclasses import dataclass, field
import os
from typing import Callable

import numpy as np
import torch

from jointkl.errors import JointKLError, one_line


@dataclass
class Dataset:
    name: str
    train: torch.Tensor                  # (N, *shape) float32
    test: torch.Tensor                   # (M, *shape) float32
    kind: str                            # "continuous" | "binary" | "image" (values in [0, 1])
    train_labels: torch.Tensor | None = None   # (N,) int64 where the set has labels
    test_labels: torch.Tensor | None = None
    meta: dict = field(default_factory=dict)   # e.g. mixture "means" (K, D) and "std" for toy sets

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.train.shape[1:])

    @property
    def dim(self) -> int:
        return int(torch.Size(self.shape).numel())


DATASETS: dict[str, Callable[[], Dataset]] = {}
DESCRIPTIONS: dict[str, str] = {}


def register(name: str, description: str):
    def deco(fn: Callable[[], Dataset]):
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} registered twice")
        DATASETS[name] = fn
        DESCRIPTIONS[name] = description
        return fn
    return deco


_CACHE: dict[str, Dataset] = {}


def load(name: str) -> Dataset:
    """The registered data set ``name`` (cached), or the array stored in a ``.npy`` / ``.npz`` file.

    A name ending in ``.npy`` or ``.npz`` is read as a file path (``np.load`` with ``allow_pickle=False``;
    an ``.npz`` must hold its array under key ``"x"`` or hold exactly one array) and turned into a
    `Dataset` by `from_array` (last 10% of rows as test). File data are re-read on every call.
    """
    if name.lower().endswith((".npy", ".npz")):
        return _load_file(name)
    if name not in DATASETS:
        hint = ""
        if os.path.isfile(name):
            hint = f"; {name!r} is a file but only .npy/.npz files are read: save it with numpy.save"
        raise JointKLError(f"unknown data {name!r}; choose one of: {', '.join(sorted(DATASETS))}, "
                           f"or give a path to a .npy/.npz file{hint}")
    if name not in _CACHE:
        _CACHE[name] = DATASETS[name]()
    return _CACHE[name]


def clear_cache() -> None:
    """Forget the registered sets loaded so far (the next `load` builds them again)."""
    _CACHE.clear()


def _load_file(path: str) -> Dataset:
    if not os.path.isfile(path):
        raise JointKLError(f"data file {path!r} not found (working directory {os.getcwd()}); "
                           "check the path or give a registered data set name")
    stem = os.path.splitext(os.path.basename(path))[0] or "array"
    is_npz = path.lower().endswith(".npz")
    magic, what = (b"PK", "a zip archive (.npz)") if is_npz else (b"\x93NUMPY", "a .npy file")
    try:
        with open(path, "rb") as f:
            head = f.read(len(magic))
    except OSError as e:
        raise JointKLError(f"could not read data file {path!r} ({one_line(e)}); check its permissions") from e
    if head != magic:
        raise JointKLError(f"could not read data file {path!r}: it is not {what} (wrong header); "
                           "re-save it with numpy.save / numpy.savez")
    try:
        with open(path, "rb") as f:  # our own handle, so a failed parse never leaks an open file
            obj = np.load(f, allow_pickle=False)
            if isinstance(obj, np.lib.npyio.NpzFile):
                with obj:
                    keys = list(obj.keys())
                    if "x" in keys:
                        arr = obj["x"]
                    elif len(keys) == 1:
                        arr = obj[keys[0]]
                    else:
                        raise JointKLError(f"data file {path!r} holds arrays {keys} and none is named 'x'; "
                                           "save the data under key 'x' (numpy.savez(path, x=data))")
            else:
                arr = obj
    except JointKLError:
        raise
    except Exception as e:  # corrupt header, truncated data, pickled objects, bad zip ...
        raise JointKLError(f"could not read data file {path!r} ({one_line(e)}); "
                           "re-save it with numpy.save / numpy.savez") from e
    return from_array(arr, name=stem)


def from_array(x, name: str = "array", test_fraction: float = 0.1) -> Dataset:
    """Wrap user data (numpy array or tensor) as a `Dataset`.

    Shapes: (N, D) vectors, (N, C, H, W) images, or (N, H, W) images (a channel dim is added → (N, 1, H, W)).
    Values are converted to float32 (a copy; the input is not shared).

    Kind: ``"binary"`` if every value is 0 or 1; else ``"image"`` if the data are 4-d with all values in
    [0, 1]; else ``"continuous"``.

    Split: no shuffling. The last ``n_test = max(1, round(test_fraction * N))`` rows (at most N - 1) are
    the test set, the first ``N - n_test`` rows the training set; shuffle beforehand if the rows are
    ordered. No labels.

    Raises `JointKLError` (one line) for a non-numeric array, a wrong number of dims, NaN/Inf values,
    fewer than 2 rows, or a ``test_fraction`` outside (0, 1).
    """
    if isinstance(x, torch.Tensor):
        t = x.detach().to("cpu")
        if t.is_complex():
            raise JointKLError(f"data must be real numbers; got dtype {t.dtype}; pass a real-valued array")
        t = t.to(torch.float32).clone()
    else:
        try:
            a = np.asarray(x)
        except Exception as e:
            raise JointKLError(f"could not convert data to an array ({one_line(e)}); "
                               "pass a numpy array or torch tensor") from e
        if a.dtype.kind not in "biuf":
            raise JointKLError(f"data must be numeric; got dtype {a.dtype}; convert it to float first")
        t = torch.from_numpy(np.array(a, dtype=np.float32, copy=True))
    if t.dim() not in (2, 3, 4):
        raise JointKLError(f"data must have shape (N, D) or (N, C, H, W); got shape {tuple(t.shape)}")
    if t.dim() == 3:
        t = t.unsqueeze(1)
    n = t.shape[0]
    if n < 2:
        raise JointKLError(f"data has {n} row(s); need at least 2 (one for training, one for test)")
    if not (isinstance(test_fraction, (int, float)) and 0.0 < test_fraction < 1.0):
        raise JointKLError(f"test_fraction must be in (0, 1); got {test_fraction!r}")
    bad = ~torch.isfinite(t)
    n_bad = int(bad.sum())
    if n_bad:
        first = int(bad.reshape(n, -1).any(dim=1).nonzero()[0, 0])
        raise JointKLError(f"data contains {n_bad} NaN/Inf values (first at row {first}); clean or drop them")
    if bool(((t == 0) | (t == 1)).all()):
        kind = "binary"
    elif t.dim() == 4 and float(t.min()) >= 0.0 and float(t.max()) <= 1.0:
        kind = "image"
    else:
        kind = "continuous"
    n_test = min(max(1, int(round(test_fraction * n))), n - 1)
    return Dataset(name=name, train=t[: n - n_test].clone(), test=t[n - n_test:].clone(), kind=kind,
                   meta={"source": "array", "test_fraction": test_fraction})


def binarize_fixed(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """One Bernoulli draw per pixel, ``b ~ Bernoulli(x)``, from a local generator seeded with ``seed``.

    This is the "fixed binarization" protocol (e.g. statically binarized MNIST): binarize a split once
    and keep the result for all of training/evaluation, as opposed to dynamic binarization (a fresh
    draw each batch). ``x`` must hold probabilities in [0, 1]; the result is float32 0/1 with the same
    shape and device. Deterministic for a given (x, seed) and independent of the global RNG.
    """
    if not torch.is_floating_point(x):
        x = x.float()
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0 or not bool(torch.isfinite(x).all())):
        raise JointKLError("binarize_fixed needs values in [0, 1]; scale the data to [0, 1] first")
    g = torch.Generator().manual_seed(int(seed))
    b = torch.bernoulli(x.detach().to("cpu", torch.float32), generator=g)
    return b.to(x.device)


BINARIZE = ("none", "fixed", "dynamic")


def prepare(ds: Dataset, binarize: str = "none", fraction: float = 1.0, labelled: float = 1.0, seed: int = 0,
            needs_labels: bool = False, who: str = "this model") -> Dataset:
    """The training split a run trains on: `binarize="fixed"` draws one binarization (seed 0), `fraction` keeps
    the first fraction of the (already shuffled) rows, and a labelled model (`needs_labels`) keeps a
    class-balanced `labelled` fraction of its labels (the rest become -1, chosen by `seed`). `binarize="dynamic"`
    is a per-batch draw and stays with the trainer. The result records its settings in `meta["prepared"]`."""
    if binarize not in BINARIZE:
        raise JointKLError(f"binarize={binarize!r} is not known; choose none, fixed or dynamic")
    x = binarize_fixed(ds.train) if binarize == "fixed" else ds.train
    n = max(1, round(fraction * x.shape[0]))                         # the splits are already shuffled
    y = None
    if needs_labels:
        if ds.train_labels is None:
            raise JointKLError(f"model {who} needs labelled data and {ds.name} has no labels; "
                               "use digits, mnist5k, grid25, mnist, svhn or cifar10")
        y = keep_labels(ds.train_labels[:n], labelled, seed)
    meta = {**ds.meta, "prepared": prepared_key(binarize, fraction, labelled, seed, needs_labels)}
    return Dataset(ds.name, x[:n], ds.test, ds.kind, y, ds.test_labels, meta)


def prepared_key(binarize: str, fraction: float, labelled: float, seed: int, needs_labels: bool) -> tuple:
    """What `prepare` does to a split with these settings (the trainer checks its data against its config);
    `UNPREPARED` for settings that change nothing."""
    masked = needs_labels and labelled < 1.0
    return (binarize == "fixed", float(fraction), float(labelled) if masked else 1.0, seed if masked else None)


UNPREPARED = (False, 1.0, 1.0, None)


def keep_labels(y: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Labels with all but a class-balanced `fraction` per class set to -1 (which rows: fixed by `seed`)."""
    if fraction >= 1.0:
        return y.clone()
    g, out = torch.Generator().manual_seed(seed), torch.full_like(y, -1)
    for c in y[y >= 0].unique():
        rows = (y == c).nonzero().squeeze(1)
        keep = rows[torch.randperm(len(rows), generator=g)[:max(1, round(fraction * len(rows)))]]
        out[keep] = c
    return out
