"""The Snowflake load's stage, COPY and RAW statements: SNOWFLAKE_SCHEMA, the stage kept in
step with the settings (bucket, prefix, keys, session token, S3-compatible endpoints), files
gone between listing and COPY, one CONTENT_HASH in both modes, the 128 MB value limit, and
LIMIT without a bind variable.

fakesnow runs the DDL, the stage statement (SHOW STAGES shows its URL), mode insert, the
parsing and classification of COPY's output and status; it cannot COPY from or LIST an S3
stage, so those statements (and what the loader does when COPY fails) are checked as text.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from _helpers import bundle
from fhirflow.config import Settings, load_settings
from fhirflow.warehouse import BatchFile, reasons
from fhirflow.warehouse.snowflake import (
    SnowflakeWarehouse,
    batch_sql,
    queries,
    raw_schema,
    s3_stage,
)

fakesnow = pytest.importorskip("fakesnow")


@pytest.fixture
def snowflake(tmp_path: Path, clean_env: pytest.MonkeyPatch,
              fakesnow_server: Callable[..., Any]) -> Iterator[dict[str, Any]]:
    """Settings fields of a fakesnow account with a database of this test's own."""
    with fakesnow_server() as conn:
        yield {"home": tmp_path / "home", "warehouse": "snowflake",
               "snowflake_account": conn["account"], "snowflake_user": "u",
               "snowflake_password": "p", "snowflake_host": conn["host"],
               "snowflake_port": conn["port"], "snowflake_protocol": conn["protocol"],
               "snowflake_database": f"SYNTHEA_{os.urandom(4).hex().upper()}"}


def _rows(wh: SnowflakeWarehouse, sql: str) -> list[tuple]:
    return wh.con.cursor().execute(sql).fetchall()


def _every_statement() -> list[str]:
    statements = [
        *raw_schema.DDL, raw_schema.FILE_FORMAT_DDL, *batch_sql.BATCH_TABLES,
        *batch_sql.PARSE_TEXT, batch_sql.CLASSIFY, batch_sql.INSERT_BUNDLES,
        batch_sql.INSERT_ERRORS, batch_sql.BATCH_TOTALS, batch_sql.BATCH_ERRORS,
        batch_sql.INSERT_WATERMARK, queries.LAST_WATERMARK, queries.RAW_COUNTS,
        queries.known_keys_sql(2), queries.recent_loads_sql(5),
        s3_stage.copy_sql("STG", ["patients/a.json"]),
        s3_stage.stage_sql("STG", "s3://b/raw/", storage_integration="I")]
    return statements


def test_every_statement_follows_snowflake_schema() -> None:
    for statement in _every_statement():
        renamed = raw_schema.in_schema(statement, "FHIR_RAW")
        tree = sqlglot.parse_one(renamed, read="snowflake")
        schemas = {t.db.upper() for t in tree.find_all(exp.Table) if t.db}
        assert "RAW" not in schemas, renamed
        assert " RAW." not in renamed and "@RAW." not in renamed, renamed
    assert (raw_schema.in_schema(raw_schema.DDL[0], "FHIR_RAW")
            == "create schema if not exists FHIR_RAW")
    # A file name is data: a key with RAW in it is not renamed.
    copy = raw_schema.in_schema(
        s3_stage.copy_sql("STG", ["patients/RAW.x.json", "patients/it's RAW.json"]), "FHIR_RAW")
    assert "files = ('patients/RAW.x.json', 'patients/it\\'s RAW.json')" in copy
    assert "from @FHIR_RAW.STG" in copy and "format_name = FHIR_RAW.FHIR_TEXT" in copy


def test_the_loader_writes_into_snowflake_schema(snowflake: dict[str, Any], tmp_path: Path
                                                 ) -> None:
    settings = load_settings(**snowflake, snowflake_schema="fhir_raw",
                             snowflake_load_mode="insert")
    assert settings.snowflake_schema == "FHIR_RAW"
    wh = SnowflakeWarehouse.from_settings(settings)
    try:
        wh.create_tables()
        data = tmp_path / "a.json"
        data.write_bytes(bundle("p1"))
        wh.load_batch("L1", [BatchFile("raw/patients/a.json", data.stat().st_size, path=data)],
                      rejected=[], started_at=datetime.now(UTC))
        assert _rows(wh, "select count(*) from FHIR_RAW.FHIR_BUNDLES") == [(1,)]
        schemas = {r[0] for r in _rows(wh, "select schema_name from information_schema.schemata")}
        assert "RAW" not in {s.upper() for s in schemas}
        assert wh.raw_counts() == {"bundles": 1, "errors": 0, "loads": 1, "resources": 1,
                                   "entry_errors": 0}
        assert [r.load_id for r in wh.recent_loads(1)] == ["L1"]
    finally:
        wh.close()


