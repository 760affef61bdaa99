"""The provider network of a state and the run-level bundles that describe it.

Organizations, Locations and Practitioners depend only on the state (never on the seed), so
their ids and NPIs are the same in every run: the warehouse dedupes them by id, and patient
bundles from different runs refer to the same providers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhirflow.generate.catalog import load_data
from fhirflow.generate.ids import name_uuid, seeded

Json = dict[str, Any]

SYNTHEA_SYSTEM = "https://github.com/synthetichealth/synthea"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
UTILIZATION = "http://synthetichealth.github.io/synthea/utilization-{}-extension"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"


@dataclass
class Organization:
    id: str
    location_id: str
    name: str
    kind: str  # hospital | primary | urgent
    line: str
    city: str
    state_abbr: str
    zip: str
    phone: str
    lat: float
    lon: float
    ref: Json = field(default_factory=dict)  # Organization?identifier=... reference
    loc_ref: Json = field(default_factory=dict)  # Location?identifier=... reference
    clinicians: list[Clinician] = field(default_factory=list)


@dataclass
class Clinician:
    id: str
    role_id: str
    npi: str
    given: str
    family: str
    gender: str
    specialty: str
    org: Organization
    ref: Json = field(default_factory=dict)

    @property
    def display(self) -> str:
        return f"Dr. {self.given} {self.family}"


@dataclass
class Utilization:
    """Counts that Synthea writes as utilization extensions on Organization / Practitioner."""

    encounters: int = 0
    procedures: int = 0
    labs: int = 0
    prescriptions: int = 0


@dataclass
class Network:
    state: str
    organizations: list[Organization]
    by_city: dict[str, dict[str, Organization]]
    home_location_id: str = ""  # Synthea's one "Patient's Home" Location, for home visits

    @property
    def home_ref(self) -> Json:
        return {"reference": f"Location?identifier={SYNTHEA_SYSTEM}|{self.home_location_id}",
                "display": "Patient's Home"}


def _suffix(rng: Any) -> str:
    return str(rng.randint(1, 999))


def build_network(state: str) -> Network:
    geo = load_data("geography")["states"][state]
    demo = load_data("demographics")
    spec = load_data("providers")
    rng = seeded("providers", state)
    used_npis: set[str] = set()
    orgs: list[Organization] = []
    by_city: dict[str, dict[str, Organization]] = {}
    for city in geo["cities"]:
        by_city[city["name"]] = {}
        for kind, rules in spec["kinds"].items():
            fam = rng.choice(demo["family"])
            pattern = rng.choice(rules["name_patterns"])
            name = pattern.format(
                CITY=city["name"].upper(), City=city["name"], FAMILY=fam.upper(), Family=fam,
                FAMILY2=rng.choice(demo["family"]).upper(), SAINT=rng.choice(spec["saints"]),
            )
            street = (f"{rng.randint(1, 999)} {rng.choice(demo['street_names'])} "
                      f"{rng.choice(demo['street_suffixes'])}")
            org_id = name_uuid("organization", state, city["name"], kind)
            org = Organization(
                id=org_id, location_id=name_uuid("location", state, city["name"], kind), name=name,
                kind=kind, line=street, city=city["name"], state_abbr=geo["abbreviation"],
                zip=city["zip"],
                phone=(f"{rng.choice(geo['area_codes'])}-{rng.randint(200, 999)}-"
                       f"{rng.randint(1000, 9999)}"),
                lat=round(city["lat"] + rng.uniform(-0.03, 0.03), 6),
                lon=round(city["lon"] + rng.uniform(-0.03, 0.03), 6),
            )
            org.ref = {"reference": f"Organization?identifier={SYNTHEA_SYSTEM}|{org.id}",
                       "display": name}
            org.loc_ref = {"reference": f"Location?identifier={SYNTHEA_SYSTEM}|{org.location_id}",
                           "display": name}
            for i in range(rules["clinicians"]):
                gender = rng.choice(("male", "female"))
                npi = f"9999{rng.randint(0, 999999):06d}"
                while npi in used_npis:
                    npi = f"9999{rng.randint(0, 999999):06d}"
                used_npis.add(npi)
                clin = Clinician(
                    id=name_uuid("practitioner", state, npi),
                    role_id=name_uuid("practitioner-role", state, npi),
                    npi=npi,
                    given=(rng.choice(demo["given_male" if gender == "male" else "given_female"])
                           + _suffix(rng)),
                    family=rng.choice(demo["family"]) + _suffix(rng), gender=gender,
                    specialty=rules["specialties"][i % len(rules["specialties"])], org=org,
                )
                clin.ref = {"reference": f"Practitioner?identifier={NPI_SYSTEM}|{npi}",
                            "display": clin.display}
                org.clinicians.append(clin)
            orgs.append(org)
            by_city[city["name"]][kind] = org
    return Network(state=state, organizations=orgs, by_city=by_city,
                   home_location_id=name_uuid("location", state, "patient's home"))


def _utilization_ext(u: Utilization, full: bool) -> list[Json]:
    ext = [{"url": UTILIZATION.format("encounters"), "valueInteger": u.encounters}]
    if full:
        ext += [
            {"url": UTILIZATION.format("procedures"), "valueInteger": u.procedures},
            {"url": UTILIZATION.format("labs"), "valueInteger": u.labs},
            {"url": UTILIZATION.format("prescriptions"), "valueInteger": u.prescriptions},
        ]
    return ext


def _address(org: Organization) -> Json:
    return {"line": [org.line], "city": org.city, "state": org.state_abbr, "postalCode": org.zip,
            "country": "US"}


def hospital_bundle(orgs: list[Organization], usage: dict[str, Utilization],
                    home_location_id: str | None = None) -> Json:
    """hospitalInformation: a batch of conditional creates for Organizations and Locations
    (and the "Patient's Home" Location when a home visit refers to it)."""
    entries: list[Json] = []
    for org in orgs:
        entries.append({
            "fullUrl": f"urn:uuid:{org.id}",
            "resource": {
                "resourceType": "Organization", "id": org.id,
                "meta": {"profile": [US_CORE + "us-core-organization"]},
                "extension": _utilization_ext(usage.get(org.id, Utilization()), True),
                "identifier": [{"system": SYNTHEA_SYSTEM, "value": org.id}],
                "active": True,
                "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type",
                                      "code": "prov", "display": "Healthcare Provider"}],
                          "text": "Healthcare Provider"}],
                "name": org.name,
                "telecom": [{"system": "phone", "value": org.phone}],
                "address": [_address(org)],
            },
            "request": {"method": "POST", "url": "Organization",
                        "ifNoneExist": f"identifier={SYNTHEA_SYSTEM}|{org.id}"},
        })
    for org in orgs:
        entries.append({
            "fullUrl": f"urn:uuid:{org.location_id}",
            "resource": {
                "resourceType": "Location", "id": org.location_id,
                "meta": {"profile": [US_CORE + "us-core-location"]},
                "identifier": [{"system": SYNTHEA_SYSTEM, "value": org.location_id}],
                "status": "active", "name": org.name,
                "telecom": [{"system": "phone", "value": org.phone}],
                "address": _address(org),
                "position": {"longitude": org.lon, "latitude": org.lat},
                "managingOrganization": {"identifier": {"system": SYNTHEA_SYSTEM, "value": org.id},
                                         "display": org.name},
            },
            "request": {"method": "POST", "url": "Location",
                        "ifNoneExist": f"identifier={SYNTHEA_SYSTEM}|{org.location_id}"},
        })
    if home_location_id:
        entries.append({
            "fullUrl": f"urn:uuid:{home_location_id}",
            "resource": {
                "resourceType": "Location", "id": home_location_id,
                "identifier": [{"system": SYNTHEA_SYSTEM, "value": home_location_id}],
                "status": "active", "description": "Patient's Home", "mode": "kind",
                "physicalType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                                             "code": "ho", "display": "House"}]},
            },
            "request": {"method": "POST", "url": "Location",
                        "ifNoneExist": f"identifier={SYNTHEA_SYSTEM}|{home_location_id}"},
        })
    return {"resourceType": "Bundle", "type": "batch", "entry": entries}


def practitioner_bundle(clinicians: list[Clinician], usage: dict[str, Utilization]) -> Json:
    """practitionerInformation: Practitioners and PractitionerRoles as conditional creates.

    Synthea posts PractitionerRole without ifNoneExist; we give each role a Synthea
    identifier and a conditional create too, so re-posting a run never duplicates roles.
    """
    names = load_data("providers")["specialties"]
    entries: list[Json] = []
    for c in clinicians:
        email = {"extension": [{"url": US_CORE + "us-core-direct", "valueBoolean": True}],
                 "system": "email", "value": f"{c.given}.{c.family}@example.com", "use": "work"}
        entries.append({
            "fullUrl": f"urn:uuid:{c.id}",
            "resource": {
                "resourceType": "Practitioner", "id": c.id,
                "meta": {"profile": [US_CORE + "us-core-practitioner"]},
                "extension": _utilization_ext(usage.get(c.id, Utilization()), False),
                "identifier": [{"system": NPI_SYSTEM, "value": c.npi}],
                "active": True,
                "name": [{"family": c.family, "given": [c.given], "prefix": ["Dr."]}],
                "telecom": [email],
                "address": [_address(c.org)],
                "gender": c.gender,
            },
            "request": {"method": "POST", "url": "Practitioner",
                        "ifNoneExist": f"identifier={NPI_SYSTEM}|{c.npi}"},
        })
        specialty = {"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": c.specialty,
                                 "display": names[c.specialty]}], "text": names[c.specialty]}
        entries.append({
            "fullUrl": f"urn:uuid:{c.role_id}",
            "resource": {
                "resourceType": "PractitionerRole", "id": c.role_id,
                "meta": {"profile": [US_CORE + "us-core-practitionerrole"]},
                "identifier": [{"system": SYNTHEA_SYSTEM, "value": c.role_id}],
                "practitioner": {"identifier": {"system": NPI_SYSTEM, "value": c.npi},
                                 "display": c.display},
                "organization": {"identifier": {"system": SYNTHEA_SYSTEM, "value": c.org.id},
                                 "display": c.org.name},
                "code": [specialty], "specialty": [specialty],
                "location": [{"identifier": {"system": SYNTHEA_SYSTEM, "value": c.org.location_id},
                              "display": c.org.name}],
                "telecom": [{"system": "phone", "value": c.org.phone}, email],
            },
            "request": {"method": "POST", "url": "PractitionerRole",
                        "ifNoneExist": f"identifier={SYNTHEA_SYSTEM}|{c.role_id}"},
        })
    return {"resourceType": "Bundle", "type": "batch", "entry": entries}
