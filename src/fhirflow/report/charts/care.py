"""Care: encounters, conditions, medications, procedures, immunizations."""

from __future__ import annotations

from collections import defaultdict

from fhirflow.report.charts.base import (
    BLUE,
    GREEN,
    GREY,
    ORANGE,
    PURPLE,
    RED,
    SEQUENCE,
    Answer,
    Chart,
    bar_height,
    count_axis,
    figure,
    hbar,
    label,
    largest,
    many,
    n,
    not_drawn,
    pct,
    share_axis,
)

MONTHS_SHOWN = 120  # encounters per month: the last ten years of the data


def encounters_monthly(answer: Answer | None) -> Chart:
    key, title = "encounters", "Encounters per month by class"
    if (gone := not_drawn(key, title, answer, "No encounters in the warehouse yet.")):
        return gone
    index = {(r["event_year"], r["event_month"]) for r in answer.rows}
    last = max(y * 12 + m - 1 for y, m in index)
    shown = [r for r in answer.rows
             if last - (r["event_year"] * 12 + r["event_month"] - 1) < MONTHS_SHOWN]
    classes: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_month: dict[str, int] = defaultdict(int)
    for r in shown:
        month = f"{r['event_year']:04d}-{r['event_month']:02d}-01"
        classes[label(r["encounter_class"])][month] += r["encounters"]
        per_month[month] += r["encounters"]
    total = sum(per_month.values())
    fig = figure(360, barmode="stack", bargap=0.05, yaxis={"title": "encounters"},
                  xaxis={"type": "date"})
    for i, (cls, months) in enumerate(sorted(classes.items(), key=lambda c: -sum(c[1].values()))):
        xs = sorted(months)
        fig.add_bar(x=xs, y=[months[x] for x in xs], name=cls,
                    marker_color=SEQUENCE[i % len(SEQUENCE)],
                    hovertemplate="%{x|%Y-%m}: %{y} encounters<extra>" + cls + "</extra>")
    busiest = max(per_month, key=lambda m: per_month[m])
    main = max(classes, key=lambda c: sum(classes[c].values()))
    span = f"{min(per_month)[:7]} to {max(per_month)[:7]}"
    everything = sum(r["encounters"] for r in answer.rows)
    where = (f" from {span}" if everything == total
             else f"; the last ten years ({span}) hold {n(total)}")
    reading = (f"{many(everything, 'encounter')}{where}, busiest {busiest[:7]} "
               f"({n(per_month[busiest])}); {main} is the largest class "
               f"({pct(sum(classes[main].values()), total)}).")
    return Chart(key, title, reading, fig, wide=True)


# mart_condition_prevalence.condition_category (from fct_conditions): disorders, and the
# rest of a problem list (findings, situations, social determinants) apart from them.
CATEGORY_COLORS = {"disorder": BLUE, "unspecified": "#56B4E9", "other": GREY,
                   "finding": ORANGE, "situation": PURPLE, "social_determinant": RED}
# Short legend names: at half the page's width a longer legend wraps into a column.
CATEGORY_NAMES = {"unspecified": "no SNOMED tag", "social_determinant": "SDOH"}
DISORDERS = ("disorder", "unspecified", "other")
# Condition names cut shorter than other labels: at half the page's width, longer names
# leave the bars (and a legend above them) too little room.
CONDITION_LABEL = 38
FINDINGS = ("finding", "situation", "social_determinant")


def conditions(answer: Answer | None, *, findings: bool) -> Chart:
    kinds = FINDINGS if findings else DISORDERS
    key = "findings" if findings else "disorders"
    title = ("Top findings, situations and social determinants by prevalence"
             if findings else "Top disorders by prevalence")
    if (gone := not_drawn(key, title, answer, "No conditions in the warehouse yet.")):
        return gone
    rows = largest([r for r in answer.rows if r["category"] in kinds], "patients")
    if not rows:
        return Chart(key, title, f"No {' or '.join(k.replace('_', ' ') for k in kinds)} "
                     "recorded.")
    fig = figure(bar_height(len(rows)), barmode="stack", xaxis=share_axis())
    for kind in kinds:
        picked = [r for r in rows if r["category"] == kind]
        if not picked:
            continue
        labels = [label(r["description"], CONDITION_LABEL) for r in picked]
        # One trace per kind, but keep the global ranking (categoryarray below).
        fig.add_bar(y=labels, x=[r["prevalence"] for r in picked], orientation="h",
                    name=CATEGORY_NAMES.get(kind, kind), marker_color=CATEGORY_COLORS[kind],
                    customdata=[[r["patients"], r["population"]] for r in picked],
                    hovertext=[label(r["description"], 200) for r in picked],
                    hovertemplate="%{hovertext}: %{customdata[0]} of %{customdata[1]} "
                                  "patients (%{x:.0%})<extra></extra>")
    fig.update_yaxes(categoryorder="array",
                     categoryarray=[label(r["description"], CONDITION_LABEL)
                                    for r in rows][::-1])
    first = rows[0]
    what = "finding" if findings else "disorder"
    return Chart(key, title, f"The most prevalent {what} is {label(first['description'], 80)}: "
                 f"{n(first['patients'])} of {many(first['population'], 'patient')} "
                 f"({pct(first['patients'], first['population'])}).", fig)


def top_events(answer: Answer | None, *, key: str, title: str, measure: str,
               noun: str) -> Chart:
    if (gone := not_drawn(key, title, answer, f"No {noun} in the warehouse yet.")):
        return gone
    rows = largest(answer.rows, measure)
    fig = figure(bar_height(len(rows)), xaxis=count_axis(measure, rows[0][measure]))
    hbar(fig, [label(r["description"]) for r in rows], [r[measure] for r in rows],
         customdata=[r["patients"] for r in rows], full=[label(r["description"], 200)
                                                         for r in rows],
         hover=f"%{{x:,}} {measure}, %{{customdata:,}} patients")
    total = sum(r[measure] for r in answer.rows)
    first = rows[0]
    return Chart(key, title, f"{n(total)} {measure} of {n(len(answer.rows))} kinds; the most "
                 f"common is {label(first['description'], 80)} ({n(first[measure])}, to "
                 f"{n(first['patients'])} patients).", fig)


def immunizations(answer: Answer | None, patients: int) -> Chart:
    key, title = "immunizations", "Immunization coverage: share of patients with a dose"
    if (gone := not_drawn(key, title, answer, "No immunizations in the warehouse yet.")):
        return gone
    rows = largest(answer.rows, "patients")
    fig = figure(bar_height(len(rows)), xaxis=share_axis())
    hbar(fig, [label(r["description"]) for r in rows], [r["patients"] / patients for r in rows],
         color=GREEN, customdata=[[r["patients"], r["doses"]] for r in rows],
         full=[label(r["description"], 200) for r in rows],
         hover="%{customdata[0]} patients (%{x:.0%}), %{customdata[1]} doses")
    first = rows[0]
    doses = sum(r["doses"] for r in answer.rows)
    return Chart(key, title, f"{label(first['description'], 60)} reached "
                 f"{pct(first['patients'], patients)} of patients; {n(doses)} doses of "
                 f"{n(len(answer.rows))} vaccines in all.", fig)
