"""Pregnancy and prenatal care, and contraception (Synthea's female_reproduction, pregnancy and
contraceptives modules).

Contraception is planned first, in periods of one method each; how likely a woman is to
conceive in a year depends on her age and the method of the time. A pregnancy is a series of
visits planned at conception: the initial visit with its tests, regular prenatal visits, and
the outcome (birth as an obstetric emergency admission and a postnatal visit, a miscarriage,
or a termination). Every visit of one pregnancy shares a small state dict (its Condition).
"""

from __future__ import annotations

from typing import Any

from fhirflow.generate import care, careplans
from fhirflow.generate.catalog import load_data
from fhirflow.generate.clock import DAY, YEAR
from fhirflow.generate.life import Json, Life
from fhirflow.generate.modules import Module
from fhirflow.generate.records import Encounter

WEEK = 7 * DAY


def _procedure(life: Life, enc: Encounter, name: str, at: int, reason: Json | None = None) -> int:
    spec = load_data("pregnancy")["procedures"][name]
    life.rec.procedure(enc, spec["code"], at, spec["minutes"], spec["cost"], reason)
    return at + spec["minutes"] * 60


# -- contraception -----------------------------------------------------------------------------

def plan_contraception(life: Life) -> None:
    if life.person.gender != "female":
        return
    spec = load_data("pregnancy")["contraception"]
    rng = life.rng
    periods: list[tuple[int, int, str]] = []
    at, until = life.at_age(spec["from_age"]), min(life.end, life.at_age(spec["until_age"]))
    while at < until:
        old_enough = life.age(at) >= spec["sterilization_from_age"]
        methods = [m for m in spec["methods"] if m[0] != "sterilization" or old_enough]
        method = rng.choices([m[0] for m in methods], weights=[m[1] for m in methods])[0]
        end = (until if method == "sterilization"
               else min(until, at + int(rng.uniform(*spec["years"]) * YEAR)))
        periods.append((at, end, method))
        if end > life.window_start:
            _schedule_method(life, method, max(at, life.window_start - YEAR), end)
        at = end
    life.flags["contraception"] = periods


def _schedule_method(life: Life, method: str, start: int, end: int) -> None:
    spec = load_data("pregnancy")["contraception"]
    rng = life.rng
    if method == "none":
        return
    if method == "sterilization":
        if start >= life.window_start:
            life.schedule(life.daytime(start), "contraceptive", ("sterilization", "consult"))
            surgery = life.daytime(start + rng.randint(30, 90) * DAY)
            life.schedule(surgery, "contraceptive", ("sterilization", "surgery"))
        return
    every = {"pill": YEAR, "injection": int(spec["injection_months"] * YEAR / 12),
             "implant": spec["implant_years"] * YEAR, "iud": spec["iud_years"] * YEAR}[method]
    at, action = start, "start"
    while at < end:
        if at >= life.window_start:
            life.schedule(life.daytime(at), "contraceptive", (method, action))
        at += every + rng.randint(0, 14) * DAY
        action = "renew"
    if method in ("implant", "iud") and life.window_start <= end < life.end:
        life.schedule(life.daytime(end), "contraceptive", (method, "stop"))


def method_at(life: Life, at: int) -> str:
    for start, end, method in life.flags.get("contraception", []):
        if start <= at < end:
            return method
    return "none"


