"""Dental care after Synthea's dental_and_oral_examination module (newer Synthea builds).

A wellness visit may refer the patient to a dentist (`refer`); the dental visit follows within
two weeks: cleaning, supplies, often a bitewing x-ray, sometimes an infected tooth, gingival
disease or a cavity to treat, fluoride given on the spot.
"""

from __future__ import annotations

from typing import Any

from fhirflow.generate import care, devices
from fhirflow.generate.catalog import load_data
from fhirflow.generate.clock import DAY
from fhirflow.generate.life import Json, Life
from fhirflow.generate.modules import Module
from fhirflow.generate.records import Encounter
from fhirflow.generate.screenings import finding_end, finding_onset


def refer(life: Life, enc: Encounter, at: int, age: float) -> int:
    """At a wellness visit: maybe gingivitis and a referral; the dental visit is scheduled."""
    spec = load_data("dental")
    referral, rng = spec["referral"], life.rng
    low, high = referral["child_ages"]
    if age < low:
        return at
    draw = rng.random()
    if age <= high:
        refers, gingivitis = draw < referral["child_probability"], False
    else:
        gingivitis = draw < referral["gingivitis"]
        refers = draw < referral["gingivitis"] + referral["referral"]
    if not refers:
        return at
    reason = finding_onset(life, enc, spec["gingivitis"], at) if gingivitis else None
    procedure = spec["referral_procedure"]
    life.rec.procedure(enc, procedure["code"], at, procedure["minutes"], procedure["cost"], reason)
    life.schedule(life.daytime(at + rng.randint(*referral["delay_days"]) * DAY), "dental",
                  spec["gingivitis"] if gingivitis else procedure["code"])
    return at + procedure["minutes"] * 60


def _procedure(life: Life, enc: Encounter, name: str, at: int, reason: Json | None = None) -> int:
    spec = load_data("dental")["procedures"][name]
    life.rec.procedure(enc, spec["code"], at, spec["minutes"], spec["cost"], reason)
    return at + spec["minutes"] * 60


def on_dental(life: Life, at: int, reason: list[str]) -> Encounter:
    """The dental visit, for the referral's reason (gingivitis, or the referral itself)."""
    spec, rng, rec = load_data("dental"), life.rng, life.rec
    enc = life.begin("dental", at, life.catalog.concept_no_text(reason))
    cursor = _procedure(life, enc, "consultation", at)
    cursor = _procedure(life, enc, "care", cursor)
    for item, quantity in spec["supplies"]:
        devices.supply_delivery(rec, item, quantity, cursor)
    cursor = _procedure(life, enc, "supragingival", cursor)
    cursor = _procedure(life, enc, "subgingival", cursor)
    if rng.random() < spec["xray"]["probability"]:
        devices.device(rec, spec["xray"]["device"], cursor, rng, active=False)
        devices.imaging_study(rec, enc, spec["xray"]["study"], cursor, rng)
        cursor += 15 * 60
    extracted = False
    if rng.random() < spec["infection"]["probability"]:
        cursor = _operate(life, enc, spec["infection"], cursor)
        extracted = True
    cursor = _procedure(life, enc, "gingivae", cursor)
    gingivitis = spec["gingivitis"][1] in life.flags.get("findings", {})
    disease = spec["gingival_disease"]
    if rng.random() < (disease["with_gingivitis"] if gingivitis else disease["without"]):
        cursor = _operate(life, enc, disease, cursor)
    finding_end(life, spec["gingivitis"], cursor)
    filling = spec["filling"]
    if rng.random() < filling["probability"]:
        repair = life.flags.get("cavity") and rng.random() < filling["repair_share"]
        problem = rng.choice(filling["reasons"]) if repair else filling["new_cavity"]
        life.flags["cavity"] = True
        condition = rec.condition(enc, problem, cursor, cursor + 30 * 60)
        cursor = _procedure(life, enc, rng.choice(filling["procedures"]), cursor, condition)
    if rng.random() < spec["fluoride"]["probability"]:
        fluoride = spec["fluoride"]
        care.administer(life, enc, fluoride["medication"], cursor, fluoride["cost"])
        cursor = _procedure(life, enc, "fluoride", cursor)
    cursor = _procedure(life, enc, "education", cursor)
    enc.end = max(enc.end, cursor)
    if extracted and rng.random() < spec["dry_socket"]["probability"]:
        life.schedule(life.daytime(cursor + rng.randint(*spec["dry_socket"]["delay_days"]) * DAY),
                      "dental_followup")
    return life.finish(enc)


def _operate(life: Life, enc: Encounter, spec: Json, at: int) -> int:
    """A condition treated in the operating room (a Device, as Synthea records the room)."""
    end_of_day = at + 4 * 3600
    condition = life.rec.condition(enc, spec["condition"], at, end_of_day)
    devices.device(life.rec, load_data("dental")["operating_room"], at, life.rng, active=False)
    cursor = at
    for name in spec["procedures"]:
        cursor = _procedure(life, enc, name, cursor, condition)
    return cursor


def on_dental_followup(life: Life, at: int, _: Any) -> Encounter:
    """A dry socket after an extraction: treated in the operating room at a follow-up visit."""
    spec = load_data("dental")["dry_socket"]
    enc = life.begin("dental_followup", at, life.catalog.concept_no_text(spec["condition"]))
    enc.end = max(enc.end, _operate(life, enc, spec, at))
    return life.finish(enc)


MODULE = Module("dental", lambda life: None,
                {"dental": on_dental, "dental_followup": on_dental_followup},
                "dental referrals at wellness visits and dental visits "
                "(dental_and_oral_examination)")
