"""Mode coverage (VEEGAN protocol) on hand-made cases."""

import pytest
import torch

from jointkl.eval.modes import covered_modes, expected_modes, mode_map, mode_stats

STD = 0.05
GRID = torch.tensor([[float(a), float(b)] for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)])  # (25, 2)


def test_samples_at_every_mean_cover_all_modes():
    samples = GRID.repeat(100, 1)  # (2500, 2)
    assert mode_stats(samples, GRID, STD) == {"modes": 25, "high_quality": 100.0}


def test_samples_near_every_mean_within_three_std():
    torch.manual_seed(0)
    offsets = torch.nn.functional.normalize(torch.randn(2500, 2), dim=1) * 2.9 * STD  # (2500, 2)
    samples = GRID.repeat(100, 1) + offsets  # (2500, 2)
    assert mode_stats(samples, GRID, STD) == {"modes": 25, "high_quality": 100.0}


def test_collapsed_samples_cover_one_mode():
    samples = GRID[7].expand(2500, 2) + 0.01  # (2500, 2)
    stats = mode_stats(samples, GRID, STD)
    assert stats["modes"] == 1
    assert stats["high_quality"] == 100.0


def test_samples_far_off_cover_nothing():
    samples = torch.full((2500, 2), 10.0)  # (2500, 2)
    assert mode_stats(samples, GRID, STD) == {"modes": 0, "high_quality": 0.0}


def test_hand_mix():
    samples = torch.tensor([
        [0.1, 0.0],     # 2 std from (0, 0): high quality, mode (0, 0)
        [2.2, 2.0],     # 4 std from (2, 2): low quality
        [-4.0, 4.0],    # on (-4, 4): high quality
        [1.0, 1.0],     # between modes: low quality
        [-0.05, 0.1],   # ~2.2 std from (0, 0): high quality, same mode again
    ])
    stats = mode_stats(samples, GRID, STD)
    assert stats["modes"] == 2
    assert stats["high_quality"] == pytest.approx(60.0)
    assert isinstance(stats["modes"], int) and isinstance(stats["high_quality"], float)
    # a looser threshold admits the second sample: 3 modes, 80 %
    assert mode_stats(samples, GRID, STD, n_std=5.0) == {"modes": 3, "high_quality": pytest.approx(80.0)}


def test_expected_modes_hand_case():
    # pool of 1,000: mode 0 holds 1 sample, mode 1 holds 989, 10 lie between modes; 10-sample draws
    pool = torch.cat([GRID[:1], GRID[1:2].expand(989, 2), torch.full((10, 2), 1.0)])  # (1000, 2)
    want = (1 - 0.999 ** 10) + (1 - 0.011 ** 10)
    assert expected_modes(pool, GRID, STD, n=10) == pytest.approx(want, rel=1e-12)
    assert expected_modes(GRID.repeat(100, 1), GRID, STD) == pytest.approx(25.0)


def test_expected_modes_is_the_mean_count_of_draws_from_the_pool():
    # 20 modes with 4 % of the pool each, 5 modes with 0.04 % each: a 2,500-sample draw misses the
    # thin ones about e^-1 of the time
    thick, thin = GRID[:20].repeat_interleave(100, 0), GRID[20:]                    # (2000, 2), (5, 2)
    pool = torch.cat([thick, thin, torch.full((495, 2), 1.0)])                      # (2500, 2)
    g = torch.Generator().manual_seed(0)
    draws = [mode_stats(pool[torch.randint(0, 2500, (2500,), generator=g)], GRID, STD)["modes"] for _ in range(2000)]
    mean = sum(draws) / len(draws)
    assert expected_modes(pool, GRID, STD) == pytest.approx(mean, abs=0.05)
    assert 22.5 < mean < 23.5                                                       # 20 + 5 (1 - e^-1) = 23.16


def test_covered_modes_counts_modes_holding_a_quarter_of_their_share():
    # 25 modes: 20 hold 4 % each; of the last 5, two hold exactly 1 % (counted), three 0.96 % (not)
    pool = torch.cat([GRID[:20].repeat_interleave(100, 0), GRID[20:22].repeat_interleave(25, 0),
                      GRID[22:].repeat_interleave(24, 0), torch.full((378, 2), 1.0)])   # (2500, 2)
    assert pool.shape[0] == 2500
    assert covered_modes(pool, GRID, STD) == 22
    assert covered_modes(pool, GRID, STD, fraction=0.24) == 25
    assert covered_modes(pool + 0.5, GRID, STD) == 0                                # all between modes


def test_mode_map_names_the_nearest_mode_or_minus_one():
    x = torch.stack([GRID[7], GRID[7] + 0.1, GRID[7] + 0.2, torch.tensor([1.0, 1.0])])   # within 3 std: 2
    assert mode_map(x, GRID, STD).tolist() == [7, 7, -1, -1]
