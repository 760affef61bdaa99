"""How much a generated population looks like a real Synthea run.

Three measures, each on patient bundles only (not the run-level provider bundles):

- mean resources per patient, by resource type;
- shares of encounter classes (AMB, EMER, IMP, VR, HH);
- the 20 most common disorders, by the number of patients who have them, and how many of a
  real run's top 20 are among ours. A "disorder" is a Condition whose SNOMED display has no
  semantic tag of a finding, situation or event: "Viral sinusitis (disorder)" and
  "Prediabetes" are disorders, "Stress (finding)" and "Medication review due (situation)" are not.

A small real sample has its own age and sex mix (ten patients aged 13 to 51 say little about
what a run with elderly people looks like), so the comparison is also made *standardised*:
each real patient is matched with the generated patients of the same sex and a similar age,
and the real figures are compared with the average of their matches. The crude figures (every
generated patient, equal weight) are reported beside them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

NOT_DISORDERS = ("(finding)", "(situation)", "(event)", "(observable entity)", "(qualifier value)",
                 "(procedure)", "(regime/therapy)", "(person)", "(social concept)", "(life style)")
TOP = 20


@dataclass
class PatientSummary:
    gender: str
    age: float  # at death or at the reference date
    resources: Counter[str]
    classes: Counter[str]
    disorders: set[str]  # displays


@dataclass
class Population:
    patients: list[PatientSummary] = field(default_factory=list)

    def mean_per_patient(self) -> dict[str, float]:
        return _mean([p.resources for p in self.patients])

    def class_shares(self) -> dict[str, float]:
        return _shares(_mean([p.classes for p in self.patients]))

    def top_disorders(self, n: int = TOP) -> list[tuple[str, float]]:
        return _top(_mean([Counter(p.disorders) for p in self.patients]), n)


def is_disorder(display: str) -> bool:
    return not display.endswith(NOT_DISORDERS)


def summarise_bundle(bundle: dict, reference: dt.date) -> PatientSummary:
    resources: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    disorders: set[str] = set()
    patient: dict = {}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        kind = resource["resourceType"]
        resources[kind] += 1
        if kind == "Patient":
            patient = resource
        elif kind == "Encounter":
            classes[resource["class"]["code"]] += 1
        elif kind == "Condition":
            display = resource["code"]["coding"][0]["display"]
            if is_disorder(display):
                disorders.add(display)
    born = dt.date.fromisoformat(patient["birthDate"])
    end = (dt.date.fromisoformat(patient["deceasedDateTime"][:10])
           if "deceasedDateTime" in patient else reference)
    return PatientSummary(patient["gender"], (end - born).days / 365.25, resources, classes,
                          disorders)


def summarise(folder: Path, reference: dt.date) -> Population:
    """Every patient bundle under `folder` (hospital/practitioner bundles are skipped)."""
    population = Population()
    for path in sorted(Path(folder).rglob("*.json")):
        if path.name.startswith(("hospitalInformation", "practitionerInformation")):
            continue
        bundle = json.loads(path.read_bytes())
        if bundle.get("resourceType") == "Bundle" and bundle.get("type") == "transaction":
            population.patients.append(summarise_bundle(bundle, reference))
    return population


def matched(ours: Population, real: Population, years: float = 5.0, minimum: int = 8) -> Population:
    """Our population reweighted to the real one's age and sex mix.

    For each real patient, the generated patients of the same sex within `years` of their
    age (widened until at least `minimum` match) stand in for them; each real patient then
    weighs the same, however many stand-ins they have.
    """
    out = Population()
    for person in real.patients:
        same_sex = [p for p in ours.patients if p.gender == person.gender] or ours.patients
        width = years
        while True:
            near = [p for p in same_sex if abs(p.age - person.age) <= width]
            if len(near) >= minimum or width > 100:
                break
            width *= 1.5
        weight = 1.0 / len(near)
        resources: Counter[str] = Counter()
        classes: Counter[str] = Counter()
        disorders: Counter[str] = Counter()
        for p in near:
            resources.update(p.resources)
            classes.update(p.classes)
            disorders.update(p.disorders)
        out.patients.append(_Weighted(person.gender, person.age, _scale(resources, weight),
                                      _scale(classes, weight), _scale(disorders, weight)))
    return out


@dataclass
class _Weighted(PatientSummary):
    """A stand-in: counts are averages over matched patients (fractions), disorders a weight
    each."""

    disorders: Counter[str]  # type: ignore[assignment]


@dataclass
class TypeRow:
    resource: str
    real: float
    ours: float
    ours_crude: float

    @property
    def ratio(self) -> float:
        return self.ours / self.real if self.real else float("inf")


@dataclass
class RealismReport:
    patients_real: int
    patients_ours: int
    types: list[TypeRow]
    classes_real: dict[str, float]
    classes_ours: dict[str, float]
    classes_ours_crude: dict[str, float]
    top_real: list[tuple[str, float]]
    top_ours: list[tuple[str, float]]
    top_ours_crude: list[tuple[str, float]]

    @property
    def overlap(self) -> int:
        """How many of the real top 20 are among our top 20.

        A small real run has many disorders tied at its 20th place; they count as the best
        tie-break would: the places above the tie are matched as they are, and the tied
        disorders fill only the places left, never more.
        """
        ours = {name for name, _ in self.top_ours}
        above, tied = _split_at_cut(self.top_real_all)
        return len(above & ours) + min(TOP - len(above), len(tied & ours))

    top_real_all: list[tuple[str, float]] = field(default_factory=list)

    def within(self, factor: float = 2.0, min_real: float = 1.0) -> list[TypeRow]:
        return [row for row in self.types
                if row.real >= min_real and 1 / factor <= row.ratio <= factor]

    def outside(self, factor: float = 2.0, min_real: float = 1.0) -> list[TypeRow]:
        return [row for row in self.types
                if row.real >= min_real and not 1 / factor <= row.ratio <= factor]

    def format(self) -> str:
        lines = [f"real patients {self.patients_real}, generated {self.patients_ours} "
                 "(standardised to the real age/sex mix; crude = all generated patients alike)",
                 "", f"{'resource':28s} {'real':>8s} {'ours':>8s} {'ratio':>6s} {'crude':>8s}"]
        for row in self.types:
            lines.append(f"{row.resource:28s} {row.real:8.1f} {row.ours:8.1f} {row.ratio:6.2f} "
                         f"{row.ours_crude:8.1f}")
        lines += ["", f"{'class':8s} {'real':>7s} {'ours':>7s} {'crude':>7s}"]
        for code in sorted(set(self.classes_real) | set(self.classes_ours_crude)):
            lines.append(f"{code:8s} {self.classes_real.get(code, 0):7.1%} "
                         f"{self.classes_ours.get(code, 0):7.1%} "
                         f"{self.classes_ours_crude.get(code, 0):7.1%}")
        real_set = _top_set(self.top_real_all)
        lines += ["", f"top-{TOP} disorders: {self.overlap} of the real top {TOP} are among ours",
                  f"{'real':48s} {'ours (standardised)':48s}"]
        for index in range(TOP):
            real = self.top_real[index] if index < len(self.top_real) else ("", 0.0)
            ours = self.top_ours[index] if index < len(self.top_ours) else ("", 0.0)
            mark = "*" if ours[0] in real_set else " "
            lines.append(f"{real[0][:42]:42s} {real[1]:4.1f}  "
                         f"{mark}{ours[0][:42]:42s} {ours[1]:4.1f}")
        return "\n".join(lines)


def compare(ours: Population, real: Population) -> RealismReport:
    standard = matched(ours, real)
    real_means, ours_means = real.mean_per_patient(), standard.mean_per_patient()
    crude = ours.mean_per_patient()
    names = sorted(set(real_means) | set(crude), key=lambda name: -real_means.get(name, 0.0))
    types = [TypeRow(name, real_means.get(name, 0.0), ours_means.get(name, 0.0),
                     crude.get(name, 0.0))
             for name in names]
    real_prevalence = _mean([Counter(p.disorders) for p in real.patients])
    return RealismReport(
        patients_real=len(real.patients), patients_ours=len(ours.patients), types=types,
        classes_real=real.class_shares(), classes_ours=standard.class_shares(),
        classes_ours_crude=ours.class_shares(), top_real=real.top_disorders(),
        top_ours=standard.top_disorders(),
        top_ours_crude=ours.top_disorders(),
        top_real_all=sorted(real_prevalence.items(), key=lambda kv: -kv[1]),
    )


def _scale(counts: Counter[str], weight: float) -> Counter[str]:
    return Counter({key: value * weight for key, value in counts.items()})


def _mean(counters: Iterable[Counter[str]]) -> dict[str, float]:
    total: Counter[str] = Counter()
    n = 0
    for counter in counters:
        total.update(counter)
        n += 1
    return {key: value / n for key, value in total.items()} if n else {}


def _shares(counts: dict[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {key: value / total for key, value in counts.items()} if total else {}


def _top(prevalence: dict[str, float], n: int) -> list[tuple[str, float]]:
    return sorted(prevalence.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def _split_at_cut(ranked: list[tuple[str, float]]) -> tuple[set[str], set[str]]:
    """Names certainly in the top TOP, and those tied at the TOP-th place."""
    if len(ranked) <= TOP:
        return {name for name, _ in ranked}, set()
    cut = ranked[TOP - 1][1]
    return ({name for name, value in ranked if value > cut},
            {name for name, value in ranked if value == cut})


def _top_set(ranked: list[tuple[str, float]]) -> set[str]:
    above, tied = _split_at_cut(ranked)
    return above | tied