def on_contraceptive(life: Life, at: int, payload: tuple[str, str]) -> Encounter:
    method, action = payload
    if method == "sterilization" and action == "surgery":
        return _tubal_ligation(life, at)
    spec = load_data("pregnancy")["contraception"]
    rng, rec = life.rng, life.rec
    reason = life.catalog.concept_no_text(spec["reason"])
    procedure_visit = method in ("implant", "iud") and action != "start"
    enc = life.begin("contraceptive_procedure" if procedure_visit else "consultation", at, reason)
    cursor = at + 5 * 60
    if method == "pill":
        pill, cost = life.flags.setdefault("pill", rng.choice(spec["pills"]))
        rec.medication_request(enc, pill, at, "active" if action == "start" else "stopped", None,
                               spec["reason"],
                               care.DOSAGE_DAILY, cost)
    elif method == "injection":
        drug, cost = spec["injection_drug"]
        care.administer(life, enc, drug, cursor, cost)
        cursor = _procedure(life, enc, "injection", cursor)
    elif method in ("implant", "iud"):
        drug, cost = spec[method]
        if action != "start":
            removal = "implant_removal" if method == "implant" else "iud_removal"
            if method == "iud" and action == "renew":
                removal = "iud_replacement"
            cursor = _procedure(life, enc, removal, cursor)
        if action != "stop":
            if not (method == "iud" and action == "renew"):
                cursor = _procedure(life, enc, f"{method}_insertion", cursor)
            care.administer(life, enc, drug, cursor, cost)
    elif method == "sterilization":
        requested = rec.condition(enc, spec["sterilization_requested"], at)
        life.flags["sterilization_requested"] = requested
        cursor = _procedure(life, enc, "sterilization_education", at, requested)
    enc.end = max(enc.end, cursor)
    return life.finish(enc)


def _tubal_ligation(life: Life, at: int) -> Encounter:
    spec = load_data("pregnancy")["contraception"]
    enc = life.begin("surgical_admission", at,
                     life.catalog.concept_no_text(spec["sterilization_requested"]))
    requested = life.flags.pop("sterilization_requested", None)
    cursor = _procedure(life, enc, "tubal_ligation", at, requested)
    cursor = _procedure(life, enc, "postoperative_care", cursor, requested)
    if requested is not None:
        life.rec.abate(requested, cursor)
    life.rec.condition(enc, spec["tubal_history"], cursor)
    enc.end = max(enc.end, cursor + life.rng.randint(4, 20) * 3600)
    return life.finish(enc)


# -- pregnancy ---------------------------------------------------------------------------------

def plan_pregnancies(life: Life) -> None:
    if life.person.gender != "female":
        return
    spec = load_data("pregnancy")
    factors = spec["contraception"]["pregnancy_factor"]
    rng = life.rng
    free_from = life.window_start
    for low, high, rate in spec["fertility"]:
        for age in range(low, high + 1):
            year = life.at_age(age)
            if year + YEAR <= free_from or year >= life.end:
                continue
            conception = max(year, free_from) + rng.randint(0, 364) * DAY
            method = method_at(life, conception) if life.has("contraceptives") else "none"
            factor = factors[method] if life.has("contraceptives") else 1.0
            if conception < life.end and rng.random() < rate * factor:
                free_from = _plan_pregnancy(life, conception)


def _plan_pregnancy(life: Life, conception: int) -> int:
    """The visits of one pregnancy; returns when the next one could start."""
    spec = load_data("pregnancy")
    rng = life.rng
    outcome = rng.choices([o[0] for o in spec["outcomes"]],
                          weights=[o[1] for o in spec["outcomes"]])[0]
    state: dict[str, Any] = {"outcome": outcome}
    week = lambda weeks: life.daytime(conception + int(weeks * WEEK))  # noqa: E731 - a local shorthand
    life.schedule(week(rng.uniform(*spec["initial_week"])), "prenatal", ("initial", 0, state))
    if outcome == "miscarriage":
        life.schedule(week(rng.uniform(10, 12)), "prenatal", ("miscarriage", 11, state))
        return conception + int(0.5 * YEAR)
    if outcome == "termination":
        life.schedule(week(rng.uniform(*spec["termination"]["week"]) + 1), "prenatal",
                      ("termination", 10, state))
        return conception + int(0.5 * YEAR)
    birth = rng.uniform(*spec["birth_week"])
    for visit in spec["visit_weeks"]:
        if visit < birth:
            life.schedule(week(visit), "prenatal", ("visit", visit, state))
    life.schedule(week(birth), "prenatal", ("birth", int(birth), state))
    life.schedule(week(birth + rng.uniform(*spec["postnatal"]["weeks"])), "prenatal",
                  ("postnatal", 0, state))
    return conception + int(1.8 * YEAR)


