"""`fhirflow report` on real DuckDB warehouses: a built one (generated patients, two bad files
quarantined by the load, dbt's marts), a tiny one, one with RAW tables only, and none.

The report's readings are checked against figures computed here straight from the tables,
so a reading that stopped following the data fails. The browser half is
tests/test_report_browser.py; Snowflake is tests/test_report_snowflake.py.
"""

from __future__ import annotations

import html
import os
import re
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from fhirflow import pipeline
from fhirflow.config import Settings, load_settings
from fhirflow.errors import FhirflowError
from fhirflow.report import build_report
from fhirflow.report.charts import build_sections
from fhirflow.report.cli import report as report_command
from fhirflow.report.queries import run_queries
from fhirflow.warehouse.duckdb import DuckDBWarehouse

CHARTS = ["pyramid", "race", "vital", "places", "encounters", "disorders", "findings",
          "medications", "procedures", "immunizations", "cost_yearly", "cost_payer",
          "cost_class", "loads", "quarantine", "resources", "references", "completeness"]

BAD_FILES = {
    "truncated.json": b'{"resourceType": "Bundle", "entry": [',
    "array.json": b"[1, 2, 3]",
}


def _quiet(_message: str) -> None:
    pass


def build_warehouse(home: Path, *, patients: int, seed: int, bad: bool,
                    run_level: bool = True) -> Settings:
    """generate -> upload -> load -> dbt build, the stages `fhirflow run` chains."""
    from fhirflow.generate import generate_patients

    settings = load_settings(home=home, dbt_threads=1)
    generate_patients(settings.landing_dir, patients=patients, seed=seed, years_of_history=3)
    if not run_level:
        # The run's hospital and practitioner bundles never arrive: the patients' conditional
        # references to their organizations and practitioners find nothing.
        shutil.rmtree(settings.landing_dir / "_run")
    if bad:
        folder = settings.landing_dir / "not-a-patient"
        folder.mkdir(parents=True)
        for name, data in BAD_FILES.items():
            (folder / name).write_bytes(data)
    pipeline.upload(settings, _quiet)
    pipeline.load(settings, _quiet)
    result = pipeline.transform(settings, _quiet)
    assert result.success, result.failures
    return settings


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_")):
                mp.delenv(name)
        yield build_warehouse(tmp_path_factory.mktemp("report") / "home", patients=12,
                              seed=5, bad=True)


def sql(settings: Settings, statement: str) -> list[tuple]:
    con = duckdb.connect(str(settings.duckdb_path))
    try:
        return con.execute(statement).fetchall()
    finally:
        con.close()


def outside_library(text: str) -> str:
    """The page without Plotly's inlined library (which mentions URLs in its own code)."""
    start = text.index('<script id="plotly-js">')
    return text[:start] + text[text.index("</script>", start) + len("</script>"):]


def test_every_chart_is_drawn_from_a_built_warehouse(built: Settings, tmp_path: Path) -> None:
    result = build_report(built, tmp_path)
    assert result.not_drawn == {}
    assert result.drawn == CHARTS
    assert result.path == tmp_path / "fhirflow-report.html"
    text = result.path.read_text()
    assert result.bytes == len(text.encode())
    assert re.findall(r'data-chart="([a-z_]+)" data-drawn="true"', text) == CHARTS
    assert text.count('class="plotly-graph-div"') == len(CHARTS)
    assert result.banner == ""
    # The default place: $FHIRFLOW_HOME/report/.
    assert build_report(built).path == built.home / "report" / "fhirflow-report.html"


def test_the_file_needs_nothing_from_outside(built: Settings, tmp_path: Path) -> None:
    text = build_report(built, tmp_path).path.read_text()
    assert "default-src 'none'" in text  # the page's CSP forbids every request
    rest = outside_library(text)
    assert not re.search(r"https?://", rest), re.search(r".{60}https?://.{60}", rest)
    assert not re.search(r"<(script|img|iframe|link|object|embed)\b[^>]*\b(src|href|data)=",
                         rest, re.I)
    assert "@import" not in rest and "url(" not in rest
    # Plotly's library is inlined whole, once.
    assert text.count('<script id="plotly-js">') == 1 and len(text) > 3_000_000


