"""Figures say what they show: an image grid's gaps are a colour no binary or grey pixel can take, and a 2-D
scatter draws the data's mixture means."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from jointkl import plots
from jointkl.plots import PAD, image_grid, save_samples


@pytest.fixture
def figures(monkeypatch) -> list:
    """Every figure `jointkl.plots` closes, in order (closed, but still readable)."""
    kept, close = [], plots.plt.close
    monkeypatch.setattr(plots.plt, "close", lambda fig=None: (kept.append(fig), close(fig)))
    return kept


def test_grid_gaps_are_a_colour_no_binary_or_grey_pixel_has():
    x = torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[1.0, 1.0], [0.0, 0.5]]])[:, None]     # (2, 1, 2, 2)
    grid = image_grid(x, ncol=2)                                                          # (4, 7, 3)
    assert grid.shape == (4, 7, 3)
    gaps = np.ones(grid.shape[:2], bool)
    gaps[1:3, 1:3] = gaps[1:3, 4:6] = False
    assert np.allclose(grid[gaps], PAD)
    assert all(0 < v < 1 for v in PAD) and len(set(PAD)) == 3           # not 0, not 1, not any grey
    assert np.array_equal(grid[1:3, 4:6, 0], x[1, 0].numpy())           # the pixels, in grey, in their cell
    assert np.array_equal(grid[1:3, 4:6, 0], grid[1:3, 4:6, 2])


def test_colour_images_keep_their_channels():
    x = torch.rand(3, 3, 4, 4)
    grid = image_grid(x, ncol=3)                                        # (6, 16, 3)
    assert np.allclose(grid[1:5, 6:10], x[1].permute(1, 2, 0).numpy())


def test_scatter_draws_the_means(tmp_path, figures):
    means = torch.tensor([[-2.0, 0.0], [2.0, 1.0]])
    assert save_samples(torch.randn(50, 2), tmp_path / "s.png", means)
    (ax,) = figures[-1].axes
    assert drawn_means(ax, means.numpy())


def drawn_means(ax, means: np.ndarray) -> bool:
    """Whether one of the axes' scatters is exactly the points `means`."""
    return any(np.shape(c.get_offsets()) == means.shape and np.allclose(c.get_offsets(), means)
               for c in ax.collections)


def test_ours_vs_paper_has_a_panel_per_metric_with_the_paper_each_seed_and_the_mean(tmp_path, figures):
    from jointkl.plots import save_vs_paper
    from jointkl.reproduce.base import Row
    rows = [Row("GAN", "modes", [20.0, 22.0, 24.0], 24.0), Row("ALI", "modes", [], 18.0),
            Row("GAN", "mse", [0.3], 0.2, better="lower"), Row("VAE", "nll", [90.0], None)]
    assert save_vs_paper(rows, tmp_path / "c.png", "t")
    modes, mse = figures[-1].axes                                       # no panel for nll: no paper value
    assert modes.get_title(loc="left") == "modes (higher is better)"
    assert mse.get_title(loc="left") == "mse (lower is better)"
    assert [t.get_text() for t in modes.get_yticklabels()] == ["GAN", "ALI (ours pending)"]
    points = [np.asarray(c.get_offsets())[:, 0].tolist() for c in modes.collections]
    assert [20.0, 22.0, 24.0] in points and [24.0, 18.0] in points       # each seed; the paper's values
    (bar,) = modes.containers                                           # the seed mean ± one std (ddof=1)
    assert bar.lines[0].get_xdata()[0] == 22.0
    assert np.allclose(np.asarray(bar.lines[2][0].get_segments()[0])[:, 0], [20.0, 24.0])
    assert not save_vs_paper(rows[3:], tmp_path / "none.png") and not (tmp_path / "none.png").exists()
