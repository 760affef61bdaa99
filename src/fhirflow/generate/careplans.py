"""CareTeam and CarePlan resources, shaped like Synthea 3.x output: a plan always comes with
the team that carries it out."""

from __future__ import annotations

from fhirflow.generate.records import US_CORE, Code, Encounter, Json, PatientRecord

_ASSESS_PLAN = {"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category",
                            "code": "assess-plan"}]}


def care_team_and_plan(rec: PatientRecord, enc: Encounter, plan_code: Code, activities: list[Code],
                       start: int,
                       end: int | None, reason: Json | None, person_display: str,
                       reason_code: Code | None = None) -> tuple[Json, Json]:
    """A CareTeam and the CarePlan it carries out; `reason` is a Condition, `reason_code` a
    bare code."""
    period: Json = {"start": rec.clock.datetime(start)}
    if end is not None:
        period["end"] = rec.clock.datetime(end)
    team: Json = {
        "resourceType": "CareTeam", "id": rec.new_id(),
        "meta": rec.meta(US_CORE + "us-core-careteam"),
        "status": "inactive" if end is not None else "active",
        "subject": rec.subject, "encounter": enc.ref, "period": period,
        "participant": [
            {"role": [rec.catalog.concept(["sct", "116154003", "Patient"])],
             "member": {"reference": rec.subject["reference"], "display": person_display}},
            {"role": [rec.catalog.concept(["sct", "223366009",
                                           "Healthcare professional (occupation)"])],
             "member": enc.clinician.ref},
            {"role": [rec.catalog.concept(["sct", "224891009",
                                           "Healthcare services (qualifier value)"])],
             "member": enc.org.ref},
        ],
    }
    if reason is not None:
        team["reasonCode"] = [reason["code"]]
    elif reason_code is not None:
        team["reasonCode"] = [rec.catalog.concept(reason_code)]
    team["managingOrganization"] = [enc.org.ref]
    rec.add(team)
    status = "completed" if end is not None else "active"
    act_status = "completed" if end is not None else "in-progress"
    acts = []
    for activity in activities:
        detail: Json = {"code": rec.catalog.concept(activity)}
        if reason is not None:
            detail["reasonReference"] = [{"reference": f"urn:uuid:{reason['id']}"}]
        elif reason_code is not None:
            detail["reasonCode"] = [rec.catalog.concept(reason_code)]
        detail["status"] = act_status
        detail["location"] = {"display": enc.org.name}
        acts.append({"detail": detail})
    items = "".join(f"<li>{activity[2]}</li>" for activity in activities)
    div = (f'<div xmlns="http://www.w3.org/1999/xhtml">Care Plan for {plan_code[2]}.<br/>'
           f"Activities: <ul>{items}</ul>")
    if reason is not None:
        div += f"<br/>Care plan is meant to treat {reason['code']['text']}."
    plan: Json = {
        "resourceType": "CarePlan", "id": rec.new_id(),
        "meta": rec.meta(US_CORE + "us-core-careplan"),
        "text": {"status": "generated", "div": div + "</div>"},
        "status": status, "intent": "order",
        "category": [_ASSESS_PLAN, rec.catalog.concept(plan_code)],
        "subject": rec.subject, "encounter": enc.ref, "period": period,
        "careTeam": [{"reference": f"urn:uuid:{team['id']}"}],
    }
    if reason is not None:
        plan["addresses"] = [{"reference": f"urn:uuid:{reason['id']}"}]
    plan["activity"] = acts
    rec.add(plan)
    return team, plan


def end_care_plan(rec: PatientRecord, team: Json, plan: Json, at: int) -> None:
    """Close a team and plan recorded as active (the pregnancy it served is over)."""
    ended = rec.clock.datetime(at)
    for resource in (team, plan):
        resource["period"] = {**resource["period"], "end": ended}
    team["status"] = "inactive"
    plan["status"] = "completed"
    for activity in plan["activity"]:
        activity["detail"] = {**activity["detail"], "status": "completed"}
