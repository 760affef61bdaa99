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
from fhirflow.report.charts.base import label, many
from fhirflow.report.charts.care import CONDITION_LABEL
from fhirflow.report.cli import report as report_command
from fhirflow.report.queries import run_queries
from fhirflow.warehouse.duckdb import DuckDBWarehouse

CHARTS = ["pyramid", "race", "vital", "places", "encounters", "disorders", "findings",
          "medications", "procedures", "immunizations", "cost_yearly", "cost_payer",
          "cost_class", "loads", "quarantine", "entries", "resources", "references",
          "completeness"]

BAD_FILES = {
    "truncated.json": b'{"resourceType": "Bundle", "entry": [',
    "array.json": b"[1, 2, 3]",
}
# A bundle that loads, but whose only entry the load refuses (RAW.ENTRY_ERRORS).
BAD_ENTRY = ("no-id.json", b'{"resourceType": "Bundle", "type": "transaction", "entry": ['
             b'{"resource": {"resourceType": "Patient", "gender": "male"}}]}')


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
        for name, data in [*BAD_FILES.items(), BAD_ENTRY]:
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
    (dead,) = sql(built, "select count(*) from marts.dim_patients where not is_alive")[0]
    assert result.patients == patients == 12
    assert result.readings["pyramid"].startswith(f"{patients} patients")
    assert result.readings["vital"].startswith(f"{dead} of {patients} patients")

    encounters = sql(built, "select count(*) from marts.fct_encounters")[0][0]
    assert result.readings["encounters"].startswith(f"{encounters:,} encounters")
    (loads,) = sql(built, "select count(*) from raw.load_watermark")[0]
    assert result.readings["quarantine"].startswith(f"2 files quarantined in {loads} load")
    assert "invalid JSON" in result.readings["quarantine"] or "not a FHIR Bundle" in (
        result.readings["quarantine"])
    assert result.readings["entries"].startswith(
        f"1 entry of 1 file quarantined in {many(loads, 'load')} while the rest")
    assert "resource without id" in result.readings["entries"]
    text = result.path.read_text()
    assert re.search(r"<td>raw/[^<]*-no-id\.json(\.gz)?</td><td class=\"nowrap\">entry 0</td>"
                     r"<td>Patient</td><td>resource without id</td>", text)

    # Every reading is on the page as it was computed (escaped once).
    for key, reading in result.readings.items():
        assert html.escape(html.unescape(reading), quote=False) in text, key


