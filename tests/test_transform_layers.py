"""Layer builds stay consistent (issue 12): after new data, `--layer staging` then
`--layer marts` must not leave marts joining new staging rows with old intermediate tables.
Also: dbt-duckdb's connection is released after every dbt invocation."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest
from click.testing import CliRunner
from tests._home import isolated_home

from fhirflow import pipeline
from fhirflow.cli import main
from fhirflow.config import Settings, load_settings
from fhirflow.orchestration import tasks
from fhirflow.transform import InconsistentBuild, run_dbt

MEDICATIONS = ("select medication_request_id, claim_id, base_cost, reason_code "
               "from marts.fct_medications order by 1")


def rows(settings: Settings, sql: str) -> list[tuple]:
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def add_patients(settings: Settings, seed: int) -> None:
    pipeline.generate(settings, pipeline.GenerateOptions(2, seed, 2))
    pipeline.upload(settings)
    assert pipeline.load(settings).result.files_loaded > 0


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home = tmp_path_factory.mktemp("layers") / "home"
    with isolated_home(home, FHIRFLOW_DBT_THREADS="2"):
        settings = load_settings()
        add_patients(settings, 1)
        assert pipeline.transform(settings).success
        yield settings


def test_dbt_releases_its_duckdb_connection(built: Settings) -> None:
    """Regression: after dbt ran in this process, DuckDB refused a read-only connection
    ("different configuration than existing connections"), so run_once and export_csv
    opened the warehouse read-write to get around it."""
    run_dbt(built, "build", select="stg_patients")
    assert rows(built, "select count(*) from staging.stg_patients")[0][0] == 2
    status = pipeline.status(built)  # read-only, in the same process as dbt
    assert status.models["dim_patients"] == 2


def test_marts_after_staging_alone_are_refused_not_mixed(built: Settings) -> None:
    add_patients(built, 2)
    assert pipeline.transform(built, layer="staging").success
    before = rows(built, MEDICATIONS)

    refused = CliRunner().invoke(main, ["transform", "--layer", "marts"])
    assert refused.exit_code == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, refused.stderr
    assert errors[0].startswith("error: refusing to build: intermediate is behind staging: ")
    assert "`fhirflow transform --select +tag:marts`" in errors[0]
    assert rows(built, MEDICATIONS) == before  # refused before dbt touched anything
    # the Airflow layer task runs the same check
    with pytest.raises(InconsistentBuild, match="intermediate is behind staging"):
        tasks.run_dbt_layer(built, "marts")

    # What the refusal prevents: dbt's own `--select tag:marts`, unchecked, builds marts
    # whose new prescriptions have neither their claim nor their reason (and, with the star
    # schema, claim lines whose claims are missing: a relationships test fails too).
    unchecked = run_dbt(built, "build", select="tag:marts")
    assert any("relationships_fct_claim_lines_claim_id" in f for f in unchecked.failures)
    mixed = rows(built, MEDICATIONS)
    new = {r[0] for r in mixed} - {r[0] for r in before}
    assert new and all(r[1] is None for r in mixed if r[0] in new)

    # dbt's graph operator builds marts with what they read, consistently...
    consistent = CliRunner().invoke(main, ["transform", "--select", "+tag:marts"])
    assert consistent.exit_code == 0, consistent.output + consistent.stderr
    result = rows(built, MEDICATIONS)
    assert result != mixed
    # ... exactly as a build of everything does; and now the marts layer builds alone again.
    assert pipeline.transform(built).success
    assert rows(built, MEDICATIONS) == result
    assert CliRunner().invoke(main, ["transform", "--layer", "marts"]).exit_code == 0
