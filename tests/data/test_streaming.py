"""Streamed data (jointkl.data.stream): a torch Dataset or a memory-mapped array larger than the in-memory limit is
read from its source batch by batch, in the seeded order of the tensor path, and trains to the same weights,
bitwise, as the same data given as a tensor; its split, kind and labels are the in-memory set's; what it cannot
do is one line."""
import numpy as np
import pytest
import torch
from torch.utils.data import Dataset as TorchDataset, Subset, TensorDataset

import jointkl as jk
from jointkl import run
from jointkl.data import from_array, from_object, from_torch, load
from jointkl.data.stream import Streamed, memory_limit
from jointkl.errors import JointKLError
from jointkl.training.trainer import EpochSampler

N = 100
X = torch.randn(N, 4, generator=torch.Generator().manual_seed(0))           # (N, 4): 1,600 bytes as float32
Y = torch.arange(N) % 3                                                      # (N,) three classes
IMAGES = torch.rand(N, 4, 4, generator=torch.Generator().manual_seed(1))    # (N, H, W) in [0, 1]: 6,400 bytes
LIMIT = 1000          # bytes: below every set here, above their test splits (10 rows: 160 and 640 bytes)
OPTS = dict(steps=12, hidden=8, layers=1, latent_dim=2, batch_size=16, log_every=4, ckpt_every=6, device="cpu",
            progress=False)


class Items(TorchDataset):
    """A map-style Dataset of (x, label) items; the rows it was asked for, in order, in `asked`."""

    def __init__(self, x, y=None):
        self.x, self.y, self.asked = x, y, []

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        self.asked.append(i)
        return self.x[i] if self.y is None else (self.x[i], int(self.y[i]))


@pytest.fixture
def streamed(monkeypatch):
    """Every torch Dataset and memory map larger than 1,073 bytes is streamed (JOINTKL_IN_MEMORY_GB=1e-6)."""
    monkeypatch.setenv("JOINTKL_IN_MEMORY_GB", "1e-6")
    assert memory_limit() == 1073


def forms(tmp_path, x=X):
    np.save(tmp_path / "x.npy", x.numpy())
    return {"tensor_dataset": TensorDataset(x), "labelled": TensorDataset(x, Y), "custom": Items(x, Y),
            "subset": Subset(TensorDataset(torch.cat([x, x])), range(N, 2 * N)),
            "memmap": np.load(tmp_path / "x.npy", mmap_mode="r"), "npy_path": str(tmp_path / "x.npy")}


@pytest.mark.parametrize("x", [X, IMAGES], ids=["vectors", "images"])
def test_a_streamed_set_is_the_in_memory_set(tmp_path, streamed, x):
    ref = from_array(x)
    for name, data in forms(tmp_path, x).items():
        ds = run.dataset(data)
        assert isinstance(ds.train, Streamed) and ds.meta["streamed"], name
        assert ds.shape == ref.shape and ds.kind == ref.kind and ds.train.shape == ref.train.shape, name
        assert torch.equal(ds.test, ref.test), name
        rows = torch.randperm(90, generator=torch.Generator().manual_seed(2))
        assert torch.equal(ds.train.index_select(0, rows), ref.train[rows]), name
        assert torch.equal(ds.train[30:60].index_select(0, torch.arange(30)), ref.train[30:60]), name
        if name in ("labelled", "custom"):
            assert torch.equal(ds.train_labels, Y[:90]) and torch.equal(ds.test_labels, Y[90:]), name
        else:
            assert ds.train_labels is None, name
    assert from_array(x).kind == ("continuous" if x is X else "image")


def test_every_form_streamed_trains_to_the_same_weights_as_the_tensor(tmp_path, streamed):
    """The issue's check, streamed: each form (train_fraction=0.5 cuts the streamed split too) trains to the tensor's
    weights, bitwise; and the rows read per step are the ones the trainer's seeded sampler draws, in its order."""
    opts = {**OPTS, "train_fraction": 0.5}
    ref = jk.train("vae", data=X, out=tmp_path / "tensor", **opts).state_dict()
    for name, data in forms(tmp_path).items():
        w = jk.train("vae", data=data, out=tmp_path / name, **opts).state_dict()
        assert all(torch.equal(ref[k], w[k]) for k in ref), name
    custom = Items(X)
    jk.train("vae", data=custom, out=tmp_path / "read", **opts)
    # item 0 (its shape), the scan (every item), the test split, then each step's batch of 16 of the first 45 rows
    sampler = EpochSampler(45, seed=0)
    drawn = torch.cat([sampler.next(16) for _ in range(12)]).tolist()
    assert custom.asked == [0, *range(N), *range(90, N), *drawn]


def test_labelled_images_with_dynamic_binarization_train_the_same_streamed(tmp_path):
    """A labelled model on (H, W) images, binarized afresh per batch: streamed (limit=LIMIT) and in memory, the same
    weights; the labels reach the model (cvae needs them)."""
    y = Y
    opts = {**OPTS, "binarize": "dynamic", "classes": 3}
    weights = {}
    for limit in (None, LIMIT):
        ds = from_torch(Items(IMAGES, y), limit=limit)
        assert isinstance(ds.train, Streamed) == (limit is not None) and torch.equal(ds.train_labels, y[:90])
        weights[limit] = jk.train("cvae", data=ds, out=tmp_path / str(limit), **opts).state_dict()
    a, b = weights.values()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_what_a_streamed_set_cannot_do_is_one_line(tmp_path, streamed, monkeypatch):
    np.save(tmp_path / "x.npy", X.numpy())
    path = str(tmp_path / "x.npy")
    cases = [
        (lambda: jk.train("vae", data=path, out=tmp_path / "a", binarize="fixed", **OPTS),
         "binarize=fixed draws one binarization of the whole training set, and x is streamed"),
        (lambda: jk.train("em", data=path, out=tmp_path / "b", steps=2, device="cpu", progress=False),
         "player 'em' of em sees the whole training set at every update, and x is streamed (90 rows"),
        (lambda: from_torch(TensorDataset(X), limit=100),
         "TensorDataset: its test split alone (10 rows, 1.49e-07 GiB as float32) is larger than the in-memory limit"),
        (lambda: from_object(Items(X * float("nan")), limit=LIMIT), "data contains NaN/Inf values (first at row 0)"),
    ]
    np.save(tmp_path / "words.npy", np.array(["a", "b", "c"]))
    cases.append((lambda: load(str(tmp_path / "words.npy")), "data must be numeric; got dtype <U1"))
    np.save(tmp_path / "flat.npy", np.zeros(10))
    cases.append((lambda: load(str(tmp_path / "flat.npy")),
                  "data must have shape (N, D) or (N, C, H, W); got shape (10,)"))
    for make, words in cases:
        with pytest.raises(JointKLError) as e:
            make()
        assert words in str(e.value) and "\n" not in str(e.value), str(e.value)
    monkeypatch.setenv("JOINTKL_IN_MEMORY_GB", "lots")
    with pytest.raises(JointKLError, match=r"^JOINTKL_IN_MEMORY_GB='lots' is not a size; give gigabytes"):
        load(path)
