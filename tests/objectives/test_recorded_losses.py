"""Every model still computes what it computed when `fixtures/losses.json` was recorded (rel 1e-5).

The cases, and the one function that computes them, live in `record_losses.py` next to this file; run
`.venv/bin/python tests/objectives/record_losses.py` to re-record after an intended change of the numbers.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest


def _load_recorder():
    path = Path(__file__).resolve().parent / "record_losses.py"
    spec = importlib.util.spec_from_file_location("_jointkl_record_losses", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


rec = _load_recorder()
RECORDED = json.loads(rec.FIXTURE.read_text()) if rec.FIXTURE.exists() else {"cases": []}
CASES = RECORDED["cases"]
REL, ABS = 1e-5, 1e-7


def test_fixture_exists_and_lists_the_script_cases():
    """The fixture holds exactly the cases `record_losses.CASES` defines (re-record after editing them)."""
    assert rec.FIXTURE.exists(), f"no {rec.FIXTURE}; run .venv/bin/python tests/objectives/record_losses.py"
    recorded = [{k: v for k, v in c.items() if k != "records"} for c in CASES]
    assert recorded == rec.CASES, "CASES changed since the fixture was recorded; re-run record_losses.py"


def test_every_registered_model_has_a_case():
    from jointkl.objectives import MODELS
    missing = sorted(set(MODELS) - {c["model"] for c in CASES})
    assert not missing, f"models without a recorded case: {missing}; add cases to record_losses.py and re-record"


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_recorded_losses(case):
    want = rec.flatten(case["records"])
    got = rec.flatten(rec.compute_case({k: v for k, v in case.items() if k != "records"}))
    assert set(got) == set(want), (f"the records' structure changed: missing {sorted(set(want) - set(got))}, "
                                     f"new {sorted(set(got) - set(want))}")
    bad = [f"  {k}: recorded {want[k]!r}, now {got[k]!r}" for k in want
           if got[k] != pytest.approx(want[k], rel=REL, abs=ABS)]
    assert not bad, f"{len(bad)} of {len(want)} numbers differ from the recording:\n" + "\n".join(bad[:40])
