"""The dbt project on DuckDB: every layer builds and tests, layers select by tag, an
incremental re-run after a re-delivered bundle keeps one row per key, docs generate."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from fhirflow.cli import main
from fhirflow.config import Settings, load_settings
from fhirflow.pipeline import run_once
from fhirflow.transform import run_dbt

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "synthea" / "synthea-2024-04"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    if not (SAMPLE / "fhir").is_dir():
        pytest.skip(f"real Synthea sample not found at {SAMPLE} (../shared is absent)")
    home = tmp_path_factory.mktemp("dbt")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_")):
                mp.delenv(name)
        mp.setenv("FHIRFLOW_HOME", str(home))
        settings = load_settings()
        result = run_once(settings, from_dir=SAMPLE / "fhir")
        assert result.success, result.transform.failures if result.transform else None
        yield settings


def test_all_27_models_and_their_tests(built: Settings) -> None:
    result = run_dbt(built, "build", select="tag:staging tag:intermediate tag:marts")
    assert result.success, result.failures
    counts = {layer: s.models_ok for layer, s in result.layers.items()}
    assert counts["staging"] == 18 and counts["intermediate"] == 4 and counts["marts"] == 5
    assert sum(s.tests_passed for s in result.layers.values()) > 100


@pytest.mark.parametrize("layer", ["staging", "intermediate", "marts"])
def test_transform_selects_a_layer(built: Settings, layer: str) -> None:
    outcome = CliRunner().invoke(main, ["transform", "--layer", layer])
    assert outcome.exit_code == 0, outcome.output
    from fhirflow.transform import dbt_target_path, summarise_run_results

    summary = summarise_run_results(dbt_target_path(built))
    assert summary.layers[layer].models_ok > 0
    assert not {"staging", "intermediate", "marts"} - {layer} & {
        name for name, s in summary.layers.items() if s.models_ok}


def test_incremental_rerun_keeps_one_row_per_key(built: Settings) -> None:
    con = duckdb.connect(str(built.duckdb_path))
    try:
        before = con.execute("select count(*) from staging.stg_encounters").fetchone()[0]
        # Re-deliver every entry as if a new load brought the bundles again (base_fhir_entries
        # is a view over RAW.FHIR_RESOURCES, so the load time is changed there).
        con.execute("update raw.fhir_resources set loaded_at = loaded_at + interval 1 hour")
    finally:
        con.close()
    result = run_dbt(built, "build", select="tag:staging")
    assert result.success, result.failures
    con = duckdb.connect(str(built.duckdb_path))
    try:
        after = con.execute("select count(*) from staging.stg_encounters").fetchone()[0]
    finally:
        con.close()
    assert after == before


def test_docs_generate(built: Settings) -> None:
    result = run_dbt(built, "docs generate")
    target = result.target_path
    assert target is not None and (target / "catalog.json").exists()
    assert (target / "index.html").exists()
