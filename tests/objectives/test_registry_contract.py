"""The contract every registered model keeps. The test runs over `jointkl.objectives.MODELS`, so a newly
registered model is covered without editing this file. Each model trains for two steps through the public API
with tiny options. It samples with the data's shape, or, if it has no sampler, raises `JointKLError`. Then
`jointkl.load` gives back the same weights, bit for bit, and the same samples under the same seed."""
from __future__ import annotations

import dataclasses

import pytest
import torch

import jointkl as jk
from jointkl.data import Dataset, load as load_data
from jointkl.errors import JointKLError
from jointkl.objectives import MODELS
from jointkl.objectives.base import Objective

NET = dict(hidden=16, layers=1, latent_dim=2)       # each model gets the fields that its Config has
TRAIN = dict(batch_size=32, log_every=1, ckpt_every=2, device="cpu")


def two_domains() -> Dataset:
    """ada's data: labelled source rows and unlabelled target rows (label -1). Here binary2x2 with every other
    training row's label hidden."""
    ds = load_data("binary2x2")
    y = ds.train_labels.clone()
    y[1::2] = -1
    return Dataset("binary2x2-two-domains", ds.train, ds.test, ds.kind, y, ds.test_labels)


# The default is binary2x2: tiny binary images with labels, which suits the image, binary (wake_sleep) and
# labelled (cgan, cvae, svae) models. Exceptions: em fits full-covariance Gaussians, which are singular on binary
# pixels, so it gets continuous points; ada needs a source domain and a target domain.
DATA = {"em": lambda: "grid25", "ada": two_domains}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_trains_samples_and_loads_back_bitwise(tmp_path, name):
    cls = MODELS[name]
    data = DATA.get(name, lambda: "binary2x2")()
    shape = (data if isinstance(data, Dataset) else load_data(data)).shape
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    run = tmp_path / name
    model = jk.train(name, data=data, steps=2, out=run, **TRAIN, **{k: v for k, v in NET.items() if k in fields})
    loaded = jk.load(run, device="cpu")
    assert type(loaded) is cls
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    assert all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)
    if type(model).sample is Objective.sample:                   # no sampler: the base class says so
        with pytest.raises(JointKLError):
            model.sample(5)
        with pytest.raises(JointKLError):
            loaded.sample(5)
        return
    torch.manual_seed(0)
    x = model.sample(5)
    assert x.shape == (5, *shape)
    torch.manual_seed(0)
    assert torch.equal(loaded.sample(5), x)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_labels_flag_is_a_bool(name):
    """`labels` tells the trainer and the evaluations whether a model reads labels; a method or other object of
    that name (always truthy) would make every model look labelled."""
    assert isinstance(MODELS[name].labels, bool)
