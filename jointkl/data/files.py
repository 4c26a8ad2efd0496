"""The papers' image sets, read from their standard files: MNIST, SVHN, CIFAR-10, CelebA.

Folder. `data_dir()` is ``$JOINTKL_DATA`` (default ``./data``, relative to the working directory); each
loader reads ``data_dir()/<name>/``. Nothing is read or downloaded at import time, only on ``load(name)``.

Download. A loader whose files are missing downloads them from the public URL below (10 s connection
timeout, tqdm progress bar, written to ``FILE.part<pid>`` and renamed when complete) and checks each
download against the official MD5 (the values torchvision and the dataset pages publish). Files you place
yourself are not checksummed (unzipped or re-compressed copies are fine); they are checked for format and
size when read. Offline, or for CelebA (Google Drive only), the error is one line naming the files to
place and the folder. A file that cannot be parsed (bad magic number, truncated, unreadable pickle/.mat/
JPEG, sizes that disagree) gives a one-line error naming it and saying to delete and re-download it.

Values. All sets are float32 in [0, 1] (uint8 / 255), shape (N, C, H, W), kind ``"image"``; no mean/std
normalization. Binarization is a training option, never baked into the data: ``binarize=dynamic`` draws
a fresh Bernoulli(x) per batch, ``binarize=fixed`` one draw per pixel with seed 0 (`binarize_fixed`).

=======  ==================  ==================  ==================  ======  ===========================
name     train               test                source files        labels  paper protocol
=======  ==================  ==================  ==================  ======  ===========================
mnist    (60000, 1, 28, 28)  (10000, 1, 28, 28)  IDX (.gz or raw)    0-9     AVB: "binarized MNIST"
svhn     (73257, 3, 32, 32)  (26032, 3, 32, 32)  .mat (v5)           0-9     Hu: as is, [0, 1]
cifar10  (50000, 3, 32, 32)  (10000, 3, 32, 32)  python pickles      0-9     Hu, DALI: as is, [0, 1]
celeba   ≤ 50000 (limit)     ≤ 5000 (limit/10)   aligned JPEGs       none    Su, DALI: 64x64 crops
=======  ==================  ==================  ==================  ======  ===========================

mnist
    ``mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` each gzipped (``.gz``) or not. Split: the
    official 60,000 / 10,000, in file order. AVB Table 2 says only "binarized MNIST"; jointkl trains it with
    ``binarize=dynamic`` (fresh draw per batch, the usual protocol for that benchmark); ``binarize=fixed``
    gives one fixed draw instead. Hu and DALI use grey levels in [0, 1] (``binarize=none``).
    Downloads the four ``.gz`` files (ossci-datasets S3 mirror, then Google's CVDF mirror, then
    yann.lecun.com).
svhn
    ``svhn/train_32x32.mat`` and ``svhn/test_32x32.mat`` (``X`` is (32, 32, 3, N) uint8, ``y`` is (N, 1)
    with 10 meaning digit 0; label 10 becomes 0). Split: the official train / test files; ``extra_32x32.mat``
    is not used. Downloads from ufldl.stanford.edu.
cifar10
    ``cifar10/cifar-10-batches-py/data_batch_1`` … ``data_batch_5`` (train, in that order) and ``test_batch``
    (test): pickled dicts with ``b"data"`` (N, 3072) uint8 (1,024 red, green, blue values, each row-major
    32x32) and ``b"labels"``. If only ``cifar10/cifar-10-python.tar.gz`` is there it is extracted; if
    nothing is there the archive is downloaded from cs.toronto.edu, extracted, and deleted. The pickles are
    read by an unpickler that only accepts numpy arrays, bytes, lists and dicts (no code runs).
celeba
    ``celeba/img_align_celeba/*.jpg`` (the aligned 178x218 images; a nested ``img_align_celeba/
    img_align_celeba/`` from some zip tools is accepted). Each image is centre-cropped to 140x140 (the
    common DCGAN-on-CelebA protocol; smaller images use their largest centred square) and resized to 64x64
    with Pillow's antialiased bilinear filter, RGB, (N, 3, 64, 64). Split: with
    ``celeba/list_eval_partition.txt`` (lines ``000001.jpg 0``) partition 0 is train and 2 is test (1,
    validation, is unused); without it, the images sorted by name, the last 10 % (at least 1) are test.
    No labels. Memory: all 202,599 images as float32 would take ~10 GB, so by default only the first
    50,000 train images (by file name) and the first 5,000 test images are read. ``celeba(max_images=N)``
    or ``JOINTKL_CELEBA_MAX=N`` reads up to N train and max(1, N // 10) test images; 0 or ``all`` reads
    everything. Decoding is slow (about a minute per 50k images), so the decoded uint8 tensors are cached
    in ``celeba/jointkl-cache-<key>.pt`` (key: the chosen file names and the protocol; delete it freely).
    CelebA has no direct download (Google Drive): place ``img_align_celeba/`` (from ``img_align_celeba.zip``)
    and ``list_eval_partition.txt`` from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html yourself.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import importlib
import os
import pickle
import struct
import tarfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from jointkl.data.base import Dataset, register
from jointkl.errors import JointKLError, one_line

TIMEOUT_S = 10.0
CELEBA_MAX = 50_000
CELEBA_CROP, CELEBA_SIZE = 140, 64


def data_dir() -> Path:
    """``$JOINTKL_DATA`` or ``./data``, as an absolute path (it need not exist)."""
    return Path(os.environ.get("JOINTKL_DATA") or "data").expanduser().resolve()


# --- download ------------------------------------------------------------------------------------------
class _Unreachable(Exception):
    """No URL could be fetched (offline, timeout, HTTP error); the message is the last reason."""


def _download(urls: list[str], dest: Path, md5: str) -> None:
    """Fetch the first reachable URL into ``dest`` with a progress bar; the MD5 must match."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise JointKLError(f"could not create {dest.parent} ({one_line(e)}); set JOINTKL_DATA to a writable "
                           "folder") from e
    part = dest.with_name(f"{dest.name}.part{os.getpid()}")   # per process: concurrent ranks never clash
    last: BaseException | None = None
    for url in urls:
        h = hashlib.md5()
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp, open(part, "wb") as f:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {dest.name}") as bar:
                    while chunk := resp.read(1 << 20):
                        f.write(chunk)
                        h.update(chunk)
                        bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as e:
            part.unlink(missing_ok=True)
            network = (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException)
            if not isinstance(e, network):   # our disk (full, read-only), not the network
                raise JointKLError(f"could not write {part} ({one_line(e)}); check space and permissions") from e
            last = e
            continue
        if h.hexdigest() != md5:
            part.unlink(missing_ok=True)
            raise JointKLError(f"{dest.name} downloaded from {url} has MD5 {h.hexdigest()}, expected {md5}; "
                               f"run again, or place a good copy in {dest.parent}")
        os.replace(part, dest)
        return
    raise _Unreachable(one_line(last) if last else "no URL")