def test_dbt_reads_the_same_schema(snowflake: dict[str, Any]) -> None:
    from fhirflow.transform import dbt_environment, dbt_target_path, run_dbt

    settings = load_settings(**snowflake, snowflake_schema="FHIR_RAW", dbt_threads=1)
    assert dbt_environment(settings)["SNOWFLAKE_SCHEMA"] == "FHIR_RAW"
    result = run_dbt(settings, "compile", select="base_fhir_entries")
    assert result.success, result.failures
    compiled = next((dbt_target_path(settings) / "compiled").rglob("base_fhir_entries.sql"))
    assert f"from {settings.snowflake_database}.FHIR_RAW.FHIR_RESOURCES" in compiled.read_text()


def test_status_limit_is_a_literal() -> None:
    # Snowflake's LIMIT takes a constant: no `limit ?`.
    assert queries.recent_loads_sql(7).rstrip().endswith("limit 7")
    assert "?" not in queries.recent_loads_sql(7)
    with pytest.raises(ValueError):
        queries.recent_loads_sql(-1)


def _stage_url(wh: SnowflakeWarehouse, database: str) -> str:
    rows = wh.con.cursor().execute(s3_stage.show_stage_sql(database, "FHIR_BUNDLES_STAGE"))
    columns = [d[0].lower() for d in rows.description]
    found = [dict(zip(columns, r, strict=True)) for r in rows.fetchall()]
    return next(r["url"] for r in found if r["name"].upper() == "FHIR_BUNDLES_STAGE")


def test_a_changed_bucket_or_prefix_reaches_the_stage(snowflake: dict[str, Any]) -> None:
    for prefix in ("raw", "raw-v2"):
        settings = load_settings(**snowflake, aws_s3_bucket="bkt", aws_s3_prefix=prefix,
                                 snowflake_storage_integration="S3_INT")
        wh = SnowflakeWarehouse.from_settings(settings)
        try:
            wh.create_tables()
            assert _stage_url(wh, settings.snowflake_database) == f"s3://bkt/{prefix}/"
        finally:
            wh.close()


def test_temporary_credentials_and_s3_compatible_stores() -> None:
    temporary = s3_stage.stage_sql("S", "s3://b/raw/", aws_key_id="ASIAEXAMPLE",
                                   aws_secret_key="secret", aws_token="session-token")
    assert ("credentials = (aws_key_id = 'ASIAEXAMPLE' aws_secret_key = 'secret' "
            "aws_token = 'session-token')") in temporary
    assert temporary.startswith("create or replace stage RAW.S ")
    compat = s3_stage.stage_sql(
        "S", "s3://b/raw/", aws_key_id="k", aws_secret_key="s",
        endpoint=s3_stage.s3compat_endpoint("https://minio.example.com:9000/"))
    assert "url = 's3compat://b/raw/' endpoint = 'minio.example.com:9000'" in compat
    assert s3_stage.s3compat_endpoint(None) is None
    assert s3_stage.s3compat_endpoint("https://s3.eu-west-1.amazonaws.com") is None
    assert s3_stage.s3compat_endpoint("http://127.0.0.1:9000") == "127.0.0.1:9000"
    with pytest.raises(Exception, match="not SNOWFLAKE_STORAGE_INTEGRATION"):
        s3_stage.stage_sql("S", "s3://b/raw/", storage_integration="I", endpoint="minio:9000")


def test_from_settings_hands_the_stage_its_token_and_endpoint(snowflake: dict[str, Any]
                                                              ) -> None:
    settings = load_settings(**snowflake, aws_s3_bucket="bkt", aws_access_key_id="ASIAX",
                             aws_secret_access_key="sekret", aws_session_token="tok3n",
                             aws_endpoint_url="https://objects.example.org")
    wh = SnowflakeWarehouse.from_settings(settings)
    try:
        ddl = wh._stage_ddl() if callable(wh._stage_ddl) else wh._stage_ddl
        assert "aws_token = 'tok3n'" in ddl
        assert "url = 's3compat://bkt/raw/' endpoint = 'objects.example.org'" in ddl
        wh.create_tables()  # fakesnow accepts the statement
        # The store's object URLs stay s3://, which is what the batch is matched against.
        assert wh.stage_url == "s3://bkt/raw/"
    finally:
        wh.close()


def test_files_gone_before_copy_are_found_by_list() -> None:
    paths = ["patients/20261201T101500000000Z-000001-a.json",
             "patients/20261201T101502000000Z-000002-b.json",
             "patients/20261201T101502000000Z-000003-it's.json"]
    listed = s3_stage.list_sql("FHIR_BUNDLES_STAGE", paths, schema="FHIR_RAW")
    assert listed == "list '@FHIR_RAW.FHIR_BUNDLES_STAGE/patients/20261201T10150'"
    assert s3_stage.list_sql("S", [paths[2]]) == (
        "list '@RAW.S/patients/20261201T101502000000Z-000003-it\\'s.json'")
    # LIST names objects by their full URL.
    names = ["s3://bkt/raw/" + paths[0], "s3://bkt/raw/" + paths[2]]
    assert s3_stage.missing_paths(names, paths) == [paths[1]]
    assert s3_stage.missing_paths([], paths) == paths
    assert s3_stage.missing_paths(paths, paths) == []


