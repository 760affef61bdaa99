"""What happens inside encounters, shared by the event handlers: vital signs, lab panels and
surveys, social-needs findings, immunizations, prescriptions and allergy care."""

from __future__ import annotations

from fhirflow.generate import careplans
from fhirflow.generate.clock import DAY, YEAR
from fhirflow.generate.life import EMPLOYMENT, EMPLOYMENT_WEIGHTS, Chronic, Json, Life
from fhirflow.generate.records import Encounter, Line

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
LAB_PROFILE = US_CORE + "us-core-observation-lab"
SURVEY_PROFILE = US_CORE + "us-core-observation-survey"
SMOKING_PROFILE = US_CORE + "us-core-smokingstatus"

DOSAGE_AS_NEEDED = [{"sequence": 1, "text": "Take as needed.", "asNeededBoolean": True}]
_ORDERED = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/dose-rate-type",
                        "code": "ordered",
                        "display": "Ordered"}]}
DOSAGE_DAILY = [{"sequence": 1,
                 "timing": {"repeat": {"frequency": 1, "period": 1.0, "periodUnit": "d"}},
                 "asNeededBoolean": False,
                 "doseAndRate": [{"type": _ORDERED, "doseQuantity": {"value": 1.0}}]}]
_COMPLETE_COURSE = "Take at regular intervals. Complete the prescribed course of medication."
DOSAGE_COURSE = [{"sequence": 1,
                  "additionalInstruction": [{"coding": [{"system": "http://snomed.info/sct",
                                                         "code": "418577003",
                                                         "display": _COMPLETE_COURSE}],
                                             "text": _COMPLETE_COURSE}],
                  "timing": {"repeat": {"frequency": 2, "period": 1.0, "periodUnit": "d"}},
                  "asNeededBoolean": False,
                  "doseAndRate": [{"type": _ORDERED, "doseQuantity": {"value": 1.0}}]}]
DOSAGES = {"as_needed": DOSAGE_AS_NEEDED, "course": DOSAGE_COURSE, "daily": DOSAGE_DAILY}


# -- measurements ---------------------------------------------------------------------------

def wellness_vitals(life: Life, enc: Encounter, at: int) -> None:
    """The vital signs of a wellness visit (Synthea's wellness_encounters module)."""
    specs = life.clinical["vitals"]
    rec, rng = life.rec, life.rng
    age = life.age(at)
    height = life.height_at(age) * rng.uniform(0.995, 1.005)
    bmi = life.bmi_at(age) * rng.uniform(0.97, 1.03)
    weight = bmi * (height / 100) ** 2

    def vital(key: str, value: float) -> None:
        spec = specs[key]
        rec.observation(enc, spec["code"], "vital-signs", at, value, spec["unit"], spec["profile"],
                        decimals=spec["decimals"])

    vital("height", height)
    vital("pain", rng.randint(*specs["pain"]["range"]))
    vital("weight", weight)
    if age <= 3:
        vital("weight_for_length", rng.uniform(5, 95))
        vital("head_circumference_percentile", rng.uniform(5, 95))
        vital("head_circumference", 35 + 12 * min(age, 3) ** 0.5 * rng.uniform(0.97, 1.03))
    if age >= 2:
        vital("bmi", bmi)
        if age < 20:
            vital("bmi_percentile", rng.uniform(5, 95))
    bp = life.clinical["blood_pressure"]
    systolic, diastolic = 105 + age * 0.3 + rng.gauss(0, 6), 68 + age * 0.1 + rng.gauss(0, 5)
    hypertension = life.chronic.get("hypertension")
    if hypertension is not None and hypertension.onset <= at:
        shift = hypertension.spec["bp_shift"]
        systolic += shift[0] * rng.uniform(0.4, 1.0)
        diastolic += shift[1] * rng.uniform(0.4, 1.0)
    components = [rec.quantity_component(bp["diastolic"], diastolic, bp["unit"]),
                  rec.quantity_component(bp["systolic"], systolic, bp["unit"])]
    rec.observation(enc, bp["code"], "vital-signs", at, None, None, bp["profile"],
                    components=components)
    vital("heart_rate", rng.uniform(60, 100) if age >= 12 else rng.uniform(80, 130))
    vital("respiratory_rate", rng.uniform(12, 18) if age >= 12 else rng.uniform(18, 30))


