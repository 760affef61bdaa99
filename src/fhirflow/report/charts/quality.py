"""Data quality: what was loaded, what was quarantined, references and completeness."""

from __future__ import annotations

import math
from typing import Any

from fhirflow.report.charts.base import (
    GREEN,
    GREY,
    ORANGE,
    RED,
    Answer,
    Chart,
    Table,
    bar_height,
    count_axis,
    figure,
    hbar,
    label,
    many,
    n,
    not_drawn,
    pct,
    share_axis,
)
from fhirflow.report.queries import MAX_ERROR_FILES

# Completeness thresholds: a key column under 95% filled is red, under 100% amber.
COMPLETE_WARN = 0.95


def resources(answer: Answer | None, bundles: int | None) -> Chart:
    key, title = "resources", "Resources loaded, by type"
    if (gone := not_drawn(key, title, answer, "No resources in the warehouse yet.")):
        return gone
    rows = sorted(answer.rows, key=lambda r: -r["resources"])
    total = sum(r["resources"] for r in rows)
    # Log scale from below 1, so a type with a single resource still shows a bar.
    fig = figure(bar_height(len(rows)), xaxis={
        "title": "resources", "type": "log", "dtick": 1,
        "range": [-0.3, math.log10(max(r["resources"] for r in rows)) + 0.1]})
    hbar(fig, [label(r["resource_type"]) for r in rows], [r["resources"] for r in rows],
         hover="%{x:,} resources")
    source = f" in {n(bundles)} bundles" if bundles is not None else ""
    return Chart(key, title, f"{n(total)} resources of {len(rows)} types{source}; "
                 f"{label(rows[0]['resource_type'])} is {pct(rows[0]['resources'], total)} "
                 "of them (log scale).", fig)


def loads(answer: Answer | None, total_loads: int | None) -> Chart:
    key, title = "loads", "Loads over time: files loaded and quarantined"
    if (gone := not_drawn(key, title, answer, "No load has run yet (`fhirflow load`).")):
        return gone
    rows = sorted(answer.rows, key=lambda r: r["load_id"])
    when = [f"{r['finished_at']:%Y-%m-%d %H:%M:%S}" if r["finished_at"] else r["load_id"]
            for r in rows]
    fig = figure(320, barmode="stack", xaxis={"type": "category", "title": "load finished (UTC)"},
                 yaxis=count_axis("files", max(r["files_loaded"] + r["files_failed"]
                                               for r in rows)))
    fig.add_bar(x=when, y=[r["files_loaded"] for r in rows], name="loaded", marker_color=GREEN,
                customdata=[[r["load_id"], r["bytes_loaded"] / 1e6] for r in rows],
                hovertemplate="%{customdata[0]}: %{y} files, %{customdata[1]:.1f} MB"
                              "<extra>loaded</extra>")
    fig.add_bar(x=when, y=[r["files_failed"] for r in rows], name="quarantined",
                marker_color=RED, hovertemplate="%{x}: %{y} files<extra>quarantined</extra>")
    loaded = sum(r["files_loaded"] for r in rows)
    failed = sum(r["files_failed"] for r in rows)
    count = total_loads if total_loads is not None else len(rows)
    scope = (f"the last {len(rows)} of {many(count, 'load')}" if count > len(rows)
             else many(count, "load"))
    mb = sum(r["bytes_loaded"] for r in rows) / 1e6
    return Chart(key, title, f"{scope} brought in {many(loaded, 'file')} ({mb:,.1f} MB) and "
                 f"quarantined {n(failed)}; the last finished {when[-1]} UTC.", fig,
                 wide=len(rows) > 12)


def quarantine(reasons: Answer | None, files: Answer | None, total_loads: int | None) -> Chart:
    key, title = "quarantine", "Quarantined files and why (RAW.LOAD_ERRORS)"
    loads_text = f" in {many(total_loads, 'load')}" if total_loads else ""
    if (gone := not_drawn(key, title, reasons, f"No file was quarantined{loads_text}.")):
        return gone
    rows = sorted(reasons.rows, key=lambda r: -r["file_count"])
    total = sum(r["file_count"] for r in rows)
    fig = figure(bar_height(len(rows)), xaxis=count_axis("files", rows[0]["file_count"]))
    hbar(fig, [label(r["reason"], 40) for r in rows], [r["file_count"] for r in rows],
         color=RED, hover="%{x:,} files", full=[label(r["reason"], 300) for r in rows])
    listed = files.rows if files is not None and files.ok else []
    table = Table(["file (object key)", "reason", "bytes", "failed at (UTC)"], [
        [label(r["object_key"], 90), label(r["reason"], 90),
         n(r["file_size"]) if r["file_size"] is not None else "",
         f"{r['failed_at']:%Y-%m-%d %H:%M}" if r["failed_at"] else ""] for r in listed])
    more = (f" (the newest {MAX_ERROR_FILES} are listed)" if total > MAX_ERROR_FILES else "")
    return Chart(key, title, f"{many(total, 'file')} quarantined{loads_text}, most for "
                 f"\u201c{label(rows[0]['reason'], 70)}\u201d ({n(rows[0]['file_count'])}){more}.",
                 fig, table)


