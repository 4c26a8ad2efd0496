"""Data too large to hold in memory: read from its source batch by batch, as the trainer draws them.

The rule (docs/data.md): a torch Dataset or a memory-mapped array is read into one float32 tensor once (the
trainer's fast path) when its float32 size, one item's size times its length, is at most `memory_limit()`: 4 GiB,
or `JOINTKL_IN_MEMORY_GB`. A larger one's training split is `Streamed`: the trainer's seeded sampler draws the same
row numbers as for a tensor and the rows are read from the source then, so the batches, and the run, are bitwise
those of the tensor. In-memory tensors and arrays are never streamed: they are in memory already.
"""
from __future__ import annotations

import math
import os
from typing import Callable

import torch

from jointkl.errors import JointKLError

DEFAULT_GB = 4.0
ENV = "JOINTKL_IN_MEMORY_GB"


def memory_limit() -> int:
    """Bytes of float32 data that are read into memory; larger sets are streamed."""
    raw = os.environ.get(ENV)
    if raw is None:
        return int(DEFAULT_GB * 2**30)
    try:
        gb = float(raw)
    except ValueError:
        gb = math.nan
    if not (math.isfinite(gb) and gb >= 0):
        raise JointKLError(f"{ENV}={raw!r} is not a size; give gigabytes, e.g. {ENV}=4 (0 streams every set)")
    return int(gb * 2**30)


def float32_bytes(n: int, row_shape: tuple[int, ...]) -> int:
    return n * math.prod(row_shape) * 4


Reader = Callable[[torch.Tensor], tuple[torch.Tensor, "torch.Tensor | None"]]
"""rows (k,) int64 of the source -> (x (k, *row_shape) float32 on the CPU, labels (k,) int64 or None)"""


class Streamed:
    """Rows `start .. start + n` of a source read on demand by `read`, never held as a whole.

    It has what the trainer and `prepare` use of a tensor: `shape`, `dim()`, `len()`, a contiguous slice `x[a:b]`
    (another `Streamed`), and `index_select(0, rows)`, which reads those rows now and returns them as a float32 CPU
    tensor. `lo`, `hi`: the smallest and largest value of the whole source (found by the one scan at loading)."""

    def __init__(self, read: Reader, n: int, row_shape: tuple[int, ...], start: int = 0, lo: float = 0.0,
                 hi: float = 0.0):
        self.read, self.n, self.row_shape, self.start, self.lo, self.hi = read, n, tuple(row_shape), start, lo, hi

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self.n, *self.row_shape))

    def dim(self) -> int:
        return 1 + len(self.row_shape)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, s: slice) -> Streamed:
        if not isinstance(s, slice) or s.step not in (None, 1):
            raise JointKLError("a streamed data set is cut by contiguous rows only (x[a:b])")
        a, b, _ = s.indices(self.n)
        return Streamed(self.read, max(0, b - a), self.row_shape, self.start + a, self.lo, self.hi)

    def index_select(self, dim: int, rows: torch.Tensor) -> torch.Tensor:
        """Rows `rows` (k,) of this split, read from the source: (k, *row_shape) float32 on the CPU."""
        if dim != 0:
            raise ValueError("a streamed data set is read by rows (dim 0)")
        return self.read(rows.to("cpu", torch.long) + self.start)[0]

    def __repr__(self) -> str:
        return f"Streamed(rows {self.start}..{self.start + self.n} of shape {self.row_shape})"


class Summary:
    """What `from_array` finds in one tensor, found chunk by chunk: whether every value is 0 or 1, the range, and
    the first row holding a NaN or Inf."""

    def __init__(self):
        self.binary, self.lo, self.hi, self.rows = True, math.inf, -math.inf, 0

    def add(self, x: torch.Tensor) -> None:
        """The next rows x (k, ...)."""
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            first = self.rows + int(bad.reshape(x.shape[0], -1).any(dim=1).nonzero()[0, 0])
            raise JointKLError(f"data contains NaN/Inf values (first at row {first}); clean or drop them")
        if x.numel():
            lo, hi = (float(v) for v in torch.aminmax(x))
            self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)
            self.binary = self.binary and bool(((x == 0) | (x == 1)).all())
        self.rows += x.shape[0]

    def kind(self, dims: int) -> str:
        """`from_array`'s rule for data of `dims` dimensions (rows included)."""
        if self.binary:
            return "binary"
        return "image" if dims == 4 and self.lo >= 0.0 and self.hi <= 1.0 else "continuous"
