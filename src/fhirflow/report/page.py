"""The report as one self-contained HTML file: styles, Plotly's JavaScript and the data inline.

A Content-Security-Policy in the page itself forbids every request (images, scripts, fonts,
fetch/XHR) to anything but the file's own inline content, so the file opens offline and a
chart library update that tried to fetch something would fail visibly rather than phone
home. Everything taken from the data is escaped here or by Plotly's JSON encoder (which
escapes `<`, `>` and `/`).
"""

from __future__ import annotations

import html
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import plotly
import plotly.io as pio
from plotly.offline import get_plotlyjs

from fhirflow.report.charts import Chart, Section, Table

# Inline script and style only; no eval, no URL of any kind (data: for Plotly's own images).
CSP = ("default-src 'none'; script-src 'unsafe-inline'; "
       "style-src 'unsafe-inline'; img-src data: blob:; font-src data:")
# No mode bar: it covers the top of small charts and prints; hover still shows the values.
PLOTLY_CONFIG = {"displaylogo": False, "displayModeBar": False, "responsive": True}


@dataclass(frozen=True)
class Fact:
    label: str
    value: str


STYLE = """
:root { --ink: #1d2733; --muted: #5b6675; --line: #dde2e8; --paper: #ffffff; --band: #f4f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: var(--band); }
header, main, footer { max-width: 1240px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 24px; }
h1 { font-size: 24px; margin: 0 0 2px; }
h2 { font-size: 19px; margin: 28px 0 10px; padding-bottom: 4px;
     border-bottom: 2px solid var(--ink); }
h3 { font-size: 15px; margin: 0 0 2px; }
.sub { color: var(--muted); margin: 0 0 14px; }
/* Boxes as wide as their value (a date never wraps), sharing the row's width. */
.facts { display: flex; flex-wrap: wrap; gap: 8px; margin: 0; padding: 0; list-style: none; }
.facts li { flex: 1 1 auto; background: var(--paper); border: 1px solid var(--line);
            border-radius: 6px; padding: 8px 12px; }
.facts .v { display: block; font-size: 20px; font-weight: 600; white-space: nowrap; }
.facts .k { color: var(--muted); font-size: 12px; }
.banner { background: #fff6e0; border: 1px solid #e6c36b; border-radius: 6px; padding: 10px 14px;
          margin: 14px 0 0; }
nav { margin: 12px 0 0; color: var(--muted); }
nav a { color: inherit; margin-right: 14px; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 14px;
        align-items: start; }
.chart { margin: 0; background: var(--paper); border: 1px solid var(--line); border-radius: 6px;
         padding: 12px 14px; break-inside: avoid; page-break-inside: avoid; min-width: 0; }
.chart.wide { grid-column: 1 / -1; }
.reading { margin: 0 0 8px; color: var(--muted); }
.chart.empty .reading { color: var(--ink); font-style: italic; }
.note { background: var(--paper); border: 1px dashed var(--line); border-radius: 6px;
        padding: 14px; }
table { border-collapse: collapse; width: 100%; margin-top: 8px; font-size: 12px; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid var(--line);
         overflow-wrap: anywhere; }
td.num, th.num { text-align: right; white-space: nowrap; }
th, td.nowrap { white-space: nowrap; }
summary { cursor: pointer; color: var(--muted); margin-top: 8px; }
footer { color: var(--muted); font-size: 12px; padding: 24px 20px 32px; }
@media (max-width: 900px) { .grid { grid-template-columns: minmax(0, 1fr); } }
@page { size: A4; margin: 12mm; }
@media print {
  body { background: var(--paper); font-size: 11px; -webkit-print-color-adjust: exact;
         print-color-adjust: exact; }
  header, main, footer { max-width: none; padding: 0; }
  nav, .modebar-container { display: none !important; }
  .grid { grid-template-columns: minmax(0, 1fr); }
  .chart { border-color: #bbb; }
  h2 { break-after: avoid; page-break-after: avoid; }
}
"""

