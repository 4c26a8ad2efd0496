"""Reports: each reproduced table as ours (mean ± std over seeds) beside the paper's, with a verdict,
as report.md and a self-contained report.html (figures inlined, a contents list, where the numbers came from)."""
from __future__ import annotations

import base64
import datetime
import html
import os
import platform
import re
import sys
from pathlib import Path
from typing import TextIO

from jointkl.reproduce.base import Result


def _fmt(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"


def ours_cell(r) -> str:
    """mean ± std (n=k); one seed has no spread to show: its value and n=1."""
    if not r.ours:
        return "pending"
    if len(r.ours) == 1:
        return f"{_fmt(r.mean)} (n=1)"
    return f"{_fmt(r.mean)} ± {_fmt(r.std)} (n={len(r.ours)})"


def diff_cell(r) -> str:
    """ours − paper, and whether that is better or worse by the row's own direction (`Row.better`)."""
    if not r.ours or r.paper is None:
        return "–"
    d = r.mean - r.paper
    if d == 0:
        return "0"
    good = d > 0 if r.better == "higher" else d < 0
    return f"{_fmt(d)} ({'better' if good else 'worse'})"


def table_rows(result) -> list[list[str]]:
    return [[r.method, r.metric, ours_cell(r), _fmt(r.paper), diff_cell(r)] for r in result.rows]


HEAD = ["method", "metric", "ours (mean ± std over seeds)", "paper", "ours − paper"]


def print_table(table, result, f: TextIO) -> None:
    rows = [HEAD] + table_rows(result)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEAD))]
    for r in rows:
        f.write("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) + "\n")
    f.write(f"  verdict: {result.verdict}. {result.note}\n\n")
    f.flush()


SCALE_TEXT = {"quick": "quick (the whole registry in about 10 minutes on 2 CPU cores: few steps, one seed; "
                       "numbers are real but far from converged)",
              "default": "default (the CPU-scale protocols below)",
              "full": "full (the papers' data sets and sizes where their files are present)"}


FAILED = "failed"                   # the verdict of an entry that raised (`failed_result`)


def verdict_text(verdict: str, scale: str) -> str:
    """The verdict with its scale's caveat: a quick-scale verdict is a smoke run, never a finding."""
    judged = verdict not in ("pending", FAILED)
    return f"{verdict} (quick scale: not a finding)" if scale == "quick" and judged else verdict


def failed_result(error: BaseException, seconds: float, not_run: list[str]) -> Result:
    """What the report says of an entry that raised: that it failed, with the error on one line, and which
    entries after it were not run."""
    from jointkl.errors import one_line
    later = f"; not run after it: {', '.join(not_run)}" if not_run else ""
    return Result([], FAILED, f"this entry raised {one_line(error)}{later}.",
                  seconds=seconds)


CHART_CAPTION = ("ours against the paper, one panel per metric (their scales differ): the paper's value (hollow "
                 "diamond), each seed's value (grey dots), their mean ± one std (blue dot and bar); rows without a "
                 "paper value are left out")


def chart(tid: str, result: Result, out: Path) -> Path | None:
    """The entry's ours-vs-paper chart, out/ID-vs-paper.png, drawn the first time it is asked for and kept as the
    result's first figure (the report is rewritten after every entry); None when no row has a paper value."""
    from jointkl.plots import save_vs_paper
    path = out / f"{tid}-vs-paper.png"
    if path not in result.figures and save_vs_paper(result.rows, path, f"{tid}: ours vs paper"):
        result.figures.insert(0, path)
    return path if path in result.figures else None


def provenance() -> dict[str, str]:
    """Where the numbers come from: date, versions, commit, machine, command."""
    import torch

    from jointkl import provenance as prov
    code = prov.code()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "jointkl": code["jointkl"], "commit": code["commit"] or "unknown", "torch": torch.__version__,
            "python": platform.python_version(), "device": device,
            "command": command()}


def command() -> str:
    """The jointkl command line that made the report; called from Python (a script, pytest), the program's
    name alone, since its arguments are not jointkl's."""
    prog = sys.argv[0] if sys.argv else ""
    if Path(prog).name == "jointkl" or Path(prog).as_posix().endswith("jointkl/__main__.py"):   # or -m jointkl
        return " ".join(["jointkl", *sys.argv[1:]])
    return f"{Path(prog).name or 'python'} (from Python: no jointkl command line)"


def _anchor(tid: str) -> str:
    return "t-" + "".join(c if c.isalnum() else "-" for c in tid)