def test_population_and_prevalence_equal_the_marts(built: Settings) -> None:
    """Figures counted here from dim_patients and fct_conditions, not through the report's
    queries (nor mart_condition_prevalence), against what the report draws and says."""
    sections = build_sections(_answers(built))
    charts = {c.key: c for s in sections for c in s.charts}

    # The pyramid: one bar per dim_patients.age_band and sex, men drawn to the left.
    bands: dict[tuple[str, str], int] = {}
    for gender, band in sql(built, "select gender, age_band from marts.dim_patients"):
        bands[(gender, band)] = bands.get((gender, band), 0) + 1
    drawn = {}
    for trace in charts["pyramid"].figure.data:
        for band, x in zip(trace.y, trace.x, strict=True):
            if x:
                drawn[("M" if trace.name == "male" else "F", band)] = abs(x)
    assert drawn == bands
    # Youngest at the bottom, in the mart's bands.
    order = list(charts["pyramid"].figure.data[0].y)
    assert order == sorted(order, key=lambda b: int(b.split("-")[0].rstrip("+")))

    # The most prevalent disorder: patients who ever had it over all patients.
    (patients,) = sql(built, "select count(*) from marts.dim_patients")[0]
    rows = sql(built, "select patient_id, description, condition_category "
                      "from marts.fct_conditions")
    per: dict[str, set[str]] = {}
    for patient, description, category in rows:
        if category == "disorder":
            per.setdefault(description, set()).add(patient)
    top = min(per.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    reading = charts["disorders"].reading
    assert reading == (f"The most prevalent disorder is {top[0]}: {len(top[1])} of "
                       f"{patients} patients ({100 * len(top[1]) / patients:.0f}%).")
    bars = {y: x for trace in charts["disorders"].figure.data
            for y, x in zip(trace.y, trace.x, strict=True)}
    assert bars[label(top[0], CONDITION_LABEL)] == pytest.approx(len(top[1]) / patients)
    # No finding among the disorders, no disorder among the findings.
    findings = {d for _p, d, c in rows if c in ("finding", "situation", "social_determinant")}
    assert not findings & {y for tr in charts["disorders"].figure.data for y in tr.y}
    assert {y for tr in charts["findings"].figure.data for y in tr.y} <= {
        label(d, CONDITION_LABEL) for d in findings}


def _answers(settings: Settings) -> dict:
    wh = DuckDBWarehouse(settings.duckdb_path)
    try:
        return run_queries(wh)
    finally:
        wh.close()


def test_cost_per_patient_year_is_cost_over_active_patients(built: Settings,
                                                            tmp_path: Path) -> None:
    result = build_report(built, tmp_path)
    rows = sql(built, """
        select extract(year from service_date), patient_id, claim_kind,
            coalesce(submitted_total, claim_total)
        from marts.fct_claims""")
    last = max(int(y) for y, *_rest in rows)
    years = range(last - 9, last + 1)  # the ten calendar years up to the last claim
    active = {(int(y), p) for y, p, _k, _c in rows if int(y) in years}
    cost = sum(c or 0 for y, _p, _k, c in rows if int(y) in years)
    assert result.readings["cost_yearly"].startswith(f"${cost / len(active):,.0f} per patient-year")
    assert f"{len(active):,} patient-years" in result.readings["cost_yearly"]

    # By class: encounters' cost (fct_encounters) and pharmacy claims, over every patient-year.
    everyone = {(int(y), p) for y, p, _k, _c in rows}
    (encounter_cost,) = sql(built, "select sum(total_claim_cost) from marts.fct_encounters")[0]
    pharmacy = sum(c or 0 for _y, _p, k, c in rows if k == "medication")
    assert result.readings["cost_class"].startswith(
        f"${(encounter_cost + pharmacy) / len(everyone):,.0f} per patient-year over "
        f"{len(everyone):,} patient-years")

    # By payer: each payer's claims over the patient-years billed to it.
    payer_rows = sql(built, """
        select p.payer_name, extract(year from c.service_date), c.patient_id,
            coalesce(c.submitted_total, c.claim_total)
        from marts.fct_claims as c join marts.dim_payers as p on c.payer_id = p.payer_id""")
    per_payer: dict[str, tuple[float, set]] = {}
    for payer, year, patient, amount in payer_rows:
        total, seen = per_payer.setdefault(payer, (0.0, set()))
        seen.add((year, patient))
        per_payer[payer] = (total + (amount or 0), seen)
    dearest = max(per_payer, key=lambda p: per_payer[p][0] / len(per_payer[p][1]))
    figure = next(c for s in build_sections(_answers(built)) for c in s.charts
                  if c.key == "cost_payer").figure
    stacked = {y: 0.0 for y in figure.data[0].y}
    for trace in figure.data:
        for y, x in zip(trace.y, trace.x, strict=True):
            stacked[y] += x
    assert stacked[dearest] == pytest.approx(per_payer[dearest][0] / len(per_payer[dearest][1]))
    assert f"{dearest} costs the most per patient-year" in result.readings["cost_payer"]


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
    (encounters,) = sql(settings, "select count(*) from marts.fct_encounters")[0]
    assert encounters > 0
    # What dq_reference_integrity holds, the report says: the total and each row's counts.
    dq = sql(settings, "select resource_type || '.' || reference_path, resolved, undefined, "
                       "unresolved from marts.dq_reference_integrity")
    missing = sum(u + v for _p, _r, u, v in dq)
    assert missing >= 2 * encounters  # the hospital and the practitioner of each encounter
    assert result.readings["references"].startswith(
        f"{missing:,} of {sum(r + u + v for _p, r, u, v in dq):,} references")
    text = result.path.read_text()
    for path in ("Encounter.serviceProvider", "Encounter.participant[0].individual"):
        assert re.search(rf"<td>{re.escape(path)}</td><td class=\"num\">{encounters:,}</td>"
                         rf"<td class=\"num\">0</td><td class=\"num\">{encounters:,}</td>"
                         r"<td>no</td>", text), path
    # The patient references all resolve, within their threshold.
    assert re.search(r"<td>Encounter\.subject</td><td class=\"num\">[0-9,]+</td><td class="
                     r"\"num\">0</td><td class=\"num\">0</td><td>yes</td>", text)

    # Completeness: dq_completeness's counts, gaps listed first. Synthea leaves no key empty,
    # so two rows of the model are given nulls here (one over its threshold, one within).
    con = duckdb.connect(str(settings.duckdb_path))
    try:
        con.execute("update marts.dq_completeness set null_count = 3, is_within_threshold = "
                    "false where dq_key = 'stg_encounters.patient_id'")
        con.execute("update marts.dq_completeness set null_count = 1 "
                    "where dq_key = 'stg_claims.payer_name'")
        (claims,) = con.execute("select row_count from marts.dq_completeness "
                                "where dq_key = 'stg_claims.payer_name'").fetchone()
        (keys, empty_keys, empty) = con.execute(
            "select count(*), count(*) filter (where row_count = 0), "
            "count(distinct model_name) filter (where row_count = 0) "
            "from marts.dq_completeness").fetchone()
    finally:
        con.close()
    result = build_report(settings, tmp_path / "out2")
    reading = result.readings["completeness"]
    share = 100 * 3 / encounters
    assert reading.startswith(
        f"{keys - empty_keys - 2} of {keys - empty_keys} key columns are always filled; the "
        f"emptiest is stg_encounters.patient_id ({share:.0f}% null, 3 of {encounters} rows); "
        "1 over the threshold.")
    assert empty and f"{empty} models without rows: " in reading
    text = result.path.read_text()
    assert re.search(rf"<td>stg_encounters</td><td>patient_id</td><td>patient</td>"
                     rf"<td class=\"num\">{encounters}</td><td class=\"num\">3</td>"
                     rf"<td class=\"num\">{100 - share:.1f}%</td><td>no</td></tr>"
                     rf"<tr><td>stg_claims</td><td>payer_name</td><td>reference</td>"
                     rf"<td class=\"num\">{claims}</td><td class=\"num\">1</td>", text)


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
        "Not drawn: needs marts.dq_reference_integrity (run `fhirflow transform`).")
    assert result.not_drawn["entries"] == "No entry was quarantined: every resource loaded."


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
    wh.con.execute("insert into raw.load_errors (load_id, object_key, file_size, reason, "
                   "failed_at) values ('L1', ?, 12, ?, ?)",
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