def smoking_status(life: Life, enc: Encounter, at: int) -> None:
    smoking = life.clinical["smoking"]
    status = smoking[life.smoking_status(at)]
    life.rec.observation(enc, smoking["code"], "social-history", at, None, None, SMOKING_PROFILE,
                         coded=status)


def vital_sign(life: Life, enc: Encounter, key: str, at: int, low: float, high: float) -> None:
    """One vital sign outside a wellness visit (a temperature at a sick visit, oxygen in the ER)."""
    spec = life.clinical["vitals"][key]
    life.rec.observation(enc, spec["code"], "vital-signs", at, life.rng.uniform(low, high),
                         spec["unit"],
                         spec["profile"], decimals=spec["decimals"])


def lab(life: Life, enc: Encounter, panel_key: str, at: int) -> None:
    panels = life.clinical["lab_panels"]
    rec, rng = life.rec, life.rng
    shifts: dict[str, list[float]] = {}
    for chronic in life.active_chronic(at):
        shifts.update(chronic.spec.get("lab_shift", {}))
    if panel_key in panels:
        panel = panels[panel_key]
        results = []
        for system, code, display, unit, low, high, decimals in panel["results"]:
            low, high = shifts.get(code, (low, high))
            results.append(rec.observation(enc, [system, code, display], "laboratory", at,
                                           rng.uniform(low, high),
                                           unit, LAB_PROFILE, decimals=decimals))
        for system, code, display, answer in panel.get("coded_results", []):
            results.append(rec.observation(enc, [system, code, display], "laboratory", at, None,
                                           None,
                                           LAB_PROFILE, coded=answer))
    else:
        panel = life.clinical["coded_panels"][panel_key]
        results = [rec.observation(enc, [system, code, display], "laboratory", at, None, None,
                                   LAB_PROFILE,
                                   coded=answer)
                   for system, code, display, answer in panel["results"]]
    if len(results) == 1 and results[0]["code"]["coding"][0]["code"] == panel["code"][1]:
        enc.lines.append(Line("info", results[0]["code"], panel["cost"], results[0]["id"]))
    else:
        report = rec.diagnostic_report(enc, panel["code"], at, results, lab=True)
        enc.lines.append(Line("info", report["code"], panel["cost"], report["id"]))
    life.last_lab[panel_key] = at


def lab_due(life: Life, every_years: int, key: str, at: int) -> bool:
    last = life.last_lab.get(key)
    return last is None or at - last >= every_years * YEAR - 60 * DAY


def procedure(life: Life, enc: Encounter, name: str, at: int, reason: Json | None = None) -> int:
    """Record a named procedure from the data file; returns when it ends."""
    spec = life.clinical["procedures"][name]
    life.rec.procedure(enc, spec["code"], at, spec["minutes"], spec["cost"], reason)
    return at + spec["minutes"] * 60


