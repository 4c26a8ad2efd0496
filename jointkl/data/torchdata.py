"""A map-style `torch.utils.data.Dataset` as a jointkl `Dataset`, with its class labels where its items carry them:
read once into one float32 tensor (the trainer's fast in-memory path) when it fits the memory limit, else streamed
from the Dataset batch by batch (`jointkl.data.stream`: the same batches, bitwise, in the same seeded order).

Items: a tensor or array `x`, or a tuple / list `(x,)` or `(x, y)` with `y` a whole-number class label. A
`TensorDataset` (and a `Subset` of one) is read from its tensors directly, any other map-style set item by item.
Shapes as in `from_array`: items of shape (D,) are vectors, (H, W) or (C, H, W) images; the last 10% of the items
are the test set. An `IterableDataset` (no index to draw batches by) and anything unreadable are one
`JointKLError` line.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset, IterableDataset, Subset, TensorDataset

from jointkl.data.base import Dataset, from_array, from_memmap, from_rows
from jointkl.data.stream import Reader
from jointkl.errors import JointKLError, one_line


def is_torch_dataset(data) -> bool:
    """Whether `data` is a torch Dataset (map-style or iterable), which `from_object` reads with `from_torch`."""
    return isinstance(data, (TorchDataset, IterableDataset))


def from_object(data, name: str | None = None, test_fraction: float = 0.1, limit: int | None = None) -> Dataset:
    """User data as a `Dataset`: a torch Dataset through `from_torch` and a memory-mapped array (`np.memmap`,
    `np.load(path, mmap_mode="r")`) through `from_memmap`, both streamed when larger than `limit` bytes as float32
    (default `jointkl.data.stream.memory_limit()`); an in-memory array or tensor through `from_array`."""
    if is_torch_dataset(data):
        return from_torch(data, name, test_fraction, limit)
    if isinstance(data, np.memmap):
        return from_memmap(data, name or "array", test_fraction, limit)
    return from_array(data, name=name or "array", test_fraction=test_fraction)


def from_torch(ds, name: str | None = None, test_fraction: float = 0.1, limit: int | None = None) -> Dataset:
    """A map-style torch Dataset (`len(ds)`, `ds[i]`) as a `Dataset`; see the module's docstring."""
    name = name or type(ds).__name__
    if isinstance(ds, IterableDataset):
        raise JointKLError(f"{name} is an IterableDataset, which jointkl cannot index; pass a map-style Dataset "
                           "(len and [i]) or the data as one array")
    if not is_torch_dataset(ds):
        raise JointKLError(f"expected a torch.utils.data.Dataset; got {type(ds).__name__}")
    base = ds.dataset if isinstance(ds, Subset) else ds
    read, n, row_shape = (_tensor_reader if isinstance(base, TensorDataset) else _item_reader)(ds, name)
    return from_rows(read, n, row_shape, name, test_fraction, limit, source="torch")


