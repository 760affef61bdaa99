"""The life simulator: decides what happens to one person and when, then records it.

Two passes. Planning covers the whole life cheaply (onsets of chronic disease by age and risk,
the wellness schedule, acute episodes, death). Recording then writes FHIR resources only for
the exported window (`years_of_history` before the reference date), plus, like Synthea, the
encounters where still-active chronic conditions were first diagnosed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from fhirflow.generate import billing, notes
from fhirflow.generate.catalog import Catalog, load_data
from fhirflow.generate.clock import DAY, YEAR, LocalClock
from fhirflow.generate.ids import random_uuid, seeded
from fhirflow.generate.person import Person, make_person, patient_resource
from fhirflow.generate.providers import Clinician, Network, Organization, Utilization
from fhirflow.generate.records import Encounter, Line, PatientRecord

Json = dict[str, Any]
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
LAB_PROFILE = US_CORE + "us-core-observation-lab"
SURVEY_PROFILE = US_CORE + "us-core-observation-survey"
SMOKING_PROFILE = US_CORE + "us-core-smokingstatus"

# Weight of each kind of event in a day, so a wellness visit and a diagnosis on the same
# day keep a stable order.
_ORDER = {"wellness": 0, "diagnose": 1, "followup": 2, "acute": 3, "exacerbation": 4, "death": 9}
_CHILD_GROWTH = [(0, 0.29), (1, 0.43), (2, 0.49), (3, 0.55), (5, 0.63), (8, 0.73), (10, 0.79), (12, 0.86),
                 (14, 0.93), (16, 0.98), (18, 1.0)]
_DOSAGE_AS_NEEDED = [{"sequence": 1, "text": "Take as needed.", "asNeededBoolean": True}]
_DOSAGE_DAILY = [{"sequence": 1, "timing": {"repeat": {"frequency": 1, "period": 1.0, "periodUnit": "d"}},
                  "asNeededBoolean": False,
                  "doseAndRate": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/dose-rate-type",
                                                        "code": "ordered", "display": "Ordered"}]},
                                   "doseQuantity": {"value": 1.0}}]}]
_DOSAGE_COURSE = [{"sequence": 1,
                   "additionalInstruction": [{"coding": [{"system": "http://snomed.info/sct", "code": "418577003",
                                                          "display": "Take at regular intervals. Complete the prescribed course of medication."}],
                                              "text": "Take at regular intervals. Complete the prescribed course of medication."}],
                   "timing": {"repeat": {"frequency": 2, "period": 1.0, "periodUnit": "d"}},
                   "asNeededBoolean": False,
                   "doseAndRate": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/dose-rate-type",
                                                         "code": "ordered", "display": "Ordered"}]},
                                    "doseQuantity": {"value": 1.0}}]}]


@dataclass
class RunContext:
    """What every patient of one run shares."""

    seed: int
    state: str
    reference_t: int
    years: int
    catalog: Catalog
    network: Network
    clock: LocalClock
    usage: dict[str, Utilization] = field(default_factory=dict)
    used_orgs: dict[str, Organization] = field(default_factory=dict)
    used_clinicians: dict[str, Clinician] = field(default_factory=dict)


@dataclass
class Chronic:
    spec: Json
    onset: int
    end: int | None = None
    condition: Json | None = None
    prescriptions: dict[str, Json] = field(default_factory=dict)  # rxnorm code -> latest request
    meds: list[list[Any]] = field(default_factory=list)


def _pick_clinician(rng: random.Random, org: Organization) -> Clinician:
    return org.clinicians[rng.randrange(len(org.clinicians))]


class Life:
    def __init__(self, ctx: RunContext, index: int) -> None:
        self.ctx = ctx
        self.c = ctx.catalog
        self.clin = ctx.catalog.clinical
        self.rng = seeded("patient", ctx.seed, index)
        self.person_seed = self.rng.getrandbits(63)
        pid = random_uuid(self.rng)
        self.p: Person = make_person(self.rng, pid, ctx.state, ctx.reference_t)
        self.window_start = ctx.reference_t - ctx.years * YEAR
        self.end = ctx.reference_t
        self.death: int | None = None
        payers = load_data("payers")
        self.payers = payers
        names = [n for n, _ in payers["private"]]
        self.private_payer = self.rng.choices(names, weights=[w for _, w in payers["private"]])[0]
        self.uninsured = self.rng.random() < payers["uninsured_probability"]
        self.home = ctx.network.by_city[self.p.city["name"]]
        self.pcp = _pick_clinician(self.rng, self.home["primary"])
        self.chronic: dict[str, Chronic] = {}
        self.sdoh_active: list[Json] = []
        self.allergy_names: list[str] = []
        self.allergy_plan: list[tuple[list[str], str]] = []  # (substance, category) awaiting a care plan
        self.education_recorded = False
        self.employment = self.rng.choices(("full", "part", "unemployed", "not_in_labor_force"),
                                           weights=(0.6, 0.15, 0.07, 0.18))[0]
        self.given_vaccines: dict[str, int] = {}
        self.last_td = -1
        self.covid_doses = 0
        self.obese_recorded = False
        self.last_lab: dict[str, int] = {}

    # -- planning -------------------------------------------------------------------------------

    def age(self, t: int) -> float:
        return (t - self.p.birth) / YEAR

    def at_age(self, years: float) -> int:
        return self.p.birth + int(years * YEAR)

    def daytime(self, t: int) -> int:
        """Move t to a working hour of its local day (encounters happen in office hours)."""
        std = self.ctx.clock.std * 3600
        day = (t + std) // DAY * DAY - std
        return day + self.rng.randint(8 * 3600, 17 * 3600)

    def bmi_at(self, age: float) -> float:
        if age < 2:
            return 16.5
        if age < 18:
            return 15.5 + (self.p.bmi - 15.5) * (age - 2) / 16 * 0.8
        return self.p.bmi + min(age - 18, 40) * 0.06

    def height_at(self, age: float) -> float:
        if age >= 18:
            return self.p.adult_height
        for (a0, f0), (a1, f1) in zip(_CHILD_GROWTH, _CHILD_GROWTH[1:], strict=False):
            if a0 <= age < a1:
                return self.p.adult_height * (f0 + (f1 - f0) * (age - a0) / (a1 - a0))
        return self.p.adult_height

    def payer_at(self, t: int) -> str:
        pay = self.payers
        age = self.age(t)
        poor = self.p.income < pay["medicaid_income_threshold"]
        if age >= 65:
            return pay["dual"] if poor else pay["medicare"]
        if poor:
            return pay["medicaid"]
        return pay["none"] if self.uninsured and age >= 18 else self.private_payer

    def plan(self) -> list[tuple[int, int, str, Any]]:
        rng = self.rng
        events: list[tuple[int, int, str, Any]] = []
        self._plan_chronic()
        self._plan_death()
        start = self.window_start
        # wellness visits
        w = self.clin["wellness"]
        ages: list[float] = [m / 12 for m in w["child_months"]]
        age_now = self.age(self.end)
        ages += [float(a) for a in range(w["yearly_from_age"] + 1, int(age_now) + 1)]
        for a in ages:
            t = self.at_age(a) + rng.randint(0, 20) * DAY
            if a >= 18 and rng.random() < w["adult_skip_probability"]:
                continue
            if start <= t < self.end:
                events.append((self.daytime(t), _ORDER["wellness"], "wellness", a))
        # chronic diagnoses and follow-ups
        for key, ch in self.chronic.items():
            still_active = ch.end is None or ch.end > start
            if ch.onset < self.end and still_active:
                events.append((self.daytime(ch.onset), _ORDER["diagnose"], "diagnose", key))
                months = ch.spec["followup_months"]
                t = ch.onset + int(months * 30.4 * DAY)
                stop = min(self.end, ch.end or self.end)
                while t < stop:
                    if t >= start:
                        events.append((self.daytime(t), _ORDER["followup"], "followup", key))
                    t += int(months * 30.4 * DAY * rng.uniform(0.85, 1.15))
                rate = ch.spec.get("exacerbation_annual", 0.0)
                year = max(start, ch.onset)
                while rate and year < stop:
                    if rng.random() < rate:
                        t = year + rng.randint(0, 364) * DAY
                        if t < stop:
                            events.append((self.daytime(t), _ORDER["exacerbation"], "exacerbation", key))
                    year += YEAR
        # acute episodes, only inside the window (older ones are never exported)
        year_t = start
        while year_t < self.end:
            age = self.age(year_t)
            for spec in self.clin["acute"]:
                if spec.get("sex") and spec["sex"] != self.p.gender:
                    continue
                if "from" in spec and self.ctx.clock.date(year_t) < spec["from"]:
                    continue
                for lo, hi, rate in spec["rate"]:
                    if lo <= age <= hi and age >= 0 and rng.random() < rate:
                        t = year_t + rng.randint(0, 364) * DAY
                        if self.p.birth < t < self.end:
                            events.append((self.daytime(t), _ORDER["acute"], "acute", spec))
            year_t += YEAR
        if self.death is not None:
            events.append((self.death, _ORDER["death"], "death", None))
        events = [e for e in events if self.p.birth < e[0] <= self.end]
        events.sort(key=lambda e: (e[0], e[1]))
        return events

    def _risk(self, spec: Json, year_t: int) -> float:
        factor = 1.0
        for name, mult in spec.get("risk", {}).items():
            if name == "obese" and self.bmi_at(self.age(year_t)) >= 30:
                factor *= mult
            elif name == "smoker" and self.p.smoker:
                factor *= mult
            elif name in self.chronic and self.chronic[name].onset <= year_t:
                factor *= mult
        return factor

    def _plan_chronic(self) -> None:
        rng = self.rng
        age_now = int(self.age(self.end))
        for spec in self.clin["chronic"]:
            if spec["key"] == "diabetes" and "prediabetes" in self.chronic:
                pre = self.chronic["prediabetes"]
                year_t = pre.onset + YEAR
                while year_t < self.end:
                    if rng.random() < pre.spec["progression_annual"]:
                        pre.end = year_t
                        self.chronic["diabetes"] = Chronic(spec, year_t)
                        break
                    year_t += YEAR
                continue
            for a in range(spec["min_age"], min(age_now, spec.get("max_age", 200)) + 1):
                year_t = self.at_age(a)
                if rng.random() < spec["annual_incidence"] * self._risk(spec, year_t):
                    onset = year_t + rng.randint(0, 364) * DAY
                    if onset < self.end:
                        ch = Chronic(spec, onset)
                        if "resolves_after_years" in spec:
                            lo, hi = spec["resolves_after_years"]
                            ch.end = onset + int(rng.uniform(lo, hi) * YEAR)
                            if ch.end >= self.end:
                                ch.end = None
                        self.chronic[spec["key"]] = ch
                    break

    def _plan_death(self) -> None:
        d = self.clin["death"]
        t = self.window_start
        while t < self.end:
            age = self.age(t)
            if age > 0:
                hazard = d["gompertz_a"] * math.exp(d["gompertz_b"] * age)
                for ch in self.chronic.values():
                    if ch.onset <= t and (ch.end is None or ch.end > t):
                        hazard *= ch.spec.get("mortality", 1.0)
                if self.rng.random() < min(hazard, 0.9):
                    death = t + self.rng.randint(0, 364) * DAY
                    if death < self.end:
                        self.death = self.daytime(death)
                        self.end = self.death
                        return
            t += YEAR

    # -- recording ------------------------------------------------------------------------------

    def run(self) -> tuple[Person, Json]:
        events = self.plan()
        p = self.p
        adult = self.age(self.end) >= 18
        self.rec = PatientRecord(self.c, self.ctx.clock, self.rng, p.id, p.display(adult),
                                 " ".join(p.given[:1] + [p.family]))
        daly = round(sum((min(ch.end or self.end, self.end) - ch.onset) / YEAR * 0.05 for ch in self.chronic.values()), 1)
        qaly = round(max(self.age(self.end) - daly, 0.0), 1)
        patient = patient_resource(p, self.ctx.clock, self.ctx.state, self.death, adult, daly, qaly,
                                   self.ctx.seed, self.person_seed)
        self.rec.add(patient)
        self._allergies()
        self._vaccine_history()
        last: Encounter | None = None
        for t, _, kind, payload in events:
            if last is not None and t < last.end:
                t = last.end + self.rng.randint(1, 3) * 3600
                if t > self.end:
                    continue
            last = getattr(self, "_on_" + kind)(t, payload)
        self._close_chronic()
        last_clin = last.clinician if last is not None else self.pcp
        if last is not None:
            self.rec.provenance(last.end, last_clin)
        else:
            self.rec.provenance(self.end, last_clin)
        return p, {"resourceType": "Bundle", "type": "transaction", "entry": self.rec.entries}

    def _allergies(self) -> None:
        spec = self.clin["allergies"]
        if self.rng.random() >= spec["probability"]:
            return
        for _ in range(self.rng.choice((1, 1, 2))):
            code, category, kind = self.rng.choice(spec["substances"])
            at = self.daytime(self.at_age(self.rng.uniform(*spec["onset_age"])))
            if at >= self.end or code[2] in self.allergy_names:
                continue
            reactions = []
            if self.rng.random() < 0.5:
                reactions = [(self.rng.choice(spec["reactions"]), self.rng.choice(spec["severities"]))]
            self.rec.allergy(code, category, kind, at, reactions)
            self.allergy_names.append(code[2])
            self.allergy_plan.append((code, category))

    def _vaccine_history(self) -> None:
        """Doses due before the exported window count as given (they are history, not exported)."""
        im = self.clin["immunizations"]
        months = self.age(self.window_start) * 12
        for _, code, _, doses in im["childhood"]:
            self.given_vaccines[code] = sum(1 for m in doses if m < months)
        age = months / 12
        if age >= im["td_from_age"]:
            self.last_td = int(age) - self.rng.randint(0, im["td_every_years"] - 1)
        for key, ages in (("zoster", im["zoster_ages"]), ("hepb_adult", im["hepb_adult_ages"])):
            self.given_vaccines[key] = sum(1 for a in ages if a < age)

    def _begin(self, kind: str, t: int, reason: Json | None) -> Encounter:
        spec = self.clin["encounter_types"][kind]
        org = self.home[spec["provider"]]
        clinician = self.pcp if spec["provider"] == "primary" else _pick_clinician(self.rng, org)
        return self.rec.begin_encounter(kind, spec, t, org, clinician, self.payer_at(t), reason)

    def _finish(self, enc: Encounter) -> Encounter:
        lo, hi = enc.spec["minutes"]
        self.rec.finish_encounter(enc, self.rng.randint(lo, hi))
        ctx = self.ctx
        ctx.used_orgs[enc.org.id] = enc.org
        ctx.used_clinicians[enc.clinician.id] = enc.clinician
        for key in (enc.org.id, enc.clinician.id):
            u = ctx.usage.setdefault(key, Utilization())
            u.encounters += 1
            u.procedures += sum(1 for ln in enc.lines if ln.kind == "procedure")
            u.labs += sum(1 for ln in enc.lines if ln.kind == "info")
            u.prescriptions += len(enc.prescriptions)
        p = self.p
        age = int(self.age(enc.start))
        race = load_data("demographics")["race_adjectives"][p.race["code"]]
        hisp = "hispanic" if p.ethnicity["code"] == "2135-2" else "nonhispanic"
        smoking = "Patient is a smoker." if p.smoker else "Patient has never smoked."
        active = [ch.spec["condition"][2] for ch in self.chronic.values()
                  if ch.condition is not None and ch.onset <= enc.start and (ch.end is None or ch.end > enc.start)]
        meds = [m for ch in self.chronic.values() for m in ch.prescriptions if ch.end is None or ch.end > enc.start]
        text = notes.render(enc, self.ctx.clock.date(enc.start), p.given[0], age, f"{hisp} {race} {p.gender}",
                            smoking, enc.payer, self.allergy_names, meds, active)
        notes.add_note(self.rec, enc, text)
        places = self.clin["service_places"]
        place = places[enc.spec["place"]]
        billing.encounter_claim(self.rec, enc, place, self.payers["none"], self.payers["coinsurance"])
        for request_id, concept, cost in enc.prescriptions:
            billing.prescription_claim(self.rec, enc, request_id, concept, cost, place)
        return enc

    # vitals, labs, surveys ---------------------------------------------------------------------

    def _vitals(self, enc: Encounter, t: int, full: bool) -> None:
        v = self.clin["vitals"]
        rec, rng = self.rec, self.rng
        age = self.age(t)
        height = self.height_at(age) * rng.uniform(0.995, 1.005)
        bmi = self.bmi_at(age) * rng.uniform(0.97, 1.03)
        weight = bmi * (height / 100) ** 2

        def vital(key: str, value: float) -> None:
            spec = v[key]
            rec.observation(enc, spec["code"], "vital-signs", t, value, spec["unit"], spec["profile"],
                            decimals=spec["decimals"])

        if full:
            vital("height", height)
            vital("pain", rng.choice((0, 0, 0, 1, 2, 3)))
        vital("weight", weight)
        if full and age >= 2:
            vital("bmi", bmi)
            if age < 20:
                vital("bmi_percentile", rng.uniform(5, 95))
        if age >= 3:
            bp = self.clin["blood_pressure"]
            sys_bp, dia_bp = 105 + age * 0.3 + rng.gauss(0, 6), 68 + age * 0.1 + rng.gauss(0, 5)
            ht = self.chronic.get("hypertension")
            if ht is not None and ht.onset <= t:
                shift = ht.spec["bp_shift"]
                sys_bp, dia_bp = sys_bp + shift[0] * rng.uniform(0.4, 1.0), dia_bp + shift[1] * rng.uniform(0.4, 1.0)
            comps = [rec.quantity_component(bp["diastolic"], dia_bp, bp["unit"]),
                     rec.quantity_component(bp["systolic"], sys_bp, bp["unit"])]
            rec.observation(enc, bp["code"], "vital-signs", t, None, None, bp["profile"], components=comps)
        vital("heart_rate", rng.uniform(60, 100) if age >= 12 else rng.uniform(80, 130))
        vital("respiratory_rate", rng.uniform(12, 18) if age >= 12 else rng.uniform(18, 30))
        if full:
            sm = self.clin["smoking"]
            status = sm["current"] if self.p.smoker else sm["never"]
            rec.observation(enc, sm["code"], "social-history", t, None, None, SMOKING_PROFILE, coded=status)

    def _lab(self, enc: Encounter, panel_key: str, t: int) -> None:
        panels = self.clin["lab_panels"]
        rec, rng = self.rec, self.rng
        shifts: dict[str, list[float]] = {}
        for ch in self.chronic.values():
            if ch.onset <= t and (ch.end is None or ch.end > t):
                shifts.update(ch.spec.get("lab_shift", {}))
        if panel_key in panels:
            panel = panels[panel_key]
            results = []
            for sys_, code, display, unit, lo, hi, dec in panel["results"]:
                lo, hi = shifts.get(code, (lo, hi))
                results.append(rec.observation(enc, [sys_, code, display], "laboratory", t, rng.uniform(lo, hi),
                                               unit, LAB_PROFILE, decimals=dec))
            for sys_, code, display, answer in panel.get("coded_results", []):
                results.append(rec.observation(enc, [sys_, code, display], "laboratory", t, None, None,
                                               LAB_PROFILE, coded=answer))
        else:
            panel = self.clin["coded_panels"][panel_key]
            results = [rec.observation(enc, [s, c, d], "laboratory", t, None, None, LAB_PROFILE, coded=a)
                       for s, c, d, a in panel["results"]]
        if len(results) == 1 and results[0]["code"]["coding"][0]["code"] == panel["code"][1]:
            enc.lines.append(Line("info", results[0]["code"], panel["cost"], results[0]["id"]))
        else:
            report = rec.diagnostic_report(enc, panel["code"], t, results, lab=True)
            enc.lines.append(Line("info", report["code"], panel["cost"], report["id"]))
        self.last_lab[panel_key] = t

    def _survey(self, enc: Encounter, key: str, t: int) -> int:
        s = self.clin["surveys"][key]
        procs = self.clin["procedures"]
        score = min(int(self.rng.expovariate(0.8)), s["max"])
        obs = self.rec.observation(enc, s["score"], "survey", t, score, "{score}", SURVEY_PROFILE, decimals=0)
        self.rec.diagnostic_report(enc, s["panel"], t, [obs], lab=False)
        proc = procs[s["procedure"]]
        self.rec.procedure(enc, proc["code"], t, proc["minutes"], proc["cost"])
        return t + proc["minutes"] * 60

    def _prapare(self, enc: Encounter, t: int) -> None:
        pr = self.clin["prapare"]
        rec, rng, p = self.rec, self.rng, self.p
        comps = []
        for q in pr["questions"]:
            how = q.get("answer")
            if how is None:
                comps.append(rec.coded_component(q["code"], rng.choice(q["answers"])))
            elif how == "ethnicity_yes_no":
                comps.append(rec.coded_component(q["code"], pr["yes"] if p.ethnicity["code"] == "2135-2" else pr["no"]))
            elif how == "race":
                comps.append(rec.coded_component(q["code"], ["loinc", "LA4457-3" if p.race["code"] == "2106-3"
                                                              else "LA10610-6", p.race["display"]]))
            elif how == "language":
                comps.append(rec.string_component(q["code"], p.language["display"]))
            elif how == "household_size":
                comps.append(rec.quantity_component(q["code"], rng.randint(1, 6), "{#}"))
            elif how == "address":
                comps.append(rec.string_component(q["code"], f"{p.line}, {p.city['name']}"))
            elif how == "education":
                comps.append(rec.coded_component(q["code"], pr["education"][min(p.education, 2)]))
            elif how == "employment":
                comps.append(rec.coded_component(q["code"], pr["employment"][self.employment]))
            elif how == "insurance":
                payer = self.payer_at(t)
                comps.append(rec.coded_component(q["code"], pr["insurance"].get(payer, pr["insurance"]["private"])))
            elif how == "income":
                comps.append(rec.quantity_component(q["code"], p.income, "/a"))
        rec.observation(enc, pr["code"], "survey", t, None, None, components=comps, extra_profiles=pr["profiles"])

    def _due(self, every: int, key: str, t: int) -> bool:
        last = self.last_lab.get(key)
        return last is None or t - last >= every * YEAR - 60 * DAY

    # event handlers -----------------------------------------------------------------------------

    def _on_wellness(self, t: int, age: float) -> Encounter:
        rec, rng, w = self.rec, self.rng, self.clin["wellness"]
        adult = age >= 18
        enc = self._begin("wellness" if adult else "well_child", t, None)
        self._sdoh(enc, t, adult)
        self._vitals(enc, t, full=True)
        self._obesity(enc, t, age)
        cursor = t + 10 * 60
        procs = self.clin["procedures"]
        if adult and age >= w["prapare_from_age"]:
            self._prapare(enc, cursor)
            sd = procs["sdoh_assessment"]
            rec.procedure(enc, sd["code"], cursor, sd["minutes"], sd["cost"])
            cursor += sd["minutes"] * 60
        if age >= 12:
            dep = procs["depression_screen"]
            rec.procedure(enc, dep["code"], cursor, dep["minutes"], dep["cost"])
            cursor += dep["minutes"] * 60
            cursor = self._survey(enc, "phq2" if adult else "phq9_teen", cursor)
        if adult:
            cursor = self._survey(enc, "gad7", cursor)
            sub = procs["substance"]
            rec.procedure(enc, sub["code"], cursor, sub["minutes"], sub["cost"])
            cursor += sub["minutes"] * 60
            for key in ("auditc", "hark", "dast10"):
                if key != "dast10" or rng.random() < 0.5:
                    cursor = self._survey(enc, key, cursor)
        else:
            ag = procs["anticipatory_guidance"]
            rec.procedure(enc, ag["code"], cursor, ag["minutes"], ag["cost"])
            cursor += ag["minutes"] * 60
        if any(ch.prescriptions and ch.end is None for ch in self.chronic.values()):
            mr = procs["med_reconciliation"]
            rec.procedure(enc, mr["code"], cursor, mr["minutes"], mr["cost"])
            cursor += mr["minutes"] * 60
        if any(int(age) == a for a in w["colonoscopy_ages"]):
            co = procs["colonoscopy"]
            rec.procedure(enc, co["code"], cursor, co["minutes"], co["cost"])
            cursor += co["minutes"] * 60
        if age >= w["lipid_from_age"] and self._due(w["lipid_every_years"], "lipid", t):
            self._lab(enc, "lipid", cursor)
        if age >= w["cbc_from_age"] and self._due(w["cbc_every_years"], "cbc", t):
            self._lab(enc, "cbc", cursor)
        if age >= w["metabolic_from_age"] and self._due(w["metabolic_every_years"], "metabolic", t):
            self._lab(enc, "metabolic", cursor)
        self._immunize(enc, t, age)
        self._renew_all(enc, t)
        self._allergy_care(enc, t)
        enc.end = max(enc.end, cursor)
        return self._finish(enc)

    def _allergy_care(self, enc: Encounter, t: int) -> None:
        """A self-care plan for known allergies; an auto-injector for food allergies.

        An allergy is not a Condition, so both refer to it by code (reasonCode), as Synthea does.
        """
        if not self.allergy_plan:
            return
        spec = self.clin["allergies"]
        cp = spec["careplan"]
        for code, category in self.allergy_plan:
            acts = cp["activities"] + ([cp["food_activity"]] if category == "food" else [])
            self.rec.care_team_and_plan(enc, cp["code"], acts, t, None, None, self.p.display(self.age(t) >= 18),
                                        reason_code=code)
            if category == "food":
                med, cost = spec["medication"]
                self.rec.medication_request(enc, med, t, "active", None, code, _DOSAGE_AS_NEEDED, cost)
        self.allergy_plan = []

    def _sdoh(self, enc: Encounter, t: int, adult: bool) -> None:
        for cond in self.sdoh_active:
            self.rec.abate(cond, t)
        self.sdoh_active = []
        if not adult:
            return
        f = self.clin["sdoh_findings"]
        rng = self.rng
        if rng.random() < 0.15:
            self.employment = rng.choices(("full", "part", "unemployed", "not_in_labor_force"),
                                          weights=(0.6, 0.15, 0.07, 0.18))[0]
        self.sdoh_active.append(self.rec.condition(enc, f["employment"][self.employment], t))
        if not self.education_recorded:
            self.rec.condition(enc, f["education"][min(self.p.education, 2)], t)
            self.education_recorded = True
        for code, prob in f["episodic"]:
            if rng.random() < prob:
                self.sdoh_active.append(self.rec.condition(enc, code, t))
        if any(ch.prescriptions and ch.end is None for ch in self.chronic.values()):
            self.sdoh_active.append(self.rec.condition(enc, f["medication_review"], t))

    def _obesity(self, enc: Encounter, t: int, age: float) -> None:
        if age >= 18 and not self.obese_recorded and self.bmi_at(age) >= 30:
            ob = self.clin["obesity"]
            self.rec.condition(enc, ob["severe"] if self.bmi_at(age) >= 40 else ob["condition"], t)
            self.obese_recorded = True

    def _immunize(self, enc: Encounter, t: int, age: float) -> None:
        im = self.clin["immunizations"]
        months = age * 12
        cost = im["cost"]
        for sys_, code, display, doses in im["childhood"]:
            given = self.given_vaccines.get(code, 0)
            while given < len(doses) and doses[given] <= months + 0.5:
                self.rec.immunization(enc, [sys_, code, display], t, cost)
                given += 1
            self.given_vaccines[code] = given
        if months >= im["influenza_from_months"]:
            self.rec.immunization(enc, im["influenza"], t, cost)
        if age >= im["td_from_age"] and (self.last_td < 0 or age - self.last_td >= im["td_every_years"]):
            if self.last_td >= 0 or self.rng.random() < 0.3:
                self.rec.immunization(enc, im["td"], t, cost)
            self.last_td = int(age)
        for key, ages in (("zoster", im["zoster_ages"]), ("hepb_adult", im["hepb_adult_ages"])):
            if int(age) in ages and self.given_vaccines.get(key, 0) < len(ages):
                self.rec.immunization(enc, im[key], t, cost)
                self.given_vaccines[key] = self.given_vaccines.get(key, 0) + 1
        if int(age) == im["pneumococcal_age"]:
            self.rec.immunization(enc, im["pneumococcal_adult"], t, cost)
        if (self.covid_doses < 2 and age >= im["covid_min_age"] and self.ctx.clock.date(t) >= im["covid_from"]
                and self.rng.random() < im["covid_uptake"]):
            self.rec.immunization(enc, im["covid"], t, cost)
            self.covid_doses += 1

    def _prescribe(self, enc: Encounter, ch: Chronic, t: int) -> None:
        for med in ch.meds:
            code, _, cost = med[0], med[1], med[2]
            mode = med[3] if len(med) > 3 else "daily"
            previous = ch.prescriptions.get(code[1])
            if previous is not None:
                previous["status"] = "stopped"
            dosage = _DOSAGE_AS_NEEDED if mode == "as_needed" else _DOSAGE_DAILY
            ch.prescriptions[code[1]] = self.rec.medication_request(
                enc, code, t, "active", ch.condition, None if ch.condition else ch.spec["condition"], dosage,
                round(cost * self.rng.uniform(0.9, 1.3), 2))

    def _renew_all(self, enc: Encounter, t: int) -> None:
        for ch in self.chronic.values():
            if ch.condition is not None and ch.end is None and ch.onset <= t:
                self._prescribe(enc, ch, t)

    def _on_diagnose(self, t: int, key: str) -> Encounter:
        ch = self.chronic[key]
        spec = ch.spec
        enc = self._begin(spec["followup"], t, None)
        self._vitals(enc, t, full=False)
        ended = ch.end if ch.end is not None and ch.end <= self.end else None
        ch.condition = self.rec.condition(enc, spec["condition"], t, ended)
        for panel in spec.get("labs", []):
            self._lab(enc, panel, t + 15 * 60)
        procs = self.clin["procedures"]
        for name in spec.get("procedures", []):
            pr = procs[name]
            self.rec.procedure(enc, pr["code"], t + 20 * 60, pr["minutes"], pr["cost"], ch.condition)
        ch.meds = [m for m in spec.get("medications", []) if self.rng.random() < m[1]]
        if ch.meds:
            self._prescribe(enc, ch, t)
        if "careplan" in spec:
            cp = spec["careplan"]
            self.rec.care_team_and_plan(enc, cp["code"], cp["activities"], t, ended, ch.condition,
                                        self.p.display(self.age(t) >= 18))
        if "device" in spec:
            self.rec.device(spec["device"], t, self.rng)
        if "supply" in spec:
            code, qty = spec["supply"]
            s = max(t, self.window_start)
            while s < min(self.end, ch.end or self.end):
                self.rec.supply_delivery(code, qty, self.daytime(s))
                s += int(YEAR * self.rng.uniform(0.8, 1.2))
        return self._finish(enc)

    def _on_followup(self, t: int, key: str) -> Encounter:
        ch = self.chronic[key]
        spec = ch.spec
        enc = self._begin(spec["followup"], t, self.c.concept_no_text(spec["condition"]))
        self._vitals(enc, t, full=False)
        for panel in spec.get("labs", []):
            self._lab(enc, panel, t + 15 * 60)
        procs = self.clin["procedures"]
        for name in spec.get("procedures", [])[:1]:
            pr = procs[name]
            self.rec.procedure(enc, pr["code"], t + 20 * 60, pr["minutes"], pr["cost"], ch.condition)
        if ch.meds and ch.condition is not None:
            self._prescribe(enc, ch, t)
        return self._finish(enc)

    def _on_exacerbation(self, t: int, key: str) -> Encounter:
        ch = self.chronic[key]
        spec = ch.spec
        enc = self._begin(spec["exacerbation_encounter"], t, self.c.concept_no_text(spec["condition"]))
        self._vitals(enc, t, full=False)
        v = self.clin["vitals"]["oxygen_saturation"]
        self.rec.observation(enc, v["code"], "vital-signs", t, self.rng.uniform(88, 95), v["unit"], v["profile"],
                             decimals=1)
        procs = self.clin["procedures"]
        cursor = t + 10 * 60
        for name in spec.get("exacerbation_procedures", []):
            pr = procs[name]
            self.rec.procedure(enc, pr["code"], cursor, pr["minutes"], pr["cost"], ch.condition)
            cursor += pr["minutes"] * 60
        for med in spec.get("medications", []):
            if len(med) > 3 and med[3] == "as_needed":
                self.rec.medication_request(enc, med[0], t, "stopped", ch.condition, None, _DOSAGE_AS_NEEDED,
                                            round(med[2] * self.rng.uniform(0.9, 1.3), 2))
        return self._finish(enc)

    def _on_acute(self, t: int, spec: Json) -> Encounter:
        rec, rng = self.rec, self.rng
        enc = self._begin(spec["encounter"], t, self.c.concept_no_text(spec["condition"]))
        emergency = enc.spec["class"] == "EMER"
        self._vitals(enc, t, full=False)
        if spec.get("temperature"):
            v = self.clin["vitals"]["temperature"]
            rec.observation(enc, v["code"], "vital-signs", t, rng.uniform(37.4, 39.6), v["unit"], v["profile"],
                            decimals=2)
        for sys_, code, display, value in spec.get("string_results", []):
            rec.observation(enc, [sys_, code, display], "laboratory", t + 30 * 60, None, None, text=value)
        abate = t + rng.randint(*spec["days"]) * DAY
        ended = abate if abate <= self.end else None
        cond = rec.condition(enc, spec["condition"], t, ended)
        cursor = t + 10 * 60
        for panel in spec.get("labs", []):
            self._lab(enc, panel, cursor)
        procs = self.clin["procedures"]
        for name in spec.get("procedures", []):
            pr = procs[name]
            rec.procedure(enc, pr["code"], cursor, pr["minutes"], pr["cost"], cond)
            cursor += pr["minutes"] * 60
        if "imaging" in spec:
            im = spec["imaging"]
            rec.imaging_study(enc, im["procedure"], im["body_site"], im["title"], cursor, rng)
        if emergency and "administered" in spec:
            code, cost = spec["administered"]
            med = rec.medication_administration(enc, code, cursor)
            rec.medication_request(enc, code, cursor, "completed", cond, None, _DOSAGE_AS_NEEDED, cost, medication=med)
        status = "stopped" if ended is not None else "active"
        for med in spec.get("medications", []):
            if rng.random() < med[1]:
                mode = med[3] if len(med) > 3 else "daily"
                dosage = {"as_needed": _DOSAGE_AS_NEEDED, "course": _DOSAGE_COURSE}.get(mode, _DOSAGE_DAILY)
                rec.medication_request(enc, med[0], t, status, cond, None, dosage,
                                       round(med[2] * rng.uniform(0.9, 1.3), 2))
        if "careplan" in spec:
            cp = spec["careplan"]
            rec.care_team_and_plan(enc, cp["code"], cp["activities"], t, ended, cond, self.p.display(self.age(t) >= 18))
        enc.end = max(enc.end, cursor)
        return self._finish(enc)

    def _on_death(self, t: int, _: Any) -> Encounter:
        d = self.clin["death"]
        causes = [ch for ch in self.chronic.values() if ch.onset <= t and (ch.end is None or ch.end > t)]
        causes.sort(key=lambda ch: ch.spec.get("mortality", 1.0), reverse=True)
        cause = causes[0].spec["condition"] if causes else d["natural_cause"]
        enc = self._begin("death_certification", t, self.c.concept_no_text(cause))
        obs = self.rec.observation(enc, d["cause_observation"], "exam", t, None, None, coded=cause)
        report = self.rec.diagnostic_report(enc, d["certificate_panel"], t, [obs], lab=False)
        enc.lines.append(Line("info", report["code"], None, report["id"]))
        return self._finish(enc)

    def _close_chronic(self) -> None:
        """Prescriptions of conditions that ended are no longer active."""
        for ch in self.chronic.values():
            if ch.end is not None or self.death is not None:
                for request in ch.prescriptions.values():
                    request["status"] = "stopped"


def simulate_patient(ctx: RunContext, index: int) -> tuple[Person, Json]:
    return Life(ctx, index).run()
