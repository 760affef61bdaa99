"""The state of one simulated life, shared by planning (planning.py) and recording (handlers.py).

A `Life` holds the person, their random generator, the chronic conditions planned for them and
the record being written, plus the small time and coverage helpers every stage needs. It
decides nothing itself: planning decides what happens and when, handlers record it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from fhirflow.generate import billing, notes
from fhirflow.generate.catalog import Catalog, load_data
from fhirflow.generate.clock import DAY, YEAR, LocalClock
from fhirflow.generate.events import EventQueue
from fhirflow.generate.ids import random_uuid, seeded
from fhirflow.generate.person import Person, make_person
from fhirflow.generate.providers import Clinician, Network, Organization, Utilization
from fhirflow.generate.records import Encounter, PatientRecord

Json = dict[str, Any]

EMPLOYMENT = ("full", "part", "unemployed", "not_in_labor_force")
EMPLOYMENT_WEIGHTS = (0.6, 0.15, 0.07, 0.18)

# Fraction of adult height reached at each age (years), interpolated in between.
_CHILD_GROWTH = [(0, 0.29), (1, 0.43), (2, 0.49), (3, 0.55), (5, 0.63), (8, 0.73), (10, 0.79),
                 (12, 0.86),
                 (14, 0.93), (16, 0.98), (18, 1.0)]


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
    # optional clinical modules that run (modules/__init__.py)
    modules: frozenset[str] = frozenset()
    usage: dict[str, Utilization] = field(default_factory=dict)
    used_orgs: dict[str, Organization] = field(default_factory=dict)
    used_clinicians: dict[str, Clinician] = field(default_factory=dict)
    used_home: bool = False


@dataclass
class Chronic:
    """A chronic condition of one person: when it starts and ends, and what treats it."""

    spec: Json
    onset: int
    end: int | None = None
    condition: Json | None = None
    prescriptions: dict[str, Json] = field(default_factory=dict)  # rxnorm code -> latest request
    medications: list[list[Any]] = field(default_factory=list)

    def active_at(self, at: int) -> bool:
        return self.onset <= at and (self.end is None or self.end > at)


def pick_clinician(rng: random.Random, org: Organization) -> Clinician:
    return org.clinicians[rng.randrange(len(org.clinicians))]


class Life:
    def __init__(self, ctx: RunContext, index: int) -> None:
        self.ctx = ctx
        self.catalog = ctx.catalog
        self.clinical = ctx.catalog.clinical
        self.rng = seeded("patient", ctx.seed, index)
        self.person_seed = self.rng.getrandbits(63)
        patient_id = random_uuid(self.rng)
        self.person: Person = make_person(self.rng, patient_id, ctx.state, ctx.reference_t)
        self.window_start = ctx.reference_t - ctx.years * YEAR
        self.end = ctx.reference_t
        self.death: int | None = None
        payers = load_data("payers")
        self.payers = payers
        names = [name for name, _ in payers["private"]]
        weights = [weight for _, weight in payers["private"]]
        self.private_payer = self.rng.choices(names, weights=weights)[0]
        self.uninsured = self.rng.random() < payers["uninsured_probability"]
        self.home = ctx.network.by_city[self.person.city["name"]]
        self.pcp = pick_clinician(self.rng, self.home["primary"])
        self.chronic: dict[str, Chronic] = {}
        self.sdoh_active: list[Json] = []
        self.allergy_names: list[str] = []
        # (substance, category) awaiting a care plan
        self.allergy_plan: list[tuple[list[str], str]] = []
        self.education_recorded = False
        self.employment = self.rng.choices(EMPLOYMENT, weights=EMPLOYMENT_WEIGHTS)[0]
        self.given_vaccines: dict[str, int] = {}
        self.last_td = -1
        self.obese_recorded = False
        self.last_lab: dict[str, int] = {}
        # what modules remember about the person (pregnant, smoker...)
        self.flags: dict[str, Any] = {}
        self.queue = EventQueue()
        self._plan_smoking()
        self.rec: PatientRecord

    def _plan_smoking(self) -> None:
        spec = self.clinical["smoking"]
        if self.rng.random() >= spec["ever"]:
            return
        started = self.at_age(self.rng.uniform(*spec["start_ages"]))
        quit_at, year = None, started + YEAR
        while year < self.end:
            if self.rng.random() < spec["quit_annual"]:
                quit_at = year + self.rng.randint(0, 364) * DAY
                break
            year += YEAR
        self.flags["smoking"] = (started, quit_at)

    def has(self, module: str) -> bool:
        return module in self.ctx.modules

    def schedule(self, at: int, kind: str, payload: Any = None) -> None:
        """Add an event; events before birth or after the end of the life are dropped when due."""
        self.queue.add(at, kind, payload)

    # -- time and body ----------------------------------------------------------------------

    def age(self, at: int) -> float:
        return (at - self.person.birth) / YEAR

    def at_age(self, years: float) -> int:
        return self.person.birth + int(years * YEAR)

    def daytime(self, at: int) -> int:
        """Move a time to a working hour of its local day (encounters happen in office hours)."""
        std = self.ctx.clock.std * 3600
        day = (at + std) // DAY * DAY - std
        return day + self.rng.randint(8 * 3600, 17 * 3600)

    def bmi_at(self, age: float) -> float:
        if age < 2:
            return 16.5
        if age < 18:
            return 15.5 + (self.person.bmi - 15.5) * (age - 2) / 16 * 0.8
        return self.person.bmi + min(age - 18, 40) * 0.06

    def height_at(self, age: float) -> float:
        adult = self.person.adult_height
        if age >= 18:
            return adult
        for (age0, frac0), (age1, frac1) in zip(_CHILD_GROWTH, _CHILD_GROWTH[1:], strict=False):
            if age0 <= age < age1:
                return adult * (frac0 + (frac1 - frac0) * (age - age0) / (age1 - age0))
        return adult

    def payer_at(self, at: int) -> str:
        payers = self.payers
        age = self.age(at)
        poor = self.person.income < payers["medicaid_income_threshold"]
        if age >= 65:
            return payers["dual"] if poor else payers["medicare"]
        if poor:
            return payers["medicaid"]
        return payers["none"] if self.uninsured and age >= 18 else self.private_payer

    def diagnosed(self, key: str, at: int) -> bool:
        """The chronic condition is in the record and active (Synthea's "Active Condition")."""
        chronic = self.chronic.get(key)
        return chronic is not None and chronic.condition is not None and chronic.active_at(at)

    def smoking_status(self, at: int) -> str:
        """current | former | never, from the smoking history planned for the person."""
        started, quit_at = self.flags.get("smoking", (None, None))
        if started is None or started > at:
            return "never"
        return "former" if quit_at is not None and quit_at <= at else "current"

    def active_chronic(self, at: int) -> list[Chronic]:
        return [chronic for chronic in self.chronic.values() if chronic.active_at(at)]

    def on_medication(self) -> bool:
        return any(chronic.prescriptions and chronic.end is None
                   for chronic in self.chronic.values())

    # -- encounters -------------------------------------------------------------------------

    def begin(self, kind: str, at: int, reason: Json | None, virtual: bool = False) -> Encounter:
        spec = self.clinical["encounter_types"][kind]
        if virtual:
            spec = {**spec, "class": "VR", "place": "02"}
        org = self.home[spec["provider"]]
        clinician = self.pcp if spec["provider"] == "primary" else pick_clinician(self.rng, org)
        enc = self.rec.begin_encounter(kind, spec, at, org, clinician, self.payer_at(at), reason)
        if spec.get("at_home"):
            enc.location = self.ctx.network.home_ref
            self.ctx.used_home = True
        return enc

    def finish(self, enc: Encounter) -> Encounter:
        low, high = enc.spec["minutes"]
        self.rec.finish_encounter(enc, self.rng.randint(low, high))
        ctx = self.ctx
        ctx.used_orgs[enc.org.id] = enc.org
        ctx.used_clinicians[enc.clinician.id] = enc.clinician
        procedures = sum(1 for line in enc.lines if line.kind == "procedure")
        labs = sum(1 for line in enc.lines if line.kind == "info")
        for key in (enc.org.id, enc.clinician.id):
            usage = ctx.usage.setdefault(key, Utilization())
            usage.encounters += 1
            usage.procedures += procedures
            usage.labs += labs
            usage.prescriptions += len(enc.prescriptions)
        person = self.person
        age = int(self.age(enc.start))
        race = load_data("demographics")["race_adjectives"][person.race["code"]]
        hispanic = "hispanic" if person.ethnicity["code"] == "2135-2" else "nonhispanic"
        smoking = {"current": "Patient is a smoker.", "former": "Patient is an ex-smoker.",
                   "never": "Patient has never smoked."}[self.smoking_status(enc.start)]
        active = [chronic.spec["condition"][2] for chronic in self.chronic.values()
                  if chronic.condition is not None and chronic.active_at(enc.start)]
        medications = [code for chronic in self.chronic.values() for code in chronic.prescriptions
                       if chronic.end is None or chronic.end > enc.start]
        text = notes.render(enc, self.ctx.clock.date(enc.start), person.given[0], age,
                            f"{hispanic} {race} {person.gender}", smoking, enc.payer,
                            self.allergy_names,
                            medications, active)
        notes.add_note(self.rec, enc, text)
        place = self.clinical["service_places"][enc.spec["place"]]
        billing.encounter_claim(self.rec, enc, place, self.payers["none"],
                                self.payers["coinsurance"])
        for request_id, concept, cost in enc.prescriptions:
            billing.prescription_claim(self.rec, enc, request_id, concept, cost, place)
        return enc
