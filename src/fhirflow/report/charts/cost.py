"""Cost: per patient-year, by payer, by encounter class (claims as billed: fct_claims and
fct_encounters). A patient-year is a patient with at least one claim in a calendar year."""

from __future__ import annotations

from fhirflow.report.charts.base import (
    BLUE,
    ORANGE,
    Answer,
    Chart,
    bar_height,
    figure,
    hbar,
    label,
    many,
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
        years[-1] += f"<br>(to {MONTHS[rows[-1]['last_month'] - 1]})"
    per_year = [(by_year[y]["cost"] or 0) / by_year[y]["patients"] if y in by_year else None
                for y in calendar]
    fig = figure(340, yaxis={"title": "cost per patient (USD)", "tickprefix": "$",
                             "tickformat": ",.0f"},
                 xaxis={"type": "category", "title": "calendar year", "tickangle": 0})
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
    key, title = "cost_payer", "Cost per patient-year by payer"
    if (gone := not_drawn(key, title, answer, "No claims in the warehouse yet.")):
        return gone
    rows = [r for r in answer.rows if r["patient_years"]]
    rows.sort(key=lambda r: (-(r["cost"] or 0) / r["patient_years"], str(r["payer_name"])))
    payers = [label(r["payer_name"]) for r in rows]
    fig = figure(bar_height(len(rows)), barmode="stack",
                 xaxis={"title": "cost per patient-year billed to the payer (USD)",
                        "tickprefix": "$", "tickformat": ",.0f"})
    pharmacy = [(r["pharmacy_cost"] or 0) / r["patient_years"] for r in rows]
    encounter = [(r["cost"] or 0) / r["patient_years"] - p for r, p in zip(rows, pharmacy,
                                                                           strict=True)]
    details = [[r["patient_years"], r["cost"] or 0, r["claims"]] for r in rows]
    for name, values, color in (("encounters", encounter, BLUE),
                                ("prescriptions", pharmacy, ORANGE)):
        hbar(fig, payers, values, name=name, color=color, customdata=details,
             hover="$%{x:,.0f} per patient-year (%{customdata[0]:,} patient-years, "
                   "$%{customdata[1]:,.0f} in %{customdata[2]:,} claims)")
    total = sum(r["cost"] or 0 for r in rows)
    first = max(rows, key=lambda r: r["cost"] or 0)
    dearest = rows[0]
    return Chart(key, title, f"{money(total)} in {n(sum(r['claims'] for r in rows))} claims "
                 f"across {many(len(rows), 'payer')}; {label(first['payer_name'])} carries the "
                 f"most ({pct(first['cost'] or 0, total)}), {label(dearest['payer_name'])} "
                 f"costs the most per patient-year billed to it "
                 f"({money((dearest['cost'] or 0) / dearest['patient_years'])}).", fig)


def cost_by_class(answer: Answer | None) -> Chart:
    key, title = "cost_class", "Cost per patient-year by encounter class"
    if (gone := not_drawn(key, title, answer, "No encounters in the warehouse yet.")):
        return gone
    rows = sorted((r for r in answer.rows if r["encounters"]), key=lambda r: -(r["cost"] or 0))
    years = rows[0]["patient_years"] if rows else 0
    if not years:
        return Chart(key, title, "No claims in the warehouse yet.")
    total = sum(r["cost"] or 0 for r in rows)
    classes = [label(r["encounter_class"]) for r in rows]
    fig = figure(bar_height(len(rows)), xaxis={"title": "cost per patient-year (USD)",
                                               "tickprefix": "$", "tickformat": ",.0f"})
    hbar(fig, classes, [(r["cost"] or 0) / years for r in rows],
         customdata=[[r["cost"] or 0, r["encounters"], (r["cost"] or 0) / r["encounters"]]
                     for r in rows],
         hover="$%{x:,.0f} per patient-year: $%{customdata[0]:,.0f} over "
               "%{customdata[1]:,} encounters or prescriptions ($%{customdata[2]:,.0f} each)")
    first = rows[0]
    dearest = max(rows, key=lambda r: (r["cost"] or 0) / r["encounters"])
    each = money((dearest["cost"] or 0) / dearest["encounters"])
    which = ("it also costs the most each" if dearest is first
             else f"{label(dearest['encounter_class'])} costs the most each")
    return Chart(key, title, f"{money(total / years)} per patient-year over "
                 f"{n(years)} patient-years; {label(first['encounter_class'])} makes "
                 f"{money((first['cost'] or 0) / years)} of it "
                 f"({pct(first['cost'] or 0, total)}); {which} ({each} on average).", fig)
