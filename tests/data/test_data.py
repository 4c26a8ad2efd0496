"""The data registry and loader (jointkl.data): every registered set's shapes, kinds and determinism, user arrays
and .npy/.npz files, and one-line errors."""
import numpy as np
import pytest
import torch

import jointkl.data as D
from jointkl.data import binarize_fixed, from_array, load
from jointkl.errors import JointKLError

EXPECTED = {
    # name: (kind, train shape, test shape, has labels)
    "grid25": ("continuous", (50_000, 2), (10_000, 2), True),
    "ring8": ("continuous", (50_000, 2), (10_000, 2), True),
    "binary2x2": ("binary", (4_000, 1, 2, 2), (4, 1, 2, 2), True),
    "eight_schools": ("continuous", (8, 2), (8, 2), False),
    "digits": ("image", (1_437, 1, 8, 8), (360, 1, 8, 8), True),
    "mnist5k": ("image", (4_000, 1, 28, 28), (1_000, 1, 28, 28), True),
    "mnist5k-digits": ("image", (5_437, 1, 28, 28), (360, 1, 28, 28), True),
    "mnist5k-mnistm": ("image", (8_000, 1, 28, 28), (1_000, 1, 28, 28), True),
}


def test_registry_matches_expected():
    assert set(D.DATASETS) == set(EXPECTED) | {"mnist", "svhn", "cifar10", "celeba"}   # from files: tests/data/test_files.py
    assert all(D.DESCRIPTIONS[n] for n in D.DATASETS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_shapes_kinds_and_determinism(name):
    kind, tr_shape, te_shape, labelled = EXPECTED[name]
    D.clear_cache()
    torch.manual_seed(123)
    np.random.seed(123)
    a = load(name)
    assert load(name) is a  # cached
    assert a.name == name and a.kind == kind
    assert tuple(a.train.shape) == tr_shape and tuple(a.test.shape) == te_shape
    assert a.train.dtype == torch.float32 and a.test.dtype == torch.float32
    assert torch.isfinite(a.train).all() and torch.isfinite(a.test).all()
    if labelled:
        assert a.train_labels.dtype == torch.int64 and a.train_labels.shape == (tr_shape[0],)
        assert a.test_labels.dtype == torch.int64 and a.test_labels.shape == (te_shape[0],)
    else:
        assert a.train_labels is None and a.test_labels is None
    if kind in ("image", "binary"):
        assert a.train.min() >= 0 and a.train.max() <= 1 and a.test.min() >= 0 and a.test.max() <= 1
    # a fresh build under a different global seed gives identical tensors
    D.clear_cache()
    torch.manual_seed(999)
    np.random.seed(999)
    b = load(name)
    assert b is not a
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    if labelled:
        assert torch.equal(a.train_labels, b.train_labels) and torch.equal(a.test_labels, b.test_labels)


def test_load_does_not_touch_global_rng():
    D.clear_cache()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    load("grid25")
    load("ring8")
    assert torch.equal(torch.rand(3), expected)


# ---- user data ---------------------------------------------------------------------------------

def test_from_array_kinds_and_split():
    rng = np.random.default_rng(0)
    d = from_array(rng.normal(size=(100, 3)))
    assert d.kind == "continuous" and d.train.shape == (90, 3) and d.test.shape == (10, 3)
    assert d.train.dtype == torch.float32
    x = rng.normal(size=(20, 5))
    d = from_array(x, test_fraction=0.25)
    assert torch.allclose(d.test, torch.tensor(x[15:], dtype=torch.float32))  # last rows are test
    d = from_array((rng.random((10, 4, 4)) > 0.5).astype(np.uint8))
    assert d.kind == "binary" and d.train.shape == (9, 1, 4, 4) and d.test.shape == (1, 1, 4, 4)
    d = from_array(torch.rand(10, 1, 3, 3))
    assert d.kind == "image"
    d = from_array(torch.rand(10, 9))  # 2-d values in [0,1] are not images
    assert d.kind == "continuous"
    d = from_array(np.zeros((2, 3)), test_fraction=0.01)
    assert len(d.train) == 1 and len(d.test) == 1


def test_from_array_copies_input():
    x = torch.zeros(10, 2)
    d = from_array(x)
    x += 1
    assert d.train.abs().sum() == 0


@pytest.mark.parametrize("bad,match", [
    (np.zeros(5), r"data must have shape \(N, D\) or \(N, C, H, W\); got shape \(5,\)"),
    (np.zeros((2, 2, 2, 2, 2)), r"got shape \(2, 2, 2, 2, 2\)"),
    (np.zeros((1, 3)), r"at least 2"),
    (np.array([["a", "b"], ["c", "d"]]), r"numeric"),
])
def test_from_array_bad_input(bad, match):
    with pytest.raises(JointKLError, match=match):
        from_array(bad)


def test_from_array_nan_inf():
    x = np.zeros((10, 3))
    x[4, 1] = np.nan
    x[7, 0] = np.inf
    with pytest.raises(JointKLError) as e:
        from_array(x)
    msg = str(e.value)
    assert msg == "data contains 2 NaN/Inf values (first at row 4); clean or drop them"
    assert "\n" not in msg
    with pytest.raises(JointKLError, match="test_fraction"):
        from_array(np.zeros((10, 2)), test_fraction=1.5)


def test_binarize_fixed():
    x = torch.rand(200, 1, 4, 4, generator=torch.Generator().manual_seed(42))
    torch.manual_seed(1)
    a = binarize_fixed(x)
    torch.manual_seed(2)
    b = binarize_fixed(x)
    assert torch.equal(a, b) and a.dtype == torch.float32 and a.shape == x.shape
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(a, binarize_fixed(x, seed=1))
    assert abs(a.mean().item() - x.mean().item()) < 0.03
    assert torch.equal(binarize_fixed(torch.ones(3, 2)), torch.ones(3, 2))
    with pytest.raises(JointKLError, match=r"\[0, 1\]"):
        binarize_fixed(torch.tensor([[2.0]]))


# ---- file loading --------------------------------------------------------------------------------

def test_load_npy_round_trip(tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    p = tmp_path / "mydata.npy"
    np.save(p, x)
    d = load(str(p))
    assert d.name == "mydata" and d.kind == "continuous"
    assert np.array_equal(np.concatenate([d.train.numpy(), d.test.numpy()]), x)
    assert len(d.test) == 5


def test_load_npz(tmp_path):
    x = np.random.default_rng(1).random((30, 8, 8))
    p1 = tmp_path / "a.npz"
    np.savez(p1, x=x, other=np.zeros(3))
    d = load(str(p1))
    assert d.kind == "image" and d.train.shape == (27, 1, 8, 8)
    p2 = tmp_path / "b.npz"
    np.savez(p2, only=x)
    assert load(str(p2)).train.shape == (27, 1, 8, 8)
    p3 = tmp_path / "c.npz"
    np.savez(p3, a=x, b=x)
    with pytest.raises(JointKLError, match="'x'"):
        load(str(p3))


def test_load_file_errors(tmp_path):
    with pytest.raises(JointKLError, match=r"data file .*missing\.npy.* not found"):
        load(str(tmp_path / "missing.npy"))
    bad = tmp_path / "corrupt.npy"
    bad.write_bytes(b"this is not a numpy file at all")
    with pytest.raises(JointKLError) as e:
        load(str(bad))
    assert "could not read data file" in str(e.value) and "\n" not in str(e.value)
    trunc = tmp_path / "trunc.npy"
    np.save(trunc, np.zeros((100, 10)))
    trunc.write_bytes(trunc.read_bytes()[:300])
    with pytest.raises(JointKLError, match="could not read data file"):
        load(str(trunc))
    badz = tmp_path / "corrupt.npz"
    badz.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(JointKLError, match="could not read data file"):
        load(str(badz))
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((4, 2), np.nan))
    with pytest.raises(JointKLError, match="NaN/Inf"):
        load(str(nan))


def test_unknown_name_message(tmp_path):
    with pytest.raises(JointKLError) as e:
        load("nope")
    msg = str(e.value)
    for n in EXPECTED:
        assert n in msg
    assert ".npy" in msg and ".npz" in msg and "\n" not in msg
    csv = tmp_path / "data.csv"
    csv.write_text("1,2\n3,4\n")
    with pytest.raises(JointKLError, match="numpy.save"):
        load(str(csv))