def _figure(path: Path, caption: str, cls: str = "") -> str:
    """An HTML figure with the PNG inlined (the page stands alone) and its caption."""
    data = base64.b64encode(path.read_bytes()).decode()
    return (f"<figure{f' class={cls!r}' if cls else ''}><img alt=\"{html.escape(path.name)}\" "
            f"src=\"data:image/png;base64,{data}\"><figcaption>{html.escape(caption)}</figcaption></figure>")


def entry_md(tid: str, t, r: Result, verdict: str, out: Path, ref, where: str = "") -> list[str]:
    """One entry's Markdown: heading with its anchor, `where` (a line on how it was made), protocol, table, the
    ours-vs-paper chart with its caption, verdict and note, then its other figures; `ref(path)`: a figure's link."""
    md = ["", f'<a id="{_anchor(tid)}"></a>', "", f"## {tid}: {t.title}", ""] + ([where, ""] if where else [])
    md += [f"Protocol: {t.protocol}", ""]
    if r.rows:
        md += ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
        md += ["| " + " | ".join(row) + " |" for row in table_rows(r)]
    vs_paper = chart(tid, r, out)
    if vs_paper:
        md += ["", f"![{tid}: ours vs paper]({ref(vs_paper)})", "", f"*{tid}: {CHART_CAPTION}.*"]
    md += ["", f"**Verdict: {verdict}.** {r.note}"]
    return md + [f"\n![{p.name}]({ref(p)})" for p in r.figures if p != vs_paper and p.exists()]


def write_report(tables: dict, results: dict, out: Path, scale: str = "default") -> None:
    """report.md and report.html for the entries in `results` (called after each entry, so a later crash
    leaves the finished ones readable)."""
    intro = (f"Ours beside the papers' numbers; every number below was measured by `jointkl reproduce` at scale "
             f"{SCALE_TEXT[scale]}.")
    prov = provenance()
    prov_line = "; ".join(f"{k}: {v}" for k, v in prov.items())
    md = ["# jointkl reproduction report", "", intro, "", f"Provenance: {prov_line}.", "",
          "| table | verdict | seconds |", "|---|---|---|"]
    md += [f"| [{tid}](#{_anchor(tid)}) | {verdict_text(r.verdict, scale)} | {r.seconds:.0f} |"
           for tid, r in results.items()]
    body = [f"<h1>jointkl reproduction report</h1><p>{html.escape(intro)}</p>"
            "<table class='prov'>" + "".join(f"<tr><th>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in prov.items())
            + "</table><h2>Contents</h2><table><tr><th>table</th><th>verdict</th><th>seconds</th></tr>"
            + "".join(f"<tr><td><a href='#{_anchor(tid)}'>{html.escape(tid)}</a></td>"
                      f"<td>{html.escape(verdict_text(r.verdict, scale))}</td><td>{r.seconds:.0f}</td></tr>"
                      for tid, r in results.items()) + "</table>"]
    for tid, r in results.items():
        t, verdict = tables[tid], verdict_text(r.verdict, scale)
        md += entry_md(tid, t, r, verdict, out, lambda p: os.path.relpath(p, out))
        vs_paper = chart(tid, r, out)
        others = [p for p in r.figures if p != vs_paper]
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table_rows(r))
        figs = "".join(_figure(p, f"{tid}: {p.stem}") for p in others if p.exists())
        body.append(f"<h2 id='{_anchor(tid)}'>{html.escape(tid)}: {html.escape(t.title)}</h2>"
                    f"<p>Protocol: {html.escape(t.protocol)}</p>"
                    + (f"<table><tr>{''.join(f'<th>{h}</th>' for h in HEAD)}</tr>{rows}</table>" if r.rows else "")
                    + (_figure(vs_paper, f"{tid}: {CHART_CAPTION}.", "chart") if vs_paper else "")
                    + f"<p><b>Verdict: {html.escape(verdict)}.</b> {html.escape(r.note)}</p>{figs}"
                    + "<p><a href='#top'>back to the top</a></p>")
    _write(out / "report.md", "\n".join(md) + "\n")
    style = ("body{font-family:sans-serif;max-width:70em;margin:auto;padding:0 1em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}figure{display:inline-block;margin:6px;"
             "max-width:100%}figure img{max-width:100%}figcaption{font-size:80%;color:#444}figure.chart{display:block}")
    _write(out / "report.html", f"<!doctype html><html><head><meta charset='utf-8'><title>jointkl report</title>"
                                f"<style>{style}</style></head><body id='top'>{''.join(body)}</body></html>")


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a stop while the report is rewritten leaves the previous one readable."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ---- the results page: the report as a docs page, the same text whenever it is made from the same runs -------

