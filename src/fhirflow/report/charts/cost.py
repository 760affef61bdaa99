"""Cost: per patient-year, by payer, by encounter class (claims as billed)."""

from __future__ import annotations

from collections import defaultdict

from fhirflow.report.charts.base import (
    BLUE,
    ORANGE,
    Answer,
    Chart,
    bar_height,
    figure,
    hbar,
    label,
    money,
    n,
    not_drawn,
    pct,
)

YEARS_SHOWN = 10  # cost per patient-year: the ten calendar years up to the last claim
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def cost_yearly(answer: Answer | None) -> Chart:
    key, title = "cost_yearly", "Cost per patient-year (encounter and pharmacy claims)"
    if (gone := not_drawn(key, title, answer, "No claims in the warehouse yet.")):
        return gone
    rows = sorted((r for r in answer.rows if r["patients"]), key=lambda r: r["event_year"])
    # The ten calendar years up to the last one billed, gaps kept as gaps.
    last = rows[-1]["event_year"]
    by_year = {r["event_year"]: r for r in rows}
    calendar = list(range(last - YEARS_SHOWN + 1, last + 1))
    shown = [by_year[y] for y in calendar if y in by_year]
    years = [str(y) for y in calendar]
    if rows[-1]["last_month"] < 12:
        # The data ends inside its last year, whose patients had fewer months to be billed.
        years[-1] += f" (to {MONTHS[rows[-1]['last_month'] - 1]})"
    per_year = [(by_year[y]["cost"] or 0) / by_year[y]["patients"] if y in by_year else None
                for y in calendar]
    fig = figure(340, yaxis={"title": "cost per patient (USD)", "tickprefix": "$",
                             "tickformat": ",.0f"},
                 xaxis={"type": "category", "title": "calendar year"})
    fig.add_bar(x=years, y=per_year, marker_color=BLUE,
                customdata=[[by_year[y]["patients"], by_year[y]["cost"] or 0]
                            if y in by_year else [0, 0] for y in calendar],
                hovertemplate="%{x}: $%{y:,.0f} per patient, %{customdata[0]} patients, "
                              "$%{customdata[1]:,.0f} in all<extra></extra>")
    patient_years = sum(r["patients"] for r in shown)
    cost = sum(r["cost"] or 0 for r in shown)
    peak = max(shown, key=lambda r: (r["cost"] or 0) / r["patients"])
    if cost == 0:
        return Chart(key, title, f"{n(patient_years)} patient-years with claims, all at $0.")
    return Chart(key, title, f"{money(cost / patient_years)} per patient-year over "
                 f"{shown[0]['event_year']}-{shown[-1]['event_year']} "
                 f"({n(patient_years)} patient-years, {money(cost)}); "
                 f"highest in {peak['event_year']} "
                 f"({money((peak['cost'] or 0) / peak['patients'])}).", fig)


def cost_by_payer(answer: Answer | None) -> Chart:
    key, title = "cost_payer", "Cost by payer"
    if (gone := not_drawn(key, title, answer, "No claims in the warehouse yet.")):
        return gone
    cost: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    claims: dict[str, int] = defaultdict(int)
    for r in answer.rows:
        payer = label(r["payer_name"] or "no payer recorded")
        cost[payer][r["claim_source"]] += r["cost"] or 0
        claims[payer] += r["claims"]
    payers = sorted(cost, key=lambda p: -sum(cost[p].values()))
    total = sum(sum(per.values()) for per in cost.values())
    fig = figure(bar_height(len(payers)), barmode="stack",
                 xaxis={"title": "cost (USD)", "tickprefix": "$"})
    for source, color in (("encounters", BLUE), ("prescriptions", ORANGE)):
        hbar(fig, payers, [cost[p][source] for p in payers], name=source, color=color,
             hover="$%{x:,.0f}")
    first = payers[0]
    return Chart(key, title, f"{money(total)} in {n(sum(claims.values()))} claims across "
                 f"{len(payers)} payers; {first} carries the most: "
                 f"{money(sum(cost[first].values()))} "
                 f"({pct(sum(cost[first].values()), total)}).", fig)


def cost_by_class(answer: Answer | None) -> Chart:
    key, title = "cost_class", "Encounter cost by class"
    if (gone := not_drawn(key, title, answer, "No encounters in the warehouse yet.")):
        return gone
    rows = sorted(answer.rows, key=lambda r: -(r["cost"] or 0))
    total = sum(r["cost"] or 0 for r in rows)
    classes = [label(r["encounter_class"]) for r in rows]
    fig = figure(bar_height(len(rows)), xaxis={"title": "cost (USD)", "tickprefix": "$"})
    hbar(fig, classes, [r["cost"] or 0 for r in rows],
         customdata=[[r["encounters"], (r["cost"] or 0) / r["encounters"]] for r in rows],
         hover="$%{x:,.0f} over %{customdata[0]:,} encounters "
               "($%{customdata[1]:,.0f} each)")
    first = rows[0]
    dearest = max(rows, key=lambda r: (r["cost"] or 0) / r["encounters"])
    each = money((dearest["cost"] or 0) / dearest["encounters"])
    which = ("they also cost the most each" if dearest is first
             else f"{label(dearest['encounter_class'])} encounters cost the most each")
    return Chart(key, title, f"{label(first['encounter_class'])} encounters account for "
                 f"{pct(first['cost'] or 0, total)} of {money(total)}; {which} "
                 f"({each} on average).", fig)
