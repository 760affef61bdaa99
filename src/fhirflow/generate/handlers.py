"""Event handlers of the core simulation: each records one event as an encounter and what
happened during it. `HANDLERS` maps an event's kind to its handler; the optional modules
(modules/) add theirs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhirflow.generate import care, careplans, devices, screenings
from fhirflow.generate.clock import DAY, YEAR
from fhirflow.generate.life import Json, Life
from fhirflow.generate.modules import dental, hospital
from fhirflow.generate.records import Encounter, Line


def on_wellness(life: Life, at: int, _: Any) -> Encounter:
    wellness = life.clinical["wellness"]
    age = life.age(at)
    adult = age >= 18
    enc = life.begin("wellness" if adult else "well_child", at, None)
    care.social_findings(life, enc, at, adult)
    care.wellness_vitals(life, enc, at)
    care.obesity(life, enc, at, age)
    diagnose_at_wellness(life, enc, at)
    cursor = at + 10 * 60
    _wellness_labs(life, enc, cursor, age)
    care.smoking_status(life, enc, at)
    cursor = screenings.screen(life, enc, cursor, age)
    if life.on_medication():
        cursor = care.procedure(life, enc, "med_reconciliation", cursor)
    if any(int(age) == screening_age for screening_age in wellness["colonoscopy_ages"]):
        cursor = care.procedure(life, enc, "colonoscopy", cursor)
    if life.has("dental"):
        cursor = dental.refer(life, enc, cursor, age)
    care.immunize(life, enc, at, age)
    care.renew_all(life, enc, at)
    care.allergy_care(life, enc, at)
    enc.end = max(enc.end, cursor)
    return life.finish(enc)


def on_wellness_history(life: Life, at: int, _: Any) -> Encounter:
    """A wellness visit before the exported window: only the findings that are still active."""
    enc = life.begin("wellness", at, None)
    care.record_education(life, enc, at)
    care.obesity(life, enc, at, life.age(at))
    return life.finish(enc)


def _wellness_labs(life: Life, enc: Encounter, at: int, age: float) -> None:
    wellness = life.clinical["wellness"]
    diabetes = life.diagnosed("diabetes", at)
    if diabetes or life.diagnosed("prediabetes", at):
        care.lab(life, enc, "metabolic", at)
        care.lab(life, enc, "a1c", at)
    lipid_due = care.lab_due(life, wellness["lipid_every_years"], "lipid", at)
    if diabetes or (age >= wellness["lipid_from_age"] and lipid_due):
        care.lab(life, enc, "lipid", at)
    if diabetes:
        care.lab(life, enc, "acr", at)
    if care.lab_due(life, wellness["cbc_every_years"], "cbc", at):
        care.lab(life, enc, "cbc", at)
    if diabetes or life.diagnosed("hypertension", at):
        care.lab(life, enc, "egfr", at)


def on_diagnose(life: Life, at: int, key: str) -> Encounter:
    """The encounter where a chronic condition is first recorded (outside a wellness visit)."""
    spec = life.chronic[key].spec
    enc = life.begin(spec["followup"], at, None)
    record_diagnosis(life, enc, key, at)
    return life.finish(enc)


def diagnose_at_wellness(life: Life, enc: Encounter, at: int) -> None:
    """Conditions found at wellness visits (Synthea's metabolic syndrome, hypertension...)."""
    for key, chronic in life.chronic.items():
        if (chronic.spec["followup"] == "wellness_diagnosis" and chronic.condition is None
                and chronic.active_at(at)):
            record_diagnosis(life, enc, key, at)


def record_diagnosis(life: Life, enc: Encounter, key: str, at: int) -> None:
    """The condition and what starts with it: labs, procedures, medications, plan, devices.

    Before the exported window only what is still active survives, as in Synthea's export:
    the condition, its care plan and its medications, not the labs and procedures of the day.
    """
    chronic = life.chronic[key]
    spec = chronic.spec
    rng = life.rng
    ended = chronic.end if chronic.end is not None and chronic.end <= life.end else None
    chronic.condition = life.rec.condition(enc, spec["condition"], at, ended)
    if at >= life.window_start:
        for panel in spec.get("labs", []):
            care.lab(life, enc, panel, at + 15 * 60)
        for name in spec.get("procedures", []):
            care.procedure(life, enc, name, at + 20 * 60, chronic.condition)
        if "imaging" in spec:
            devices.imaging_study(life.rec, enc, spec["imaging"], at + 20 * 60, rng)
        if "admission_on_onset" in spec and life.has("hospital"):
            life.schedule(at + 3 * 3600, "admission",
                          (spec["admission_on_onset"], chronic.condition))
    chronic.medications = [medication for medication in spec.get("medications", [])
                           if rng.random() < medication[1]]
    if chronic.medications:
        care.prescribe(life, enc, chronic, at)
    if "careplan" in spec:
        plan = spec["careplan"]
        careplans.care_team_and_plan(life.rec, enc, plan["code"], plan["activities"], at, ended,
                                     chronic.condition,
                                     life.person.display(life.age(at) >= 18))
    if "device" in spec and rng.random() < spec.get("device_probability", 1.0):
        devices.device(life.rec, spec["device"], at, rng)
    if "supply" in spec:
        _supplies(life, spec["supply"], at, chronic.end)


def _supplies(life: Life, supply: list[Any], start: int, end: int | None) -> None:
    """Deliveries every few months while the condition lasts (inside the window only)."""
    items, every_months = supply
    delivered = max(start, life.window_start)
    stop = min(life.end, end or life.end)
    while delivered < stop:
        for code, quantity in items:
            devices.supply_delivery(life.rec, code, quantity, life.daytime(delivered))
        delivered += int(every_months * YEAR / 12 * life.rng.uniform(0.8, 1.2))


def on_followup(life: Life, at: int, key: str) -> Encounter | None:
    chronic = life.chronic[key]
    spec = chronic.spec
    if chronic.condition is None:
        return None  # not diagnosed yet (found at a later wellness visit)
    virtual = hospital.make_virtual(life, "followup", at)
    enc = life.begin(spec.get("followup_encounter", spec["followup"]), at,
                     life.catalog.concept_no_text(spec["condition"]), virtual=virtual)
    for panel in spec.get("followup_labs", spec.get("labs", [])):
        care.lab(life, enc, panel, at + 15 * 60)
    for name in spec.get("followup_procedures", spec.get("procedures", [])[:1]):
        care.procedure(life, enc, name, at + 20 * 60, chronic.condition)
    if spec.get("followup_imaging"):
        devices.imaging_study(life.rec, enc, spec["imaging"], at + 30 * 60, life.rng)
    return life.finish(enc)


def on_exacerbation(life: Life, at: int, key: str) -> Encounter | None:
    chronic = life.chronic[key]
    spec = chronic.spec
    if chronic.condition is None:
        return None
    enc = life.begin(spec["exacerbation_encounter"], at,
                     life.catalog.concept_no_text(spec["condition"]))
    care.vital_sign(life, enc, "oxygen_saturation", at, 88, 95)
    cursor = at + 10 * 60
    for name in spec.get("exacerbation_procedures", []):
        cursor = care.procedure(life, enc, name, cursor, chronic.condition)
    for medication in spec.get("medications", []):
        if len(medication) > 3 and medication[3] == "as_needed":
            life.rec.medication_request(enc, medication[0], at, "stopped", chronic.condition, None,
                                        care.DOSAGE_AS_NEEDED,
                                        round(medication[2] * life.rng.uniform(0.9, 1.3), 2))
    enc.end = max(enc.end, cursor)
    return life.finish(enc)


def on_acute(life: Life, at: int, spec: Json) -> Encounter:
    """An acute illness or injury: the visit, its conditions, tests, treatment and check-ups."""
    rec, rng = life.rec, life.rng
    reason = spec.get("conditions", [spec["condition"]])[-1]
    enc = life.begin(spec["encounter"], at, life.catalog.concept_no_text(reason))
    if spec.get("temperature"):
        care.vital_sign(life, enc, "temperature", at, 37.4, 39.6)
    for system, code, display, value in spec.get("string_results", []):
        rec.observation(enc, [system, code, display], "laboratory", at + 30 * 60, None, None,
                        text=value)
    abate = at + rng.randint(*spec["days"]) * DAY
    ended = abate if abate <= life.end else None
    for code, probability in spec.get("findings_any", []):
        if rng.random() < probability:
            rec.condition(enc, code, at, ended)
    conditions = [rec.condition(enc, code, at, ended)
                  for code in spec.get("conditions", [spec["condition"]])]
    condition = conditions[-1]
    if spec.get("kind") == "injury":
        life.flags.setdefault("injuries", {})[conditions[0]["code"]["coding"][0]["code"]] = ended
    cursor = at + 10 * 60
    for panel in spec.get("labs", []):
        care.lab(life, enc, panel, cursor)
    for name in spec.get("procedures", []):
        cursor = care.procedure(life, enc, name, cursor, condition)
    if "imaging" in spec:
        imaging = spec["imaging"]
        devices.imaging_study(rec, enc, imaging, cursor, rng)
        if imaging.get("procedure_too"):
            rec.procedure(enc, imaging["procedure"], cursor, 15, imaging.get("cost", 300.0),
                          condition)
    if "administered" in spec and enc.spec["class"] == "EMER":
        code, cost = spec["administered"]
        care.administer(life, enc, code, cursor, cost, condition)
    status = "stopped" if ended is not None else "active"
    for medication in spec.get("medications", []):
        if rng.random() < medication[1]:
            dosage = care.DOSAGES.get(medication[3] if len(medication) > 3 else "daily",
                                      care.DOSAGE_DAILY)
            rec.medication_request(enc, medication[0], at, status, condition, None, dosage,
                                   round(medication[2] * rng.uniform(0.9, 1.3), 2))
    if "careplan" in spec:
        plan = spec["careplan"]
        careplans.care_team_and_plan(rec, enc, plan["code"], plan["activities"], at, ended,
                                     condition,
                                     life.person.display(life.age(at) >= 18))
    for index in range(spec.get("checkups", 0)):
        life.schedule(life.daytime(at + (index + 1) * rng.randint(14, 35) * DAY), "checkup",
                      (condition, spec, index))
    enc.end = max(enc.end, cursor)
    if "admission" in spec and life.has("hospital"):
        kind, bands = spec["admission"]
        if rng.random() < next((rate for low, high, rate in bands if low <= life.age(at) <= high),
                               0.0):
            life.schedule(enc.end + 30 * 60, "admission", (kind, condition))
    return life.finish(enc)


def on_checkup(life: Life, at: int, payload: tuple[Json, Json, int]) -> Encounter:
    """A check-up after an injury or illness, for its condition (a fracture is X-rayed again)."""
    condition, spec, index = payload
    enc = life.begin("checkup", at, {"coding": condition["code"]["coding"]})
    if index == 0 and spec.get("checkup_imaging"):
        devices.imaging_study(life.rec, enc, spec["imaging"], at + 10 * 60, life.rng)
    return life.finish(enc)


def on_covid_vaccine(life: Life, at: int, code: list[str]) -> Encounter:
    enc = life.begin("covid_vaccine", at, None)
    life.rec.immunization(enc, code, at, life.clinical["immunizations"]["cost"])
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


Handler = Callable[[Life, int, Any], Encounter | None]

HANDLERS: dict[str, Handler] = {
    "wellness": on_wellness,
    "wellness_history": on_wellness_history,
    "diagnose": on_diagnose,
    "followup": on_followup,
    "exacerbation": on_exacerbation,
    "acute": on_acute,
    "injury": on_acute,
    "checkup": on_checkup,
    "covid_vaccine": on_covid_vaccine,
    "death": on_death,
}