def reference_integrity(answer: Answer | None) -> Chart:
    key, title = "references", "Reference integrity: does each reference find its target?"
    if (gone := not_drawn(key, title, answer, "No references to check yet.")):
        return gone
    rows = sorted(answer.rows, key=lambda r: r["reference_path"])
    paths = [label(r["reference_path"]) for r in rows]
    fig = figure(bar_height(len(rows)), barmode="stack",
                 xaxis=share_axis("share of references"))
    parts = (("resolved", GREEN), ("unresolved", RED), ("undefined", GREY))
    for part, color in parts:
        counts = [_resolved(r) if part == "resolved" else r[f"{part}_count"] for r in rows]
        shares = [c / r["reference_count"] if r["reference_count"] else 0
                  for c, r in zip(counts, rows, strict=True)]
        hbar(fig, paths, shares, name=part, color=color, customdata=counts,
             hover="%{customdata:,} (%{x:.1%})")
    table = Table(["resource", "reference", "references", "undefined", "unresolved"],
                  [[label(r["resource_type"]), label(r["reference_path"]),
                    n(r["reference_count"]), n(r["undefined_count"]), n(r["unresolved_count"])]
                   for r in rows])
    refs = sum(r["reference_count"] for r in rows)
    bad = [r for r in rows if r["unresolved_count"] or r["undefined_count"]]
    if not bad:
        reading = f"All {n(refs)} references of {len(rows)} kinds are present and resolve."
    else:
        worst = max(bad, key=lambda r: r["unresolved_count"] + r["undefined_count"])
        missing = sum(r["unresolved_count"] + r["undefined_count"] for r in rows)
        reading = (f"{n(missing)} of {n(refs)} references are empty or unresolved; the most "
                   f"in {label(worst['reference_path'])} ({n(worst['unresolved_count'])} "
                   f"unresolved, {n(worst['undefined_count'])} undefined).")
    return Chart(key, title, reading, fig, table, wide=True)


def _resolved(row: dict[str, int]) -> int:
    return row["reference_count"] - row["undefined_count"] - row["unresolved_count"]


def completeness(answer: Answer | None) -> Chart:
    key, title = "completeness", "Completeness of key columns (share of rows filled)"
    if (gone := not_drawn(key, title, answer, "No staging rows to check yet.")):
        return gone
    rows = [r for r in answer.rows if r["row_count"]]
    if not rows:
        return Chart(key, title, "The staging models hold no rows yet.")
    # A model x column matrix: the models share most key columns (patient_id, code, ...),
    # so one cell per pair reads faster than a bar per pair.
    models = sorted({r["model_name"] for r in rows})
    uses: dict[str, int] = {}
    for r in rows:
        uses[r["column_name"]] = uses.get(r["column_name"], 0) + 1
    columns = sorted(uses, key=lambda c: (-uses[c], c))
    cell = {(r["model_name"], r["column_name"]): r for r in rows}

    def at(model: str, column: str) -> dict[str, Any] | None:
        return cell.get((model, column))

    z = [[None if (r := at(m, c)) is None else 1 - r["null_count"] / r["row_count"]
          for c in columns] for m in models]
    # Only the gaps carry a figure: a wall of "100%" hides them (the colour says "full").
    text = [["" if v is None or v == 1 else f"{100 * v:.1f}%" for v in line] for line in z]
    counts = [[[0, 0] if (r := at(m, c)) is None else [r["null_count"], r["row_count"]]
               for c in columns] for m in models]
    fig = figure(90 + 30 * len(models), xaxis={"side": "top", "tickangle": -35},
                 yaxis={"autorange": "reversed", "showgrid": False})
    fig.update_xaxes(showgrid=False)
    fig.add_heatmap(z=z, x=[label(c) for c in columns], y=[label(m) for m in models],
                    text=text, texttemplate="%{text}", customdata=counts, zmin=0, zmax=1,
                    xgap=2, ygap=2, showscale=False, hoverongaps=False,
                    colorscale=[[0, RED], [COMPLETE_WARN, RED], [COMPLETE_WARN, ORANGE],
                                [0.9999, ORANGE], [1, GREEN]],
                    hovertemplate="%{y}.%{x}: %{z:.1%} filled, %{customdata[0]:,} nulls in "
                                  "%{customdata[1]:,} rows<extra></extra>")
    gaps = sorted((r for r in rows if r["null_count"]),
                  key=lambda r: -r["null_count"] / r["row_count"])
    table = Table(["model", "column", "rows", "nulls", "filled"],
                  [[label(r["model_name"]), label(r["column_name"]), n(r["row_count"]),
                    n(r["null_count"]), f"{100 * (1 - r['null_count'] / r['row_count']):.1f}%"]
                   for r in gaps])
    if not gaps:
        reading = (f"All {len(rows)} key columns of {len(models)} staging models are filled "
                   "in every row.")
    else:
        worst = gaps[0]
        reading = (f"{len(rows) - len(gaps)} of {len(rows)} key columns are always filled; "
                   f"the emptiest is {label(worst['model_name'])}.{label(worst['column_name'])}"
                   f" ({pct(worst['null_count'], worst['row_count'])} null, "
                   f"{n(worst['null_count'])} of {n(worst['row_count'])} rows). Green: every "
                   f"row, amber: {COMPLETE_WARN:.0%} or more, red: less.")
    return Chart(key, title, reading, fig, table if gaps else None, wide=True)