def on_prenatal(life: Life, at: int, payload: tuple[str, int, dict[str, Any]]) -> Encounter | None:
    step, week, state = payload
    spec = load_data("pregnancy")
    rec, rng = life.rec, life.rng
    pregnancy = state.get("condition")
    if step == "initial":
        enc = life.begin("prenatal_initial", at, None)
        if life.flags.get("miscarried"):
            rec.condition(enc, spec["past_miscarriage"], at)
        pregnancy = state["condition"] = rec.condition(enc, spec["pregnancy"], at)
        life.flags["pregnant"] = True
        enc.reason = {"coding": pregnancy["code"]["coding"]}
        cursor = at
        for name in spec["initial_procedures"]:
            cursor = _procedure(life, enc, name, cursor, pregnancy)
        if rng.random() < spec["initial_panel"]["probability"]:
            for name in spec["initial_panel"]["procedures"]:
                cursor = _procedure(life, enc, name, cursor, pregnancy)
        anemia, probability = spec["anemia"]
        if rng.random() < probability:
            rec.condition(enc, anemia, at)
        if rng.random() < spec["careplan"]["probability"]:
            plan = spec["careplan"]
            state["plan"] = careplans.care_team_and_plan(rec, enc, plan["code"], plan["activities"],
                                                         at, None,
                                                         pregnancy, life.person.display(True))
        enc.end = max(enc.end, cursor)
        return life.finish(enc)
    if pregnancy is None:
        return None  # the initial visit fell after the end of the simulation
    reason = {"coding": pregnancy["code"]["coding"]}
    if step == "visit":
        enc = life.begin("prenatal", at, reason)
        cursor = at
        for name in spec["visit_procedures"] + spec["week_procedures"].get(str(week), []):
            cursor = _procedure(life, enc, name, cursor, pregnancy)
        enc.end = max(enc.end, cursor)
        return life.finish(enc)
    if step == "miscarriage":
        enc = life.begin("prenatal", at, None)
        for code in spec["miscarriage"]:
            enc.reason = {"coding": rec.condition(enc, code, at, at + 14 * DAY)["code"]["coding"]}
        _end_pregnancy(life, state, at)
        life.flags["miscarried"] = True
        return life.finish(enc)
    if step == "termination":
        termination = spec["termination"]
        enc = life.begin(termination["encounter"], at, reason)
        cursor = at
        for name in termination["procedures"]:
            cursor = _procedure(life, enc, name, cursor, pregnancy)
        _end_pregnancy(life, state, cursor)
        enc.end = max(enc.end, cursor)
        return life.finish(enc)
    if step == "birth":
        birth = spec["birth"]
        enc = life.begin(birth["encounter"], at, reason)
        cursor = at
        if rng.random() < birth["induction"]:
            cursor = _procedure(life, enc, "induction", cursor, pregnancy)
        for name in birth["procedures"]:
            cursor = _procedure(life, enc, name, cursor, pregnancy)
        if rng.random() < birth["episiotomy"]:
            cursor = _procedure(life, enc, "episiotomy", cursor, pregnancy)
        _end_pregnancy(life, state, cursor)
        enc.end = max(enc.end, cursor)
        return life.finish(enc)
    postnatal = spec["postnatal"]
    enc = life.begin(postnatal["encounter"], at, None)
    cursor = at
    for name in postnatal["procedures"]:
        cursor = _procedure(life, enc, name, cursor)
    if rng.random() < postnatal["anti_d"]:
        cursor = _procedure(life, enc, "anti_d", cursor)
    enc.end = max(enc.end, cursor)
    return life.finish(enc)


def _end_pregnancy(life: Life, state: dict[str, Any], at: int) -> None:
    life.rec.abate(state["condition"], at)
    if "plan" in state:
        careplans.end_care_plan(life.rec, *state["plan"], at)
    life.flags["pregnant"] = False


MODULE = Module("pregnancy", plan_pregnancies, {"prenatal": on_prenatal},
                "pregnancies with prenatal visits and tests, births, miscarriages and terminations")
CONTRACEPTIVES = Module("contraceptives", plan_contraception, {"contraceptive": on_contraceptive},
                        "contraception: pills, injections, implants, IUDs and sterilization")
