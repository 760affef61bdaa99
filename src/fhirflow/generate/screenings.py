"""The screenings of a wellness visit, as Synthea's wellness_encounters submodules record them.

Social needs (PRAPARE) from 18; anxiety (GAD-7), fall risk (Morse), intimate partner violence
(HARK), depression (PHQ-2, then PHQ-9 when positive; PHQ-9 for teens) and substance use
(AUDIT-C or DAST-10; CRAFFT for teens). Each is a Procedure plus a scored survey Observation in
a DiagnosticReport; a positive result starts a finding (severe anxiety, unhealthy drinking,
drug misuse, risky activity, partner abuse) and a later negative one ends it.
"""

from __future__ import annotations

import random

from fhirflow.generate import care
from fhirflow.generate.care import SURVEY_PROFILE
from fhirflow.generate.life import Json, Life
from fhirflow.generate.records import Encounter

FRACTURES = ("125605004",)  # an active fracture qualifies for fall-risk screening at any age


def finding_onset(life: Life, enc: Encounter, code: list[str], at: int) -> Json:
    """Start a finding unless it is already active (Synthea's ConditionOnset keeps one)."""
    active = life.flags.setdefault("findings", {})
    found = active.get(code[1])
    if found is None:
        found = active[code[1]] = life.rec.condition(enc, code, at)
    return found


def finding_end(life: Life, code: list[str], at: int) -> None:
    found = life.flags.setdefault("findings", {}).pop(code[1], None)
    if found is not None:
        life.rec.abate(found, at)


def scored_survey(life: Life, enc: Encounter, key: str, score: int, at: int) -> int:
    """The survey's procedure, then its score in a DiagnosticReport; returns when it ends."""
    spec = life.clinical["surveys"][key]
    end = care.procedure(life, enc, spec["procedure"], at)
    obs = life.rec.observation(enc, spec["score"], "survey", at, score, "{score}", SURVEY_PROFILE,
                               decimals=0)
    life.rec.diagnostic_report(enc, spec["panel"], at, [obs], lab=False)
    return end


def _uniform(rng: random.Random, bounds: list[int]) -> int:
    return rng.randint(bounds[0], bounds[1])


def _by_age(bands: list[list[float]], age: float) -> float:
    for upper, value in bands:
        if age <= upper:
            return value
    return bands[-1][1]


def screen(life: Life, enc: Encounter, at: int, age: float) -> int:
    """Every screening due at this visit, one after another; returns when the last ends."""
    spec = life.clinical["screenings"]
    cursor = at
    if age >= 18:
        care.prapare(life, enc, cursor)
        cursor = care.procedure(life, enc, "sdoh_assessment", cursor)
    if age < spec["from_age"]:
        return cursor
    rng = life.rng
    if rng.random() < spec["anxiety"]["probability"] and not life.flags.get("ptsd"):
        cursor = _anxiety(life, enc, cursor)
    if life.has("fall_risk") and rng.random() < spec["fall_risk"]["probability"]:
        if age >= spec["fall_risk"]["from_age"] or _has_fracture(life):
            cursor = _fall_risk(life, enc, cursor)
    if age >= spec["hark"]["from_age"] and rng.random() < spec["hark"]["probability"]:
        cursor = _hark(life, enc, cursor)
    pregnant = bool(life.flags.get("pregnant"))
    if rng.random() < spec["depression"]["probability"] and not pregnant:
        cursor = _depression(life, enc, cursor, age)
    if (rng.random() < spec["substance"]["probability"] and not pregnant
            and not life.flags.get("opioid_care")):
        cursor = _substance(life, enc, cursor, age)
    return cursor


def _has_fracture(life: Life) -> bool:
    return any(code in life.flags.get("injuries", {}) for code in FRACTURES)


