"""The clinical note of an encounter: plain text, base64 in a DiagnosticReport and a
DocumentReference, as Synthea writes it."""

from __future__ import annotations

import base64
from typing import Any

from fhirflow.generate.records import Encounter, PatientRecord

Json = dict[str, Any]

_LOINC = "http://loinc.org"
_NOTE_CODE = {"coding": [{"system": _LOINC, "code": "34117-2",
                          "display": "History and physical note"},
                         {"system": _LOINC, "code": "51847-2",
                          "display": "Evaluation + Plan note"}]}
_NOTE_CATEGORY = [_NOTE_CODE]
_DOC_CATEGORY = [{"coding": [{"system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                              "code": "clinical-note", "display": "Clinical Note"}]}]
_FORMAT = {"system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
           "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient", "display": "mimeType Sufficient"}
_TEXT = "text/plain; charset=utf-8"


def _section(title: str, items: list[str], empty: str) -> str:
    if not items:
        return f"# {title}\n{empty}\n"
    return f"# {title}\n" + "".join(f"- {i}\n" for i in dict.fromkeys(items))


def render(enc: Encounter, date: str, first_name: str, age: int, description: str, social: str,
           insurance: str, allergies: list[str], active_meds: list[str],
           active_conditions: list[str]) -> str:
    complaint = ("No complaints." if enc.reason is None
                 else f"Patient reports {enc.reason['coding'][0]['display'].lower()}.")
    parts = [
        f"\n{date}\n",
        f"# Chief Complaint\n{complaint}\n",
        f"# History of Present Illness\n{first_name}\n is a {age} year-old {description}.\n",
        f"# Social History\n{social}\n\nPatient currently has {insurance}.\n",
        _section("Allergies", allergies, "No Known Allergies."),
        _section("Medications", active_meds, "No Active Medications."),
        _section("Active Problems", active_conditions, "No active problems."),
        "# Assessment and Plan\n"
        + "".join(f"Patient is presenting with {c.lower()}. \n"
                  for c in dict.fromkeys(enc.note_conditions)),
        "## Plan\n"
        + "".join(f"The patient was prescribed the following medications:\n- {m}\n"
                  for m in dict.fromkeys(enc.note_meds))
        + "".join(f"The following procedures were conducted:\n- {p}\n"
                  for p in dict.fromkeys(enc.note_procedures))
        + "".join(f"The patient was given the following immunizations:\n- {i}\n"
                  for i in dict.fromkeys(enc.note_immunizations)),
    ]
    return "\n".join(parts)


def add_note(rec: PatientRecord, enc: Encounter, text: str) -> None:
    data = base64.b64encode(text.encode("utf-8")).decode("ascii")
    start = rec.clock.datetime(enc.start)
    issued = rec.clock.instant(enc.start, rec.millis)
    report_id = rec.new_id()
    rec.add({
        "resourceType": "DiagnosticReport", "id": report_id,
        "meta": rec.meta("http://hl7.org/fhir/us/core/StructureDefinition/us-core-diagnosticreport-note"),
        "status": "final", "category": _NOTE_CATEGORY, "code": _NOTE_CODE, "subject": rec.subject,
        "encounter": enc.ref, "effectiveDateTime": start, "issued": issued,
        "performer": [enc.clinician.ref],
        "presentedForm": [{"contentType": _TEXT, "data": data}],
    })
    rec.add({
        "resourceType": "DocumentReference", "id": rec.new_id(),
        "meta": rec.meta("http://hl7.org/fhir/us/core/StructureDefinition/us-core-documentreference"),
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{report_id}"}],
        "status": "superseded", "type": _NOTE_CODE, "category": _DOC_CATEGORY,
        "subject": rec.subject,
        "date": issued, "author": [enc.clinician.ref], "custodian": enc.org.ref,
        "content": [{"attachment": {"contentType": _TEXT, "data": data}, "format": _FORMAT}],
        "context": {"encounter": [enc.ref],
                    "period": {"start": start, "end": rec.clock.datetime(enc.end)}},
    })
