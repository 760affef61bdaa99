"""The report's charts, grouped in the page's sections.

Each builder takes the answers of `fhirflow.report.queries` and returns a Chart: a Plotly
figure with a one-line reading computed from the same rows, or no figure and a sentence
saying why (nothing built yet, nothing recorded yet).
"""

from __future__ import annotations

from fhirflow.report.charts import care, cost, population, quality
from fhirflow.report.charts.base import Chart, Section, Table
from fhirflow.report.queries import Answer

__all__ = ["Chart", "Section", "Table", "build_sections", "patient_count"]


def _one(answers: dict[str, Answer], name: str, column: str) -> int | None:
    answer = answers.get(name)
    if answer is None or not answer.ok or not answer.rows:
        return None
    value = answer.rows[0].get(column)
    return int(value) if value is not None else None


def patient_count(answers: dict[str, Answer]) -> int | None:
    """Patients in marts.dim_patients, or None when it is not built."""
    answer = answers.get("vital_status")
    if answer is None or not answer.ok:
        return None
    return sum(r["patients"] for r in answer.rows)


def build_sections(answers: dict[str, Answer]) -> list[Section]:
    patients = patient_count(answers) or 0
    loads = _one(answers, "raw_facts", "loads")
    bundles = _one(answers, "raw_facts", "bundles")
    clinical = [
        Section("population", "Population", [
            population.pyramid(answers.get("age_sex")),
            population.race_ethnicity(answers.get("race_ethnicity")),
            population.vital_status(answers.get("vital_status")),
            population.places(answers.get("places")),
        ]),
        Section("care", "Care", [
            care.encounters_monthly(answers.get("encounters_monthly")),
            care.conditions(answers.get("conditions"), findings=False),
            care.conditions(answers.get("conditions"), findings=True),
            care.top_events(answers.get("medications"), key="medications",
                            title="Top medications", measure="prescriptions",
                            noun="prescriptions"),
            care.top_events(answers.get("procedures"), key="procedures",
                            title="Top procedures", measure="procedures", noun="procedures"),
            care.immunizations(answers.get("immunizations"), patients),
        ]),
        Section("cost", "Cost", [
            cost.cost_yearly(answers.get("cost_yearly")),
            cost.cost_by_payer(answers.get("cost_by_payer")),
            cost.cost_by_class(answers.get("cost_by_class")),
        ]),
    ]
    if not patients:
        # Without patients every clinical chart would be empty axes: one sentence each.
        missing = answers.get("vital_status")
        note = ("No patients in the warehouse yet: load some (`fhirflow run`) and build the "
                "report again.")
        if missing is not None and missing.missing:
            note = (f"{', '.join(missing.missing)} is not built yet: run `fhirflow transform` "
                    "and build the report again.")
        for section in clinical:
            section.charts, section.note = [], note
    quality_section = Section("quality", "Data quality", [
        quality.loads(answers.get("loads"), loads),
        quality.quarantine(answers.get("error_reasons"), answers.get("error_files"), loads),
        quality.entry_quarantine(answers.get("entry_reasons"), answers.get("error_entries"),
                                 loads),
        quality.resources(answers.get("resource_types"), bundles),
        quality.reference_integrity(answers.get("reference_integrity")),
        quality.completeness(answers.get("completeness")),
    ])
    return [*clinical, quality_section]
