"""The report reads right at a glance: one seed is n=1 (no ± 0), the difference says better or worse by the row's
own direction, every verdict carries its scale's caveat, sections have anchors, provenance is stated, each table
has a chart of ours against the paper, and an entry that raises leaves the finished ones reported."""
from __future__ import annotations

import html
import sys

import pytest

from jointkl.reproduce import TABLES, run_tables
from jointkl.report import CHART_CAPTION, command, diff_cell, ours_cell, write_report
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


def test_each_table_with_paper_values_has_its_chart_with_a_caption(tmp_path):
    tables = {t: Table(t, f"table {t}", "protocol", lambda ctx, out: None) for t in ("t-1", "t-2")}
    results = {"t-1": Result([Row("GAN", "modes", [20.0, 22.0], 24.0), Row("GAN", "mse", [0.1], None)], "reproduced"),
               "t-2": Result([Row("GAN", "mse", [0.1], None)], "reproduced")}      # no paper value: no chart
    write_report(tables, results, tmp_path)
    write_report(tables, results, tmp_path)                     # rewritten after each entry: drawn once
    md, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    assert (tmp_path / "t-1-vs-paper.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert results["t-1"].figures == [tmp_path / "t-1-vs-paper.png"] and results["t-2"].figures == []
    assert not (tmp_path / "t-2-vs-paper.png").exists()
    assert "![t-1: ours vs paper](t-1-vs-paper.png)" in md and f"*t-1: {CHART_CAPTION}.*" in md
    assert page.count("<figure class='chart'><img") == 1 and f"t-1: {html.escape(CHART_CAPTION)}." in page
    assert page.count("data:image/png;base64") == 1 and md.count("![") == 1      # once, as the chart
    assert page.index("id='t-t-1'") < page.index("class='chart'") < page.index("id='t-t-2'")   # in its section


@pytest.fixture
def three_entries(monkeypatch) -> list[str]:
    """t-ok scores, t-bad raises, t-later would score: registered for one test."""
    def boom(ctx, out):
        raise ValueError("the scoring broke\non two lines")
    ok = lambda ctx, out: Result([Row("m", "modes", [25.0], 24.0)], "reproduced", "fine")   # noqa: E731
    for tid, score in (("t-ok", ok), ("t-bad", boom), ("t-later", ok)):
        monkeypatch.setitem(TABLES, tid, Table(tid, f"entry {tid}", "protocol", score))
    return ["t-ok", "t-bad", "t-later"]


def test_an_entry_that_raises_is_reported_and_the_later_ones_still_run(tmp_path, three_entries):
    from jointkl.errors import JointKLError
    with pytest.raises(JointKLError, match=r"1 entry raised: t-bad \(traceback in .*t-bad-error.txt\)"):
        run_tables(three_entries, tmp_path, scale="quick")
    md, page = (tmp_path / "report.md").read_text(), (tmp_path / "report.html").read_text()
    assert "## t-ok: entry t-ok" in md and "| m | modes | 25 (n=1) | 24 | 1 (better) |" in md
    assert (tmp_path / "t-ok-vs-paper.png").exists()
    assert "**Verdict: failed.** this entry raised ValueError: the scoring broke on two lines." in md
    assert "| [t-bad](#t-t-bad) | failed |" in md                    # the contents line, without the quick caveat
    assert "## t-later: entry t-later" in md and "id='t-t-later'" in page   # the entry after it ran
    assert "<b>Verdict: failed.</b>" in page and "id='t-t-ok'" in page
    assert 'raise ValueError("the scoring broke' in (tmp_path / "t-bad-error.txt").read_text()   # nothing lost


def test_a_results_page_run_of_some_entries_keeps_the_others_sections(tmp_path, three_entries):
    out, page = tmp_path / "runs", tmp_path / "docs" / "results.md"
    run_tables(["t-ok"], out, scale="quick", results_page=page)
    only_ok = page.read_text()
    run_tables(["t-later"], out, scale="quick", results_page=page)
    both = page.read_text()
    ok_section = only_ok[only_ok.index('\n\n<a id="t-t-ok">'):]
    assert ok_section.rstrip("\n") in both and "## t-later: entry t-later" in both
    assert both.index("| [t-ok](#t-t-ok) |") < both.index("| [t-later](#t-t-later) |") < both.index("## t-ok")
    assert (tmp_path / "docs" / "results" / "t-ok-vs-paper.png").exists()       # the kept section's figure stays
    run_tables(["t-ok"], out, scale="quick", results_page=page)                  # rewrites t-ok's, in its place
    assert page.read_text() == both
    run_tables(["t-ok"], out, scale="default", results_page=page)                # another scale: a new page
    assert "t-later" not in page.read_text()


def test_the_command_recorded_is_jointkls_own(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/venv/bin/jointkl", "reproduce", "su-ali", "--quick"])
    assert command() == "jointkl reproduce su-ali --quick"
    monkeypatch.setattr(sys, "argv", ["/venv/bin/pytest", "-k", "failed"])     # not jointkl's arguments
    assert command() == "pytest (from Python: no jointkl command line)"


def test_the_results_page_is_the_same_text_when_made_again_from_the_same_runs(tmp_path):
    """Issue 27: the docs' results page is generated; it says the command, scale, dates and code of every entry,
    and holds nothing of the moment (a second make from the cached runs gives the same bytes)."""
    import datetime

    import yaml

    from jointkl import provenance
    out, page = tmp_path / "runs", tmp_path / "docs" / "results.md"
    run_tables(["su-ali"], out, scale="quick", step_cap=4, results_page=page)
    first, figs = page.read_text(), sorted(p.name for p in (tmp_path / "docs" / "results").iterdir())
    (tmp_path / "docs" / "results" / "stale.png").write_bytes(b"old")
    run_tables(["su-ali"], out, scale="quick", step_cap=4, results_page=page)   # cached runs, scored again
    assert page.read_text() == first
    assert sorted(p.name for p in (tmp_path / "docs" / "results").iterdir()) == figs   # the stale one removed
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    code = provenance.code_text(provenance.code())
    assert f"*Scale: quick. Command: `jointkl reproduce su-ali --quick --out {out}`; 3 training run(s), finished " \
           f"{today}, trained by {code}.*" in first
    assert "**Verdict: reproduced (quick scale: not a finding).**" in first
    assert figs and all(f"(results/{name})" in first for name in figs)
    run = next((out / "quick" / "su-ali").glob("*seed0"))
    assert yaml.safe_load((run / "config.yaml").read_text())["code"] == provenance.code()
