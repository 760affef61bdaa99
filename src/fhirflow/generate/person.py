"""Who a simulated person is: demographics, identifiers, address, and the Patient resource."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from fhirflow.generate.catalog import load_data
from fhirflow.generate.clock import LocalClock

Json = dict[str, Any]
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
OMB = "urn:oid:2.16.840.1.113883.6.238"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _weighted(rng: random.Random, items: list[Json]) -> Json:
    return rng.choices(items, weights=[i["weight"] for i in items])[0]


def _suffixed(rng: random.Random, name: str) -> str:
    return f"{name}{rng.randint(1, 999)}"


@dataclass
class Person:
    id: str
    gender: str  # male | female
    birth: int  # epoch seconds (UTC)
    given: list[str]
    family: str
    maiden: str | None
    race: Json
    ethnicity: Json
    language: Json
    marital: str
    city: Json
    line: str
    lat: float
    lon: float
    phone: str
    ssn: str
    driver_licence: str | None
    passport: str | None
    mothers_maiden: str
    birthplace: str
    income: int
    education: int  # index into the education findings (0 = higher education)
    bmi: float  # adult BMI the person drifts toward
    adult_height: float
    multiple_birth: bool

    @property
    def prefix(self) -> str | None:
        if self.gender == "male":
            return "Mr."
        return "Mrs." if self.marital == "M" else "Ms."

    def display(self, adult: bool) -> str:
        names = " ".join(self.given) + " " + self.family
        return f"{self.prefix} {names}" if adult else names


def make_person(rng: random.Random, person_id: str, state: str, reference_t: int) -> Person:
    demo = load_data("demographics")
    geo = load_data("geography")["states"][state]
    band = rng.choices(demo["age_bands"], weights=[b[2] for b in demo["age_bands"]])[0]
    age_days = rng.randint(band[0] * 365, band[1] * 365 + 364)
    birth = reference_t - age_days * 86400 - rng.randint(0, 86399)
    gender = rng.choice(("male", "female"))
    pool = demo["given_male" if gender == "male" else "given_female"]
    given = [_suffixed(rng, rng.choice(pool))]
    if rng.random() < 0.6:
        given.append(_suffixed(rng, rng.choice(pool)))
    family = _suffixed(rng, rng.choice(demo["family"]))
    age = age_days / 365.25
    marital = "S"
    if age >= 18:
        marital = rng.choices(("M", "S", "D", "W"),
                              weights=(0.5, 0.3, 0.12, 0.08 if age > 50 else 0.01))[0]
    maiden = None
    if gender == "female" and marital in ("M", "W", "D") and rng.random() < 0.8:
        maiden, family = family, _suffixed(rng, rng.choice(demo["family"]))
    cities = geo["cities"]
    city = rng.choices(cities, weights=[c["population"] for c in cities])[0]
    street = (f"{rng.randint(1, 999)} {rng.choice(demo['street_names'])} "
              f"{rng.choice(demo['street_suffixes'])}")
    if rng.random() < 0.3:
        street += f" Unit {rng.randint(1, 99)}"
    heights = load_data("clinical")["growth"]
    mean_h, sd_h = heights["adult_height_cm"][gender]
    mean_b, sd_b = heights["adult_bmi"]
    return Person(
        id=person_id, gender=gender, birth=birth, given=given, family=family, maiden=maiden,
        race=_weighted(rng, demo["races"]), ethnicity=_weighted(rng, demo["ethnicities"]),
        language=_weighted(rng, demo["languages"]), marital=marital, city=city, line=street,
        lat=city["lat"] + rng.uniform(-0.05, 0.05), lon=city["lon"] + rng.uniform(-0.05, 0.05),
        phone=f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
        ssn=f"999-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
        driver_licence=f"S999{rng.randint(10000, 99999)}" if age >= 16 else None,
        passport=(f"X{rng.randint(10000000, 99999999)}X"
                  if age >= 18 and rng.random() < 0.8 else None),
        mothers_maiden=(f"{_suffixed(rng, rng.choice(demo['given_female']))} "
                        f"{_suffixed(rng, rng.choice(demo['family']))}"),
        birthplace=rng.choice(cities)["name"],
        income=int(rng.lognormvariate(*demo["income_lognormal"])),
        education=rng.choices((0, 1, 2), weights=(0.45, 0.45, 0.1))[0],
        bmi=max(18.5, rng.gauss(mean_b, sd_b)),
        adult_height=rng.gauss(mean_h, sd_h), multiple_birth=rng.random() < 0.032,
    )


def patient_resource(p: Person, clock: LocalClock, state: str, deceased: int | None, adult: bool,
                     daly: float, qaly: float, seed: int, person_seed: int) -> Json:
    geo = load_data("geography")["states"][state]
    demo = load_data("demographics")

    def omb(url: str, item: Json) -> Json:
        return {"url": url, "extension": [
            {"url": "ombCategory",
             "valueCoding": {"system": OMB, "code": item["code"], "display": item["display"]}},
            {"url": "text", "valueString": item["display"]}]}

    def ident(code: str, display: str, system: str, value: str) -> Json:
        return {"type": {"coding": [{"system": V2_0203, "code": code, "display": display}],
                         "text": display},
                "system": system, "value": value}

    identifiers = [
        {"system": "https://github.com/synthetichealth/synthea", "value": p.id},
        ident("MR", "Medical Record Number", "http://hospital.smarthealthit.org", p.id),
        ident("SS", "Social Security Number", "http://hl7.org/fhir/sid/us-ssn", p.ssn),
    ]
    if p.driver_licence:
        identifiers.append(ident("DL", "Driver's license number",
                                 f"urn:oid:2.16.840.1.113883.4.3.{geo['fips']}",
                                 p.driver_licence))
    if p.passport:
        identifiers.append(ident("PPN", "Passport Number",
                                 "http://standardhealthrecord.org/fhir/StructureDefinition/passportNumber",
                                 p.passport))
    name: Json = {"use": "official", "family": p.family, "given": p.given}
    names = [name]
    prefix = p.prefix
    is_adult = adult
    if is_adult and prefix:
        name["prefix"] = [prefix]
    if p.maiden:
        maiden: Json = {"use": "maiden", "family": p.maiden, "given": p.given}
        if is_adult and prefix:
            maiden["prefix"] = [prefix]
        names.append(maiden)
    marital = demo["marital_statuses"][p.marital]
    res: Json = {
        "resourceType": "Patient", "id": p.id,
        "meta": {"profile": [US_CORE + "us-core-patient"]},
        "text": {"status": "generated",
                 "div": '<div xmlns="http://www.w3.org/1999/xhtml">'
                        'Generated by fhirflow (Synthea-compatible '
                        f"simulator).   Person seed: {person_seed}  Population seed: {seed}</div>"},
        "extension": [
            omb(US_CORE + "us-core-race", p.race),
            omb(US_CORE + "us-core-ethnicity", p.ethnicity),
            {"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
             "valueString": p.mothers_maiden},
            {"url": US_CORE + "us-core-birthsex", "valueCode": "M" if p.gender == "male" else "F"},
            {"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
             "valueAddress": {"city": p.birthplace, "state": state, "country": "US"}},
            {"url": "http://synthetichealth.github.io/synthea/disability-adjusted-life-years",
             "valueDecimal": daly},
            {"url": "http://synthetichealth.github.io/synthea/quality-adjusted-life-years",
             "valueDecimal": qaly},
        ],
        "identifier": identifiers,
        "name": names,
        "telecom": [{"system": "phone", "value": p.phone, "use": "home"}],
        "gender": p.gender,
        "birthDate": clock.date(p.birth),
    }
    if deceased is not None:
        res["deceasedDateTime"] = clock.datetime(deceased)
    res["address"] = [{
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/geolocation", "extension": [
            {"url": "latitude", "valueDecimal": round(p.lat, 12)},
            {"url": "longitude", "valueDecimal": round(p.lon, 12)}]}],
        "line": [p.line], "city": p.city["name"], "state": geo["abbreviation"],
        "postalCode": p.city["zip"],
        "country": "US",
    }]
    res["maritalStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                                        "code": p.marital, "display": marital}], "text": marital}
    if p.multiple_birth:
        res["multipleBirthInteger"] = 2
    else:
        res["multipleBirthBoolean"] = False
    lang = p.language
    res["communication"] = [{"language": {"coding": [{"system": "urn:ietf:bcp:47",
                                                      "code": lang["code"],
                                                      "display": lang["display"]}],
                                          "text": lang["display"]}}]
    return res
