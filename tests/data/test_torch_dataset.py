"""torch Datasets as data (jointkl.data.torchdata): a TensorDataset of shape (N, 4) is vectors of shape (4,), not
images; labels come along, split with their rows; items may be tensors, arrays or (x, label) tuples; a TensorDataset,
a custom map-style Dataset, a Subset and a memory-mapped .npy each train to the same weights as the same data given
as a tensor; whatever cannot be read is one line."""
import numpy as np
import pytest
import torch
from torch.utils.data import Dataset as TorchDataset, IterableDataset, Subset, TensorDataset

import jointkl as jk
from jointkl import run
from jointkl.data import from_array, from_object, from_torch, is_torch_dataset
from jointkl.errors import JointKLError

N = 100
X = torch.randn(N, 4, generator=torch.Generator().manual_seed(0))           # (N, 4) continuous vectors
Y = torch.arange(N) % 3                                                      # (N,) three classes


class Items(TorchDataset):
    """A map-style Dataset whose items are whatever `get(i)` makes."""

    def __init__(self, get, n=N):
        self.get, self.n = get, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.get(i)


def _same(a, b):
    assert a.shape == b.shape and a.kind == b.kind
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)


def test_tensor_dataset_is_vectors_with_or_without_labels():
    ds = from_torch(TensorDataset(X))
    assert ds.shape == (4,) and ds.kind == "continuous" and ds.train_labels is None
    _same(ds, from_array(X))
    ds = from_torch(TensorDataset(X, Y))
    assert ds.shape == (4,) and ds.train.shape == (90, 4) and ds.test.shape == (10, 4)
    assert ds.train_labels.dtype == torch.long
    assert torch.equal(ds.train_labels, Y[:90]) and torch.equal(ds.test_labels, Y[90:])   # split with their rows
    assert torch.equal(from_torch(TensorDataset(X, Y[:, None].float())).train_labels, Y[:90])   # (N, 1) float labels


def test_images_keep_their_shape():
    imgs = torch.rand(N, 1, 8, 8)
    assert from_torch(TensorDataset(imgs)).shape == (1, 8, 8)
    assert from_torch(TensorDataset(imgs[:, 0])).shape == (1, 8, 8)                # (H, W) items get a channel
    assert from_torch(Items(lambda i: imgs[i])).shape == (1, 8, 8)
    assert from_torch(Items(lambda i: imgs[i]), name="mine").kind == "image"


@pytest.mark.parametrize("make,labelled", [
    (lambda: Items(lambda i: X[i]), False),                                   # tensor items
    (lambda: Items(lambda i: (X[i],)), False),                                # 1-tuples
    (lambda: Items(lambda i: (X[i], int(Y[i]))), True),                       # (x, int label)
    (lambda: Items(lambda i: [X[i].numpy(), np.int64(Y[i])]), True),          # [array, numpy label]
    (lambda: Items(lambda i: (X[i].tolist(), Y[i])), True),                   # (list, 0-d tensor label)
    (lambda: Subset(TensorDataset(torch.cat([X, X]), torch.cat([Y, Y])), range(N)), True),
    (lambda: Subset(Items(lambda i: (X[i % N], int(Y[i % N])), 2 * N), range(N, 2 * N)), True),
])
def test_items_of_every_form_give_the_same_data(make, labelled):
    ds = from_torch(make())
    _same(ds, from_array(X))
    assert (ds.train_labels is not None) == labelled
    if labelled:
        assert torch.equal(ds.train_labels, Y[:90]) and torch.equal(ds.test_labels, Y[90:])


def test_from_object_dispatches_and_reads_a_memory_mapped_npy(tmp_path):
    np.save(tmp_path / "x.npy", X.numpy())
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert isinstance(mm, np.memmap) and not is_torch_dataset(mm)
    _same(from_object(mm), from_array(X))
    assert from_object(mm).name == "array" and from_object(TensorDataset(X)).name == "TensorDataset"
    assert is_torch_dataset(TensorDataset(X)) and from_object(TensorDataset(X, Y)).train_labels is not None


