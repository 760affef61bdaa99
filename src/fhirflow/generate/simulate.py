"""One patient from start to finish: plan the life, then record it event by event.

Two passes. Planning (planning.py) covers the whole life cheaply. Recording (handlers.py)
then writes FHIR resources only for the exported window (`years_of_history` before the
reference date), plus, like Synthea, the encounters where still-active chronic conditions
were first diagnosed.
"""

from __future__ import annotations

from functools import cache

from fhirflow.generate import care
from fhirflow.generate.clock import YEAR
from fhirflow.generate.handlers import HANDLERS
from fhirflow.generate.life import Json, Life, RunContext
from fhirflow.generate.modules import Handler, Module, registry
from fhirflow.generate.person import Person, patient_resource
from fhirflow.generate.planning import plan
from fhirflow.generate.records import Encounter, PatientRecord


@cache
def all_handlers() -> dict[str, Handler]:
    """The core handlers and every module's, by event kind."""
    handlers: dict[str, Handler] = dict(HANDLERS)
    for module in registry().values():
        handlers.update(module.handlers)
    return handlers


def enabled_modules(ctx: RunContext) -> list[Module]:
    return [module for name, module in registry().items() if name in ctx.modules]


def simulate_patient(ctx: RunContext, index: int) -> tuple[Person, Json]:
    """Patient `index` of the run: the person and their transaction bundle."""
    life = Life(ctx, index)
    handlers = all_handlers()
    plan(life, enabled_modules(ctx))
    person = life.person
    adult = life.age(life.end) >= 18
    life.rec = PatientRecord(life.catalog, ctx.clock, life.rng, person.id, person.display(adult),
                             " ".join(person.given[:1] + [person.family]))
    daly = round(sum((min(chronic.end or life.end, life.end) - chronic.onset) / YEAR * 0.05
                     for chronic in life.chronic.values()), 1)
    qaly = round(max(life.age(life.end) - daly, 0.0), 1)
    life.rec.add(patient_resource(person, ctx.clock, ctx.state, life.death, adult, daly, qaly,
                                  ctx.seed, life.person_seed))
    care.allergies(life)
    care.vaccine_history(life)
    last: Encounter | None = None
    while life.queue:
        event = life.queue.pop()
        at = event.at
        if not person.birth < at <= life.end:
            continue
        if last is not None and at < last.end:
            # one encounter at a time: a clash moves the later one after the earlier ends
            at = last.end + life.rng.randint(1, 3) * 3600
            if at > life.end:
                continue
        recorded = handlers[event.kind](life, at, event.payload)
        if recorded is not None:
            last = recorded
    _stop_ended_prescriptions(life)
    if last is not None:
        life.rec.provenance(last.end, last.clinician)
    else:
        life.rec.provenance(life.end, life.pcp)
    return person, {"resourceType": "Bundle", "type": "transaction", "entry": life.rec.entries}


def _stop_ended_prescriptions(life: Life) -> None:
    """Prescriptions of conditions that ended (or of a person who died) are no longer active."""
    for chronic in life.chronic.values():
        if chronic.end is not None or life.death is not None:
            for request in chronic.prescriptions.values():
                request["status"] = "stopped"
