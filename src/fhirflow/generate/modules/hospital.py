"""Hospital care: inpatient stays, skilled nursing, home health, virtual visits and hospice.

Stays come from the conditions that call for them (an appendicitis or hip fracture seen in
the ER, a heart attack, a heart-failure or COPD flare, severe COVID-19, a joint replacement for
osteoarthritis). A stay lasts days: its encounter covers them, with labs, the procedures of the
stay, medications given during it (Medication + MedicationAdministration) and, for some,
daily vital signs; after it may come a skilled nursing stay or home health visits.
Hospice (module `hospice`) starts weeks before a death from a terminal condition.
"""

from __future__ import annotations

from typing import Any

from fhirflow.generate import care, careplans, devices
from fhirflow.generate.catalog import load_data
from fhirflow.generate.clock import DAY, YEAR
from fhirflow.generate.life import Json, Life
from fhirflow.generate.modules import Module
from fhirflow.generate.records import Encounter


def _procedure(life: Life, enc: Encounter, name: str, at: int, reason: Json | None = None) -> int:
    spec = load_data("hospital")["procedures"].get(name) or life.clinical["procedures"][name]
    life.rec.procedure(enc, spec["code"], at, spec["minutes"], spec["cost"], reason)
    return at + spec["minutes"] * 60


def plan(life: Life) -> None:
    """Admissions that chronic conditions bring: flares, heart attacks, joint replacements."""
    rng = life.rng
    for chronic in life.chronic.values():
        spec = chronic.spec
        stop = min(life.end, chronic.end or life.end)
        for rate_key, kind in (("admission_annual", spec.get("admission")),
                               ("heart_attack_annual", "heart_attack")):
            rate = spec.get(rate_key)
            year = max(life.window_start, chronic.onset + 30 * DAY)
            while rate and kind and year < stop:
                if rng.random() < rate:
                    at = year + rng.randint(0, 364) * DAY
                    if at < stop:
                        life.schedule(life.daytime(at), "admission", (kind, chronic.spec["key"]))
                year += YEAR
        if rng.random() < spec.get("joint_replacement", 0.0):
            at = chronic.onset + int(rng.uniform(1, 8) * YEAR)
            if life.window_start <= at < stop and life.age(at) >= 50:
                life.schedule(life.daytime(at), "admission",
                              ("joint_replacement", chronic.spec["key"]))


def _reason(life: Life, reason: Any) -> Json | None:
    """An admission's reason: a Condition resource, or the key of a chronic condition."""
    if isinstance(reason, str):
        chronic = life.chronic.get(reason)
        return chronic.condition if chronic is not None else None
    return reason


def on_admission(life: Life, at: int, payload: tuple[str, Any]) -> Encounter | None:
    kind, reason = payload
    spec = load_data("hospital")["admissions"][kind]
    condition = _reason(life, reason)
    if isinstance(reason, str) and condition is None:
        return None  # the condition has not been diagnosed yet
    rng, rec = life.rng, life.rec
    if spec.get("emergency_first"):
        emergency = life.begin("emergency", at, _concept(life, condition, spec))
        for code in spec.get("conditions", []):
            condition = rec.condition(emergency, code, at, at + 30 * DAY)
        care.vital_sign(life, emergency, "oxygen_saturation", at, 90, 99)
        life.finish(emergency)
        at = emergency.end + 20 * 60
    enc = life.begin(spec["encounter"], at, _concept(life, condition, spec))
    stay = rng.randint(*spec["los_days"]) * DAY + rng.randint(0, 12) * 3600
    if not spec.get("emergency_first"):
        for code in spec.get("conditions", []):
            condition = rec.condition(enc, code, at, at + stay)
    for code, probability in spec.get("conditions_any", []):
        if rng.random() < probability:
            rec.condition(enc, code, at, at + stay)
    cursor = at + 30 * 60
    for panel in spec.get("labs", []):
        care.lab(life, enc, panel, cursor)
    for name in spec.get("procedures", []):
        cursor = _procedure(life, enc, name, cursor, condition)
    for code, cost in spec.get("administered", []):
        care.administer(life, enc, code, cursor, cost, condition)
    if "device" in spec:
        devices.device(life.rec, spec["device"], cursor, rng)
    if spec.get("icu") and rng.random() < spec["icu"]:
        for name in spec.get("icu_procedures", []):
            cursor = _procedure(life, enc, name, cursor, condition)
    if spec.get("daily_vitals"):
        _daily(life, enc, at, stay, spec)
    if "history" in spec:
        rec.condition(enc, spec["history"], at + stay)
    for medication, _, cost, mode in spec.get("medications", []):
        rec.medication_request(enc, medication, at + stay, "stopped", condition, None,
                               care.DOSAGES[mode], cost)
    enc.end = max(enc.end, at + stay, cursor)
    discharge = enc.end + 3 * 3600
    if spec.get("snf") and rng.random() < spec["snf"]:
        life.schedule(discharge, "snf", condition)
    elif rng.random() < spec.get("home_health",
                                 load_data("hospital")["home_health"]["after_stay_from_65"]
                                 if life.age(at) >= 65 else 0.0):
        life.schedule(life.daytime(discharge + 2 * DAY), "home_health", (condition, None))
    return life.finish(enc)


