"""The report reads right at a glance: one seed is n=1 (no ± 0), the difference says better or worse by the row's
own direction, every verdict carries its scale's caveat, sections have anchors, and provenance is stated."""
from __future__ import annotations

from jointkl.report import diff_cell, ours_cell, write_report
from jointkl.reproduce.base import Result, Row, Table


def test_one_seed_shows_no_spread_and_several_do():
    assert ours_cell(Row("m", "x", [1.5])) == "1.5 (n=1)"
    assert ours_cell(Row("m", "x", [1.0, 3.0])) == "2 ± 1.414 (n=2)"
    assert ours_cell(Row("m", "x", [])) == "pending"


def test_difference_is_judged_by_the_rows_direction():
    assert diff_cell(Row("m", "mse", [0.1], paper=0.2, better="lower")) == "-0.1 (better)"
    assert diff_cell(Row("m", "mse", [0.3], paper=0.2, better="lower")) == "0.1 (worse)"
    assert diff_cell(Row("m", "modes", [25.0], paper=24.0)) == "1 (better)"
    assert diff_cell(Row("m", "modes", [20.0], paper=24.0)) == "-4 (worse)"
    assert diff_cell(Row("m", "modes", [20.0])) == "–"


def test_quick_verdicts_are_tagged_everywhere_with_anchors_and_provenance(tmp_path):
    table = Table("t-1", "A table", "protocol text", lambda ctx, out: None, None)
    results = {"t-1": Result([Row("m", "modes", [25.0], 24.0)], "reproduced", "a note")}
    write_report({"t-1": table}, results, tmp_path, scale="quick")
    md, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    assert md.count("reproduced (quick scale: not a finding)") == 2           # summary and section
    assert page.count("reproduced (quick scale: not a finding)") == 2
    assert "href='#t-t-1'" in page and "id='t-t-1'" in page and "(#t-t-1)" in md
    for key in ("date", "jointkl", "commit", "torch", "device", "command"):
        assert f"<th>{key}</th>" in page
    write_report({"t-1": table}, results, tmp_path, scale="default")
    assert "not a finding" not in (tmp_path / "report.md").read_text()
