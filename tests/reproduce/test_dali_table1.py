"""dali-table1's verdict names the rows DALI must beat (ALI's three losses and ALICE), not a prefix of names."""
from __future__ import annotations

import pytest

from jointkl.reproduce.base import Row
from jointkl.reproduce.dali import RIVALS, TABLE1, table1_verdict


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