def _concept(life: Life, condition: Json | None, spec: Json) -> Json | None:
    if condition is not None:
        return {"coding": condition["code"]["coding"]}
    codes = spec.get("conditions")
    return life.catalog.concept_no_text(codes[0]) if codes else None


def _daily(life: Life, enc: Encounter, start: int, stay: int, spec: Json) -> None:
    """A set of vital signs each day of the stay (and the daily labs some stays have)."""
    day = start + DAY
    while day < start + stay:
        for key, low, high in load_data("hospital")["daily_vitals"]:
            care.vital_sign(life, enc, key, day, low, high)
        for panel in spec.get("daily_labs", []):
            care.lab(life, enc, panel, day)
        day += DAY


def on_snf(life: Life, at: int, condition: Json | None) -> Encounter:
    """A skilled nursing stay: assessments, daily nursing care, weekly therapy, discharge."""
    spec = load_data("hospital")["snf"]
    rng = life.rng
    enc = life.begin(spec["encounter"], at, life.catalog.concept_no_text(
        ["sct", "449411000124106", "Admission to skilled nursing facility (procedure)"]))
    stay = rng.randint(*spec["los_days"]) * DAY
    cursor = at
    for name in spec["first"]:
        cursor = _procedure(life, enc, name, cursor, condition)
    day = at + DAY
    while day < at + stay:
        _procedure(life, enc, spec["daily"], life.daytime(day), condition)
        if (day - at) // DAY % 7 == 0:
            _procedure(life, enc, rng.choice(spec["weekly"]), life.daytime(day) + 3600, condition)
        day += DAY
    cursor = at + stay
    for name in spec["last"]:
        cursor = _procedure(life, enc, name, cursor, condition)
    enc.end = max(enc.end, cursor)
    return life.finish(enc)


def on_home_health(life: Life, at: int, payload: tuple[Json | None, int | None]) -> Encounter:
    """One home health visit; the first plans the rest of the series."""
    condition, remaining = payload
    spec = load_data("hospital")["home_health"]
    rng = life.rng
    if remaining is None:
        remaining = rng.randint(*spec["visits"]) - 1
    reason = {"coding": condition["code"]["coding"]} if condition is not None else None
    enc = life.begin(spec["encounter"], at, reason)
    cursor = at
    for name in spec["procedures"]:
        cursor = _procedure(life, enc, name, cursor, condition)
    enc.end = max(enc.end, cursor)
    if remaining > 0:
        life.schedule(life.daytime(at + rng.randint(*spec["every_days"]) * DAY), "home_health",
                      (condition, remaining - 1))
    return life.finish(enc)


def plan_hospice(life: Life) -> None:
    """Hospice before a death whose cause is a terminal condition."""
    if life.death is None:
        return
    causes = sorted(life.active_chronic(life.death),
                    key=lambda chronic: chronic.spec.get("mortality", 1.0),
                    reverse=True)
    if not causes or life.rng.random() >= causes[0].spec.get("hospice", 0.0):
        return
    low, high = load_data("hospital")["hospice"]["days_before_death"]
    life.schedule(life.death - life.rng.randint(low, high) * DAY, "hospice", causes[0].spec["key"])


def on_hospice(life: Life, at: int, key: str) -> Encounter | None:
    spec = load_data("hospital")["hospice"]
    chronic = life.chronic[key]
    if chronic.condition is None or life.death is None:
        return None
    rng = life.rng
    enc = life.begin(spec["encounter"], at, {"coding": chronic.condition["code"]["coding"]})
    careplans.care_team_and_plan(life.rec, enc, spec["careplan"]["code"],
                                 spec["careplan"]["activities"], at,
                                 life.death, chronic.condition,
                                 life.person.display(life.age(at) >= 18))
    day = at
    while day < life.death - DAY:
        for name in spec["procedures"]:
            _procedure(life, enc, name, day, chronic.condition)
        if rng.random() < spec["nursing_share"]:
            _procedure(life, enc, "nursing", day + 3600, chronic.condition)
        day += rng.randint(*spec["every_days"]) * DAY
    life.rec.condition(enc, spec["died_in_hospice"], life.death - 3600)
    enc.end = max(enc.end, life.death - 1800)
    return life.finish(enc)


def make_virtual(life: Life, kind: str, at: int) -> bool:
    """Whether an ambulatory follow-up happens by telemedicine (VR) instead."""
    spec = load_data("hospital")["virtual"]
    return (kind in spec["kinds"] and life.ctx.clock.date(at) >= spec["from"]
            and life.has("hospital") and life.rng.random() < spec["share"])


MODULE = Module("hospital", plan,
                {"admission": on_admission, "snf": on_snf, "home_health": on_home_health},
                "inpatient stays with their length, procedures and medications given, "
                "skilled nursing, home health and virtual follow-ups")
HOSPICE = Module("hospice", plan_hospice, {"hospice": on_hospice},
                 "hospice before a death from a terminal condition")
