"""Datasets as in-memory tensors with a fixed, documented train/test split.

Every dataset is a `Dataset`; `load(name)` looks it up in `DATASETS`. In-memory sets are index-sampled
by the trainer (no per-sample DataLoader).

Registered sets (splits documented in `jointkl.data.toy` and `jointkl.data.images`): grid25, ring8,
binary2x2, eight_schools, digits, mnist5k; from standard files in $JOINTKL_DATA (`jointkl.data.files`):
mnist, svhn, cifar10, celeba. User data: `from_array` (numpy array, tensor), `from_memmap` (a memory-mapped .npy),
`from_torch` (a map-style torch Dataset: a TensorDataset, items x or (x, label)), `from_object` (any of them, by type)
or ``load("path/to/file.npy")`` / ``.npz``. A memory map or torch Dataset larger than the in-memory limit (4 GiB as
float32, `JOINTKL_IN_MEMORY_GB`) is streamed: its training split is a `Streamed` set whose batches are read from the
source as the trainer draws them (`jointkl.data.stream`). `binarize_fixed` draws one fixed binarization of [0, 1] data.
"""
from jointkl.data.base import (DATASETS, DESCRIPTIONS, Dataset, binarize_fixed, clear_cache, from_array, from_memmap,
                               keep_labels, load, prepare, register)
from jointkl.data import toy, images, files  # noqa: E402,F401  (registers the embedded and file-based sets)
from jointkl.data import domains  # noqa: E402,F401  (two-domain sets for ada)
from jointkl.data.stream import Streamed, memory_limit  # noqa: E402
from jointkl.data.torchdata import from_object, from_torch, is_torch_dataset  # noqa: E402

__all__ = ["DATASETS", "DESCRIPTIONS", "Dataset", "Streamed", "binarize_fixed", "clear_cache", "from_array",
           "from_memmap", "from_object", "from_torch", "is_torch_dataset", "keep_labels", "load", "memory_limit",
           "prepare", "register"]