def prapare(life: Life, enc: Encounter, at: int) -> None:
    spec = life.clinical["prapare"]
    rec, rng, person = life.rec, life.rng, life.person
    components = []
    for question in spec["questions"]:
        how = question.get("answer")
        code = question["code"]
        if how is None:
            components.append(rec.coded_component(code, rng.choice(question["answers"])))
        elif how == "ethnicity_yes_no":
            hispanic = person.ethnicity["code"] == "2135-2"
            components.append(rec.coded_component(code, spec["yes"] if hispanic else spec["no"]))
        elif how == "race":
            answer = "LA4457-3" if person.race["code"] == "2106-3" else "LA10610-6"
            components.append(rec.coded_component(code, ["loinc", answer, person.race["display"]]))
        elif how == "language":
            components.append(rec.string_component(code, person.language["display"]))
        elif how == "household_size":
            components.append(rec.quantity_component(code, rng.randint(1, 6), "{#}"))
        elif how == "address":
            components.append(rec.string_component(code, f"{person.line}, {person.city['name']}"))
        elif how == "education":
            components.append(rec.coded_component(code,
                                                  spec["education"][min(person.education, 2)]))
        elif how == "employment":
            components.append(rec.coded_component(code, spec["employment"][life.employment]))
        elif how == "insurance":
            payer = life.payer_at(at)
            answer = spec["insurance"].get(payer, spec["insurance"]["private"])
            components.append(rec.coded_component(code, answer))
        elif how == "income":
            components.append(rec.quantity_component(code, person.income, "/a"))
    rec.observation(enc, spec["code"], "survey", at, None, None, components=components,
                    extra_profiles=spec["profiles"])


# -- findings -------------------------------------------------------------------------------

def social_findings(life: Life, enc: Encounter, at: int, adult: bool) -> None:
    """Resolve last visit's social findings, then record this visit's (adults only)."""
    for condition in life.sdoh_active:
        life.rec.abate(condition, at)
    life.sdoh_active = []
    if not adult:
        return
    findings = life.clinical["sdoh_findings"]
    rng = life.rng
    if rng.random() < 0.15:
        life.employment = rng.choices(EMPLOYMENT, weights=EMPLOYMENT_WEIGHTS)[0]
    life.sdoh_active.append(life.rec.condition(enc, findings["employment"][life.employment], at))
    record_education(life, enc, at)
    for code, probability in findings["episodic"]:
        if rng.random() < probability:
            life.sdoh_active.append(life.rec.condition(enc, code, at))
    if life.on_medication():
        life.sdoh_active.append(life.rec.condition(enc, findings["medication_review"], at))


def record_education(life: Life, enc: Encounter, at: int) -> None:
    if not life.education_recorded:
        findings = life.clinical["sdoh_findings"]
        life.rec.condition(enc, findings["education"][min(life.person.education, 2)], at)
        life.education_recorded = True


def obesity(life: Life, enc: Encounter, at: int, age: float) -> None:
    if age >= 18 and not life.obese_recorded and life.bmi_at(age) >= 30:
        spec = life.clinical["obesity"]
        life.rec.condition(enc, spec["severe"] if life.bmi_at(age) >= 40 else spec["condition"], at)
        life.obese_recorded = True


# -- immunizations, prescriptions, allergies ------------------------------------------------

def immunize(life: Life, enc: Encounter, at: int, age: float) -> None:
    schedule = life.clinical["immunizations"]
    months = age * 12
    cost = schedule["cost"]
    for system, code, display, doses in schedule["childhood"]:
        given = life.given_vaccines.get(code, 0)
        while given < len(doses) and doses[given] <= months + 0.5:
            life.rec.immunization(enc, [system, code, display], at, cost)
            given += 1
        life.given_vaccines[code] = given
    if months >= schedule["influenza_from_months"]:
        life.rec.immunization(enc, schedule["influenza"], at, cost)
    if age >= schedule["td_from_age"] and (life.last_td < 0
                                           or age - life.last_td >= schedule["td_every_years"]):
        if life.last_td >= 0 or life.rng.random() < 0.3:
            life.rec.immunization(enc, schedule["td"], at, cost)
        life.last_td = int(age)
    for key, ages in (("zoster", schedule["zoster_ages"]),
                      ("hepb_adult", schedule["hepb_adult_ages"])):
        if int(age) in ages and life.given_vaccines.get(key, 0) < len(ages):
            life.rec.immunization(enc, schedule[key], at, cost)
            life.given_vaccines[key] = life.given_vaccines.get(key, 0) + 1
    if int(age) == schedule["pneumococcal_age"]:
        life.rec.immunization(enc, schedule["pneumococcal_adult"], at, cost)


