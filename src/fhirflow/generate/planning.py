"""Planning: what happens to one person and when, decided cheaply for the whole life.

Onsets of chronic disease by age and risk, death, the wellness schedule, follow-ups and
exacerbations of chronic disease, and acute episodes. Planning writes no FHIR: it returns
the events the handlers (handlers.py) then record, in time order.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from fhirflow.generate.clock import DAY, YEAR
from fhirflow.generate.life import Chronic, Json, Life

# Weight of each kind of event in a day, so a wellness visit and a diagnosis on the same
# day keep a stable order.
ORDER = {"wellness": 0, "diagnose": 1, "followup": 2, "acute": 3, "exacerbation": 4, "death": 9}


class Event(NamedTuple):
    at: int
    order: int
    kind: str  # a key of handlers.HANDLERS
    payload: Any


def plan(life: Life) -> list[Event]:
    _plan_chronic(life)
    _plan_death(life)
    events: list[Event] = []
    _plan_wellness(life, events)
    _plan_chronic_care(life, events)
    _plan_acute(life, events)
    if life.death is not None:
        events.append(Event(life.death, ORDER["death"], "death", None))
    events = [event for event in events if life.person.birth < event.at <= life.end]
    events.sort(key=lambda event: (event.at, event.order))
    return events


def _plan_wellness(life: Life, events: list[Event]) -> None:
    rng, wellness = life.rng, life.clinical["wellness"]
    ages: list[float] = [months / 12 for months in wellness["child_months"]]
    age_now = life.age(life.end)
    ages += [float(age) for age in range(wellness["yearly_from_age"] + 1, int(age_now) + 1)]
    for age in ages:
        at = life.at_age(age) + rng.randint(0, 20) * DAY
        if age >= 18 and rng.random() < wellness["adult_skip_probability"]:
            continue
        if life.window_start <= at < life.end:
            events.append(Event(life.daytime(at), ORDER["wellness"], "wellness", age))


def _plan_chronic_care(life: Life, events: list[Event]) -> None:
    """The diagnosis of every condition still active in the window, its follow-ups and flares."""
    rng, start = life.rng, life.window_start
    for key, chronic in life.chronic.items():
        still_active = chronic.end is None or chronic.end > start
        if not (chronic.onset < life.end and still_active):
            continue
        events.append(Event(life.daytime(chronic.onset), ORDER["diagnose"], "diagnose", key))
        months = chronic.spec["followup_months"]
        at = chronic.onset + int(months * 30.4 * DAY)
        stop = min(life.end, chronic.end or life.end)
        while at < stop:
            if at >= start:
                events.append(Event(life.daytime(at), ORDER["followup"], "followup", key))
            at += int(months * 30.4 * DAY * rng.uniform(0.85, 1.15))
        rate = chronic.spec.get("exacerbation_annual", 0.0)
        year = max(start, chronic.onset)
        while rate and year < stop:
            if rng.random() < rate:
                at = year + rng.randint(0, 364) * DAY
                if at < stop:
                    events.append(Event(life.daytime(at), ORDER["exacerbation"], "exacerbation", key))
            year += YEAR


def _plan_acute(life: Life, events: list[Event]) -> None:
    """Acute episodes, only inside the window (older ones are never exported)."""
    rng = life.rng
    year_t = life.window_start
    while year_t < life.end:
        age = life.age(year_t)
        for spec in life.clinical["acute"]:
            if spec.get("sex") and spec["sex"] != life.person.gender:
                continue
            if "from" in spec and life.ctx.clock.date(year_t) < spec["from"]:
                continue
            for low, high, rate in spec["rate"]:
                if low <= age <= high and age >= 0 and rng.random() < rate:
                    at = year_t + rng.randint(0, 364) * DAY
                    if life.person.birth < at < life.end:
                        events.append(Event(life.daytime(at), ORDER["acute"], "acute", spec))
        year_t += YEAR


def _risk(life: Life, spec: Json, year_t: int) -> float:
    factor = 1.0
    for name, multiplier in spec.get("risk", {}).items():
        if name == "obese" and life.bmi_at(life.age(year_t)) >= 30:
            factor *= multiplier
        elif name == "smoker" and life.person.smoker:
            factor *= multiplier
        elif name in life.chronic and life.chronic[name].onset <= year_t:
            factor *= multiplier
    return factor


def _plan_chronic(life: Life) -> None:
    rng = life.rng
    age_now = int(life.age(life.end))
    for spec in life.clinical["chronic"]:
        # A condition that others progress to (prediabetes -> diabetes) starts only that way.
        earlier = [chronic for chronic in life.chronic.values() if chronic.spec.get("progresses_to") == spec["key"]]
        if earlier:
            before = earlier[0]
            year_t = before.onset + YEAR
            while year_t < life.end:
                if rng.random() < before.spec["progression_annual"]:
                    before.end = year_t
                    life.chronic[spec["key"]] = Chronic(spec, year_t)
                    break
                year_t += YEAR
            continue
        for age in range(spec["min_age"], min(age_now, spec.get("max_age", 200)) + 1):
            year_t = life.at_age(age)
            if rng.random() < spec["annual_incidence"] * _risk(life, spec, year_t):
                onset = year_t + rng.randint(0, 364) * DAY
                if onset < life.end:
                    chronic = Chronic(spec, onset)
                    if "resolves_after_years" in spec:
                        low, high = spec["resolves_after_years"]
                        chronic.end = onset + int(rng.uniform(low, high) * YEAR)
                        if chronic.end >= life.end:
                            chronic.end = None
                    life.chronic[spec["key"]] = chronic
                break


def _plan_death(life: Life) -> None:
    death = life.clinical["death"]
    at = life.window_start
    while at < life.end:
        age = life.age(at)
        if age > 0:
            hazard = death["gompertz_a"] * math.exp(death["gompertz_b"] * age)
            for chronic in life.active_chronic(at):
                hazard *= chronic.spec.get("mortality", 1.0)
            if life.rng.random() < min(hazard, 0.9):
                died = at + life.rng.randint(0, 364) * DAY
                if died < life.end:
                    life.death = life.daytime(died)
                    life.end = life.death
                    return
        at += YEAR