def _anxiety(life: Life, enc: Encounter, at: int) -> int:
    spec, rng = life.clinical["screenings"]["anxiety"], life.rng
    if rng.random() < spec["has_anxiety"][life.person.gender]:
        bounds = rng.choices([level[1] for level in spec["levels"]],
                             weights=[level[0] for level in spec["levels"]])[0]
        score = _uniform(rng, bounds)
    else:
        score = _uniform(rng, spec["low"])
    if score >= spec["severe_from"]:
        finding_onset(life, enc, spec["severe"], at)
    else:
        finding_end(life, spec["severe"], at)
    return scored_survey(life, enc, "gad7", score, at)


def _fall_risk(life: Life, enc: Encounter, at: int) -> int:
    survey, rng = life.clinical["surveys"]["morse"], life.rng
    end = care.procedure(life, enc, survey["procedure"], at)
    weights = [level[0] for level in survey["levels"]]
    _, bounds, level = rng.choices(survey["levels"], weights=weights)[0]
    rec = life.rec
    total = rec.observation(enc, survey["score"], "survey", at, _uniform(rng, bounds), "{#}",
                            SURVEY_PROFILE, decimals=0)
    risk = rec.observation(enc, survey["level"], "survey", at, None, None, SURVEY_PROFILE,
                           coded=level)
    rec.diagnostic_report(enc, survey["panel"], at, [total, risk], lab=False)
    return end


def _hark(life: Life, enc: Encounter, at: int) -> int:
    spec, rng = life.clinical["screenings"]["hark"], life.rng
    if rng.random() < spec["positive"]:
        score = _uniform(rng, spec["positive_score"])
        finding_onset(life, enc, spec["finding"], at)
    else:
        score = 0
    return scored_survey(life, enc, "hark", score, at)


def _depression(life: Life, enc: Encounter, at: int, age: float) -> int:
    spec, rng = life.clinical["screenings"]["depression"], life.rng
    cursor = care.procedure(life, enc, "depression_screen", at)
    if age >= 18:
        positive = rng.random() < spec["phq2_positive"]
        score = _uniform(rng, spec["phq2_positive_score" if positive else "phq2_negative_score"])
        cursor = scored_survey(life, enc, "phq2", score, cursor)
        if not positive:
            return cursor
        key, rate, negative = "phq9", spec["phq9_positive_adult"], spec["phq9_negative_score_adult"]
    else:
        key = "phq9_teen"
        rate, negative = spec["phq9_positive_teen"], spec["phq9_negative_score_teen"]
    score = _uniform(rng, spec["phq9_positive_score"] if rng.random() < rate else negative)
    return scored_survey(life, enc, key, score, cursor)


def _substance(life: Life, enc: Encounter, at: int, age: float) -> int:
    spec, rng = life.clinical["screenings"]["substance"], life.rng
    cursor = care.procedure(life, enc, "substance", at)
    if age < 18:
        cursor = care.procedure(life, enc, "crafft", cursor)
        if rng.random() < spec["crafft_risky"]:
            risky = finding_onset(life, enc, spec["risky"], cursor)
            return care.procedure(life, enc, "health_risks_education", cursor, risky)
        finding_end(life, spec["risky"], cursor)
        return care.procedure(life, enc, "anticipatory_guidance", cursor)
    if rng.random() < spec["auditc_share"]:
        unhealthy = rng.random() < _by_age(spec["auditc_unhealthy"], age)
        scores = spec["auditc_scores"][life.person.gender]
        score = _uniform(rng, scores[0] if unhealthy else scores[1])
        if unhealthy:
            finding_onset(life, enc, spec["drinking"], cursor)
        else:
            finding_end(life, spec["drinking"], cursor)
        return scored_survey(life, enc, "auditc", score, cursor)
    positive = rng.random() < _by_age(spec["dast_positive"], age)
    score = _uniform(rng, spec["dast_scores"][0] if positive else spec["dast_scores"][1])
    if positive:
        finding_onset(life, enc, spec["drug_misuse"], cursor)
    else:
        finding_end(life, spec["drug_misuse"], cursor)
    return scored_survey(life, enc, "dast10", score, cursor)
