"""What every model shares (jointkl.objectives.base): inputs are checked against the data shape it was built for."""
import pytest
import torch

import jointkl as jk
from jointkl.errors import JointKLError


def test_encode_rejects_wrong_shape(trained_run):
    model = jk.load(trained_run, device="cpu")
    with pytest.raises(JointKLError, match="shape"):
        model.encode(torch.zeros(3, 5))
    assert model.encode(torch.zeros(3, 1, 2, 2)).shape == (3, 2)
