"""Data quality: what was loaded, what was quarantined, references and completeness."""

from __future__ import annotations

import math
from datetime import datetime
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
from fhirflow.report.queries import MAX_ERROR_ENTRIES, MAX_ERROR_FILES


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value else ""


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
         _when(r["failed_at"])] for r in listed], nowrap=(3,))
    more = (f" (the newest {MAX_ERROR_FILES} are listed)" if total > MAX_ERROR_FILES else "")
    return Chart(key, title, f"{many(total, 'file')} quarantined{loads_text}, most for "
                 f"\u201c{label(rows[0]['reason'], 70)}\u201d ({n(rows[0]['file_count'])}){more}.",
                 fig, table)


def entry_quarantine(reasons: Answer | None, entries: Answer | None,
                     total_loads: int | None) -> Chart:
    key, title = "entries", "Quarantined entries and why (RAW.ENTRY_ERRORS)"
    loads_text = f" in {many(total_loads, 'load')}" if total_loads else ""
    if (gone := not_drawn(key, title, reasons,
                          f"No entry was quarantined{loads_text}: every resource loaded.")):
        return gone
    rows = sorted(reasons.rows, key=lambda r: (-r["entry_count"], str(r["reason"])))
    total = sum(r["entry_count"] for r in rows)
    fig = figure(bar_height(len(rows)), xaxis=count_axis("entries", rows[0]["entry_count"]))
    hbar(fig, [label(r["reason"], 40) for r in rows], [r["entry_count"] for r in rows],
         color=ORANGE, customdata=[r["file_count"] for r in rows],
         hover="%{x:,} entries in %{customdata:,} files",
         full=[label(r["reason"], 300) for r in rows])
    listed = entries.rows if entries is not None and entries.ok else []

    def place(r: dict[str, Any]) -> str:
        # An NDJSON line has its line number; a bundle entry its index in Bundle.entry.
        if r["line_number"] is not None:
            return f"line {n(r['line_number'])}"
        return "" if r["entry_index"] is None else f"entry {n(r['entry_index'])}"

    table = Table(["file (object key)", "entry", "resource", "reason", "failed at (UTC)"], [
        [label(r["object_key"], 90), place(r), label(r["resource_type"]),
         label(r["reason"], 90),
         _when(r["failed_at"])] for r in listed], nowrap=(1, 4))
    files = len({r["object_key"] for r in listed}) if total <= MAX_ERROR_ENTRIES else None
    where = f" of {many(files, 'file')}" if files is not None else ""
    more = (f" (the newest {MAX_ERROR_ENTRIES} are listed)" if total > MAX_ERROR_ENTRIES
            else "")
    return Chart(key, title, f"{many(total, 'entry')}{where} quarantined{loads_text} while "
                 f"the rest of their files loaded; most for "
                 f"\u201c{label(rows[0]['reason'], 70)}\u201d ({n(rows[0]['entry_count'])})"
                 f"{more}.", fig, table)


def reference_integrity(answer: Answer | None) -> Chart:
    key, title = "references", "Reference integrity: does each reference find its target?"
    if (gone := not_drawn(key, title, answer, "No references to check yet.")):
        return gone
    rows = sorted(answer.rows, key=lambda r: (r["resource_type"], r["reference_path"]))
    paths = [label(_path(r)) for r in rows]
    fig = figure(max(220, 60 + 18 * len(rows)), barmode="stack", bargap=0.15,
                 xaxis=share_axis("share of resources whose reference is..."))
    parts = (("resolved", GREEN), ("unresolved", RED), ("undefined", GREY))
    for part, color in parts:
        counts = [_resolved(r) if part == "resolved" else r[f"{part}_count"] for r in rows]
        shares = [c / r["reference_count"] if r["reference_count"] else 0
                  for c, r in zip(counts, rows, strict=True)]
        hbar(fig, paths, shares, name=part, color=color, customdata=counts,
             hover="%{customdata:,} (%{x:.1%})")
    fig.update_yaxes(tickfont={"size": 11})
    refs = sum(r["reference_count"] for r in rows)
    bad = [r for r in rows if r["unresolved_count"] or r["undefined_count"]]
    over = sum(1 for r in rows if not r["is_within_threshold"])
    table = Table(["reference", "references", "undefined", "unresolved", "within threshold"],
                  [[label(_path(r)), n(r["reference_count"]), n(r["undefined_count"]),
                    n(r["unresolved_count"]), "yes" if r["is_within_threshold"] else "no"]
                   # The ones to act on first.
                   for r in sorted(rows, key=lambda r: (r["is_within_threshold"],
                                                        -r["unresolved_count"]
                                                        - r["undefined_count"], _path(r)))],
                  folded="" if bad or over else f"The counts: {len(rows)} reference fields, "
                         f"{n(refs)} references, none undefined or unresolved")
    if not bad:
        reading = (f"All {n(refs)} references of {len(rows)} kinds are present and resolve "
                   "(dq_reference_integrity).")
    else:
        worst = max(bad, key=lambda r: (r["unresolved_count"] + r["undefined_count"],
                                        _path(r)))
        missing = sum(r["unresolved_count"] + r["undefined_count"] for r in rows)
        reading = (f"{n(missing)} of {n(refs)} references are empty or unresolved; the most "
                   f"in {label(_path(worst))} ({n(worst['unresolved_count'])} "
                   f"unresolved, {n(worst['undefined_count'])} undefined); "
                   f"{over} of {len(rows)} kinds are over their threshold.")
    return Chart(key, title, reading, fig, table, wide=True)


