"""Planning: what happens to one person and when, decided cheaply for the whole life.

Onsets of chronic disease by age and risk, death, the wellness schedule, follow-ups and
exacerbations of chronic disease, and acute episodes; then each optional module's own plan.
Planning writes no FHIR: it puts events on the life's queue for the handlers (handlers.py).
"""

from __future__ import annotations

import datetime as dt
import math

from fhirflow.generate.clock import DAY, YEAR, epoch
from fhirflow.generate.life import Chronic, Json, Life
from fhirflow.generate.modules import Module

PUBLIC_PAYERS = ("medicare", "medicaid", "dual")


def plan(life: Life, modules: list[Module]) -> None:
    _plan_chronic(life)
    _plan_death(life)
    _plan_wellness(life)
    _plan_chronic_care(life)
    _plan_acute(life)
    _plan_covid_vaccine(life)
    for module in modules:
        module.plan(life)
    if life.death is not None:
        life.schedule(life.death, "death")


def wellness_interval(life: Life, at: int) -> int:
    """Synthea's time between wellness visits at this age; yearly on a public payer."""
    spec = life.clinical["wellness"]
    months = (at - life.person.birth) / (YEAR / 12)
    for up_to, interval in spec["child_interval_months"]:
        if months <= up_to:
            return int(interval * YEAR / 12)
    if spec["public_payers_yearly"] and life.payer_at(at) in [life.payers[key]
                                                             for key in PUBLIC_PAYERS]:
        return YEAR
    age = life.age(at)
    for up_to, interval in spec["interval_years"]:
        if age <= up_to:
            return interval * YEAR
    return YEAR


def _plan_wellness(life: Life) -> None:
    step = life.clinical["wellness"]["time_step_days"] * DAY
    history = life.clinical["sdoh_findings"]["history"]
    first_adult = life.at_age(life.rng.uniform(*history["first_adult_wellness_age"]))
    if first_adult < life.window_start:
        # Synthea exports the old visit where lasting findings (education) were first recorded.
        life.schedule(life.daytime(first_adult), "wellness_history")
    at = life.person.birth + step
    while at < life.end:
        if at >= life.window_start:
            life.schedule(life.daytime(at), "wellness")
        at += wellness_interval(life, at) + step


def _plan_covid_vaccine(life: Life) -> None:
    """COVID-19 vaccination in its own encounters, from the vaccine's launch (one or two doses)."""
    schedule = life.clinical["immunizations"]
    rng = life.rng
    start = _epoch_of(life, schedule["covid_from"])
    if start >= life.end or rng.random() >= schedule["covid_uptake"]:
        return
    at = max(start, life.at_age(schedule["covid_min_age"])) + rng.randint(0, 240) * DAY
    vaccines = schedule["covid_vaccines"]
    code, _, doses = rng.choices(vaccines, weights=[v[1] for v in vaccines])[0]
    for _dose in range(doses):
        life.schedule(life.daytime(at), "covid_vaccine", code)
        at += rng.randint(21, 35) * DAY


def _epoch_of(life: Life, date: str) -> int:
    """Local midnight of an ISO date, as epoch seconds."""
    return epoch(dt.date.fromisoformat(date), -life.ctx.clock.std * 3600)


def _plan_chronic_care(life: Life) -> None:
    """The diagnosis of every condition still active in the window, its follow-ups and flares."""
    rng, start = life.rng, life.window_start
    for key, chronic in life.chronic.items():
        still_active = chronic.end is None or chronic.end > start
        if not (chronic.onset < life.end and still_active):
            continue
        if chronic.spec["followup"] != "wellness_diagnosis" or chronic.onset < start:
            life.schedule(life.daytime(chronic.onset), "diagnose", key)
        months = chronic.spec["followup_months"]
        at = chronic.onset + int(months * 30.4 * DAY)
        stop = min(life.end, chronic.end or life.end)
        while months and at < stop:
            if at >= start:
                life.schedule(life.daytime(at), "followup", key)
            at += int(months * 30.4 * DAY * rng.uniform(0.85, 1.15))
        rate = chronic.spec.get("exacerbation_annual", 0.0)
        year = max(start, chronic.onset)
        while rate and year < stop:
            if rng.random() < rate:
                at = year + rng.randint(0, 364) * DAY
                if at < stop:
                    life.schedule(life.daytime(at), "exacerbation", key)
            year += YEAR


