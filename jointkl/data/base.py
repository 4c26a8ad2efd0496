"""The `Dataset` type, the registry of named sets, user arrays and files, and training-time preparation."""
from __future__ import annotations

from dataclasses import dataclass, field
import os
from typing import Callable

import numpy as np
import torch

from jointkl.data.stream import Reader, Streamed, Summary, float32_bytes, memory_limit
from jointkl.errors import JointKLError, one_line


@dataclass
class Dataset:
    name: str
    train: torch.Tensor | Streamed       # (N, *shape) float32; Streamed: read per batch (jointkl.data.stream)
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
    `Dataset` by `from_array` (last 10% of rows as test); a ``.npy`` is memory-mapped (`from_memmap`: streamed
    from the file when it is larger than `memory_limit()`). File data are re-read on every call.
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
        if not is_npz:     # mapped, not read: `from_memmap` reads it whole only when it fits the memory limit
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            with open(path, "rb") as f:  # our own handle, so a failed parse never leaks an open file
                arr = _npz_array(path, np.load(f, allow_pickle=False))
    except JointKLError:
        raise
    except Exception as e:  # corrupt header, truncated data, pickled objects, bad zip ...
        raise JointKLError(f"could not read data file {path!r} ({one_line(e)}); "
                           "re-save it with numpy.save / numpy.savez") from e
    return from_memmap(arr, name=stem) if isinstance(arr, np.memmap) else from_array(arr, name=stem)


def _npz_array(path: str, npz) -> np.ndarray:
    """The data array of an opened .npz: the one under key "x", or its only one."""
    with npz:
        keys = list(npz.keys())
        if "x" in keys:
            return npz["x"]
        if len(keys) == 1:
            return npz[keys[0]]
    raise JointKLError(f"data file {path!r} holds arrays {keys} and none is named 'x'; "
                       "save the data under key 'x' (numpy.savez(path, x=data))")


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


def from_memmap(a: np.ndarray, name: str = "array", test_fraction: float = 0.1, limit: int | None = None) -> Dataset:
    """A memory-mapped array (``np.load(path, mmap_mode="r")``, ``np.memmap``) as a `Dataset`, by `from_rows`: read
    into memory when it fits `limit`, else streamed from the file. Shapes and split as in `from_array`."""
    if a.dtype.kind not in "biuf":
        raise JointKLError(f"data must be numeric; got dtype {a.dtype}; convert it to float first")
    if a.ndim not in (2, 3, 4):
        raise JointKLError(f"data must have shape (N, D) or (N, C, H, W); got shape {tuple(a.shape)}")

    def read(rows: torch.Tensor) -> tuple[torch.Tensor, None]:
        return torch.from_numpy(np.asarray(a[rows.numpy()], dtype=np.float32)), None   # only these rows are read

    return from_rows(read, a.shape[0], tuple(a.shape[1:]), name, test_fraction, limit, source="memmap")


SCAN_BYTES = 64 * 2**20    # rows read at a time by the one scan of a streamed set


def from_rows(read: Reader, n: int, row_shape: tuple[int, ...], name: str, test_fraction: float = 0.1,
              limit: int | None = None, source: str = "rows") -> Dataset:
    """A `Dataset` of the `n` rows that `read` gives (rows (k,) int64 -> (x (k, *row_shape) float32, labels (k,) or
    None)). At most `limit` bytes as float32 (default `memory_limit()`): read once into memory through
    `from_array`. Larger: the training split is `Streamed` from `read`, after one scan of every row that finds the
    kind and range (as `from_array` does), checks the values and keeps the labels; the test split (the last rows,
    as in `from_array`) is read into memory, and must fit `limit` itself. Rows of shape (H, W) get a channel."""
    if len(row_shape) not in (1, 2, 3):
        raise JointKLError(f"data must have shape (N, D) or (N, C, H, W); got shape {(n, *row_shape)}")
    if n < 2:
        raise JointKLError(f"data has {n} row(s); need at least 2 (one for training, one for test)")
    if not (isinstance(test_fraction, (int, float)) and 0.0 < test_fraction < 1.0):
        raise JointKLError(f"test_fraction must be in (0, 1); got {test_fraction!r}")
    limit = memory_limit() if limit is None else limit
    if float32_bytes(n, row_shape) <= limit:
        x, y = read(torch.arange(n))
        out = from_array(x, name=name, test_fraction=test_fraction)
        if y is not None:
            out.train_labels, out.test_labels = y[:out.train.shape[0]].clone(), y[out.train.shape[0]:].clone()
        out.meta["source"] = source
        return out
    channel = len(row_shape) == 2                                   # (H, W) rows are images of one channel
    shape = (1, *row_shape) if channel else tuple(row_shape)

    def rows(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, y = read(idx)
        return (x.unsqueeze(1) if channel else x), y

    n_test = min(max(1, int(round(test_fraction * n))), n - 1)
    if float32_bytes(n_test, shape) > limit:
        raise JointKLError(f"{name}: its test split alone ({n_test} rows, {float32_bytes(n_test, shape) / 2**30:.3g} "
                           f"GiB as float32) is larger than the in-memory limit ({limit / 2**30:.3g} GiB); hold out "
                           "fewer rows (jointkl.data.from_object(data, test_fraction=0.01)) or raise "
                           "JOINTKL_IN_MEMORY_GB")
    summary, labels, step = Summary(), [], max(1, SCAN_BYTES // float32_bytes(1, shape))
    for a in range(0, n, step):
        x, y = rows(torch.arange(a, min(n, a + step)))
        summary.add(x)
        labels.append(y)
    y = None if labels[0] is None else torch.cat(labels)            # (n,) int64
    n_train = n - n_test
    test, _ = rows(torch.arange(n_train, n))
    train = Streamed(rows, n_train, shape, 0, summary.lo, summary.hi)
    return Dataset(name=name, train=train, test=test, kind=summary.kind(1 + len(shape)),
                   train_labels=None if y is None else y[:n_train], test_labels=None if y is None else y[n_train:],
                   meta={"source": source, "test_fraction": test_fraction, "streamed": True})


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
    if binarize == "fixed" and isinstance(ds.train, Streamed):
        raise JointKLError(f"binarize=fixed draws one binarization of the whole training set, and {ds.name} is "
                           "streamed, not held in memory; use binarize=dynamic, or binarize the data beforehand")
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
