"""Reconstruction MSE on hand-made cases."""

import pytest
import torch

from jointkl.eval.recon import reconstruction_mse


def test_reconstruction_mse_hand_case():
    x = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    x_hat = torch.zeros(2, 2)
    assert reconstruction_mse(x, x_hat) == pytest.approx(3.5)
    assert reconstruction_mse(x, x) == 0.0
    images = torch.ones(4, 1, 3, 3)
    assert reconstruction_mse(images, images * 0.5) == pytest.approx(0.25)
    assert isinstance(reconstruction_mse(x, x_hat), float)


def test_reconstruction_mse_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="equal shapes"):
        reconstruction_mse(torch.zeros(2, 3), torch.zeros(3, 2))