def _path(row: dict[str, Any]) -> str:
    return f"{row['resource_type']}.{row['reference_path']}"


def _resolved(row: dict[str, int]) -> int:
    return row["reference_count"] - row["undefined_count"] - row["unresolved_count"]


# dq_completeness.column_role, as the heatmap's columns: each model has one primary key, at
# most one patient and one encounter column, and some references (the worst one is shown).
ROLES = ("primary_key", "patient", "encounter", "reference")
# A cell's colour: every row filled, nulls within the threshold, nulls over it.
FULL, WITHIN, OVER = 2, 1, 0


def completeness(answer: Answer | None) -> Chart:
    key, title = "completeness", "Completeness of the join keys (dq_completeness)"
    if (gone := not_drawn(key, title, answer, "No staging rows to check yet.")):
        return gone
    rows = [r for r in answer.rows if r["row_count"]]
    if not rows:
        return Chart(key, title, "The staging models hold no rows yet.")
    models = sorted({r["model_name"] for r in rows})
    worst: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        cell = (r["model_name"], r["column_role"])
        if cell not in worst or _null_share(r) > _null_share(worst[cell]):
            worst[cell] = r

    def state(r: dict[str, Any]) -> int:
        return FULL if not r["null_count"] else WITHIN if r["is_within_threshold"] else OVER

    roles = [role for role in ROLES if any(role == c[1] for c in worst)]
    z = [[None if (r := worst.get((m, role))) is None else state(r) for role in roles]
         for m in models]
    # Only the gaps carry a figure: a wall of "100%" hides them (the colour says "full").
    text = [["" if (r := worst.get((m, role))) is None or not r["null_count"]
             else f"{100 * (1 - _null_share(r)):.1f}%" for role in roles] for m in models]
    hover = [["" if (r := worst.get((m, role))) is None else
              f"{label(r['column_name'])}: {n(r['null_count'])} nulls in {n(r['row_count'])} "
              f"rows (threshold {100 * r['max_null_share']:.0f}%)" for role in roles]
             for m in models]
    fig = figure(90 + 24 * len(models), xaxis={"side": "top"},
                 yaxis={"autorange": "reversed", "showgrid": False})
    fig.update_xaxes(showgrid=False)
    fig.add_heatmap(z=z, x=[role.replace("_", " ") for role in roles],
                    y=[label(m) for m in models], text=text, texttemplate="%{text}",
                    customdata=hover, zmin=OVER, zmax=FULL, xgap=2, ygap=2, showscale=False,
                    hoverongaps=False,
                    colorscale=[[0, RED], [0.5, ORANGE], [1, GREEN]],
                    hovertemplate="%{y}, %{customdata}<extra></extra>")
    gaps = sorted((r for r in rows if r["null_count"]),
                  key=lambda r: (-_null_share(r), r["model_name"], r["column_name"]))
    # The gaps, open; or, when there is none, every column's counts folded away.
    listed = gaps or sorted(rows, key=lambda r: (r["model_name"], r["column_name"]))
    table = Table(["model", "column", "role", "rows", "nulls", "filled", "within threshold"],
                  [[label(r["model_name"]), label(r["column_name"]),
                    label(r["column_role"]), n(r["row_count"]), n(r["null_count"]),
                    f"{100 * (1 - _null_share(r)):.1f}%",
                    "yes" if r["is_within_threshold"] else "no"] for r in listed],
                  folded="" if gaps else f"The counts: {len(rows)} key columns, "
                         f"{n(sum(r['row_count'] for r in rows))} rows, no null")
    empty = sorted({r["model_name"] for r in answer.rows} - set(models))
    # A model with no rows has nothing missing, and nothing there: worth saying.
    none = (f" {many(len(empty), 'model')} without rows: {', '.join(label(m) for m in empty)}."
            if empty else "")
    if not gaps:
        reading = (f"All {len(rows)} key columns of {len(models)} staging models are filled "
                   f"in every row.{none}")
    else:
        first = gaps[0]
        over = sum(1 for r in rows if not r["is_within_threshold"])
        reading = (f"{len(rows) - len(gaps)} of {len(rows)} key columns are always filled; "
                   f"the emptiest is {label(first['model_name'])}.{label(first['column_name'])}"
                   f" ({pct(first['null_count'], first['row_count'])} null, "
                   f"{n(first['null_count'])} of {n(first['row_count'])} rows); {over} over "
                   "the threshold. Green: every row, amber: nulls within the threshold, "
                   f"red: over it.{none}")
    return Chart(key, title, reading, fig, table, wide=True)


def _null_share(row: dict[str, Any]) -> float:
    return row["null_count"] / row["row_count"] if row["row_count"] else 0.0
