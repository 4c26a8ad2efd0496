"""File-based data sets (jointkl.data.files) on tiny fake files written in each real format.

The network is always mocked away: `urllib.request.urlopen` raises URLError unless a test serves bytes.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

import jointkl as jk
import jointkl.data as D
from jointkl.data import files
from jointkl.errors import JointKLError

MNIST_STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
TINY = dict(hidden=8, layers=1, batch_size=4, device="cpu", log_every=1, ckpt_every=10)


@pytest.fixture(autouse=True)
def urls(monkeypatch) -> list[str]:
    """No network: every urlopen raises URLError; the URLs tried are recorded here."""
    calls = []

    def offline(url, *a, **k):
        calls.append(url)
        raise urllib.error.URLError("mocked: no network")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return calls


@pytest.fixture(autouse=True)
def root(tmp_path, monkeypatch) -> Path:
    """$JOINTKL_DATA in tmp_path and an empty load cache."""
    monkeypatch.setenv("JOINTKL_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("JOINTKL_CELEBA_MAX", raising=False)
    D.clear_cache()
    root = tmp_path / "data"
    root.mkdir()
    yield root
    D.clear_cache()


def one_line_error(name: str) -> str:
    D.clear_cache()
    with pytest.raises(JointKLError) as e:
        D.load(name)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# --- writers in the real formats ----------------------------------------------------------------------
def idx_bytes(a: np.ndarray) -> bytes:
    return bytes([0, 0, 8, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(np.uint8).tobytes()


def write_mnist(folder: Path, n=(12, 5), gz=(True, False), seed=0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, count, zipped in (("train", n[0], gz[0]), ("t10k", n[1], gz[1])):
        x = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, count, dtype=np.uint8)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            data, name = idx_bytes(arr), f"{split}-{kind}-ubyte"
            (folder / (name + ".gz" if zipped else name)).write_bytes(gzip.compress(data) if zipped else data)
        out[split] = (x, y)
    return out


def write_svhn(folder: Path, n=(7, 3), seed=0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, count in (("train", n[0]), ("test", n[1])):
        X = rng.integers(0, 256, (32, 32, 3, count), dtype=np.uint8)   # SVHN layout (H, W, C, N)
        y = rng.integers(1, 11, (count, 1)).astype(np.uint8)            # 1..10, 10 = digit 0
        y[0, 0] = 10
        scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": X, "y": y})
        out[split] = (X, y)
    return out


def cifar_batch(n: int, rng) -> dict:
    return {b"batch_label": b"fake", b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, n)], b"filenames": [b"x.png"] * n}


def write_cifar(folder: Path, n=3, seed=0) -> list[dict]:
    rng = np.random.default_rng(seed)
    batches = folder / "cifar-10-batches-py"
    batches.mkdir(parents=True, exist_ok=True)
    out = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = cifar_batch(n, rng)
        (batches / name).write_bytes(pickle.dumps(d, protocol=2))
        out.append(d)
    return out


def face(size=(178, 218), inner=(0, 200, 0), outer=(200, 0, 0)) -> Image.Image:
    """An aligned-CelebA-sized image: `inner` colour on the centred 140x140 square, `outer` elsewhere."""
    im = Image.new("RGB", size, outer)
    w, h = size
    left, top = (w - 140) // 2, (h - 140) // 2
    im.paste(inner, (left, top, left + 140, top + 140))
    return im


def write_celeba(folder: Path, n: int, partition: list[int] | None) -> list[tuple]:
    imgs = folder / "img_align_celeba"
    imgs.mkdir(parents=True, exist_ok=True)
    colours = [(20 * i % 256, 200, 255 - 20 * i % 256) for i in range(n)]
    for i, c in enumerate(colours):
        face(inner=c).save(imgs / f"{i + 1:06d}.jpg", quality=100, subsampling=0)   # no chroma bleed at the edges
    if partition is not None:
        (folder / "list_eval_partition.txt").write_text(
            "".join(f"{i + 1:06d}.jpg {p}\n" for i, p in enumerate(partition)))
    return colours


# --- loading ------------------------------------------------------------------------------------------
def test_registered_and_data_dir(root, monkeypatch):
    assert {"mnist", "svhn", "cifar10", "celeba"} <= set(D.DATASETS)
    assert files.data_dir() == root.resolve()
    monkeypatch.delenv("JOINTKL_DATA")
    assert files.data_dir() == (Path.cwd() / "data").resolve()


@pytest.mark.parametrize("gz", [(True, False), (False, True)])
def test_mnist_idx_gzipped_or_not(urls, root, gz):
    raw = write_mnist(root / "mnist", gz=gz)
    d = D.load("mnist")
    assert d.name == "mnist" and d.kind == "image" and d.shape == (1, 28, 28)
    for split, x, y in (("train", d.train, d.train_labels), ("t10k", d.test, d.test_labels)):
        rx, ry = raw[split]
        assert x.dtype == torch.float32 and x.shape == (len(rx), 1, 28, 28)
        assert torch.equal(x, torch.from_numpy(rx).float()[:, None] / 255)
        assert y.dtype == torch.int64 and torch.equal(y, torch.from_numpy(ry).long())
    assert urls == []


def test_svhn_mat_layout_and_label_10_is_0(root):
    raw = write_svhn(root / "svhn")
    d = D.load("svhn")
    assert d.kind == "image" and d.shape == (3, 32, 32)
    for split, x, y in (("train", d.train, d.train_labels), ("test", d.test, d.test_labels)):
        X, ry = raw[split]
        assert x.shape == (X.shape[3], 3, 32, 32) and x.dtype == torch.float32
        n, c, h, w = 1, 2, 5, 7   # one pixel, indexed both ways
        assert x[n, c, h, w] == pytest.approx(X[h, w, c, n] / 255)
        assert torch.equal(x, torch.from_numpy(X).permute(3, 2, 0, 1).float() / 255)
        assert torch.equal(y, torch.from_numpy(ry.reshape(-1) % 10).long())
        assert y[0] == 0 and int(y.max()) <= 9


def test_cifar10_pickles(root):
    raw = write_cifar(root / "cifar10", n=3)
    d = D.load("cifar10")
    assert d.kind == "image" and d.shape == (3, 32, 32)
    assert d.train.shape == (15, 3, 32, 32) and d.test.shape == (3, 3, 32, 32)
    data = np.concatenate([b[b"data"] for b in raw[:5]])
    n, c, h, w = 4, 1, 3, 30   # channel planes of 1,024 values, each row-major 32x32
    assert d.train[n, c, h, w] == pytest.approx(data[n, c * 1024 + h * 32 + w] / 255)
    assert torch.equal(d.train_labels, torch.tensor(sum((b[b"labels"] for b in raw[:5]), [])))
    assert torch.equal(d.test_labels, torch.tensor(raw[5][b"labels"]))
    assert 0 <= float(d.train.min()) and float(d.train.max()) <= 1


def test_cifar10_extracts_a_placed_archive_and_keeps_it(urls, root, tmp_path):
    src = tmp_path / "src"
    raw = write_cifar(src, n=2)
    archive = root / "cifar10" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        evil = tarfile.TarInfo("../evil")   # never written: only the expected members are extracted
        tar.addfile(evil, io.BytesIO(b""))
    d = D.load("cifar10")
    assert d.train.shape == (10, 3, 32, 32) and torch.equal(d.test_labels, torch.tensor(raw[5][b"labels"]))
    assert archive.is_file() and not (root / "evil").exists() and urls == []


def test_cifar10_unpickler_runs_no_code(root, tmp_path):
    write_cifar(root / "cifar10")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.makedirs, (str(marker),))
    (root / "cifar10" / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil()}))
    msg = one_line_error("cifar10")
    assert "data_batch_3" in msg and "delete" in msg and not marker.exists()


def test_celeba_partition_crop_resize_and_cache(root):
    partition = [0, 0, 1, 2, 0, 2]
    colours = write_celeba(root / "celeba", 6, partition)
    d = D.load("celeba")
    assert d.kind == "image" and d.shape == (3, 64, 64) and d.train_labels is None
    assert d.train.shape == (3, 3, 64, 64) and d.test.shape == (2, 3, 64, 64)
    # the crop keeps exactly the centred 140x140 square: every pixel has the inner colour, none the red border
    for x, idx in ((d.train, [0, 1, 4]), (d.test, [3, 5])):
        want = torch.tensor([colours[i] for i in idx], dtype=torch.float32)[:, :, None, None] / 255
        assert (x - want).abs().max() <= 3 / 255
    caches = list((root / "celeba").glob("jointkl-cache-*.pt"))
    assert len(caches) == 1
    D.clear_cache()
    for jpg in (root / "celeba" / "img_align_celeba").glob("*.jpg"):   # the cache alone rebuilds the set
        jpg.write_bytes(b"")
    again = D.load("celeba")
    assert torch.equal(again.train, d.train) and torch.equal(again.test, d.test)


def test_celeba_last_tenth_and_limit(root, monkeypatch):
    write_celeba(root / "celeba", 10, None)
    d = D.load("celeba")
    assert d.train.shape[0] == 9 and d.test.shape[0] == 1 and "10%" in d.meta["split"]
    monkeypatch.setenv("JOINTKL_CELEBA_MAX", "4")
    d4 = files.celeba()
    assert d4.train.shape[0] == 4 and d4.test.shape[0] == 1
    assert torch.equal(d4.train, d.train[:4]) and torch.equal(d4.test, d.test)
    assert files.celeba(max_images=2).train.shape[0] == 2
    assert files.celeba(max_images=0).train.shape[0] == 9
    monkeypatch.setenv("JOINTKL_CELEBA_MAX", "many")
    with pytest.raises(JointKLError, match="JOINTKL_CELEBA_MAX"):
        files.celeba()


# --- missing files ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,names", [
    ("mnist", [s + ".gz" for s in MNIST_STEMS]),
    ("svhn", ["train_32x32.mat", "test_32x32.mat"]),
    ("cifar10", ["cifar-10-batches-py/data_batch_1", "cifar-10-batches-py/data_batch_5",
                 "cifar-10-batches-py/test_batch", "cifar-10-python.tar.gz"]),
])
def test_missing_files_offline_one_line(urls, root, name, names):
    msg = one_line_error(name)
    assert str(root / name) in msg and "no network" in msg and "JOINTKL_DATA" in msg
    assert all(n in msg for n in names), msg
    assert urls   # it did try to download (through the mocked urlopen)
    assert not [p for p in root.rglob("*") if p.is_file()]   # no partial files left behind


def test_mnist_offline_names_only_the_missing_files(root):
    write_mnist(root / "mnist")
    (root / "mnist" / "t10k-labels-idx1-ubyte").unlink()
    msg = one_line_error("mnist")
    assert "t10k-labels-idx1-ubyte.gz" in msg and "train-images" not in msg


def test_celeba_missing_never_downloads(urls, root):
    msg = one_line_error("celeba")
    assert str(root / "celeba" / "img_align_celeba") in msg and "list_eval_partition.txt" in msg
    assert "no direct download" in msg and urls == []


def test_celeba_listed_image_missing(root):
    write_celeba(root / "celeba", 4, [0, 0, 2, 2])
    (root / "celeba" / "img_align_celeba" / "000002.jpg").unlink()
    msg = one_line_error("celeba")
    assert "000002.jpg" in msg and "missing" in msg


# --- downloads (served from memory, never the real network) -------------------------------------------
class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def serve(monkeypatch, urls, blobs: dict[str, bytes]):
    def urlopen(url, timeout=None):
        assert timeout is not None and timeout <= 30
        urls.append(url)
        name = url.rsplit("/", 1)[-1]
        if name not in blobs:
            raise urllib.error.URLError("mocked: not served")
        return FakeResponse(blobs[name])
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)


def test_mnist_download_checks_md5(urls, root, tmp_path, monkeypatch):
    src = tmp_path / "src"
    raw = write_mnist(src, gz=(True, True))
    blobs = {p.name: p.read_bytes() for p in src.iterdir()}
    monkeypatch.setattr(files, "_MNIST_MD5", {s: hashlib.md5(blobs[s + ".gz"]).hexdigest() for s in MNIST_STEMS})
    serve(monkeypatch, urls, blobs)
    d = D.load("mnist")
    assert torch.equal(d.test_labels, torch.from_numpy(raw["t10k"][1]).long())
    assert sorted(p.name for p in (root / "mnist").iterdir()) == sorted(blobs)
    assert all(u.startswith("https://") for u in urls)

    # a download whose MD5 differs is deleted and reported
    for p in (root / "mnist").iterdir():
        p.unlink()
    bad = bytearray(blobs["t10k-images-idx3-ubyte.gz"])
    bad[len(bad) // 2] ^= 0xFF
    blobs["t10k-images-idx3-ubyte.gz"] = bytes(bad)
    msg = one_line_error("mnist")
    assert "t10k-images-idx3-ubyte.gz" in msg and "MD5" in msg
    assert not (root / "mnist" / "t10k-images-idx3-ubyte.gz").exists()
    assert not list((root / "mnist").glob("*.part*"))


# --- corrupt files ------------------------------------------------------------------------------------
def corrupt_mnist_bad_magic(folder):
    p = folder / "train-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(b"\0\0\x08\x01" + gzip.decompress(p.read_bytes())[4:]))
    return p


def corrupt_mnist_truncated_raw(folder):
    p = folder / "t10k-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-10])
    return p


def corrupt_mnist_truncated_gz(folder):
    p = folder / "train-labels-idx1-ubyte.gz"
    p.write_bytes(p.read_bytes()[:20])
    return p


def corrupt_mnist_label_count(folder):
    p = folder / "t10k-labels-idx1-ubyte"
    p.write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    return p


@pytest.mark.parametrize("corrupt", [corrupt_mnist_bad_magic, corrupt_mnist_truncated_raw,
                                     corrupt_mnist_truncated_gz, corrupt_mnist_label_count])
def test_mnist_corrupt(urls, root, corrupt):
    write_mnist(root / "mnist")
    path = corrupt(root / "mnist")
    msg = one_line_error("mnist")
    assert str(path) in msg and "delete it" in msg and urls == []


@pytest.mark.parametrize("content", [b"not a mat file at all", "truncate"])
def test_svhn_corrupt(root, content):
    write_svhn(root / "svhn")
    p = root / "svhn" / "test_32x32.mat"
    p.write_bytes(p.read_bytes()[:300] if content == "truncate" else content)
    msg = one_line_error("svhn")
    assert str(p) in msg and "delete it" in msg


def test_cifar10_corrupt(root):
    write_cifar(root / "cifar10")
    p = root / "cifar10" / "cifar-10-batches-py" / "test_batch"
    p.write_bytes(p.read_bytes()[:100])
    msg = one_line_error("cifar10")
    assert str(p) in msg and "delete it" in msg


def test_cifar10_corrupt_archive(root):
    (root / "cifar10").mkdir()
    archive = root / "cifar10" / "cifar-10-python.tar.gz"
    archive.write_bytes(b"\x1f\x8b garbage")
    msg = one_line_error("cifar10")
    assert str(archive) in msg and "delete it" in msg


def test_celeba_corrupt_jpeg(root):
    write_celeba(root / "celeba", 4, None)
    p = root / "celeba" / "img_align_celeba" / "000002.jpg"
    p.write_bytes(p.read_bytes()[:200])
    msg = one_line_error("celeba")
    assert str(p) in msg and "delete it" in msg


# --- a few training steps on the fake files -----------------------------------------------------------
def test_vae_trains_on_fake_mnist(root, tmp_path):
    write_mnist(root / "mnist")
    model = jk.train("vae", data="mnist", steps=3, out=tmp_path / "vae", binarize="dynamic", latent_dim=2, **TINY)
    assert model.sample(2).shape == (2, 1, 28, 28)
    assert (tmp_path / "vae" / "config.yaml").is_file()


@pytest.mark.parametrize("name,writer,shape", [("cifar10", write_cifar, (3, 32, 32)),
                                               ("svhn", write_svhn, (3, 32, 32)),
                                               ("celeba", lambda f: write_celeba(f, 6, None), (3, 64, 64))])
def test_gan_trains_on_fake_colour_images(root, tmp_path, name, writer, shape):
    writer(root / name)
    model = jk.train("gan", data=name, steps=3, out=tmp_path / name, **TINY)
    assert model.sample(2).shape == (2, *shape)


def test_timeout_counts_as_offline(root, monkeypatch):
    def slow(url, timeout=None):
        raise TimeoutError("timed out")
    monkeypatch.setattr(urllib.request, "urlopen", slow)
    msg = one_line_error("svhn")
    assert "no network" in msg and "train_32x32.mat" in msg and str(root / "svhn") in msg