def _fetch_or_explain(name: str, folder: Path, missing: list[str], fetch, alt: str = "") -> None:
    """Run ``fetch()``; if the network is unreachable, the one-line error naming the files and folder."""
    try:
        fetch()
    except _Unreachable as e:
        raise JointKLError(f"{name}: files not found in {folder} and no network to download them ({e}); "
                           f"place {', '.join(missing)}{alt} there (or set JOINTKL_DATA)") from None


def _corrupt(name: str, path: Path, why) -> JointKLError:
    why = one_line(why) if isinstance(why, BaseException) else why
    return JointKLError(f"{name}: {path} is corrupt or not in the expected format ({why}); "
                        "delete it and run again to re-download it (or place a fresh copy)")


def _images(x: np.ndarray) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(x)).float().div_(255.0)


def _labels(y: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(y, dtype=np.int64).reshape(-1).copy())


# --- MNIST ---------------------------------------------------------------------------------------------
_MNIST_MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/",
                  "https://storage.googleapis.com/cvdf-datasets/mnist/",
                  "http://yann.lecun.com/exdb/mnist/"]
_MNIST_MD5 = {"train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",   # of the .gz files
              "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
              "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
              "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c"}


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes: magic 0x0000 08 <ndim>, ndim big-endian uint32 sizes, the data."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:   # bad gzip header, truncated stream
        raise _corrupt("mnist", path, e) from e
    head = 4 + 4 * ndim
    if len(raw) < head or raw[:4] != bytes([0, 0, 8, ndim]):
        raise _corrupt("mnist", path, f"bad magic number {raw[:4].hex()}, expected 000008{ndim:02x}")
    dims = struct.unpack(f">{ndim}I", raw[4:head])
    if len(raw) != head + int(np.prod(dims)):
        raise _corrupt("mnist", path, f"{len(raw)} bytes for sizes {dims}, expected {head + int(np.prod(dims))}")
    return np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(dims).copy()   # writable, for torch