def vaccine_history(life: Life) -> None:
    """Doses due before the exported window count as given (they are history, not exported)."""
    schedule = life.clinical["immunizations"]
    months = life.age(life.window_start) * 12
    for _, code, _, doses in schedule["childhood"]:
        life.given_vaccines[code] = sum(1 for due in doses if due < months)
    age = months / 12
    if age >= schedule["td_from_age"]:
        life.last_td = int(age) - life.rng.randint(0, schedule["td_every_years"] - 1)
    for key, ages in (("zoster", schedule["zoster_ages"]),
                      ("hepb_adult", schedule["hepb_adult_ages"])):
        life.given_vaccines[key] = sum(1 for due in ages if due < age)


def prescribe(life: Life, enc: Encounter, chronic: Chronic, at: int) -> None:
    for medication in chronic.medications:
        code, cost = medication[0], medication[2]
        mode = medication[3] if len(medication) > 3 else "daily"
        previous = chronic.prescriptions.get(code[1])
        if previous is not None:
            previous["status"] = "stopped"
        dosage = DOSAGE_AS_NEEDED if mode == "as_needed" else DOSAGE_DAILY
        reason_code = None if chronic.condition else chronic.spec["condition"]
        chronic.prescriptions[code[1]] = life.rec.medication_request(
            enc, code, at, "active", chronic.condition, reason_code, dosage,
            round(cost * life.rng.uniform(0.9, 1.3), 2))


def administer(life: Life, enc: Encounter, code: list[str], at: int, cost: float,
               reason: Json | None = None) -> None:
    """A medication given during the encounter: Medication, its order and the administration."""
    medication = life.rec.medication(code)
    life.rec.medication_request(enc, code, at, "stopped", reason, None, None, cost,
                                medication=medication)
    life.rec.medication_administration(enc, code, at, reason)


def renew_all(life: Life, enc: Encounter, at: int) -> None:
    for chronic in life.chronic.values():
        if chronic.condition is not None and chronic.end is None and chronic.onset <= at:
            prescribe(life, enc, chronic, at)


def allergies(life: Life) -> None:
    """Allergies of a lifetime, found together at one allergy panel (AllergyIntolerance has no
    encounter): the generic 'allergy to substance' first, then each substance."""
    spec = life.clinical["allergies"]
    rng = life.rng
    if rng.random() >= spec["probability"]:
        return
    at = life.daytime(life.at_age(rng.uniform(*spec["onset_age"])))
    if at >= life.end:
        return
    count = rng.choices([c[0] for c in spec["counts"]], weights=[c[1] for c in spec["counts"]])[0]
    generic, *substances = spec["substances"]
    chosen = [generic] + rng.sample(substances, min(count, len(substances)))
    for code, category, kind in chosen:
        reactions = []
        if code is not generic[0] and rng.random() < spec["reaction_probability"]:
            reactions = [(rng.choice(spec["reactions"]), rng.choice(spec["severities"]))]
        life.rec.allergy(code, category, kind, at, reactions)
        life.allergy_names.append(code[2])
        if code is not generic[0]:
            life.allergy_plan.append((code, category))


def allergy_care(life: Life, enc: Encounter, at: int) -> None:
    """A self-care plan for known allergies; an auto-injector for food allergies.

    An allergy is not a Condition, so both refer to it by code (reasonCode), as Synthea does.
    """
    if not life.allergy_plan:
        return
    spec = life.clinical["allergies"]
    plan = spec["careplan"]
    for code, category in life.allergy_plan:
        activities = plan["activities"] + ([plan["food_activity"]] if category == "food" else [])
        careplans.care_team_and_plan(life.rec, enc, plan["code"], activities, at, None, None,
                                    life.person.display(life.age(at) >= 18), reason_code=code)
        if category == "food":
            medication, cost = spec["medication"]
            life.rec.medication_request(enc, medication, at, "active", None, code, DOSAGE_AS_NEEDED,
                                        cost)
    life.allergy_plan = []
