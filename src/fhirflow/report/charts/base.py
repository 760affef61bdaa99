"""What every chart shares: the Chart/Section records, formatting, and small figure helpers.

A chart whose data is missing or empty has no figure and a reading that says why, so an
empty warehouse shows sentences rather than empty axes. Every label that comes from the
data (condition names, payer names, file names) is HTML-escaped: Plotly renders a subset
of HTML in labels, and these strings come from untrusted bundles.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go

from fhirflow.report.queries import Answer

TOP = 12  # bars in a "top N" chart
# The Okabe-Ito colour-blind-safe palette, used across the report.
BLUE, ORANGE, GREEN, RED, GREY, PURPLE = ("#0072B2", "#E69F00", "#009E73", "#D55E00",
                                          "#999999", "#CC79A7")
SEQUENCE = [BLUE, ORANGE, GREEN, PURPLE, "#56B4E9", RED, "#F0E442", GREY]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    # When set, the table is folded under this line (a long table with nothing to act on).
    folded: str = ""
    nowrap: tuple[int, ...] = ()  # columns kept on one line ("entry 0", a time)


@dataclass
class Chart:
    key: str
    title: str
    reading: str  # one line computed from the data, or why nothing is drawn
    figure: go.Figure | None = None
    table: Table | None = None
    wide: bool = False  # spans the page's two columns

    @property
    def drawn(self) -> bool:
        return self.figure is not None


@dataclass
class Section:
    key: str
    title: str
    charts: list[Chart] = field(default_factory=list)
    note: str = ""  # said instead of the charts when there is nothing to chart


# -- formatting -------------------------------------------------------------------------


def label(value: Any, limit: int = 48) -> str:
    """A value from the data as display text: cut to `limit` characters and HTML-escaped."""
    text = "(none)" if value is None or value == "" else str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    # quote=False: Plotly shows &quot; as it is; only <, > and & make markup.
    return html.escape(text, quote=False)


def n(value: float) -> str:
    return f"{value:,.0f}"


def many(count: float, noun: str) -> str:
    """'1 load', '2 loads', '2 entries'."""
    if count == 1:
        return f"{n(count)} {noun}"
    plural = noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"
    return f"{n(count)} {plural}"


def count_axis(title: str, peak: float) -> dict[str, Any]:
    """An axis of counts: whole-number ticks even when the counts are small."""
    return {"title": title, "dtick": nice_step(peak, 4)} if peak < 20 else {"title": title}


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def money(value: float) -> str:
    return f"${value:,.0f}"


def figure(height: int = 360, **layout: Any) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(template="plotly_white", height=height, margin={"l": 10, "r": 10,
                      "t": 10, "b": 10}, font={"family": "system-ui, sans-serif", "size": 12},
                      legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom",
                              "traceorder": "normal"}, **layout)
    fig.update_yaxes(automargin=True)
    fig.update_xaxes(automargin=True)
    return fig


def not_drawn(key: str, title: str, answer: Answer | None, empty: str) -> Chart | None:
    """The Chart to show instead of a figure, or None when there is something to draw."""
    if answer is None:
        return Chart(key, title, "Not drawn: the report has no query for it.")
    if answer.missing:
        more = len(answer.missing) - 2
        names = ", ".join(answer.missing[:2]) + (f" and {more} more" if more > 0 else "")
        return Chart(key, title, f"Not drawn: needs {names} (run `fhirflow transform`).")
    if answer.error:
        return Chart(key, title, f"Not drawn: {answer.error}")
    if not answer.rows:
        return Chart(key, title, empty)
    return None


def hbar(fig: go.Figure, labels: list[str], values: list[float], *, name: str = "",
         color: str = BLUE, hover: str = "%{x:,}", customdata: Any = None,
         full: list[str] | None = None) -> None:
    """A horizontal bar trace, largest at the top; `full` names shown on hover when the
    axis labels are cut short."""
    fig.add_bar(y=labels[::-1], x=values[::-1], orientation="h", name=name,
                marker_color=color, customdata=None if customdata is None else customdata[::-1],
                hovertext=None if full is None else full[::-1],
                hovertemplate=("%{hovertext}" if full else "%{y}")
                + f": {hover}<extra>{name}</extra>")


def share_axis(title: str = "share of patients") -> dict[str, Any]:
    """An x axis from 0 to 100% that shows its 100% tick."""
    return {"title": title, "tickformat": ".0%", "range": [0, 1.02],
            "tickvals": [0, 0.25, 0.5, 0.75, 1]}


def nice_step(peak: float, ticks: int = 3) -> int:
    """A 1/2/5 x 10^k step that gives about `ticks` ticks up to `peak`."""
    raw = max(peak / ticks, 1)
    scale = 10 ** (len(str(int(raw))) - 1)
    return next(m * scale for m in (1, 2, 5, 10) if m * scale >= raw)


def bar_height(bars: int) -> int:
    return max(220, 60 + 24 * bars)


def largest(rows: Iterable[dict[str, Any]], key: str, limit: int = TOP) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (-(r[key] or 0), str(r.get("description"))))[:limit]