@register("mnist", "MNIST 28x28 in [0,1] from IDX files in $JOINTKL_DATA/mnist (downloaded if missing): "
                   "60,000 train / 10,000 test, labels")
def mnist() -> Dataset:
    folder = data_dir() / "mnist"

    def find(stem: str) -> Path | None:
        return next((p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()), None)

    missing = [f"{s}.gz" for s in _MNIST_MD5 if find(s) is None]
    if missing:
        _fetch_or_explain("mnist", folder, missing, lambda: [
            _download([m + f for m in _MNIST_MIRRORS], folder / f, _MNIST_MD5[f[:-3]]) for f in missing])
    out = {}
    for split in ("train", "t10k"):
        x = _read_idx(find(f"{split}-images-idx3-ubyte"), 3)          # (N, 28, 28)
        y = _read_idx(find(f"{split}-labels-idx1-ubyte"), 1)          # (N,)
        if len(y) != len(x) or (len(y) and y.max() > 9):
            raise _corrupt("mnist", find(f"{split}-labels-idx1-ubyte"),
                           f"{len(y)} labels (max {y.max() if len(y) else '-'}) for {len(x)} images")
        out[split] = (_images(x[:, None]), _labels(y))
    (xtr, ytr), (xte, yte) = out["train"], out["t10k"]
    return Dataset(name="mnist", train=xtr, test=xte, kind="image", train_labels=ytr, test_labels=yte,
                   meta={"source": str(folder)})


# --- SVHN ----------------------------------------------------------------------------------------------
_SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
_SVHN_MD5 = {"train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373", "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3"}


def _read_svhn(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    from scipy.io import loadmat   # scipy comes with scikit-learn; imported only when SVHN is used
    try:
        d = loadmat(path)
        x, y = np.asarray(d["X"]), np.asarray(d["y"]).reshape(-1)
    except Exception as e:   # scipy raises ValueError, MatReadError, KeyError, zlib errors ... on bad files
        raise _corrupt("svhn", path, e) from e
    if x.ndim != 4 or x.shape[2] != 3 or x.dtype != np.uint8 or len(y) != x.shape[3] \
            or (len(y) and (y.min() < 1 or y.max() > 10)):
        raise _corrupt("svhn", path, f"X {x.shape} {x.dtype} and y {y.shape} with values 1..10 expected")
    return _images(x.transpose(3, 2, 0, 1)), _labels(y % 10)   # (H, W, C, N) -> (N, C, H, W); 10 -> 0


@register("svhn", "SVHN 32x32 RGB in [0,1] from train_32x32.mat / test_32x32.mat in $JOINTKL_DATA/svhn "
                  "(downloaded if missing): 73,257 train / 26,032 test, labels (10 -> 0)")
def svhn() -> Dataset:
    folder = data_dir() / "svhn"
    missing = [f for f in _SVHN_MD5 if not (folder / f).is_file()]
    if missing:
        _fetch_or_explain("svhn", folder, missing,
                          lambda: [_download([_SVHN_URL + f], folder / f, _SVHN_MD5[f]) for f in missing])
    xtr, ytr = _read_svhn(folder / "train_32x32.mat")
    xte, yte = _read_svhn(folder / "test_32x32.mat")
    return Dataset(name="svhn", train=xtr, test=xte, kind="image", train_labels=ytr, test_labels=yte,
                   meta={"source": str(folder)})


# --- CIFAR-10 ------------------------------------------------------------------------------------------
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
_PICKLE_OK = {("_codecs", "encode"), ("numpy", "ndarray"), ("numpy", "dtype"),
              ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
              ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}


class _ArrayUnpickler(pickle.Unpickler):
    """Only the globals a pickled dict of numpy arrays needs; anything else is refused, so no code runs."""

    def find_class(self, module, name):
        if (module, name) not in _PICKLE_OK:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):   # numpy 2 renamed core -> _core
            module = "numpy._core." + module[len("numpy.core."):]
        return getattr(importlib.import_module(module), name)


