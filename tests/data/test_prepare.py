"""`jointkl.data.prepare`: what a run trains on, from the options that change the training split."""
from __future__ import annotations

import pytest
import torch

from jointkl.data import keep_labels, load, prepare
from jointkl.errors import JointKLError


def test_fraction_keeps_the_first_rows_and_their_labels():
    ds = load("digits")
    p = prepare(ds, fraction=0.25, needs_labels=True)
    n = round(0.25 * ds.train.shape[0])
    assert torch.equal(p.train, ds.train[:n]) and torch.equal(p.train_labels, ds.train_labels[:n])
    assert torch.equal(p.test, ds.test)


def test_label_mask_is_class_balanced_and_seeded():
    ds = load("digits")
    a, b = prepare(ds, labelled=0.1, seed=3, needs_labels=True), prepare(ds, labelled=0.1, seed=3, needs_labels=True)
    assert torch.equal(a.train_labels, b.train_labels)
    kept = a.train_labels[a.train_labels >= 0]
    for c in range(10):                       # each class keeps round(10 %) of its rows, with its own label
        assert int((kept == c).sum()) == max(1, round(0.1 * int((ds.train_labels == c).sum())))
    assert torch.equal(a.train_labels[a.train_labels >= 0], ds.train_labels[a.train_labels >= 0])
    assert torch.equal(keep_labels(ds.train_labels, 1.0, 0), ds.train_labels)


def test_fixed_binarization_is_one_draw():
    ds = load("digits")
    p = prepare(ds, binarize="fixed")
    assert set(p.train.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(p.train, prepare(ds, binarize="fixed").train)
    assert torch.equal(prepare(ds, binarize="dynamic").train, ds.train)      # a per-batch draw, the trainer's


def test_errors_are_one_line():
    with pytest.raises(JointKLError, match="binarize='sometimes' is not known"):
        prepare(load("binary2x2"), binarize="sometimes")
    with pytest.raises(JointKLError, match="model cvae needs labelled data and eight_schools has no labels"):
        prepare(load("eight_schools"), needs_labels=True, who="cvae")
