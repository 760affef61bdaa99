"""Device, SupplyDelivery and ImagingStudy resources, shaped like Synthea 3.x output.

None of the three refers to an encounter except ImagingStudy; devices and supplies belong to
the patient, as in Synthea.
"""

from __future__ import annotations

import random

from fhirflow.generate.records import US_CORE, Code, Encounter, Json, Line, PatientRecord

_SUPPLY_DEVICE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/supply-item-type",
                              "code": "device",
                              "display": "Device"}]}
_DICOM_MODALITY = "http://dicom.nema.org/medical/dicom/current/output/chtml/part16/sect_CID_29.html"
MODALITIES = {code: {"system": _DICOM_MODALITY, "code": code, "display": display}
              for code, display in (("DX", "Digital Radiography"), ("US", "Ultrasound"),
                                    ("CT", "Computed Tomography"),
                                    ("MR", "Magnetic Resonance"), ("MG", "Mammography"))}


def device(rec: PatientRecord, code: Code, at: int, rng: random.Random,
           active: bool = True) -> Json:
    """A device the patient uses (implant, meter) or is used on them (x-ray system, operating
    room)."""
    di = f"{rng.randint(10**13, 10**14 - 1)}"
    lot = f"{rng.randint(10**9, 10**10 - 1)}"
    serial = f"{rng.randint(10**10, 10**11 - 1)}"
    made = at - rng.randint(30, 400) * 86400
    expires = at + rng.randint(3, 25) * 365 * 86400
    made_on = rec.clock.date(made)[2:].replace("-", "")
    expires_on = rec.clock.date(expires)[2:].replace("-", "")
    hrf = f"(01){di}(11){made_on}(17){expires_on}(10){lot}(21){serial}"
    res = {
        "resourceType": "Device", "id": rec.new_id(),
        "meta": rec.meta(US_CORE + "us-core-implantable-device"),
        "udiCarrier": [{"deviceIdentifier": di, "carrierHRF": hrf}],
        "status": "active" if active else "inactive",
        "distinctIdentifier": di, "manufactureDate": rec.clock.datetime(made),
        "expirationDate": rec.clock.datetime(expires), "lotNumber": lot, "serialNumber": serial,
        "deviceName": [{"name": code[2], "type": "user-friendly-name"}],
        "type": rec.catalog.concept(code), "patient": rec.subject,
    }
    rec.add(res)
    return res


def supply_delivery(rec: PatientRecord, code: Code, quantity: int, at: int) -> Json:
    res = {
        "resourceType": "SupplyDelivery", "id": rec.new_id(), "status": "completed",
        "patient": rec.subject, "type": _SUPPLY_DEVICE,
        "suppliedItem": {"quantity": {"value": quantity},
                         "itemCodeableConcept": rec.catalog.concept(code)},
        "occurrenceDateTime": rec.clock.datetime(at),
    }
    rec.add(res)
    return res


def imaging_study(rec: PatientRecord, enc: Encounter, spec: Json, at: int,
                  rng: random.Random) -> Json:
    """An imaging study: `spec` has procedure, body_site, title, and optionally modality
    (key of MODALITIES, DX by default), sop (DICOM SOP class uid), series and instances
    ([low, high] per series)."""
    stamp = str(at * 1000 + rng.randint(0, 999))
    started = rec.clock.datetime(at)
    modality = MODALITIES[spec.get("modality", "DX")]
    sop = {"system": "urn:ietf:rfc:3986",
           "code": "urn:oid:" + spec.get("sop", "1.2.840.10008.5.1.4.1.1.1.1")}
    body_site = rec.catalog.coding(spec["body_site"])
    series = []
    for number in range(1, spec.get("series", 1) + 1):
        count = rng.randint(*spec.get("instances", (1, 1)))
        series.append({
            "uid": f"1.2.840.99999999.{number}.{rng.randint(10**7, 10**8 - 1)}.{stamp}",
            "number": number,
            "modality": modality, "numberOfInstances": count, "bodySite": body_site,
            "started": started,
            "instance": [{"uid": f"1.2.840.99999999.{number}.{index}."
                                 f"{rng.randint(10**7, 10**8 - 1)}.{stamp}",
                          "sopClass": sop, "number": index, "title": spec["title"]}
                         for index in range(1, count + 1)],
        })
    res = {
        "resourceType": "ImagingStudy", "id": rec.new_id(),
        "identifier": [{"use": "official", "system": "urn:ietf:rfc:3986",
                        "value": f"urn:oid:1.2.840.99999999."
                                 f"{rng.randint(10**7, 10**8 - 1)}.{stamp}"}],
        "status": "available", "subject": rec.subject, "encounter": enc.ref, "started": started,
        "numberOfSeries": len(series),
        "numberOfInstances": sum(item["numberOfInstances"] for item in series),
        "procedureCode": [rec.catalog.concept(spec["procedure"])],
        "location": enc.org.loc_ref,
        "series": series,
    }
    rec.add(res)
    enc.lines.append(Line("procedure", rec.catalog.concept(spec["procedure"]), None, None))
    return res