def _read_cifar(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            d = _ArrayUnpickler(f, encoding="bytes").load()
        x, y = np.asarray(d[b"data"]), np.asarray(d[b"labels"]).reshape(-1)
    except Exception as e:   # truncated, not a pickle, wrong keys, refused globals
        raise _corrupt("cifar10", path, e) from e
    if x.ndim != 2 or x.shape[1] != 3072 or x.dtype != np.uint8 or len(y) != len(x) \
            or (len(y) and (y.min() < 0 or y.max() > 9)):
        raise _corrupt("cifar10", path, f"data {x.shape} {x.dtype} and {len(y)} labels 0..9 expected")
    return x.reshape(-1, 3, 32, 32), y   # each row: 1024 R, 1024 G, 1024 B, row-major


def _extract_cifar(archive: Path, folder: Path) -> None:
    """Write only the expected members (never a path from the archive) into ``folder/cifar-10-batches-py``."""
    (folder / _CIFAR_DIR).mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for m in tar.getmembers():
                base = os.path.basename(m.name)
                if m.isfile() and base in _CIFAR_FILES and os.path.dirname(m.name) == _CIFAR_DIR:
                    dest = folder / _CIFAR_DIR / base
                    part = dest.with_name(f"{base}.part{os.getpid()}")
                    with tar.extractfile(m) as src, open(part, "wb") as out:
                        out.write(src.read())
                    os.replace(part, dest)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise _corrupt("cifar10", archive, e) from e


@register("cifar10", "CIFAR-10 32x32 RGB in [0,1] from the python pickles in $JOINTKL_DATA/cifar10/"
                     "cifar-10-batches-py (downloaded if missing): 50,000 train / 10,000 test, labels")
def cifar10() -> Dataset:
    folder = data_dir() / "cifar10"
    missing = [f"{_CIFAR_DIR}/{f}" for f in _CIFAR_FILES if not (folder / _CIFAR_DIR / f).is_file()]
    if missing:
        archive = folder / "cifar-10-python.tar.gz"
        placed = archive.is_file()
        if not placed:
            _fetch_or_explain("cifar10", folder, missing, lambda: _download([_CIFAR_URL], archive, _CIFAR_MD5),
                              alt=" (or just cifar-10-python.tar.gz)")
        _extract_cifar(archive, folder)
        if not placed:
            archive.unlink(missing_ok=True)
        still = [f for f in _CIFAR_FILES if not (folder / _CIFAR_DIR / f).is_file()]
        if still:
            raise _corrupt("cifar10", archive, f"it lacks {', '.join(still)}")
    parts = [_read_cifar(folder / _CIFAR_DIR / f) for f in _CIFAR_FILES]
    xtr, ytr = np.concatenate([p[0] for p in parts[:5]]), np.concatenate([p[1] for p in parts[:5]])
    xte, yte = parts[5]
    return Dataset(name="cifar10", train=_images(xtr), test=_images(xte), kind="image",
                   train_labels=_labels(ytr), test_labels=_labels(yte), meta={"source": str(folder)})


# --- CelebA --------------------------------------------------------------------------------------------
_CELEBA_PAGE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"


def _celeba_limit(max_images: int | None) -> int | None:
    if max_images is None:
        raw = os.environ.get("JOINTKL_CELEBA_MAX", "").strip().lower()
        if raw in ("all", "none"):
            return None
        try:
            max_images = int(raw) if raw else CELEBA_MAX
        except ValueError:
            raise JointKLError(f"JOINTKL_CELEBA_MAX={raw!r} is not a number; give a count, 0 or all") from None
    if max_images < 0:
        raise JointKLError(f"celeba max_images={max_images} must be >= 0 (0 reads every image)")
    return max_images or None


def _celeba_split(folder: Path, names: list[str]) -> tuple[list[str], list[str], str]:
    part = folder / "list_eval_partition.txt"
    if not part.is_file():
        n_test = min(max(1, round(0.1 * len(names))), len(names) - 1)
        return names[: len(names) - n_test], names[len(names) - n_test:], "last 10% by file name"
    split: dict[str, list[str]] = {"0": [], "1": [], "2": []}
    try:
        for line in part.read_text().split("\n"):
            if line.strip():
                name, which = line.split()
                split[which].append(name)
    except (OSError, UnicodeDecodeError, ValueError, KeyError) as e:
        raise _corrupt("celeba", part, f"expected lines like '000001.jpg 0' ({one_line(e)})") from e
    return split["0"], split["2"], "list_eval_partition.txt (0 train, 2 test)"


def _celeba_image(path: Path) -> np.ndarray:
    from PIL import Image   # Pillow comes with matplotlib; imported only when CelebA is used
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            s = min(CELEBA_CROP, w, h)
            left, top = (w - s) // 2, (h - s) // 2
            im = im.crop((left, top, left + s, top + s)).resize((CELEBA_SIZE, CELEBA_SIZE), Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)   # (3, 64, 64)
    except FileNotFoundError:
        raise JointKLError(f"celeba: {path} is listed in list_eval_partition.txt but missing; "
                           "unzip the whole img_align_celeba.zip there") from None
    except Exception as e:   # truncated or non-image file (Pillow raises OSError, ValueError, SyntaxError ...)
        raise _corrupt("celeba", path, e) from e


@register("celeba", "CelebA aligned faces, centre 140x140 crop resized to 64x64 RGB in [0,1], from "
                    "$JOINTKL_DATA/celeba/img_align_celeba (place by hand); first 50,000 train / 5,000 test "
                    "by default (JOINTKL_CELEBA_MAX)")
def celeba(max_images: int | None = None) -> Dataset:
    """Up to ``max_images`` train and ``max(1, max_images // 10)`` test faces (None: ``$JOINTKL_CELEBA_MAX``,
    default 50,000; 0: all). See the module docstring for crop, resize, split and cache."""
    folder = data_dir() / "celeba"
    images = folder / "img_align_celeba"
    if (images / "img_align_celeba").is_dir():   # some unzip tools add a second level
        images = images / "img_align_celeba"
    names = sorted(e.name for e in os.scandir(images) if e.name.lower().endswith(".jpg")) if images.is_dir() else []
    if len(names) < 2:
        raise JointKLError(f"celeba: images not found in {images} and CelebA has no direct download (Google Drive); "
                           f"from {_CELEBA_PAGE} unzip img_align_celeba.zip so that {images}/000001.jpg exists "
                           f"and place list_eval_partition.txt in {folder} (or set JOINTKL_DATA)")
    train, test, how = _celeba_split(folder, names)
    limit = _celeba_limit(max_images)
    if limit is not None:
        train, test = train[:limit], test[: max(1, limit // 10)]
    if not train or not test:
        raise JointKLError(f"celeba: the split ({how}) left {len(train)} train and {len(test)} test images; "
                           f"check {folder}")
    key = hashlib.md5("\n".join([how, str(CELEBA_CROP), str(CELEBA_SIZE), *train, "|", *test]).encode()).hexdigest()
    cache = folder / f"jointkl-cache-{key[:12]}.pt"
    xs = None
    if cache.is_file():
        try:
            xs = torch.load(cache, weights_only=True)
            xs = (xs["train"], xs["test"])
        except Exception:   # a broken cache is rebuilt, never trusted
            cache.unlink(missing_ok=True)
            xs = None
    if xs is None:
        xs = tuple(torch.from_numpy(np.stack([_celeba_image(images / n)
                                              for n in tqdm(split, desc=f"celeba: decoding {which}", disable=None)]))
                   for which, split in (("train", train), ("test", test)))   # (N, 3, 64, 64) uint8
        try:
            part = cache.with_name(f"{cache.name}.part{os.getpid()}")
            torch.save({"train": xs[0], "test": xs[1]}, part)
            os.replace(part, cache)
        except OSError:   # a read-only folder only costs the next load its decoding time
            pass
    return Dataset(name="celeba", train=xs[0].float().div_(255.0), test=xs[1].float().div_(255.0), kind="image",
                   meta={"source": str(images), "split": how, "crop": CELEBA_CROP, "size": CELEBA_SIZE,
                         "max_images": limit})
