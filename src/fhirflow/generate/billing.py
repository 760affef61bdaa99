"""Claims and ExplanationOfBenefits: one pair per encounter and one per prescription.

Shapes follow Synthea 3.x: Claim.provider is the Organization, Claim.insurance[0].coverage
.display the payer name, Claim.total = encounter base cost + the priced lines; the EOB holds a
contained referral and Coverage, a fixed adjudication (20 % coinsurance, 80 % paid; nothing
paid without insurance) and refers to the clinician by NPI.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fhirflow.generate.records import Encounter, Line, PatientRecord

Json = dict[str, Any]

_CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
_ADJ = "https://bluebutton.cms.gov/resources/codesystem/adjudication"
_ADJ_VAR = "https://bluebutton.cms.gov/resources/variables/"
_USD = "USD"

_TYPES = {k: {"coding": [{"system": _CLAIM_TYPE, "code": k}]}
          for k in ("professional", "institutional", "pharmacy")}
_PRIORITY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority",
                         "code": "normal"}]}
_INFO = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claiminformationcategory",
                     "code": "info"}]}
_MEDICAL_CARE = {"coding": [{"system": _ADJ_VAR + "line_cms_type_srvc_cd", "code": "1",
                             "display": "Medical care"}]}
_PRIMARY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claimcareteamrole",
                        "code": "primary",
                        "display": "Primary provider"}]}
_PRINCIPAL = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/ex-diagnosistype",
                           "code": "principal"}]}]
_SUBMITTED = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/adjudication",
                          "code": "submitted",
                          "display": "Submitted Amount"}], "text": "Submitted Amount"}
_ADJ_CATS = {
    key: {"coding": [{"system": _ADJ, "code": _ADJ_VAR + key, "display": display}]}
    for key, display in (
        ("line_coinsrnc_amt", "Line Beneficiary Coinsurance Amount"),
        ("line_prvdr_pmt_amt", "Line Provider Payment Amount"),
        ("line_sbmtd_chrg_amt", "Line Submitted Charge Amount"),
        ("line_alowd_chrg_amt", "Line Allowed Charge Amount"),
        ("line_bene_ptb_ddctbl_amt", "Line Beneficiary Part B Deductible Amount"),
        ("line_prcsg_ind_cd", "Line Processing Indicator Code"),
    )
}
_PLACES: dict[str, Json] = {}


# Amounts and adjudications repeat (the same base prices line after line): one shared dict per
# value, never mutated once made, saves building a few hundred thousand small dicts per run.
@lru_cache(maxsize=8192)
def _money(value: float) -> Json:
    return {"value": round(value, 2), "currency": _USD}


def _place(code: str, display: str) -> Json:
    found = _PLACES.get(code)
    if found is None:
        found = _PLACES[code] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/ex-serviceplace",
                                             "code": code, "display": display}]}
    return found


def _claim_type(enc: Encounter) -> str:
    return "institutional" if enc.spec["class"] in ("EMER", "IMP") else "professional"


@lru_cache(maxsize=8192)
def _adjudication(net: float, insured: bool, coinsurance: float) -> list[Json]:
    paid = net * (1 - coinsurance) if insured else 0.0
    return [
        {"category": _ADJ_CATS["line_coinsrnc_amt"], "amount": _money(net - paid)},
        {"category": _ADJ_CATS["line_prvdr_pmt_amt"], "amount": _money(paid)},
        {"category": _ADJ_CATS["line_sbmtd_chrg_amt"], "amount": _money(net)},
        {"category": _ADJ_CATS["line_alowd_chrg_amt"], "amount": _money(net)},
        {"category": _ADJ_CATS["line_bene_ptb_ddctbl_amt"], "amount": _money(0)},
        {"category": _ADJ_CATS["line_prcsg_ind_cd"]},
    ]


def encounter_claim(rec: PatientRecord, enc: Encounter, place_display: str, no_insurance: str,
                    coinsurance: float) -> None:
    """The encounter's Claim and EOB, appended to the bundle."""
    claim_id = rec.new_id()
    start, end = rec.clock.datetime(enc.start), rec.clock.datetime(enc.end)
    supporting: list[Json] = []
    diagnoses: list[Json] = []
    procedures: list[Json] = []
    items: list[Json] = []
    eob_items: list[Json] = []
    eob_diag: list[Json] = []
    place = _place(enc.spec["place"], place_display)
    serviced = {"start": start, "end": end}
    insured = enc.payer != no_insurance
    total = float(enc.spec["cost"])
    priced = 0.0
    for seq, line in enumerate(enc.lines, start=1):
        item: Json = {"sequence": seq}
        eob_item: Json = {"sequence": seq}
        if line.kind == "info":
            supporting.append({"sequence": len(supporting) + 1, "category": _INFO,
                               "valueReference": {"reference": f"urn:uuid:{line.ref}"}})
            item["informationSequence"] = eob_item["informationSequence"] = [len(supporting)]
        elif line.kind == "diagnosis":
            reference = {"reference": f"urn:uuid:{line.ref}"}
            diagnoses.append({"sequence": len(diagnoses) + 1, "diagnosisReference": reference})
            eob_diag.append({"sequence": len(eob_diag) + 1,
                             "diagnosisReference": {"reference": f"urn:uuid:{line.ref}"},
                             "type": _PRINCIPAL})
            item["diagnosisSequence"] = eob_item["diagnosisSequence"] = [len(diagnoses)]
        elif line.kind == "procedure" and line.ref is not None:
            reference = {"reference": f"urn:uuid:{line.ref}"}
            procedures.append({"sequence": len(procedures) + 1, "procedureReference": reference})
            item["procedureSequence"] = eob_item["procedureSequence"] = [len(procedures)]
        item["productOrService"] = line.concept
        eob_item["category"] = _MEDICAL_CARE
        eob_item["productOrService"] = line.concept
        eob_item["servicedPeriod"] = serviced
        eob_item["locationCodeableConcept"] = place
        if line.kind == "encounter":
            item["encounter"] = eob_item["encounter"] = [enc.ref]
        if line.net is not None:
            item["net"] = eob_item["net"] = _money(line.net)
            eob_item["adjudication"] = _adjudication(line.net, insured, coinsurance)
            total += line.net
            priced += line.net
        items.append(item)
        eob_items.append(eob_item)
    claim: Json = {
        "resourceType": "Claim", "id": claim_id, "status": "active",
        "type": _TYPES[_claim_type(enc)],
        "use": "claim", "patient": rec.claim_patient,
        "billablePeriod": {"start": start, "end": end},
        "created": end, "provider": enc.org.ref, "priority": _PRIORITY, "facility": enc.org.loc_ref,
    }
    if supporting:
        claim["supportingInfo"] = supporting
    if diagnoses:
        claim["diagnosis"] = diagnoses
    if procedures:
        claim["procedure"] = procedures
    claim["insurance"] = [{"sequence": 1, "focal": True, "coverage": {"display": enc.payer}}]
    claim["item"] = items
    claim["total"] = _money(total)
    rec.add(claim)
    payment = priced * (1 - coinsurance) if insured else 0.0
    _eob(rec, enc, claim_id, _claim_type(enc), eob_items, eob_diag, total, payment)