def test_each_form_trains_to_the_same_weights_as_the_tensor(tmp_path):
    """The issue's check: a TensorDataset (with and without labels), a custom map-style Dataset, a Subset, a
    memory-mapped .npy and its path train to the same weights, bitwise, as the same (N, 4) data given as a tensor;
    and the run records vectors of shape (4,). (Streamed: tests/data/test_streaming.py.)"""
    np.save(tmp_path / "x.npy", X.numpy())
    forms = {"tensor": X, "tensor_dataset": TensorDataset(X), "labelled": TensorDataset(X, Y),
             "custom": Items(lambda i: (X[i], int(Y[i]))), "subset": Subset(TensorDataset(X), range(N)),
             "memmap": np.load(tmp_path / "x.npy", mmap_mode="r"), "npy_path": str(tmp_path / "x.npy")}
    opts = dict(steps=12, hidden=8, layers=1, latent_dim=2, batch_size=16, log_every=4, ckpt_every=6, device="cpu",
                progress=False)
    weights = {}
    for name, data in forms.items():
        m = jk.train("vae", data=data, out=tmp_path / name, **opts)
        weights[name] = m.state_dict()
        meta = run.read_config(tmp_path / name)
        assert meta["data_shape"] == [4] and meta["data_kind"] == "continuous", (name, meta["data_shape"])
    ref = weights.pop("tensor")
    for name, w in weights.items():
        assert all(torch.equal(ref[k], w[k]) for k in ref), name
    # a labelled model takes the labels a TensorDataset carries
    m = jk.train("cvae", data=TensorDataset(X, Y), out=tmp_path / "cvae", classes=3, **opts)
    assert m.cfg.classes == 3


class Stream(IterableDataset):
    def __iter__(self):
        return iter(X)


class NoLen(TorchDataset):
    def __getitem__(self, i):
        return X[i]


@pytest.mark.parametrize("ds,words", [
    (Stream(), "is an IterableDataset, which jointkl cannot index"),
    (NoLen(), "has no length"),
    (Items(lambda i: X[i], n=1), "has 1 item(s); need at least 2"),
    (Items(lambda i: 1 / 0), "could not read item 0 of Items (ZeroDivisionError: division by zero)"),
    (Items(lambda i: X[i] if i < 5 else X[i, :3]), "item 5 of Items has shape (3,), item 0 (4,)"),
    (Items(lambda i: (X[i], 1) if i < 5 else X[i]), "item 5 of Items has no label and item 0 has"),
    (Items(lambda i: {"x": X[i]}), "is a dict"),
    (Items(lambda i: (X[i], 1, 2)), "has 3 elements; items must be x or (x, label)"),
    (Items(lambda i: "text"), "is not numeric"),
    (Items(lambda i: X[0, 0]), "has shape (); an item must be a vector"),
    (Items(lambda i: torch.zeros(1, 1, 2, 2)), "has shape (1, 1, 2, 2)"),
    (Items(lambda i: torch.zeros(4, dtype=torch.complex64)), "has dtype torch.complex64"),
    (Items(lambda i: (X[i], 0.5)), "the label of item 0 of Items is 0.5; a label is a class index"),
    (Items(lambda i: (X[i], -1)), "is -1; a label is a class index, a whole number >= 0"),
    (Items(lambda i: (X[i], "cat")), "is 'cat'"),
    (Items(lambda i: (X[i], torch.tensor([1, 2]))), "has shape (2,); a label is one class index"),
    (Items(lambda i: (X[i], float("nan"))), "is nan"),
    (Items(lambda i: X[i] * float("nan")), "NaN/Inf"),
    (TensorDataset(X, Y, Y), "holds 3 tensors"),
    (TensorDataset(X, Y.float() + 0.5), "are not whole numbers"),
    (TensorDataset(X, Y - 1), "include negative or non-finite values"),
    (TensorDataset(X, torch.zeros(N, 2)), "have shape (100, 2)"),
    (TensorDataset(X[:, 0]), "data must have shape (N, D)"),
    (Subset(TensorDataset(X), [0, 1, 10 * N]), "indices do not fit its data"),
    ("not a dataset", "expected a torch.utils.data.Dataset; got str"),
])
def test_unreadable_is_one_line(ds, words):
    with pytest.raises(JointKLError) as e:
        from_torch(ds)
    msg = str(e.value)
    assert words in msg and "\n" not in msg, msg


def test_a_pil_image_asks_for_a_tensor_transform():
    from PIL import Image
    img = Image.fromarray(np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(JointKLError, match=r"item 0 of Items is a PIL image; give the dataset a tensor transform"):
        from_torch(Items(lambda i: (img, 0)))
