"""The report on the Snowflake warehouse: the same queries through `Warehouse.query`, against
fakesnow running as a server (Snowflake's SQL on DuckDB), with dbt-snowflake's marts built
from two small generated patients (fakesnow cannot hold real-size bundles).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.test_report import BAD_ENTRY, CHARTS

from fhirflow.config import Settings, load_settings
from fhirflow.report import build_report

fakesnow = pytest.importorskip("fakesnow")
pytestmark = pytest.mark.slow  # a dbt build on fakesnow: about 40 s


@pytest.fixture(scope="module")
def snowflake(tmp_path_factory: pytest.TempPathFactory,
              fakesnow_server: Callable[..., Any]) -> Iterator[Settings]:
    from fhirflow import pipeline
    from fhirflow.generate import generate_patients

    home = tmp_path_factory.mktemp("report-snowflake")
    with pytest.MonkeyPatch.context() as mp, fakesnow_server() as conn:
        for name in list(os.environ):
            if name.startswith(("FHIRFLOW_", "AWS_", "SNOWFLAKE_")):
                mp.delenv(name)
        settings = load_settings(
            home=home, warehouse="snowflake", snowflake_account=conn["account"],
            snowflake_user=conn["user"], snowflake_password=conn["password"],
            snowflake_host=conn["host"], snowflake_port=conn["port"],
            snowflake_protocol=conn["protocol"], snowflake_load_mode="insert", dbt_threads=1,
            # fakesnow servers in one process share their databases: a database of our own,
            # or dbt finds another test's models and merges into them (where fakesnow stalls).
            snowflake_database=f"REPORT_{uuid.uuid4().hex[:8].upper()}",
        )
        generate_patients(settings.landing_dir, patients=2, seed=7, years_of_history=1)
        bad = settings.landing_dir / "not-a-patient"
        bad.mkdir(parents=True)
        (bad / "array.json").write_bytes(b"[1, 2, 3]")
        (bad / BAD_ENTRY[0]).write_bytes(BAD_ENTRY[1])
        pipeline.upload(settings, lambda _m: None, store_kind="local")
        pipeline.load(settings, lambda _m: None, store_kind="local")
        # fakesnow runs neither the views' FILTER/TRANSFORM over VARIANT nor dbt-snowflake's
        # unit tests (a qualified temporary table): both are checked elsewhere.
        result = pipeline.transform(settings, lambda _m: None,
                                    exclude="tag:views test_type:unit")
        assert result.success, result.failures
        yield settings


def test_the_report_reads_snowflake_through_the_same_queries(snowflake: Settings,
                                                             tmp_path: Path) -> None:
    result = build_report(snowflake, tmp_path)
    # Every query ran (a query Snowflake rejected would leave "Not drawn: Snowflake
    # rejected ..."), and every chart has data to draw.
    assert result.not_drawn == {}, result.not_drawn
    assert result.drawn == CHARTS
    assert result.patients == 2
    assert result.banner.startswith("Only 2 patients:")
    text = result.path.read_text()
    assert "from Snowflake " in text
    assert result.readings["quarantine"].startswith("1 file quarantined in 1 load")
    assert result.readings["entries"].startswith("1 entry of 1 file quarantined in 1 load")
    assert result.readings["vital"].endswith("have died.")


def test_reading_needs_no_stage_credentials(snowflake: Settings, tmp_path: Path) -> None:
    # The default load mode, "copy", wants a storage integration or AWS keys for its stage;
    # a reader has no use for them.
    copy_mode = snowflake.model_copy(update={"snowflake_load_mode": "copy"})
    assert copy_mode.aws_access_key_id is None and copy_mode.snowflake_storage_integration is None
    result = build_report(copy_mode, tmp_path)
    assert result.drawn == CHARTS