def _tensor_reader(ds, name: str) -> tuple[Reader, int, tuple[int, ...]]:
    """Rows of a TensorDataset (or a Subset of one), read from its tensors."""
    base, index = ds, None
    if isinstance(ds, Subset):
        base, index = ds.dataset, torch.as_tensor(list(ds.indices), dtype=torch.long)
    ts = base.tensors
    if len(ts) not in (1, 2):
        raise JointKLError(f"{name} holds {len(ts)} tensors; pass TensorDataset(x) or TensorDataset(x, labels)")
    x = ts[0].detach().to("cpu")
    if x.is_complex():
        raise JointKLError(f"data must be real numbers; got dtype {x.dtype}; pass a real-valued array")
    y = _labels(ts[1], name) if len(ts) == 2 else None
    if index is not None:
        if index.numel() and not (-len(x) <= int(index.min()) and int(index.max()) < len(x)):
            raise JointKLError(f"{name} is a Subset whose indices do not fit its data (indices "
                               f"{int(index.min())}..{int(index.max())}, {len(x)} rows)")
        index = index % len(x) if len(x) else index                 # Python's negative indices count from the end

    def read(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        rows = rows if index is None else index[rows]
        return x.index_select(0, rows).to(torch.float32), (None if y is None else y[rows])

    return read, len(x) if index is None else len(index), tuple(x.shape[1:])


def _item_reader(ds, name: str) -> tuple[Reader, int, tuple[int, ...]]:
    """Rows of a map-style set, read item by item; every item is checked against item 0 (its shape, its label)."""
    try:
        n = len(ds)
    except Exception as e:   # noqa: BLE001  (a user's __len__ raises what it raises)
        raise JointKLError(f"{name} has no length ({one_line(e)}); pass a map-style Dataset (len and [i]) "
                           "or the data as one array") from None
    if n < 2:
        raise JointKLError(f"{name} has {n} item(s); need at least 2 (one for training, one for test)")
    x0, y0 = _item(ds, 0, name)
    shape, labelled = tuple(x0.shape), y0 is not None

    def read(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        try:
            x = torch.empty((len(rows), *shape), dtype=torch.float32)
        except RuntimeError:
            gb = len(rows) * math.prod(shape) * 4 / 2**30
            raise JointKLError(f"{name} ({len(rows)} items of shape {shape}, {gb:.3g} GiB as float32) does not fit "
                               "in memory; lower JOINTKL_IN_MEMORY_GB so that it is streamed") from None
        ys = torch.empty(len(rows), dtype=torch.long) if labelled else None
        for j, i in enumerate(rows.tolist()):
            xi, yi = _item(ds, i, name)
            if tuple(xi.shape) != shape:
                raise JointKLError(f"item {i} of {name} has shape {tuple(xi.shape)}, item 0 {shape}; "
                                   "every item must have the same shape")
            if (yi is not None) != labelled:
                raise JointKLError(f"item {i} of {name} {'has' if yi is not None else 'has no'} label and item 0 "
                                   f"{'has' if labelled else 'has no'}; give every item a label or none")
            x[j] = xi
            if ys is not None:
                ys[j] = yi
        return x, ys

    return read, n, shape


def _item(ds, i: int, name: str) -> tuple[torch.Tensor, int | None]:
    """(x as a float32 tensor, its class label or None) of item i."""
    try:
        item = ds[i]
    except Exception as e:   # noqa: BLE001
        raise JointKLError(f"could not read item {i} of {name} ({one_line(e)})") from None
    if isinstance(item, (tuple, list)):
        if len(item) not in (1, 2):
            raise JointKLError(f"item {i} of {name} has {len(item)} elements; items must be x or (x, label)")
        xi, yi = item[0], (item[1] if len(item) == 2 else None)
    elif isinstance(item, dict):
        raise JointKLError(f"item {i} of {name} is a dict (keys {list(item)[:4]}); items must be x or (x, label)")
    else:
        xi, yi = item, None
    return _values(xi, i, name), (None if yi is None else _label(yi, i, name))


def _values(xi, i: int, name: str) -> torch.Tensor:
    if isinstance(xi, torch.Tensor):
        t = xi.detach()
    else:
        if type(xi).__module__.startswith("PIL."):
            raise JointKLError(f"item {i} of {name} is a PIL image; give the dataset a tensor transform "
                               "(e.g. torchvision.transforms.ToTensor()) so that its items are tensors")
        try:
            a = np.asarray(xi)
        except Exception as e:   # noqa: BLE001
            raise JointKLError(f"item {i} of {name} is not an array ({one_line(e)}); items must be tensors or "
                               "numeric arrays") from None
        if a.dtype.kind not in "biuf":
            raise JointKLError(f"item {i} of {name} is not numeric (a {type(xi).__name__} of dtype {a.dtype}); items "
                               "must be tensors or numeric arrays")
        t = torch.from_numpy(np.array(a, dtype=np.float32))
    if t.is_complex() or not (t.is_floating_point() or t.dtype in _WHOLE):
        raise JointKLError(f"item {i} of {name} has dtype {t.dtype}; items must hold real numbers")
    if t.dim() not in (1, 2, 3):
        raise JointKLError(f"item {i} of {name} has shape {tuple(t.shape)}; an item must be a vector (D,) or an "
                           "image (H, W) or (C, H, W)")
    return t.to("cpu", torch.float32)


_WHOLE = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _label(yi, i: int, name: str) -> int:
    """Item i's label as an int class index."""
    if isinstance(yi, (torch.Tensor, np.ndarray)):
        if (yi.numel() if isinstance(yi, torch.Tensor) else yi.size) != 1:
            raise JointKLError(f"the label of item {i} of {name} has shape {tuple(yi.shape)}; a label is one class "
                               "index")
        yi = yi.item()
    if isinstance(yi, np.generic):
        yi = yi.item()
    if (isinstance(yi, bool) or not isinstance(yi, numbers.Real) or not math.isfinite(yi) or yi != int(yi)
            or yi < 0):
        raise JointKLError(f"the label of item {i} of {name} is {_shown(yi)}; a label is a class index, a whole "
                           "number >= 0")
    return int(yi)


def _shown(v) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _labels(y: torch.Tensor, name: str) -> torch.Tensor:
    """A TensorDataset's labels tensor as (N,) int64 class indices."""
    y = y.detach().to("cpu")
    if y.dim() == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dim() != 1:
        raise JointKLError(f"the labels of {name} have shape {tuple(y.shape)}; labels are one class index per row, "
                           "shape (N,)")
    if y.is_complex() or y.dtype == torch.bool:
        raise JointKLError(f"the labels of {name} have dtype {y.dtype}; labels are class indices, whole numbers >= 0")
    if y.numel() and (bool((y != y.round()).any()) if y.is_floating_point() else False):
        raise JointKLError(f"the labels of {name} are not whole numbers; labels are class indices (0, 1, ...)")
    if y.numel() and (not bool(torch.isfinite(y.double()).all()) or float(y.min()) < 0):
        raise JointKLError(f"the labels of {name} include negative or non-finite values; labels are class "
                           "indices, whole numbers >= 0")
    return y.to(torch.long)
