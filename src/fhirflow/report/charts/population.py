"""Population: who the patients are."""

from __future__ import annotations

from collections import defaultdict

from fhirflow.report.charts.base import (
    BLUE,
    GREEN,
    GREY,
    ORANGE,
    SEQUENCE,
    TOP,
    Answer,
    Chart,
    bar_height,
    count_axis,
    figure,
    hbar,
    label,
    many,
    n,
    nice_step,
    not_drawn,
    pct,
)
from fhirflow.report.queries import band_start

OLDER = 65  # the reading's "older" share: a band boundary of dim_patients.age_band


def pyramid(answer: Answer | None) -> Chart:
    key, title = "pyramid", "Population pyramid: age band and sex"
    if (gone := not_drawn(key, title, answer, "No patients in the warehouse yet.")):
        return gone
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for r in answer.rows:
        sex = {"M": "male", "F": "female"}.get(r["gender"] or "", "other")
        counts[(sex, r["age_band"])] += r["patients"]
    total = sum(counts.values())
    # dim_patients.age_band as the mart defines it, youngest first (bands without a man or
    # a woman in them are left out: they would be rows of nothing).
    bands = sorted({b for (_s, b) in list(counts) if counts[("male", b)] + counts[("female", b)]},
                   key=lambda b: (band_start(b), b))
    fig = figure(bar_height(len(bands)), barmode="relative", bargap=0.1,
                  xaxis={"title": "patients (men left, women right)"})
    male = [counts[("male", b)] for b in bands]
    female = [counts[("female", b)] for b in bands]
    fig.add_bar(y=bands, x=[-v for v in male], customdata=male, orientation="h", name="male",
                marker_color=BLUE, hovertemplate="%{y}: %{customdata} men<extra></extra>")
    fig.add_bar(y=bands, x=female, orientation="h", name="female", marker_color=ORANGE,
                hovertemplate="%{y}: %{x} women<extra></extra>")
    peak = max(1, *male, *female)
    step = nice_step(peak)
    ticks = [i * step for i in range(-(peak // step), peak // step + 1)]
    fig.update_xaxes(tickvals=ticks, ticktext=[f"{abs(t):,}" for t in ticks],
                     range=[-peak * 1.05, peak * 1.05])
    biggest = max(bands, key=lambda b: counts[("male", b)] + counts[("female", b)])
    older = sum(v for (_s, b), v in counts.items() if OLDER <= band_start(b) < 1_000)
    reading = (f"{many(total, 'patient')}, {pct(sum(female), total)} women; the largest band is "
               f"{biggest} ({pct(counts[('male', biggest)] + counts[('female', biggest)], total)})"
               f" and {pct(older, total)} are {OLDER} or older.")
    return Chart(key, title, reading, fig)


def race_ethnicity(answer: Answer | None) -> Chart:
    key, title = "race", "Race and ethnicity"
    if (gone := not_drawn(key, title, answer, "No patients in the warehouse yet.")):
        return gone
    by_race: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in answer.rows:
        by_race[label(r["race"])][label(r["ethnicity"])] += r["patients"]
    races = sorted(by_race, key=lambda race: -sum(by_race[race].values()))
    ethnicities = sorted({e for per in by_race.values() for e in per})
    total = sum(sum(per.values()) for per in by_race.values())
    fig = figure(bar_height(len(races)), barmode="stack",
                 xaxis=count_axis("patients", max(sum(by_race[r].values()) for r in races)))
    for i, eth in enumerate(ethnicities):
        hbar(fig, races, [by_race[race][eth] for race in races], name=eth,
              color=SEQUENCE[i % len(SEQUENCE)])
    hispanic = sum(per.get("hispanic", 0) for per in by_race.values())
    shares = ", ".join(f"{pct(sum(by_race[r].values()), total)} {r}" for r in races[:3])
    return Chart(key, title, f"{shares}; {pct(hispanic, total)} Hispanic.", fig)


def vital_status(answer: Answer | None) -> Chart:
    key, title = "vital", "Alive and deceased"
    if (gone := not_drawn(key, title, answer, "No patients in the warehouse yet.")):
        return gone
    alive = sum(r["patients"] for r in answer.rows if r["is_alive"])
    dead = sum(r["patients"] for r in answer.rows if not r["is_alive"])
    fig = figure(260, showlegend=True)
    # A zero slice would still print its "0 / 0%" label: leave it out.
    slices = [(name, v, c) for name, v, c in (("alive", alive, GREEN), ("deceased", dead, GREY))
              if v]
    fig.add_pie(labels=[s[0] for s in slices], values=[s[1] for s in slices], hole=0.5,
                sort=False, marker_colors=[s[2] for s in slices],
                texttemplate="%{value}<br>%{percent:.0%}",
                hovertemplate="%{label}: %{value} patients<extra></extra>")
    return Chart(key, title, f"{n(dead)} of {many(alive + dead, 'patient')} "
                 f"({pct(dead, alive + dead)}) have died.", fig)


def places(answer: Answer | None) -> Chart:
    key, title = "places", "Where patients live: state and city"
    if (gone := not_drawn(key, title, answer, "No patients in the warehouse yet.")):
        return gone
    states: dict[str, int] = defaultdict(int)
    for r in answer.rows:
        states[label(r["state"])] += r["patients"]
    total = sum(states.values())
    top = sorted(answer.rows, key=lambda r: (-r["patients"], str(r["city"])))[:TOP]
    fig = figure(bar_height(len(top)), barmode="stack",
                 xaxis=count_axis("patients", top[0]["patients"]))
    ordered_states = sorted(states, key=lambda s: -states[s])
    for i, state in enumerate(ordered_states[: len(SEQUENCE)]):
        rows = [r for r in top if label(r["state"]) == state]
        suffix = f", {state}" if len(states) > 1 else ""
        hbar(fig, [f"{label(r['city'])}{suffix}" for r in rows],
              [r["patients"] for r in rows], name=state, color=SEQUENCE[i])
    fig.update_yaxes(categoryorder="total ascending")
    first = top[0]
    where = (f"all in {ordered_states[0]}" if len(states) == 1
             else f"{len(states)} states, most in {ordered_states[0]} "
                  f"({pct(states[ordered_states[0]], total)})")
    return Chart(key, title, f"{many(total, 'patient')}, {where}; the most live in "
                 f"{label(first['city'])} ({n(first['patients'])}).", fig)
