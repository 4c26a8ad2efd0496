"""Reports: each reproduced table as ours (mean ± std over seeds) beside the paper's, with a verdict,
as report.md and a self-contained report.html (figures inlined)."""
from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import TextIO


def _fmt(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3e}"


def table_rows(result) -> list[list[str]]:
    out = []
    for r in result.rows:
        ours = "pending" if not r.ours else f"{_fmt(r.mean)} ± {_fmt(r.std)} (n={len(r.ours)})"
        diff = _fmt(r.mean - r.paper) if r.ours and r.paper is not None else "–"
        out.append([r.method, r.metric, ours, _fmt(r.paper), diff])
    return out


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


def write_report(tables: dict, results: dict, out: Path, scale: str = "default") -> None:
    intro = (f"Ours beside the papers' numbers; every number below was measured by `jointkl reproduce` at scale "
             f"{SCALE_TEXT[scale]}.")
    md = ["# jointkl reproduction report", "", intro, "",
          "| table | verdict | seconds |", "|---|---|---|"]
    tag = " (quick scale: not a finding)" if scale == "quick" else ""   # a few hundred steps decide little
    md += [f"| {tid} | {r.verdict}{tag if r.verdict != 'pending' else ''} | {r.seconds:.0f} |" for tid, r in results.items()]
    body = [f"<h1>jointkl reproduction report</h1><p>{html.escape(intro)}</p>"
            "<table><tr><th>table</th><th>verdict</th><th>seconds</th></tr>"
            + "".join(f"<tr><td>{tid}</td><td>{r.verdict}</td><td>{r.seconds:.0f}</td></tr>"
                      for tid, r in results.items()) + "</table>"]
    for tid, r in results.items():
        t = tables[tid]
        md += ["", f"## {tid}: {t.title}", "", f"Protocol: {t.protocol}", ""]
        if r.rows:
            md += ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
            md += ["| " + " | ".join(row) + " |" for row in table_rows(r)]
        md += ["", f"**Verdict: {r.verdict}.** {r.note}"]
        md += [f"![{p.name}]({os.path.relpath(p, out)})" for p in r.figures]
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table_rows(r))
        imgs = "".join(f'<img alt="{p.name}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
                       for p in r.figures if p.exists())
        body.append(f"<h2>{html.escape(tid)}: {html.escape(t.title)}</h2><p>Protocol: {html.escape(t.protocol)}</p>"
                    + (f"<table><tr>{''.join(f'<th>{h}</th>' for h in HEAD)}</tr>{rows}</table>" if r.rows else "")
                    + f"<p><b>Verdict: {html.escape(r.verdict)}.</b> {html.escape(r.note)}</p>{imgs}")
    (out / "report.md").write_text("\n".join(md) + "\n")
    style = ("body{font-family:sans-serif;max-width:60em;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:30%;margin:4px}")
    (out / "report.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>jointkl report</title>"
                                     f"<style>{style}</style></head><body>{''.join(body)}</body></html>")