def test_readings_follow_the_data(built: Settings, tmp_path: Path) -> None:
    result = build_report(built, tmp_path)
    (patients,) = sql(built, "select count(*) from marts.dim_patients")[0]
    (dead,) = sql(built, "select count(*) from marts.dim_patients where death_date is not null")[0]
    assert result.patients == patients == 12
    assert result.readings["pyramid"].startswith(f"{patients} patients")
    assert result.readings["vital"].startswith(f"{dead} of {patients} patients")

    # The most prevalent disorder, counted here from the staging rows.
    rows = sql(built, "select patient_id, description from staging.stg_conditions")
    per: dict[str, set[str]] = {}
    for patient, description in rows:
        if not description.endswith(("(finding)", "(situation)")):  # disorders and untagged
            per.setdefault(description, set()).add(patient)
    top = min(per.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    assert f"is {top[0]}: {len(top[1])} of {patients} patients" in result.readings["disorders"]

    encounters = sql(built, "select count(*), sum(total_claim_cost) from marts.fct_encounters")
    assert result.readings["encounters"].startswith(f"{encounters[0][0]:,} encounters")
    (loads,) = sql(built, "select count(*) from raw.load_watermark")[0]
    assert result.readings["quarantine"].startswith(f"2 files quarantined in {loads} load")
    assert "invalid JSON" in result.readings["quarantine"] or "not a FHIR Bundle" in (
        result.readings["quarantine"])

    # Every reading is on the page as it was computed (escaped once).
    text = result.path.read_text()
    for key, reading in result.readings.items():
        assert html.escape(html.unescape(reading), quote=False) in text, key


def test_cost_per_patient_year_is_cost_over_active_patients(built: Settings,
                                                            tmp_path: Path) -> None:
    result = build_report(built, tmp_path)
    rows = sql(built, """
        select extract(year from start_at), patient_id, total_claim_cost
        from marts.fct_encounters
        union all
        select extract(year from start_at), patient_id, base_cost from marts.fct_medications""")
    last = max(int(y) for y, _p, _c in rows)
    years = range(last - 9, last + 1)  # the ten calendar years up to the last claim
    active = {(int(y), p) for y, p, _c in rows if int(y) in years}
    cost = sum(c or 0 for y, _p, c in rows if int(y) in years)
    assert result.readings["cost_yearly"].startswith(f"${cost / len(active):,.0f} per patient-year")
    assert f"{len(active):,} patient-years" in result.readings["cost_yearly"]


def test_a_tiny_warehouse_says_so_and_draws_no_empty_axes(tmp_path: Path,
                                                          clean_env: pytest.MonkeyPatch) -> None:
    settings = build_warehouse(tmp_path / "home", patients=1, seed=9, bad=False)
    result = build_report(settings, tmp_path / "out")
    assert result.patients == 1
    assert result.banner.startswith("Only 1 patient:")
    assert "Only 1 patient:" in result.path.read_text()
    # No quarantined file: that chart is a sentence, not empty axes.
    assert result.not_drawn["quarantine"] == "No file was quarantined in 1 load."
    wh = DuckDBWarehouse(settings.duckdb_path)
    try:
        sections = build_sections(run_queries(wh))
    finally:
        wh.close()
    for chart in (c for s in sections for c in s.charts):
        assert chart.reading, chart.key
        if chart.figure is None:
            continue
        for trace in chart.figure.data:
            values = [v for attr in ("x", "y", "values", "z")
                      for v in (getattr(trace, attr, None) or ())]
            assert values, (chart.key, trace.name)


def test_references_without_their_targets_are_counted(tmp_path: Path,
                                                     clean_env: pytest.MonkeyPatch) -> None:
    settings = build_warehouse(tmp_path / "home", patients=2, seed=4, bad=False,
                               run_level=False)
    result = build_report(settings, tmp_path / "out")
    (encounters,) = sql(settings, "select count(*) from staging.stg_encounters")[0]
    assert encounters > 0
    reading = result.readings["references"]
    # Both run-level targets are missing for every encounter; everything else resolves.
    assert reading.startswith(f"{2 * encounters:,} of ")
    assert f"({encounters:,} unresolved, 0 undefined)" in reading
    text = result.path.read_text()
    for path in ("Encounter.serviceProvider", "Encounter.participant.individual"):
        assert re.search(rf"<td>{re.escape(path)}</td><td class=\"num\">{encounters:,}</td>"
                         rf"<td class=\"num\">0</td><td class=\"num\">{encounters:,}</td>",
                         text), path


def test_raw_tables_only_say_what_to_run(settings: Settings, tmp_path: Path) -> None:
    wh = DuckDBWarehouse(settings.duckdb_path)
    wh.create_tables()
    wh.close()
    result = build_report(settings, tmp_path)
    text = result.path.read_text()
    assert result.drawn == []
    assert 'class="plotly-graph-div"' not in text
    assert result.bytes < 100_000  # no chart, so no chart library either
    assert result.banner.startswith("The marts are not built yet")
    assert result.not_drawn["population"].startswith("marts.dim_patients is not built yet")
    assert result.not_drawn["loads"] == "No load has run yet (`fhirflow load`)."
    assert result.not_drawn["references"] == (
        "Not drawn: needs intermediate.int_reference_map, staging.stg_claims and 8 more "
        "(run `fhirflow transform`).")


def test_a_warehouse_file_without_tables(settings: Settings, tmp_path: Path) -> None:
    DuckDBWarehouse(settings.duckdb_path).close()
    result = build_report(settings, tmp_path)
    assert result.drawn == []
    assert "nothing has been loaded" in result.banner


def test_no_warehouse_is_one_clear_error_and_creates_none(settings: Settings,
                                                          tmp_path: Path) -> None:
    with pytest.raises(FhirflowError, match=r"no warehouse at .* run `fhirflow run` first"):
        build_report(settings, tmp_path)
    proc = CliRunner().invoke(report_command, ["--out", str(tmp_path)],
                              env={"FHIRFLOW_HOME": str(settings.home)})
    assert proc.exit_code == 1
    assert proc.output.strip().startswith("error: no warehouse at")
    assert len(proc.output.strip().splitlines()) == 1
    assert not settings.duckdb_path.exists()
    assert not (tmp_path / "fhirflow-report.html").exists()


def test_untrusted_file_names_and_reasons_are_text(settings: Settings, tmp_path: Path) -> None:
    hostile_key = 'raw/patients/x-</script><script>alert("key")</script>.json'
    hostile_reason = "invalid <img src=x onerror=alert(1)> JSON & more"
    wh = DuckDBWarehouse(settings.duckdb_path)
    wh.create_tables()
    wh.con.execute("insert into raw.load_watermark values ('L1', ?, ?, 1, 0, 1, 0, ?, "
                   "'complete')", [datetime(2026, 1, 1), datetime(2026, 1, 1), hostile_key])
    wh.con.execute("insert into raw.load_errors values ('L1', ?, 12, ?, ?)",
                   [hostile_key, hostile_reason, datetime(2026, 1, 1)])
    wh.close()
    result = build_report(settings, tmp_path)
    text = result.path.read_text()
    assert "quarantine" in result.drawn and "loads" in result.drawn
    assert "<img src=x" not in text and 'alert("key")</script>' not in text
    assert "&lt;img src=x onerror=alert(1)&gt; JSON &amp; more" in text  # the table cell
    rest = outside_library(text)
    assert rest.count("<script") == rest.count("</script>")
    # Plotly draws a subset of HTML in labels (<a href>, <b>...): the bar's label must reach
    # it as text, escaped, not as markup.
    wh = DuckDBWarehouse(settings.duckdb_path)
    try:
        sections = build_sections(run_queries(wh))
    finally:
        wh.close()
    chart = next(c for s in sections for c in s.charts if c.key == "quarantine")
    bar = chart.figure.data[0]
    assert list(bar.hovertext) == [html.escape(hostile_reason, quote=False)]
    assert bar.y[0].startswith("invalid &lt;img src=x onerror=alert(1)&gt;")


def test_cli_writes_the_report_and_prints_its_path(built: Settings, tmp_path: Path) -> None:
    proc = CliRunner().invoke(report_command, ["--out", str(tmp_path / "r")],
                              env={"FHIRFLOW_HOME": str(built.home)})
    assert proc.exit_code == 0, proc.output
    path = tmp_path / "r" / "fhirflow-report.html"
    assert proc.output.startswith(f"report: {path} ({len(CHARTS)} charts, ")
    assert path.is_file()
