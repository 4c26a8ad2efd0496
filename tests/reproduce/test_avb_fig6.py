"""AVB Fig. 6's numbers (`jointkl.reproduce.avb`): the cells of equal prior mass and the coverage, identifiability
and binned KL read from them, against cases whose values are known exactly; the entry trains avb-table1's presets (the same runs, bitwise)."""
from __future__ import annotations

import math

import pytest
import torch

from jointkl.reproduce import avb

N = avb.CELLS


def centres() -> torch.Tensor:
    """One point in the middle of each cell of equal prior mass, row-major. (N^2, 2)"""
    g = torch.special.ndtri((torch.arange(N, dtype=torch.float64) + 0.5) / N)
    return torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)


def test_cells_have_equal_prior_mass_and_follow_phi():
    assert avb.prior_cells(centres()).tolist() == list(range(N * N))
    assert avb.prior_cells(torch.tensor([[-1e9, 1e9], [0.0, 0.0]])).tolist() == [N - 1, N // 2 * N + N // 2]


def test_posteriors_that_tile_the_prior_score_one():
    """The optimum of log p(x) = -log 4: p(z) split into its four quadrants, one per image."""
    z = centres()                                                           # (N^2, 2): each cell once
    quadrant = (z[:, 0] > 0).long() * 2 + (z[:, 1] > 0).long()
    q = torch.stack([(avb.prior_cells(z[quadrant == i]).unsqueeze(1) == torch.arange(N * N)).sum(0) for i in range(4)])
    q = q.double() / (N * N / 4)                                            # (4, N^2): q_i(c)
    assert avb.coverage(q) == pytest.approx(1, abs=1e-12)
    assert avb.identifiability(q) == pytest.approx(1, abs=1e-12)
    assert avb.binned_kl(q) == pytest.approx(0, abs=1e-12)


def test_identical_or_collapsed_posteriors():
    same = avb.cell_masses(centres().unsqueeze(1).expand(-1, 4, -1))        # every image spread over the prior
    assert avb.coverage(same) == pytest.approx(1) and avb.identifiability(same) == pytest.approx(0.25)
    point = avb.cell_masses(torch.full((10, 4, 2), 0.1))                    # every draw in one cell
    assert avb.coverage(point) == pytest.approx(1 / N ** 2)
    assert avb.identifiability(point) == pytest.approx(0.25)
    assert avb.binned_kl(point) == pytest.approx(math.log(N ** 2))


def test_masses_from_draws_match_the_gaussian_cdf():
    """q(z|x) = N(m, 0.7^2 I): each cell's exact mass is a product of two normal-CDF differences."""
    torch.manual_seed(0)
    m, s, n = torch.tensor([0.5, -0.3], dtype=torch.float64), 0.7, 400_000
    edges = torch.special.ndtri(torch.linspace(0, 1, N + 1, dtype=torch.float64))           # (N + 1,) ±inf ends
    per_axis = [torch.diff(torch.special.ndtr((edges - m[a]) / s)) for a in range(2)]      # (N,) each
    exact = torch.outer(*per_axis).reshape(1, -1)                           # (1, N^2)
    q = avb.cell_masses((m + s * torch.randn(n, 2, dtype=torch.float64)).unsqueeze(1))
    # the total variation of n draws from 256 cells: about 0.5 * sqrt(2 * 256 / (pi * n)) = 0.01
    assert (q - exact).abs().sum() / 2 < 0.02
    assert avb.coverage(q) == pytest.approx(avb.coverage(exact), abs=0.02)
    assert avb.binned_kl(q) == pytest.approx(avb.binned_kl(exact), abs=0.01)
    assert avb.coverage(exact) < 0.8                                        # a narrower, shifted q covers less


def test_entry_trains_avb_table1s_runs_bitwise_in_its_own_folder(tmp_path):
    from safetensors.torch import load_file

    from jointkl.reproduce import run_tables
    result = run_tables(["avb-fig6", "avb-table1"], tmp_path, seeds=1, scale="quick", step_cap=4)["avb-fig6"]
    assert result.verdict in ("reproduced", "not reproduced")
    assert all(math.isfinite(v) for row in result.rows for v in row.ours) and len(result.rows) == 9
    assert all(p.exists() for p in result.figures)
    for run in ("vae-seed0", "avb-seed0"):                 # the same presets and seeds: the same weights
        mine, table1 = (sorted((tmp_path / "quick" / e / run).glob("checkpoints/*/model.safetensors"))
                        for e in ("avb-fig6", "avb-table1"))
        assert len(mine) == len(table1) == 1
        a, b = load_file(mine[0]), load_file(table1[0])
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