# Plotly sizes a chart to its container when drawn; printing changes the page's width, so
# redraw for print and again after.
SCRIPT = """
(function () {
  function resize() {
    document.querySelectorAll('.plotly-graph-div').forEach(function (div) {
      if (window.Plotly) { window.Plotly.Plots.resize(div); }
    });
  }
  window.addEventListener('beforeprint', resize);
  window.addEventListener('afterprint', resize);
})();
"""


def _esc(text: str) -> str:
    """Readings and titles: built from escaped labels already; escape the rest once."""
    return html.escape(html.unescape(text), quote=False)


def _table(table: Table) -> str:
    def numeric(value: str) -> bool:
        return value.replace(",", "").replace(".", "").replace("%", "").isdigit()

    numeric_columns = [bool(table.rows) and all(numeric(r[i]) for r in table.rows)
                       for i in range(len(table.headers))]
    head = "".join(f'<th class="num">{_esc(h)}</th>' if numeric_columns[i] else
                   f"<th>{_esc(h)}</th>" for i, h in enumerate(table.headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{_esc(c)}</td>' if numeric_columns[i] else
                         f'<td class="nowrap">{_esc(c)}</td>' if i in table.nowrap else
                         f"<td>{_esc(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in table.rows)
    text = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if table.folded:
        return f"<details><summary>{_esc(table.folded)}</summary>{text}</details>"
    return text


def _chart(chart: Chart) -> str:
    classes = ["chart"] + (["wide"] if chart.wide else []) + (
        [] if chart.drawn else ["empty"])
    parts = [f'<figure class="{" ".join(classes)}" id="chart-{chart.key}" '
             f'data-chart="{chart.key}" data-drawn="{str(chart.drawn).lower()}">',
             f"<h3>{_esc(chart.title)}</h3>",
             f'<p class="reading">{_esc(chart.reading)}</p>']
    if chart.figure is not None:
        height = chart.figure.layout.height or 360
        parts.append(pio.to_html(chart.figure, include_plotlyjs=False, full_html=False,
                                 div_id=f"plot-{chart.key}", config=PLOTLY_CONFIG,
                                 default_width="100%", default_height=f"{height}px"))
    if chart.table is not None and chart.table.rows:
        parts.append(_table(chart.table))
    parts.append("</figure>")
    return "\n".join(parts)


def _section(section: Section) -> str:
    body = (f'<p class="note">{_esc(section.note)}</p>' if not section.charts else
            '<div class="grid">' + "\n".join(_chart(c) for c in section.charts) + "</div>")
    return (f'<section id="{section.key}" data-section="{section.key}">'
            f"<h2>{_esc(section.title)}</h2>{body}</section>")


def render(sections: list[Section], facts: list[Fact], *, subtitle: str,
           banner: str = "") -> str:
    fact_items = "".join(f'<li><span class="v">{_esc(f.value)}</span>'
                         f'<span class="k">{_esc(f.label)}</span></li>' for f in facts)
    nav = "".join(f'<a href="#{s.key}">{_esc(s.title)}</a>' for s in sections)
    banner_html = f'<p class="banner" role="status">{_esc(banner)}</p>' if banner else ""
    # 4.8 MB of library for nothing to draw: an empty warehouse's page goes without it.
    drawn = any(c.drawn for s in sections for c in s.charts)
    library = get_plotlyjs() if drawn else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fhirflow report</title>
<style>{STYLE}</style>
<script id="plotly-js">{library}</script>
</head>
<body>
<header>
<h1>fhirflow report</h1>
<p class="sub">{_esc(subtitle)}</p>
<ul class="facts">{fact_items}</ul>
{banner_html}
<nav>{nav}</nav>
<noscript><p class="banner">The charts are drawn by JavaScript inside this file; allow it to
run to see them (the readings above each chart are plain text).</p></noscript>
</header>
<main>
{"".join(_section(s) for s in sections)}
</main>
<footer>Built by fhirflow with Plotly {plotly.__version__}. Self-contained: this file loads
nothing from the network. Hover a chart for the counts behind it.</footer>
<script>{SCRIPT}</script>
</body>
</html>
"""


def write_atomically(path: Path, text: str) -> int:
    """Write through a temporary file in the same folder, so a reader never sees half a
    report; returns the bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(data)