def _plan_acute(life: Life) -> None:
    """Acute episodes and injuries, only inside the window (older ones are never exported)."""
    rng = life.rng
    year_t = life.window_start
    while year_t < life.end:
        age = life.age(year_t)
        date = life.ctx.clock.date(year_t)
        for spec in life.clinical["acute"]:
            if spec.get("sex") and spec["sex"] != life.person.gender:
                continue
            if date < spec.get("from", "") or date > spec.get("until", "9999"):
                continue
            for low, high, rate in spec["rate"]:
                if (low <= age <= high and age >= 0
                        and rng.random() < rate * _risk(life, spec, year_t)):
                    at = year_t + rng.randint(0, 364) * DAY
                    if life.person.birth < at < life.end:
                        life.schedule(life.daytime(at), spec.get("kind", "acute"), spec)
        year_t += YEAR


def _risk(life: Life, spec: Json, year_t: int) -> float:
    factor = 1.0
    for name, multiplier in spec.get("risk", {}).items():
        if name == "obese" and life.bmi_at(life.age(year_t)) >= 30:
            factor *= multiplier
        elif name == "smoker" and life.smoking_status(year_t) == "current":
            factor *= multiplier
        elif name in ("female", "male") and life.person.gender == name:
            factor *= multiplier
        elif name in life.chronic and life.chronic[name].onset <= year_t:
            factor *= multiplier
    return factor


def _plan_chronic(life: Life) -> None:
    rng = life.rng
    for spec in life.clinical["chronic"]:
        if spec.get("sex") and spec["sex"] != life.person.gender:
            continue
        # A condition that others progress to (prediabetes -> diabetes) starts only that way.
        earlier = [chronic for chronic in life.chronic.values()
                   if chronic.spec.get("progresses_to") == spec["key"]]
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
        if "comorbid_with" in spec:
            _plan_comorbidity(life, spec)
            continue
        age = _first_onset_age(life, spec, int(life.age(life.end)))
        if age is None:
            continue
        onset = life.at_age(age) + rng.randint(0, 364) * DAY
        if onset < life.end:
            chronic = Chronic(spec, onset)
            if "resolves_after_years" in spec:
                low, high = spec["resolves_after_years"]
                chronic.end = onset + int(rng.uniform(low, high) * YEAR)
                if chronic.end >= life.end:
                    chronic.end = None
            life.chronic[spec["key"]] = chronic


def _first_onset_age(life: Life, spec: Json, age_now: int) -> int | None:
    """The first age at which the condition starts, each year with its incidence times risk.

    Rather than a draw for every year of a life, the next candidate year comes from a geometric
    draw at the highest rate the risk factors allow, and a candidate is kept with the chance of
    its actual risk over that ceiling (thinning): the same distribution, far fewer draws.
    """
    rng = life.rng
    ceiling = math.prod(max(multiplier, 1.0) for multiplier in spec.get("risk", {}).values())
    age, last = spec["min_age"], min(age_now, spec.get("max_age", 200))
    while age <= last:
        rate, band_end = _incidence_band(spec["annual_incidence"], age, last)
        chance = min(rate * ceiling, 1.0)
        if chance <= 0:
            age = band_end + 1
            continue
        if chance < 1.0:
            age += int(math.log(1.0 - rng.random()) / math.log1p(-chance))
        if age > band_end:
            # no onset in this band; the draw is memoryless, so go on at the next
            age = band_end + 1
            continue
        if rng.random() * chance < rate * _risk(life, spec, life.at_age(age)):
            return age
        age += 1
    return None


def _incidence_band(rate: float | list[list[float]], age: int, last: int) -> tuple[float, int]:
    """The incidence at this age and the last age it holds for (bands are [low, high, rate])."""
    if not isinstance(rate, list):
        return rate, last
    for low, high, value in rate:
        if low <= age <= high:
            return value, min(high, last)
    later = [low for low, _, _ in rate if low > age]
    return 0.0, min(min(later) - 1 if later else last, last)


def _plan_comorbidity(life: Life, spec: Json) -> None:
    """A condition that may follow another (metabolic syndrome after diabetes), within some
    years."""
    first = life.chronic.get(spec["comorbid_with"])
    if first is None or life.rng.random() >= spec["probability"]:
        return
    low, high = spec["after_years"]
    onset = first.onset + int(life.rng.uniform(low, high) * YEAR)
    if onset < life.end and (first.end is None or onset < first.end):
        life.chronic[spec["key"]] = Chronic(spec, onset)


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
