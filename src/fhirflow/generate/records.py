"""Builds the FHIR resources of one patient bundle, shaped like Synthea 3.x output.

`PatientRecord` holds the bundle's entries in the order Synthea writes them (each encounter
followed by what happened during it, then its Claim and ExplanationOfBenefit). The simulator
(life.py) decides *what* happens; this module only knows how each fact looks in FHIR.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from fhirflow.generate.catalog import Catalog
from fhirflow.generate.clock import LocalClock
from fhirflow.generate.ids import random_uuid
from fhirflow.generate.providers import Clinician, Organization

Json = dict[str, Any]
Code = list[str]

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_US_CORE_PROVENANCE_TYPE = "http://hl7.org/fhir/us/core/CodeSystem/us-core-provenance-participant-type"
_CATEGORY_DISPLAY = {"vital-signs": "Vital signs", "laboratory": "Laboratory", "survey": "Survey",
                     "social-history": "Social history", "exam": "Exam"}


def _meta(profile: str) -> Json:
    return {"profile": [profile]}


@dataclass
class Line:
    """One billable line of an encounter claim (Synthea's Claim.item)."""

    kind: str  # encounter | diagnosis | procedure | info | medication
    concept: Json
    net: float | None
    ref: str | None = None  # resource id this line points to (Condition, Procedure, ...)


@dataclass
class Encounter:
    id: str
    ref: Json
    kind: str
    spec: Json
    start: int
    end: int
    org: Organization
    clinician: Clinician
    payer: str
    reason: Json | None
    entry: Json
    # where it happened when not at the organization (the patient's home)
    location: Json | None = None
    lines: list[Line] = field(default_factory=list)
    prescriptions: list[tuple[str, Json, float]] = field(default_factory=list)
    note_conditions: list[str] = field(default_factory=list)
    note_procedures: list[str] = field(default_factory=list)
    note_meds: list[str] = field(default_factory=list)
    note_immunizations: list[str] = field(default_factory=list)


class PatientRecord:
    """Entries of one patient's transaction bundle, with builders for each resource type."""

    def __init__(self, catalog: Catalog, clock: LocalClock, rng: random.Random,
                 patient_id: str, patient_display: str, claim_display: str) -> None:
        self.catalog = catalog
        self.clock = clock
        self.rng = rng
        self.patient_id = patient_id
        self.subject = {"reference": f"urn:uuid:{patient_id}"}
        self.subject_display = {"reference": f"urn:uuid:{patient_id}", "display": patient_display}
        self.claim_patient = {"reference": f"urn:uuid:{patient_id}", "display": claim_display}
        self.millis = rng.randint(0, 999)
        self.entries: list[Json] = []
        self._requests: dict[str, Json] = {}
        self._categories: dict[str, list[Json]] = {}
        self._profiles: dict[str, Json] = {}

    # -- plumbing ---------------------------------------------------------------------------

    def new_id(self) -> str:
        return random_uuid(self.rng)

    def add(self, resource: Json) -> Json:
        rtype = resource["resourceType"]
        request = self._requests.get(rtype)
        if request is None:
            request = self._requests[rtype] = {"method": "POST", "url": rtype}
        entry = {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource, "request": request}
        self.entries.append(entry)
        return entry

    def meta(self, profile: str) -> Json:
        found = self._profiles.get(profile)
        if found is None:
            found = self._profiles[profile] = _meta(profile)
        return found

    def obs_category(self, code: str) -> list[Json]:
        found = self._categories.get(code)
        if found is None:
            found = self._categories[code] = [{"coding": [{"system": OBS_CATEGORY, "code": code,
                                                           "display": _CATEGORY_DISPLAY[code]}]}]
        return found

    # -- encounters ---------------------------------------------------------------------------

    def begin_encounter(self, kind: str, spec: Json, start: int, org: Organization,
                        clinician: Clinician,
                        payer: str, reason: Json | None) -> Encounter:
        enc_id = self.new_id()
        # Reserve the Encounter's place now so it precedes everything that happens during it.
        entry = self.add({"resourceType": "Encounter", "id": enc_id})
        enc = Encounter(id=enc_id, ref={"reference": f"urn:uuid:{enc_id}"}, kind=kind, spec=spec,
                        start=start, end=start, org=org, clinician=clinician, payer=payer,
                        reason=reason, entry=entry)
        enc.lines.append(Line("encounter", self.catalog.concept(spec["code"]), None))
        return enc

    def finish_encounter(self, enc: Encounter, minutes: int) -> None:
        enc.end = max(enc.end, enc.start + minutes * 60)
        start, end = self.clock.datetime(enc.start), self.clock.datetime(enc.end)
        resource = enc.entry["resource"]
        resource.update({
            "meta": self.meta(US_CORE + "us-core-encounter"),
            "identifier": [{"use": "official",
                            "system": "https://github.com/synthetichealth/synthea",
                            "value": enc.id}],
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": enc.spec["class"]},
            "type": [self.catalog.concept(enc.spec["code"])],
            "subject": self.subject_display,
            "participant": [{
                "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                      "code": "PPRF", "display": "primary performer"}],
                          "text": "primary performer"}],
                "period": {"start": start, "end": end},
                "individual": enc.clinician.ref,
            }],
            "period": {"start": start, "end": end},
        })
        if enc.reason is not None:
            resource["reasonCode"] = [enc.reason]
        resource["location"] = [{"location": enc.location or enc.org.loc_ref}]
        resource["serviceProvider"] = enc.org.ref

    # -- clinical facts -------------------------------------------------------------------------

    def condition(self, enc: Encounter, code: Code, onset: int,
                  abatement: int | None = None) -> Json:
        concept = self.catalog.concept(code)
        onset_s = self.clock.datetime(onset)
        res = {
            "resourceType": "Condition", "id": self.new_id(),
            "meta": self.meta(US_CORE + "us-core-condition-encounter-diagnosis"),
            "clinicalStatus": _STATUS["resolved" if abatement is not None else "active"],
            "verificationStatus": _CONFIRMED,
            "category": _ENCOUNTER_DIAGNOSIS,
            "code": concept, "subject": self.subject, "encounter": enc.ref,
            "onsetDateTime": onset_s,
        }
        if abatement is not None:
            res["abatementDateTime"] = self.clock.datetime(abatement)
        res["recordedDate"] = onset_s
        self.add(res)
        enc.lines.append(Line("diagnosis", concept, None, res["id"]))
        enc.note_conditions.append(code[2])
        return res

    def abate(self, condition: Json, at: int) -> None:
        """Resolve a condition recorded earlier (the dict is still in the bundle)."""
        condition["clinicalStatus"] = _STATUS["resolved"]
        abated = {"abatementDateTime": self.clock.datetime(at)}
        # keep Synthea's key order: abatement before recordedDate
        recorded = condition.pop("recordedDate")
        condition.update(abated)
        condition["recordedDate"] = recorded

    def observation(self, enc: Encounter, code: Code, category: str, at: int, value: float | None,
                    unit: str | None, profile: str | None = None, coded: Code | None = None,
                    components: list[Json] | None = None, decimals: int = 2,
                    extra_profiles: list[str] | None = None, text: str | None = None) -> Json:
        res: Json = {"resourceType": "Observation", "id": self.new_id()}
        if extra_profiles:
            res["meta"] = {"profile": extra_profiles}
        elif profile:
            res["meta"] = self.meta(profile)
        res["status"] = "final"
        res["category"] = self.obs_category(category)
        res["code"] = self.catalog.concept(code)
        res["subject"] = self.subject
        res["encounter"] = enc.ref
        res["effectiveDateTime"] = self.clock.datetime(at)
        res["issued"] = self.clock.instant(at, self.millis)
        if value is not None and unit is not None:
            number: float | int = round(value, decimals) if decimals else int(round(value))
            res["valueQuantity"] = {"value": number, "unit": unit, "system": UCUM, "code": unit}
        elif coded is not None:
            res["valueCodeableConcept"] = self.catalog.concept(coded)
        elif text is not None:
            res["valueString"] = text
        if components:
            res["component"] = components
        self.add(res)
        return res

    def quantity_component(self, code: Code, value: float, unit: str, decimals: int = 0) -> Json:
        number: float | int = round(value, decimals) if decimals else int(round(value))
        quantity = {"value": number, "unit": unit, "system": UCUM, "code": unit}
        return {"code": self.catalog.concept(code), "valueQuantity": quantity}

    def coded_component(self, code: Code, answer: Code) -> Json:
        return {"code": self.catalog.concept(code),
                "valueCodeableConcept": self.catalog.concept(answer)}

    def string_component(self, code: Code, text: str) -> Json:
        return {"code": self.catalog.concept(code), "valueString": text}

    def diagnostic_report(self, enc: Encounter, code: Code, at: int, results: list[Json],
                          lab: bool) -> Json:
        res: Json = {"resourceType": "DiagnosticReport", "id": self.new_id()}
        if lab:
            res["meta"] = self.meta(US_CORE + "us-core-diagnosticreport-lab")
        res["status"] = "final"
        if lab:
            res["category"] = _LAB_CATEGORY
        res["code"] = self.catalog.concept(code)
        res["subject"] = self.subject
        res["encounter"] = enc.ref
        res["effectiveDateTime"] = self.clock.datetime(at)
        res["issued"] = self.clock.instant(at, self.millis)
        if lab:
            res["performer"] = [enc.org.ref]
        res["result"] = [{"reference": f"urn:uuid:{r['id']}",
                          "display": r["code"]["text"]} for r in results]
        self.add(res)
        return res

    def procedure(self, enc: Encounter, code: Code, start: int, minutes: int, cost: float,
                  reason: Json | None = None) -> Json:
        concept = self.catalog.concept(code)
        res: Json = {
            "resourceType": "Procedure", "id": self.new_id(),
            "meta": self.meta(US_CORE + "us-core-procedure"),
            "status": "completed", "code": concept, "subject": self.subject, "encounter": enc.ref,
            "performedPeriod": {"start": self.clock.datetime(start),
                                "end": self.clock.datetime(start + minutes * 60)},
            "location": enc.org.loc_ref,
        }
        if reason is not None:
            res["reasonReference"] = [{"reference": f"urn:uuid:{reason['id']}",
                                       "display": reason["code"]["text"]}]
        self.add(res)
        enc.lines.append(Line("procedure", concept, cost, res["id"]))
        enc.note_procedures.append(code[2])
        enc.end = max(enc.end, start + minutes * 60)
        return res

    def immunization(self, enc: Encounter, code: Code, at: int, cost: float) -> Json:
        concept = self.catalog.concept(code)
        res = {
            "resourceType": "Immunization", "id": self.new_id(),
            "meta": self.meta(US_CORE + "us-core-immunization"),
            "status": "completed", "vaccineCode": concept, "patient": self.subject,
            "encounter": enc.ref,
            "occurrenceDateTime": self.clock.datetime(at), "primarySource": True,
            "location": enc.org.loc_ref,
        }
        self.add(res)
        enc.lines.append(Line("info", concept, cost, res["id"]))
        enc.note_immunizations.append(code[2])
        return res

    def medication_request(self, enc: Encounter, code: Code, at: int, status: str,
                           reason: Json | None,
                           reason_code: Code | None, dosage: list[Json] | None, cost: float,
                           medication: Json | None = None) -> Json:
        """A prescription; with `medication` (a Medication resource) an order given on the spot."""
        res: Json = {
            "resourceType": "MedicationRequest", "id": self.new_id(),
            "meta": self.meta(US_CORE + "us-core-medicationrequest"),
            "status": status, "intent": "order",
            "category": (_COMMUNITY if medication is None
                         else _CATEGORIES[enc.spec["class"] == "IMP"]),
        }
        if medication is not None:
            res["medicationReference"] = {"reference": f"urn:uuid:{medication['id']}"}
        else:
            res["medicationCodeableConcept"] = self.catalog.concept(code)
        res.update({"subject": self.subject, "encounter": enc.ref,
                    "authoredOn": self.clock.datetime(at),
                    "requester": enc.clinician.ref})
        if reason is not None:
            res["reasonReference"] = [{"reference": f"urn:uuid:{reason['id']}",
                                       "display": reason["code"]["text"]}]
        elif reason_code is not None:
            res["reasonCode"] = [self.catalog.concept(reason_code)]
        if dosage is not None:
            res["dosageInstruction"] = dosage
        self.add(res)
        enc.prescriptions.append((res["id"], self.catalog.concept(code), cost))
        enc.note_meds.append(code[2])
        return res

    def medication(self, code: Code) -> Json:
        """The Medication resource Synthea writes for a medication given during an encounter."""
        med = {"resourceType": "Medication", "id": self.new_id(),
               "meta": self.meta(US_CORE + "us-core-medication"),
               "code": self.catalog.concept(code), "status": "active"}
        self.add(med)
        return med

    def medication_administration(self, enc: Encounter, code: Code, at: int,
                                  reason: Json | None = None) -> Json:
        res: Json = {"resourceType": "MedicationAdministration", "id": self.new_id(),
                     "status": "completed",
                     "medicationCodeableConcept": self.catalog.concept(code),
                     "subject": self.subject,
                     "context": enc.ref, "effectiveDateTime": self.clock.datetime(at)}
        if reason is not None:
            res["reasonReference"] = [{"reference": f"urn:uuid:{reason['id']}",
                                       "display": reason["code"]["text"]}]
        self.add(res)
        return res

    def allergy(self, code: Code, category: str, kind: str, at: int,
                reactions: list[tuple[Code, str]]) -> Json:
        res: Json = {
            "resourceType": "AllergyIntolerance", "id": self.new_id(),
            "meta": self.meta(US_CORE + "us-core-allergyintolerance"),
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                           "code": "active"}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                                               "code": "confirmed"}]},
            "type": kind, "category": [category], "criticality": "low",
            "code": self.catalog.concept(code), "patient": self.subject,
            "recordedDate": self.clock.datetime(at),
        }
        if reactions:
            res["reaction"] = [{"manifestation": [self.catalog.concept(m)], "severity": sev}
                               for m, sev in reactions]
        self.add(res)
        return res

    def provenance(self, recorded: int, clinician: Clinician) -> Json:
        agent = {"who": clinician.ref, "onBehalfOf": clinician.org.ref}
        res = {
            "resourceType": "Provenance", "id": self.new_id(),
            "meta": self.meta(US_CORE + "us-core-provenance"),
            "target": [{"reference": e["fullUrl"]} for e in self.entries],
            "recorded": self.clock.instant(recorded, self.millis),
            "agent": [
                {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                      "code": "author", "display": "Author"}], "text": "Author"},
                 **agent},
                {"type": {"coding": [{"system": _US_CORE_PROVENANCE_TYPE, "code": "transmitter",
                                      "display": "Transmitter"}], "text": "Transmitter"}, **agent},
            ],
        }
        self.add(res)
        return res


_STATUS = {s: {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                           "code": s}]}
           for s in ("active", "resolved")}
_CONFIRMED = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                          "code": "confirmed"}]}
_ENCOUNTER_DIAGNOSIS = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                     "code": "encounter-diagnosis",
                                     "display": "Encounter Diagnosis"}]}]
_LAB_CATEGORY = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                              "code": "LAB",
                              "display": "Laboratory"}]}]
_MEDICATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
_COMMUNITY = [{"coding": [{"system": _MEDICATION_CATEGORY, "code": "community",
                           "display": "Community"}],
               "text": "Community"}]
# Given during the encounter: outpatient, or inpatient during a hospital stay (False / True).
_CATEGORIES = {stay: [{"coding": [{"system": _MEDICATION_CATEGORY, "code": code,
                                   "display": code.title()}],
                       "text": code.title()}]
               for stay, code in ((False, "outpatient"), (True, "inpatient"))}
