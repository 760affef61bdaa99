"""`fhirflow report`: one self-contained HTML file of the population, care, cost and data
quality, read from the warehouse through the warehouse layer (DuckDB or Snowflake alike).

queries.py holds every SQL statement, charts/ turns their rows into figures and one-line
readings, page.py writes the file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fhirflow.errors import FhirflowError
from fhirflow.report import page
from fhirflow.report.charts import Section, build_sections, patient_count
from fhirflow.report.charts.base import n
from fhirflow.report.queries import Answer, run_queries
from fhirflow.warehouse import open_warehouse

if TYPE_CHECKING:
    from fhirflow.config import Settings
    from fhirflow.warehouse import Warehouse

REPORT_NAME = "fhirflow-report.html"
# Below this many patients the shares and rankings describe too few people to mean much.
TINY = 10


@dataclass(frozen=True)
class ReportResult:
    path: Path
    drawn: list[str]  # keys of the charts drawn, in page order
    not_drawn: dict[str, str] = field(default_factory=dict)  # key -> why not
    readings: dict[str, str] = field(default_factory=dict)  # key -> its one-line reading
    banner: str = ""  # what the page says above the charts (empty or tiny warehouse)
    patients: int | None = None
    bytes: int = 0
    seconds: float = 0.0


def default_dir(settings: Settings) -> Path:
    return settings.home / "report"


def _facts(answers: dict[str, Answer], patients: int | None) -> list[page.Fact]:
    raw = answers.get("raw_facts")
    raw_row = raw.rows[0] if raw is not None and raw.ok and raw.rows else {}
    types = answers.get("resource_types")
    resources = sum(r["resources"] for r in types.rows) if types is not None and types.ok else None
    months = answers.get("encounters_monthly")
    span = "n/a"
    if months is not None and months.ok and months.rows:
        keys = sorted((r["event_year"], r["event_month"]) for r in months.rows)
        span = f"{keys[0][0]}-{keys[0][1]:02d} to {keys[-1][0]}-{keys[-1][1]:02d}"

    def count(value: int | None) -> str:
        return "n/a" if value is None else n(value)

    last = raw_row.get("last_load_at")
    return [
        page.Fact("patients", count(patients)),
        page.Fact("FHIR resources", count(resources)),
        page.Fact("bundles loaded", count(raw_row.get("bundles"))),
        page.Fact("loads", count(raw_row.get("loads"))),
        page.Fact("files quarantined", count(raw_row.get("quarantined"))),
        page.Fact("entries quarantined", count(raw_row.get("entries_quarantined"))),
        page.Fact("last load (UTC)", f"{last:%Y-%m-%d %H:%M}" if last else "none yet"),
        page.Fact("encounters span", span),
    ]


def _banner(answers: dict[str, Answer], patients: int | None) -> str:
    raw = answers.get("raw_facts")
    if raw is not None and raw.missing:
        return ("This warehouse has no RAW tables yet: nothing has been loaded. Run "
                "`fhirflow run` (or `fhirflow load` and `fhirflow transform`).")
    if patients is None:
        return "The marts are not built yet: run `fhirflow transform`, then the report again."
    if patients == 0:
        return "The warehouse holds no patients yet: the clinical sections are empty."
    if patients < TINY:
        return (f"Only {patients} patient{'s' if patients != 1 else ''}: the shares and "
                "rankings below describe too few people to generalise from.")
    return ""


def _open(settings: Settings) -> Warehouse:
    if settings.warehouse == "duckdb" and not settings.duckdb_path.exists():
        raise FhirflowError(f"no warehouse at {settings.duckdb_path} yet; run `fhirflow run` "
                            "first")
    # Reading needs no stage: the Snowflake warehouse builds its stage statement only when
    # create_tables runs, so no storage integration or AWS keys are asked for here.
    return open_warehouse(settings, read_only=True)


def build_report(settings: Settings, out_dir: Path | None = None, *,
                 warehouse: Warehouse | None = None,
                 now: datetime | None = None) -> ReportResult:
    """Query the warehouse, draw the charts and write `<out_dir>/fhirflow-report.html`
    (out_dir defaults to $FHIRFLOW_HOME/report). Pass an open `warehouse` to reuse it."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    own = warehouse is None
    wh = _open(settings) if warehouse is None else warehouse
    try:
        answers = run_queries(wh)
        description = wh.description
    finally:
        if own:
            wh.close()
    patients = patient_count(answers)
    sections: list[Section] = build_sections(answers)
    subtitle = f"Built {now:%Y-%m-%d %H:%M} UTC from {description}."
    banner = _banner(answers, patients)
    text = page.render(sections, _facts(answers, patients), subtitle=subtitle, banner=banner)
    path = (out_dir or default_dir(settings)) / REPORT_NAME
    size = page.write_atomically(path, text)
    charts = [c for s in sections for c in s.charts]
    not_drawn = {c.key: c.reading for c in charts if not c.drawn}
    for section in sections:
        if not section.charts:
            not_drawn[section.key] = section.note
    return ReportResult(path=path, drawn=[c.key for c in charts if c.drawn], not_drawn=not_drawn,
                        readings={c.key: c.reading for c in charts}, banner=banner,
                        patients=patients, bytes=size, seconds=time.perf_counter() - started)