def test_a_file_larger_than_snowflake_stores_is_quarantined(
    snowflake: dict[str, Any], tmp_path: Path
) -> None:
    """FHIRFLOW_MAX_FILE_MB may allow more than Snowflake's 128 MB per value: such a file is
    one quarantined row, not a failed batch (its size is what the store listed)."""
    assert f"TEXT varchar({batch_sql.MAX_OBJECT_BYTES})" in batch_sql.BATCH_TABLES[-1]
    wh = SnowflakeWarehouse.from_settings(load_settings(**snowflake,
                                                        snowflake_load_mode="insert"))
    try:
        wh.create_tables()
        small = tmp_path / "small.json"
        small.write_bytes(bundle("p1"))
        huge = BatchFile("raw/patients/huge.json", batch_sql.MAX_OBJECT_BYTES + 1, path=small)
        ok = BatchFile("raw/patients/ok.json", small.stat().st_size, path=small)
        result = wh.load_batch("L1", [huge, ok], rejected=[], started_at=datetime.now(UTC))
        assert (result.files_loaded, result.files_failed) == (1, 1)
        assert result.errors[0].key == huge.key
        assert result.errors[0].reason == reasons.too_big(huge.size, batch_sql.MAX_OBJECT_BYTES)
    finally:
        wh.close()


def _load_one(settings: Settings, data: bytes, tmp_path: Path) -> str:
    from fhirflow.warehouse import open_warehouse

    path = tmp_path / f"{settings.warehouse}.json"
    path.write_bytes(data)
    wh = open_warehouse(settings)
    try:
        wh.create_tables()
        wh.load_batch("L1", [BatchFile("raw/patients/x.json", len(data), path=path)],
                      rejected=[], started_at=datetime.now(UTC))
        return wh.cursor().execute("select content_hash from raw.fhir_bundles").fetchall()[0][0]
    finally:
        wh.close()


def test_content_hash_is_the_sha256_of_the_bytes_everywhere(
    snowflake: dict[str, Any], tmp_path: Path
) -> None:
    data = bundle("p1", note="café \\ \"quoted\"")
    expected = hashlib.sha256(data).hexdigest()
    duck = load_settings(home=tmp_path / "duck")
    assert _load_one(duck, data, tmp_path) == expected
    insert = load_settings(**snowflake, snowflake_load_mode="insert")
    assert _load_one(insert, data, tmp_path) == expected


def test_copy_mode_parses_and_hashes_the_copied_text(snowflake: dict[str, Any]) -> None:
    """What COPY leaves in FHIRFLOW_INCOMING_TEXT (the file as text, named by
    METADATA$FILENAME) goes through the same parsing and hashing as mode insert."""
    text = bundle("p1").decode()
    wh = SnowflakeWarehouse.from_settings(load_settings(**snowflake, snowflake_load_mode="insert"))
    try:
        cur = wh.con.cursor()
        for statement in batch_sql.BATCH_TABLES:
            cur.execute(statement)
        # Mode copy: the loader does not read the files; their names give the kind.
        cur.executemany(batch_sql.INSERT_BATCH_FILE, [
            ("raw/patients/a.json", "patients/a.json", len(text), "bundle", "a.json"),
            ("raw/patients/b.json", "patients/b.json", 10, "bundle", "b.json"),
            ("raw/patients/c.json", "patients/c.json", 10, "bundle", "c.json")])
        cur.executemany(batch_sql.INSERT_TEXT, [("patients/a.json", text, None, None),
                                                ("patients/b.json", "\ufeff" + text, None, None),
                                                ("patients/c.json", "{nope", None, None)])
        cur.executemany(batch_sql.INSERT_COPY_RESULT, [
            (f"s3://bkt/raw/patients/{n}.json", "LOADED", 1, 1, 0, None, None) for n in "abc"])
        for statement in batch_sql.PARSE_TEXT:
            cur.execute(statement)
        cur.execute(batch_sql.MATCH)
        cur.execute(batch_sql.CLASSIFY)
        got = {k: (h, r) for k, h, r in _rows(
            wh, "select OBJECT_KEY, CONTENT_HASH, REASON from FHIRFLOW_CLASSIFIED")}
    finally:
        wh.close()
    assert got["raw/patients/a.json"] == (hashlib.sha256(text.encode()).hexdigest(), None)
    assert got["raw/patients/b.json"][1] == reasons.BYTE_ORDER_MARK
    assert got["raw/patients/c.json"][1] == reasons.INVALID_JSON
