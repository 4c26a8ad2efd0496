"""dali-table1's verdict names the rows DALI must beat (ALI's three losses and ALICE), not a prefix of names; its
classifier inception score against known values."""
from __future__ import annotations

import pytest
import torch

from jointkl.reproduce.base import Row
from jointkl.reproduce.dali import RIVALS, TABLE1, is_order, samples_inception_score, table1_verdict


def _rows(**mse) -> list[Row]:
    return [Row(label, "test MSE", [mse.get(label, 0.5)], better="lower") for label in TABLE1]


def test_the_rivals_are_every_ali_loss_and_alice_but_not_dalis_variant_or_the_aae():
    assert set(RIVALS) == {label for label in TABLE1 if label.startswith("ALI")} and "ALICE" in RIVALS
    assert not {"DALI", "DALI-l2", "AAE"} & set(RIVALS)


@pytest.mark.parametrize("mse,verdict", [
    ({"DALI": 0.026, "ALICE": 0.080}, True),                       # the paper's order
    ({"DALI": 0.1, "ALICE": 0.08}, False),                         # below every ALI, above ALICE: not reproduced
    ({"DALI": 0.1, "ALI vi (Su eq. 41)": 0.09}, False),
    ({"DALI": 0.1, "DALI-l2": 0.01, "AAE": 0.01}, True),          # shown, not compared
])
def test_dali_must_be_below_each_rival(mse, verdict):
    assert table1_verdict(_rows(**mse)) is verdict


def test_a_rival_without_numbers_is_no_win():
    rows = _rows(DALI=0.01)
    next(r for r in rows if r.method == "ALICE").ours = []
    assert table1_verdict(rows) is False


# ---- the classifier inception score of Table 1's samples ----------------------------------------------------

def _certain(k: int):
    """A 'classifier' certain of class x[i] for a sample x (N,) of class indices: p(y|x) one-hot."""
    return lambda x: torch.eye(k)[x]


def test_inception_score_of_certain_samples_spread_over_k_classes_is_k():
    sample = lambda n: torch.arange(n) % 10                        # noqa: E731  every class equally often
    assert samples_inception_score(sample, _certain(10), n=1000) == pytest.approx(10.0)


def test_inception_score_of_one_class_or_of_uncertain_predictions_is_one():
    one_class = lambda n: torch.full((n,), 3)                      # noqa: E731
    assert samples_inception_score(one_class, _certain(10), n=500) == pytest.approx(1.0)
    uniform = lambda x: torch.full((len(x), 10), 0.1)              # noqa: E731
    assert samples_inception_score(lambda n: torch.arange(n) % 10, uniform, n=500) == pytest.approx(1.0)


def test_inception_score_draws_its_samples_under_its_seed():
    sample = lambda n: torch.randint(4, (n,))                      # noqa: E731  random classes: IS just below 4
    a, b = (samples_inception_score(sample, _certain(4), n=200, seed=7) for _ in range(2))
    assert a == b and 3.5 < a < 4.0
    assert samples_inception_score(sample, _certain(4), n=200, seed=8) != a


def test_is_order_ranks_the_rows_the_paper_scores():
    rows = [Row("DALI", "IS", [8.0], 9.483), Row("GAN", "IS", [9.0], 9.464), Row("AAE", "IS", [9.9], None),
            Row("ALI", "IS", [], 8.749)]
    assert is_order(rows, paper=False) == ["GAN", "DALI"]            # ours; AAE has no paper number, ALI no run
    assert is_order(rows, paper=True) == ["DALI", "GAN"]
