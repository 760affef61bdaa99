"""Opioid dependence after Synthea's opioid_addiction module: onset in some adults, problem
visits with maintenance treatment, detoxification stays and overdoses seen in the ER.
(Smoking and drinking are part of every life and of the wellness screenings.)"""

from __future__ import annotations

from typing import Any

from fhirflow.generate import care
from fhirflow.generate.catalog import load_data
from fhirflow.generate.clock import DAY, YEAR
from fhirflow.generate.life import Chronic, Life
from fhirflow.generate.modules import Module
from fhirflow.generate.records import Encounter


def plan(life: Life) -> None:
    spec = load_data("substance")
    dependence = spec["dependence"]
    rng = life.rng
    low, high = dependence["ages"]
    onset = None
    for age in range(low, high + 1):
        year = life.at_age(age)
        if year >= life.end:
            break
        if rng.random() < dependence["annual_incidence"]:
            onset = year + rng.randint(0, 364) * DAY
            break
    if onset is None or onset >= life.end:
        return
    spec_as_chronic = {"key": "opioid_dependence", "condition": dependence["condition"],
                       "followup": "problem",
                       "mortality": dependence["mortality"]}
    life.chronic["opioid_dependence"] = Chronic(spec_as_chronic, onset)
    life.flags["opioid_care"] = True
    life.schedule(life.daytime(onset), "diagnose", "opioid_dependence")
    at = max(onset, life.window_start)
    while at < life.end:
        life.schedule(life.daytime(at), "substance_visit")
        at += int(rng.uniform(*spec["visits_every_months"]) * YEAR / 12)
    year = max(onset, life.window_start)
    while year < life.end:
        for kind in ("detox", "overdose"):
            if rng.random() < spec[kind]["annual"]:
                life.schedule(life.daytime(year + rng.randint(0, 364) * DAY), kind)
        year += YEAR


def _dependence(life: Life) -> Any:
    return life.chronic["opioid_dependence"].condition


def on_visit(life: Life, at: int, _: Any) -> Encounter | None:
    condition = _dependence(life)
    if condition is None:
        return None
    enc = life.begin("problem", at, {"coding": condition["code"]["coding"]})
    code, probability, cost = load_data("substance")["medication"]
    if life.rng.random() < probability:
        life.rec.medication_request(enc, code, at, "stopped", condition, None, care.DOSAGE_DAILY,
                                    cost)
    return life.finish(enc)


def on_detox(life: Life, at: int, _: Any) -> Encounter | None:
    condition = _dependence(life)
    if condition is None:
        return None
    spec = load_data("substance")["detox"]
    enc = life.begin(spec["encounter"], at, {"coding": condition["code"]["coding"]})
    pain = life.clinical["vitals"]["pain"]
    life.rec.observation(enc, pain["code"], "vital-signs", at, life.rng.randint(0, 6), pain["unit"],
                         pain["profile"],
                         decimals=0)
    enc.end = max(enc.end, at + life.rng.randint(*spec["los_days"]) * DAY)
    return life.finish(enc)


def on_overdose(life: Life, at: int, _: Any) -> Encounter | None:
    condition = _dependence(life)
    if condition is None:
        return None
    spec = load_data("substance")["overdose"]
    enc = life.begin(spec["encounter"], at, life.catalog.concept_no_text(spec["condition"]))
    life.rec.condition(enc, spec["condition"], at, at + DAY // 2)
    care.vital_sign(life, enc, "oxygen_saturation", at, 80, 95)
    life.finish(enc)
    if life.has("hospital") and life.rng.random() < spec["admission"]:
        life.schedule(enc.end + 30 * 60, "admission", ("overdose", condition))
    return enc


MODULE = Module("substance", plan,
                {"substance_visit": on_visit, "detox": on_detox, "overdose": on_overdose},
                "opioid dependence: problem visits, detoxification stays and overdoses")
