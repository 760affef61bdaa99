"""Event handlers: each records one planned event (planning.py) as an encounter and what
happened during it. `HANDLERS` maps an event's kind to its handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhirflow.generate import care, careplans, devices
from fhirflow.generate.clock import DAY, YEAR
from fhirflow.generate.life import Json, Life
from fhirflow.generate.records import Encounter, Line


def on_wellness(life: Life, at: int, age: float) -> Encounter:
    rng, wellness = life.rng, life.clinical["wellness"]
    adult = age >= 18
    enc = life.begin("wellness" if adult else "well_child", at, None)
    care.social_findings(life, enc, at, adult)
    care.vitals(life, enc, at, full=True)
    care.obesity(life, enc, at, age)
    cursor = at + 10 * 60
    if adult and age >= wellness["prapare_from_age"]:
        care.prapare(life, enc, cursor)
        cursor = care.procedure(life, enc, "sdoh_assessment", cursor)
    if age >= 12:
        cursor = care.procedure(life, enc, "depression_screen", cursor)
        cursor = care.survey(life, enc, "phq2" if adult else "phq9_teen", cursor)
    if adult:
        cursor = care.survey(life, enc, "gad7", cursor)
        cursor = care.procedure(life, enc, "substance", cursor)
        for key in ("auditc", "hark", "dast10"):
            if key != "dast10" or rng.random() < 0.5:
                cursor = care.survey(life, enc, key, cursor)
    else:
        cursor = care.procedure(life, enc, "anticipatory_guidance", cursor)
    if life.on_medication():
        cursor = care.procedure(life, enc, "med_reconciliation", cursor)
    if any(int(age) == screening_age for screening_age in wellness["colonoscopy_ages"]):
        cursor = care.procedure(life, enc, "colonoscopy", cursor)
    for panel in ("lipid", "cbc", "metabolic"):
        if age >= wellness[f"{panel}_from_age"] and care.lab_due(life, wellness[f"{panel}_every_years"], panel, at):
            care.lab(life, enc, panel, cursor)
    care.immunize(life, enc, at, age)
    care.renew_all(life, enc, at)
    care.allergy_care(life, enc, at)
    enc.end = max(enc.end, cursor)
    return life.finish(enc)


def on_diagnose(life: Life, at: int, key: str) -> Encounter:
    chronic = life.chronic[key]
    spec = chronic.spec
    enc = life.begin(spec["followup"], at, None)
    care.vitals(life, enc, at, full=False)
    ended = chronic.end if chronic.end is not None and chronic.end <= life.end else None
    chronic.condition = life.rec.condition(enc, spec["condition"], at, ended)
    for panel in spec.get("labs", []):
        care.lab(life, enc, panel, at + 15 * 60)
    for name in spec.get("procedures", []):
        care.procedure(life, enc, name, at + 20 * 60, chronic.condition)
    chronic.medications = [medication for medication in spec.get("medications", [])
                           if life.rng.random() < medication[1]]
    if chronic.medications:
        care.prescribe(life, enc, chronic, at)
    if "careplan" in spec:
        plan = spec["careplan"]
        careplans.care_team_and_plan(life.rec, enc, plan["code"], plan["activities"], at, ended, chronic.condition,
                                    life.person.display(life.age(at) >= 18))
    if "device" in spec:
        devices.device(life.rec, spec["device"], at, life.rng)
    if "supply" in spec:
        code, quantity = spec["supply"]
        delivered = max(at, life.window_start)
        while delivered < min(life.end, chronic.end or life.end):
            devices.supply_delivery(life.rec, code, quantity, life.daytime(delivered))
            delivered += int(YEAR * life.rng.uniform(0.8, 1.2))
    return life.finish(enc)


def on_followup(life: Life, at: int, key: str) -> Encounter:
    chronic = life.chronic[key]
    spec = chronic.spec
    enc = life.begin(spec["followup"], at, life.catalog.concept_no_text(spec["condition"]))
    care.vitals(life, enc, at, full=False)
    for panel in spec.get("labs", []):
        care.lab(life, enc, panel, at + 15 * 60)
    for name in spec.get("procedures", [])[:1]:
        care.procedure(life, enc, name, at + 20 * 60, chronic.condition)
    if chronic.medications and chronic.condition is not None:
        care.prescribe(life, enc, chronic, at)
    return life.finish(enc)


def on_exacerbation(life: Life, at: int, key: str) -> Encounter:
    chronic = life.chronic[key]
    spec = chronic.spec
    enc = life.begin(spec["exacerbation_encounter"], at, life.catalog.concept_no_text(spec["condition"]))
    care.vitals(life, enc, at, full=False)
    oxygen = life.clinical["vitals"]["oxygen_saturation"]
    life.rec.observation(enc, oxygen["code"], "vital-signs", at, life.rng.uniform(88, 95), oxygen["unit"],
                         oxygen["profile"], decimals=1)
    cursor = at + 10 * 60
    for name in spec.get("exacerbation_procedures", []):
        cursor = care.procedure(life, enc, name, cursor, chronic.condition)
    for medication in spec.get("medications", []):
        if len(medication) > 3 and medication[3] == "as_needed":
            life.rec.medication_request(enc, medication[0], at, "stopped", chronic.condition, None,
                                        care.DOSAGE_AS_NEEDED, round(medication[2] * life.rng.uniform(0.9, 1.3), 2))
    return life.finish(enc)


def on_acute(life: Life, at: int, spec: Json) -> Encounter:
    rec, rng = life.rec, life.rng
    enc = life.begin(spec["encounter"], at, life.catalog.concept_no_text(spec["condition"]))
    emergency = enc.spec["class"] == "EMER"
    care.vitals(life, enc, at, full=False)
    if spec.get("temperature"):
        temperature = life.clinical["vitals"]["temperature"]
        rec.observation(enc, temperature["code"], "vital-signs", at, rng.uniform(37.4, 39.6), temperature["unit"],
                        temperature["profile"], decimals=2)
    for system, code, display, value in spec.get("string_results", []):
        rec.observation(enc, [system, code, display], "laboratory", at + 30 * 60, None, None, text=value)
    abate = at + rng.randint(*spec["days"]) * DAY
    ended = abate if abate <= life.end else None
    condition = rec.condition(enc, spec["condition"], at, ended)
    cursor = at + 10 * 60
    for panel in spec.get("labs", []):
        care.lab(life, enc, panel, cursor)
    for name in spec.get("procedures", []):
        cursor = care.procedure(life, enc, name, cursor, condition)
    if "imaging" in spec:
        imaging = spec["imaging"]
        devices.imaging_study(rec, enc, imaging["procedure"], imaging["body_site"], imaging["title"], cursor, rng)
    if emergency and "administered" in spec:
        code, cost = spec["administered"]
        medication = rec.medication_administration(enc, code, cursor)
        rec.medication_request(enc, code, cursor, "completed", condition, None, care.DOSAGE_AS_NEEDED, cost,
                               medication=medication)
    status = "stopped" if ended is not None else "active"
    for medication in spec.get("medications", []):
        if rng.random() < medication[1]:
            dosage = care.DOSAGES.get(medication[3] if len(medication) > 3 else "daily", care.DOSAGE_DAILY)
            rec.medication_request(enc, medication[0], at, status, condition, None, dosage,
                                   round(medication[2] * rng.uniform(0.9, 1.3), 2))
    if "careplan" in spec:
        plan = spec["careplan"]
        careplans.care_team_and_plan(rec, enc, plan["code"], plan["activities"], at, ended, condition,
                               life.person.display(life.age(at) >= 18))
    enc.end = max(enc.end, cursor)
    return life.finish(enc)


def on_death(life: Life, at: int, _: Any) -> Encounter:
    death = life.clinical["death"]
    causes = life.active_chronic(at)
    causes.sort(key=lambda chronic: chronic.spec.get("mortality", 1.0), reverse=True)
    cause = causes[0].spec["condition"] if causes else death["natural_cause"]
    enc = life.begin("death_certification", at, life.catalog.concept_no_text(cause))
    obs = life.rec.observation(enc, death["cause_observation"], "exam", at, None, None, coded=cause)
    report = life.rec.diagnostic_report(enc, death["certificate_panel"], at, [obs], lab=False)
    enc.lines.append(Line("info", report["code"], None, report["id"]))
    return life.finish(enc)


Handler = Callable[[Life, int, Any], Encounter]

HANDLERS: dict[str, Handler] = {
    "wellness": on_wellness,
    "diagnose": on_diagnose,
    "followup": on_followup,
    "exacerbation": on_exacerbation,
    "acute": on_acute,
    "death": on_death,
}