def prescription_claim(rec: PatientRecord, enc: Encounter, request_id: str, concept: Json,
                       cost: float,
                       place_display: str) -> None:
    claim_id = rec.new_id()
    start, end = rec.clock.datetime(enc.start), rec.clock.datetime(enc.end)
    claim: Json = {
        "resourceType": "Claim", "id": claim_id, "status": "active", "type": _TYPES["pharmacy"],
        "use": "claim",
        "patient": rec.subject, "billablePeriod": {"start": start, "end": end}, "created": end,
        "provider": enc.org.ref, "priority": _PRIORITY,
        "prescription": {"reference": f"urn:uuid:{request_id}"},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": enc.payer}}],
        "item": [{"sequence": 1, "productOrService": concept, "encounter": [enc.ref]}],
        "total": _money(cost),
    }
    rec.add(claim)
    item = {"sequence": 1, "category": _MEDICAL_CARE, "productOrService": concept,
            "servicedPeriod": {"start": start, "end": end},
            "locationCodeableConcept": _place(enc.spec["place"], place_display),
            "encounter": [enc.ref]}
    _eob(rec, enc, claim_id, "pharmacy", [item], [], cost, 0.0)


def _eob(rec: PatientRecord, enc: Encounter, claim_id: str, claim_type: str, items: list[Json],
         diagnoses: list[Json], total: float, payment: float) -> None:
    created = rec.clock.datetime(enc.end)
    practitioner = {"reference": enc.clinician.ref["reference"]}
    eob: Json = {
        "resourceType": "ExplanationOfBenefit", "id": rec.new_id(),
        "contained": [
            {"resourceType": "ServiceRequest", "id": "referral", "status": "completed",
             "intent": "order",
             "subject": rec.subject, "requester": practitioner, "performer": [practitioner]},
            {"resourceType": "Coverage", "id": "coverage", "status": "active",
             "type": {"text": enc.payer},
             "beneficiary": rec.subject, "payor": [{"display": enc.payer}]},
        ],
        "identifier": [
            {"system": "https://bluebutton.cms.gov/resources/variables/clm_id", "value": claim_id},
            {"system": "https://bluebutton.cms.gov/resources/identifier/claim-group",
             "value": "99999999999"},
        ],
        "status": "active", "type": _TYPES[claim_type], "use": "claim", "patient": rec.subject,
        "billablePeriod": {"start": created, "end": rec.clock.datetime(enc.end + 365 * 86400)},
        "created": created, "insurer": {"display": enc.payer}, "provider": practitioner,
        "referral": {"reference": "#referral"}, "facility": enc.org.loc_ref,
        "claim": {"reference": f"urn:uuid:{claim_id}"}, "outcome": "complete",
        "careTeam": [{"sequence": 1, "provider": practitioner, "role": _PRIMARY}],
    }
    if diagnoses:
        eob["diagnosis"] = diagnoses
    eob["insurance"] = [{"focal": True,
                         "coverage": {"reference": "#coverage", "display": enc.payer}}]
    eob["item"] = items
    eob["total"] = [{"category": _SUBMITTED, "amount": _money(total)}]
    eob["payment"] = {"amount": _money(payment)}
    rec.add(eob)


__all__ = ["encounter_claim", "prescription_claim", "Line"]