def trained_when(runs: list[Path]) -> tuple[list[str], list[str]]:
    """(the UTC dates the runs finished, from their last checkpoint or DIVERGED marker; the code that trained
    them, from their config.yaml), each sorted and without repeats."""
    import yaml

    from jointkl.provenance import code_text
    dates, codes = set(), set()
    for run in map(Path, runs):
        ends = [p for p in (run / "checkpoints").glob("step-*")] + [p for p in (run / "DIVERGED",) if p.exists()]
        if ends:
            stamp = max(p.stat().st_mtime for p in ends)
            dates.add(datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).strftime("%Y-%m-%d"))
        try:
            codes.add(code_text((yaml.safe_load((run / "config.yaml").read_text()) or {}).get("code")))
        except (OSError, yaml.YAMLError, AttributeError):
            pass
    return sorted(dates), sorted(codes)


def _runs_line(runs: list[Path]) -> str:
    if not runs:
        return "no training runs of its own (it trains inside its scoring, or computes exactly)"
    dates, codes = trained_when(runs)
    when = " to ".join(dict.fromkeys([dates[0], dates[-1]])) if dates else "date unknown"
    return f"{len(runs)} training run(s), finished {when}, trained by {', '.join(codes) or 'code not recorded'}"


_SECTION = re.compile(r'\n\n<a id="(t-[^"]*)"></a>\n')
_CONTENTS = re.compile(r'^\| \[[^\]]+\]\(#(t-[^)]*)\) \| .* \|$', re.M)


def page_sections(text: str) -> dict[str, tuple[str, str]]:
    """An earlier results page's entries: anchor -> (its contents line, its section's text), in page order."""
    lines = {m.group(1): m.group(0) for m in _CONTENTS.finditer(text)}
    starts = list(_SECTION.finditer(text))
    ends = [m.start() for m in starts[1:]] + [len(text.rstrip("\n"))]
    return {m.group(1): (lines.get(m.group(1), ""), text[m.start():end]) for m, end in zip(starts, ends)}


def write_results_page(tables: dict, results: dict, runs: dict[str, list[Path]], page: Path, scale: str,
                       out: Path) -> None:
    """A docs page (Markdown) of the entries in `results`, each with the command that computes it, its scale and
    when and by what code its runs were trained; its figures copied beside it (page's folder / page's stem /).
    An earlier page of the same scale keeps the sections of the entries not in `results` (a run of some entries
    updates theirs), in its order. It holds nothing of the moment it is written (no clock, no timings), so
    making it again from the same runs with the same code gives the same text."""
    import shutil
    flag = {"quick": " --quick", "default": "", "full": " --full"}[scale]
    figs, written = page.parent / page.stem, set()
    figs.mkdir(parents=True, exist_ok=True)

    def copy(tid: str, p: Path) -> str:
        name = p.name if p.name.startswith(f"{tid}-") else f"{tid}-{p.name}"
        shutil.copyfile(p, figs / name)
        written.add(name)
        return f"{figs.name}/{name}"
    head = ["# Results", "",
            f"Every number below was computed by `jointkl reproduce` at the **{scale}** scale: "
            f"{SCALE_TEXT[scale]}. Each section prints the command that trains and scores it (cached runs are not "
            f"trained again), when its runs were trained and by which code. This page is written by "
            f"`jointkl reproduce{flag} --out {out} --results-page {page}`: a run of some entries rewrites their "
            "sections and keeps the others; run it again on the same runs to get the same page.", "",
            "| table | verdict |", "|---|---|"]
    text = page.read_text() if page.exists() else ""
    # another scale's page is replaced, not merged
    earlier = page_sections(text) if f"at the **{scale}** scale" in text else {}
    entries = {}
    for tid, r in results.items():
        verdict = verdict_text(r.verdict, scale)
        md = entry_md(tid, tables[tid], r, verdict, out, lambda p: copy(tid, p),
                      f"*Scale: {scale}. Command: `jointkl reproduce {tid}{flag} --out {out}`; "
                      f"{_runs_line(runs.get(tid, []))}.*")
        entries[_anchor(tid)] = (f"| [{tid}](#{_anchor(tid)}) | {verdict} |", "\n" + "\n".join(md))
    kept = {a: v for a, v in earlier.items() if a not in entries}
    order = list(earlier) + [a for a in entries if a not in earlier]
    entries |= kept
    written |= {n for _, text in kept.values() for n in re.findall(rf"\]\({re.escape(figs.name)}/([^)]+)\)", text)}
    for old in figs.glob("*.png"):                  # figures of an earlier page that this one does not show
        if old.name not in written:
            old.unlink()
    _write(page, "\n".join(head + [entries[a][0] for a in order]) + "".join(entries[a][1] for a in order) + "\n")
