"""The Snowflake RAW path: SQL run on fakesnow where it can, the rest checked as text.

fakesnow runs the table DDL, the stage DDL, the watermark, known_keys, the classification,
the anti-join inserts and the transaction (mode "insert": objects fetched by the loader and
parsed with TRY_PARSE_JSON). It cannot run COPY INTO from S3 or `$1 from @stage`; those
statements are checked as text.
"""

from __future__ import annotations

import json
import logging
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from _helpers import bundle, clean_environ, land, moto_s3, run_cli
from fhirflow.config import Settings, load_settings
from fhirflow.errors import ConfigError, FhirflowError
from fhirflow.load import list_new_files, load_batch, run_load
from fhirflow.store import LocalStore, StoredObject
from fhirflow.warehouse import BatchFile
from fhirflow.warehouse import reasons as why
from fhirflow.warehouse.snowflake import SnowflakeWarehouse, batch_sql, raw_schema, s3_stage

fakesnow = pytest.importorskip("fakesnow")
PREFIX = "raw/patients/"


@pytest.fixture
def warehouse() -> Iterator[SnowflakeWarehouse]:
    import snowflake.connector

    with fakesnow.patch():
        con = snowflake.connector.connect(account="acct", user="u", password="p",
                                          database="SYNTHEA", schema="RAW", paramstyle="qmark")
        wh = SnowflakeWarehouse(con, description="fakesnow", mode="insert")
        wh.create_tables()
        try:
            yield wh
        finally:
            wh.close()


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    store = LocalStore(tmp_path / "lake")
    files = {f"2026-{i:03d}-good.json": bundle(f"p{i}") for i in range(5)}
    files |= {
        "2026-100-invalid.json": b"{nope",
        "2026-101-truncated.json": bundle("p1")[:30],
        "2026-102-empty.json": b"",
        "2026-103-patient.json": b'{"resourceType": "Patient"}',
        "2026-104-latin1.json": '{"resourceType": "Bundle", "x": "café"}'.encode("latin-1"),
    }
    for name, data in files.items():
        path = tmp_path / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        store.put_file(PREFIX + name, path)
    return store


EMPTY_RAW = {"bundles": 0, "errors": 0, "loads": 0, "resources": 0, "entry_errors": 0}


def rows(wh: SnowflakeWarehouse, sql: str) -> list[tuple]:
    return wh.con.cursor().execute(sql).fetchall()


def test_tables_are_created_idempotently_with_a_variant_column(
        warehouse: SnowflakeWarehouse) -> None:
    warehouse.create_tables()
    assert warehouse.last_watermark() is None
    assert warehouse.raw_counts() == EMPTY_RAW
    assert "RESOURCE              variant not null" in raw_schema.DDL[2]


def test_load_quarantine_watermark_and_rerun(warehouse: SnowflakeWarehouse,
                                             store: LocalStore) -> None:
    result = run_load(store, warehouse, prefix=PREFIX, batch_size=4, max_file_bytes=1 << 20)
    assert result.files_loaded == 5 and result.files_failed == 5
    errors = dict(rows(warehouse, "select OBJECT_KEY, REASON from RAW.LOAD_ERRORS"))
    reasons = {k.split("-")[-1]: v for k, v in errors.items()}
    # The same reason texts as the DuckDB loader's (test_load_quarantine).
    assert reasons["invalid.json"] == reasons["truncated.json"] == why.INVALID_JSON
    assert reasons["empty.json"] == why.EMPTY
    assert reasons["patient.json"] == why.NOT_A_BUNDLE
    assert reasons["latin1.json"] == why.NOT_UTF8
    assert warehouse.last_watermark() == PREFIX + "2026-104-latin1.json"
    types = rows(warehouse, "select distinct BUNDLE_TYPE, FILE_FORMAT from RAW.FHIR_BUNDLES")
    assert types == [("transaction", "bundle")]
    assert rows(warehouse, "select count(*), count(distinct RESOURCE_ID) "
                           "from RAW.FHIR_RESOURCES") == [(5, 5)]
    # Re-run: nothing new.
    again = run_load(store, warehouse, prefix=PREFIX, batch_size=4, max_file_bytes=1 << 20)
    assert again.files_loaded == 0 and again.files_failed == 0
    assert warehouse.raw_counts()["bundles"] == 5 and warehouse.raw_counts()["errors"] == 5
    keys = [PREFIX + "2026-000-good.json", PREFIX + "2026-100-invalid.json", PREFIX + "x.json"]
    assert warehouse.known_keys(keys) == set(keys[:2])


def test_oversize_file_is_quarantined(warehouse: SnowflakeWarehouse, store: LocalStore) -> None:
    objects = list(store.list_after(PREFIX, None))[:2]
    result = load_batch(store, warehouse, objects, max_file_bytes=10)
    assert result.files_loaded == 0 and result.files_failed == 2
    assert all("over the 10-byte limit" in r.reason for r in result.errors)


def test_failure_before_watermark_commit_rolls_back(
    warehouse: SnowflakeWarehouse, store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: SnowflakeWarehouse, row: tuple) -> None:
        raise RuntimeError("injected: crash before the watermark commit")

    monkeypatch.setattr(SnowflakeWarehouse, "_insert_watermark", boom)
    with pytest.raises(RuntimeError, match="injected"):
        run_load(store, warehouse, prefix=PREFIX, batch_size=20, max_file_bytes=1 << 20)
    assert warehouse.raw_counts() == EMPTY_RAW
    monkeypatch.undo()
    result = run_load(store, warehouse, prefix=PREFIX, batch_size=20, max_file_bytes=1 << 20)
    assert (result.files_loaded, result.files_failed) == (5, 5)
    # The same batch handed in again (a retried task) adds nothing.
    objects = list(store.list_after(PREFIX, None))
    again = load_batch(store, warehouse, objects, max_file_bytes=1 << 20)
    assert (again.files_loaded, again.files_failed) == (0, 0)
    assert rows(warehouse, "select count(*), count(distinct OBJECT_KEY) from RAW.FHIR_BUNDLES"
                ) == [(5, 5)]
    assert list_new_files(store, warehouse, prefix=PREFIX,
                          watermark=warehouse.last_watermark()) == []


def test_copy_mode_classification_from_copy_result_rows(warehouse: SnowflakeWarehouse) -> None:
    # What COPY would leave behind (fakesnow cannot run COPY from S3): rows in
    # FHIRFLOW_INCOMING named by METADATA$FILENAME, and per-file COPY result rows.
    for statement in batch_sql.BATCH_TABLES:
        warehouse.con.cursor().execute(statement)
    files = [("raw/patients/a.json", "patients/a.json", 100, None, "a.json"),
             ("raw/patients/b.json", "patients/b.json", 100, None, "b.json"),
             ("raw/patients/c.json", "patients/c.json", 100, None, "c.json"),
             ("raw/patients/d.ndjson", "patients/d.ndjson", 100, None, "d.ndjson")]
    warehouse.con.cursor().executemany(batch_sql.INSERT_BATCH_FILE, files)
    cur = warehouse.con.cursor()
    cur.execute("insert into FHIRFLOW_INCOMING select 'patients/a.json', "
                "parse_json('{\"resourceType\": \"Bundle\", \"type\": \"batch\"}'), 1, 'k1'")
    # COPY reads NDJSON natively: one row per line; line 2 did not parse.
    for line in (1, 3):
        cur.execute("insert into FHIRFLOW_INCOMING select 'patients/d.ndjson', parse_json("
                    "'{\"resourceType\": \"Patient\", \"id\": \"d" + str(line) + "\", "
                    "\"gender\": \"male\", \"birthDate\": \"2001-02-03\"}'), "
                    f"{line}, 'k2'")
    cur.executemany(batch_sql.INSERT_COPY_RESULT, [
        ("s3://bkt/raw/patients/a.json", "LOADED", 1, 1, 0, None, None),
        ("s3://bkt/raw/patients/b.json", "LOAD_FAILED", 1, 0, 1,
         "Error parsing JSON: incomplete object value", 1),
        ("s3://bkt/raw/patients/d.ndjson", "PARTIALLY_LOADED", 3, 2, 1,
         "Error parsing JSON: misplaced }", 2),
    ])
    for statement in (batch_sql.MATCH, batch_sql.CLASSIFY, batch_sql.CANDIDATES):
        cur.execute(statement)
    got = dict(rows(warehouse, "select OBJECT_KEY, REASON from FHIRFLOW_CLASSIFIED"))
    assert got == {"raw/patients/a.json": None,
                   "raw/patients/b.json": "Error parsing JSON: incomplete object value",
                   "raw/patients/c.json": "no JSON document in the file",
                   "raw/patients/d.ndjson": None}
    kinds = dict(rows(warehouse, "select OBJECT_KEY, KIND from FHIRFLOW_CLASSIFIED"))
    assert kinds["raw/patients/d.ndjson"] == "ndjson" and kinds["raw/patients/a.json"] == "bundle"
    candidates = rows(warehouse, "select LINE_NUMBER, RESOURCE_ID, REASON "
                                 "from FHIRFLOW_CANDIDATES order by 1")
    assert candidates == [(1, "d1", None),
                          (2, None, "1 lines could not be parsed; the first: "
                                    "Error parsing JSON: misplaced }"),
                          (3, "d3", None)]


def test_copy_and_stage_sql_text() -> None:
    sql = s3_stage.copy_sql("FHIR_BUNDLES_STAGE", ["patients/a.json", "patients/it's.json"])
    normal = " ".join(sql.split())
    assert normal.startswith("copy into FHIRFLOW_INCOMING_TEXT (FILENAME, TEXT, LINE_NUMBER)")
    assert ("select metadata$filename, $1, metadata$file_row_number "
            "from @RAW.FHIR_BUNDLES_STAGE") in normal
    lines = " ".join(s3_stage.copy_sql("S", ["patients/Patient.ndjson"], lines=True).split())
    assert "file_format = (format_name = RAW.FHIR_LINES)" in lines
    assert r"record_delimiter = '\n'" in raw_schema.LINES_FORMAT_DDL
    assert "files = ('patients/a.json', 'patients/it\\'s.json')" in normal
    assert "file_format = (format_name = RAW.FHIR_TEXT)" in normal
    assert "on_error = continue" in normal and "force = true" in normal
    with pytest.raises(ValueError):
        s3_stage.copy_sql("S", [f"f{i}" for i in range(s3_stage.MAX_FILES_PER_COPY + 1)])

    url = s3_stage.stage_url("synthea-fhir-data-dump", "raw")
    assert url == "s3://synthea-fhir-data-dump/raw/"
    with_int = s3_stage.stage_sql("FHIR_BUNDLES_STAGE", url, storage_integration="S3_INT")
    assert with_int == ("create or replace stage RAW.FHIR_BUNDLES_STAGE "
                        "url = 's3://synthea-fhir-data-dump/raw/' storage_integration = S3_INT "
                        "file_format = RAW.FHIR_TEXT")
    with_keys = s3_stage.stage_sql("S", url, aws_key_id="AKIA", aws_secret_key="s3cr3t")
    assert "credentials = (aws_key_id = 'AKIA' aws_secret_key = 's3cr3t')" in with_keys
    with pytest.raises(ConfigError, match="SNOWFLAKE_STORAGE_INTEGRATION"):
        s3_stage.stage_sql("S", url)
    assert "field_delimiter = none record_delimiter = none" in raw_schema.FILE_FORMAT_DDL
    assert "not in (select OBJECT_KEY from RAW.FHIR_BUNDLES)" in batch_sql.INSERT_BUNDLES


def test_stage_creation_runs_and_keeps_secrets_out_of_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import snowflake.connector

    ddl = s3_stage.stage_sql("FHIR_BUNDLES_STAGE", "s3://bkt/raw/", aws_key_id="AKIA",
                             aws_secret_key="very-secret-value")
    with fakesnow.patch():
        con = snowflake.connector.connect(account="a", user="u", password="p",
                                          database="SYNTHEA", schema="RAW", paramstyle="qmark")
        wh = SnowflakeWarehouse(con, description="fakesnow", mode="copy", stage_ddl=ddl,
                                stage_url="s3://bkt/raw/")
        with caplog.at_level(logging.DEBUG):
            wh.create_tables()
        # COPY mode refuses files outside the stage (a local store, another bucket or
        # prefix), before any COPY runs.
        with pytest.raises(ConfigError, match="--store s3"):
            load_batch(LocalStore(Path("/nonexistent")), wh,
                       [StoredObject("raw/patients/a.json", 1)], max_file_bytes=1 << 20)
        for url in ("s3://other/raw/patients/a.json", "s3://bkt/elsewhere/a.json"):
            with pytest.raises(ConfigError, match="--store s3"):
                wh.load_batch("x", [BatchFile("raw/patients/a.json", 1, url=url)], rejected=[],
                              started_at=datetime.now(UTC))
        assert wh.raw_counts() == EMPTY_RAW
        wh.close()
    assert "very-secret-value" not in caplog.text


def test_from_settings_needs_account(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="SNOWFLAKE_ACCOUNT"):
        SnowflakeWarehouse.from_settings(settings)


def test_unreachable_snowflake_is_one_line(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = load_settings(home=settings.home, snowflake_account="acct", snowflake_user="u",
                      snowflake_password="p", snowflake_host="127.0.0.1", snowflake_port=9,
                      snowflake_protocol="http", snowflake_load_mode="insert")
    monkeypatch.setattr("snowflake.connector.connect",
                        _failing_connect)
    with pytest.raises(FhirflowError,
                       match=r"cannot connect to Snowflake account 'acct' as 'u' \(password\)"):
        SnowflakeWarehouse.from_settings(s)


def _failing_connect(**kwargs: object) -> None:
    import snowflake.connector

    raise snowflake.connector.errors.OperationalError(msg="connection refused")


def test_cli_load_warehouse_snowflake_store_s3(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, fakesnow_server: Callable[..., Any]
) -> None:
    """`fhirflow upload --store s3` + `load --warehouse snowflake` against moto and a fakesnow
    server, as separate processes. Mode insert runs end to end; mode copy gets as far as the
    COPY statement, which fakesnow cannot run (one clear error line)."""
    home = tmp_path / "home"
    land(home / "output/bundles",
         {f"p{i}/b{i}.json": bundle(f"p{i}") for i in range(3)} | {"p9/bad.json": b"{bad"})
    with moto_s3("fhirflow-sf") as s3, fakesnow_server() as conn:
        snowflake = {
            "SNOWFLAKE_ACCOUNT": conn["account"], "SNOWFLAKE_USER": conn["user"],
            "SNOWFLAKE_PASSWORD": conn["password"], "SNOWFLAKE_HOST": conn["host"],
            "SNOWFLAKE_PORT": str(conn["port"]), "SNOWFLAKE_PROTOCOL": conn["protocol"],
            # fakesnow servers in one process share their databases: use our own
            "SNOWFLAKE_DATABASE": f"SYNTHEA_{uuid.uuid4().hex[:8].upper()}",
        }
        env = clean_environ(FHIRFLOW_HOME=str(home), **s3.env, **snowflake)

        def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
            return run_cli(*args, env={**env, **extra})

        up = cli("upload", "--store", "s3")
        assert up.returncode == 0, up.stderr
        copy = cli("load", "--warehouse", "snowflake", "--store", "s3")
        assert copy.returncode == 1, copy.stderr
        assert "error: Snowflake rejected `copy into FHIRFLOW_INCOMING" in copy.stderr
        assert "testing" not in copy.stderr  # no AWS secret in the message

        load = cli("load", "--warehouse", "snowflake", "--store", "s3",
                   FHIRFLOW_SNOWFLAKE_LOAD_MODE="insert")
        assert load.returncode == 0, load.stderr
        assert "1 file quarantined" in load.stdout
        assert "bad.json.gz: invalid JSON" in load.stderr  # the key: stored compressed
        again = cli("load", "--warehouse", "snowflake", "--store", "s3",
                    FHIRFLOW_SNOWFLAKE_LOAD_MODE="insert")
        assert again.returncode == 0, again.stderr
        assert "│ load  │     0 │" in again.stdout
        # status only reads: mode copy (the default) without any AWS keys works.
        no_aws = clean_environ(FHIRFLOW_HOME=str(home), FHIRFLOW_WAREHOUSE="snowflake",
                               **snowflake)
        status = run_cli("status", "--json", env=no_aws)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["raw"] == {"bundles": 3, "errors": 1, "loads": 1,
                                                    "resources": 3, "entry_errors": 0}


def test_stage_errors_never_show_the_secret_key() -> None:
    from fhirflow.warehouse.snowflake.client import redacted
    from fhirflow.warehouse.snowflake.s3_stage import stage_sql

    ddl = stage_sql("S", "s3://b/raw/", aws_key_id="AKIAEXAMPLE",
                    aws_secret_key="wJalr/K7MDENG+bPxRfi")
    echoed = "SQL compilation error: invalid value 'wJalr/K7MDENG+bPxRfi' for AWS_SECRET_KEY"
    assert "wJalr" not in redacted(echoed, ddl)
    assert "invalid value '***'" in redacted(echoed, ddl)


def test_a_key_listed_twice_in_one_batch_loads_once(warehouse: SnowflakeWarehouse,
                                                    store: LocalStore) -> None:
    # A hand-made or merged list can name a key twice; the batch is still exactly once
    # (Snowflake does not enforce the primary key, so a duplicate would be a second row).
    good = [o for o in store.list_after(PREFIX, None) if o.key.endswith("good.json")][:2]
    result = load_batch(store, warehouse, [good[0], good[1], good[0]], max_file_bytes=1 << 20)
    assert (result.files_loaded, result.files_failed) == (2, 0), result.errors
    assert rows(warehouse, "select count(*), count(distinct OBJECT_KEY) from RAW.FHIR_BUNDLES"
                ) == [(2, 2)]


def test_reading_needs_no_stage_credentials(settings: Settings) -> None:
    # `fhirflow status` and `export-csv` only read; in mode copy without a storage integration
    # or AWS keys they still open the warehouse. Creating the stage (the load) is what fails.
    s = load_settings(home=settings.home, snowflake_account="acct", snowflake_user="u",
                      snowflake_password="p")
    assert s.snowflake_load_mode == "copy" and s.aws_secret_access_key is None
    with fakesnow.patch():
        wh = SnowflakeWarehouse.from_settings(s)
        try:
            assert wh.model_counts() == {"staging": {}, "intermediate": {}, "marts": {}}
            with pytest.raises(ConfigError, match="SNOWFLAKE_STORAGE_INTEGRATION"):
                wh.create_tables()
        finally:
            wh.close()


def test_compressed_objects_load_beside_plain_ones(
        warehouse: SnowflakeWarehouse, tmp_path: Path) -> None:
    # The upload stores objects gzip-compressed under `<stamp>-<seq>z-<name>.gz`; an older
    # version stored them plain. Mode insert inflates them; COPY (mode copy) is told
    # COMPRESSION = AUTO. Their source names are the landed files' names either way.
    lake = LocalStore(tmp_path / "lake")
    lines = b"".join(json.dumps({"resourceType": "Patient", "id": f"n{i}", "gender": "male",
                                 "birthDate": "2000-01-01"}).encode() + b"\n" for i in range(3))
    src = tmp_path / "src"
    src.mkdir()
    for key, data, compress in [
        ("20261101T000000000000Z-000000-old.json", bundle("old"), False),
        ("20261101T000001000000Z-000000z-new.json.gz", bundle("new"), True),
        ("20261101T000001000000Z-000001z-P.ndjson.gz", lines, True),
    ]:
        (src / "f").write_bytes(data)
        lake.put_file(PREFIX + key, src / "f", compress=compress)
        if not compress:  # loaded before the new version's objects arrive
            first = run_load(lake, warehouse, prefix=PREFIX, batch_size=10,
                             max_file_bytes=1 << 20)
            assert first.files_loaded == 1
    result = run_load(lake, warehouse, prefix=PREFIX, batch_size=10, max_file_bytes=1 << 20)
    assert (result.files_loaded, result.files_failed) == (2, 0)
    ids = sorted(r[0] for r in rows(warehouse, "select RESOURCE_ID from RAW.FHIR_RESOURCES"))
    assert ids == ["n0", "n1", "n2", "new", "old"]
    names = sorted(r[0] for r in rows(warehouse, "select SOURCE_NAME from RAW.FHIR_BUNDLES"))
    assert names == ["P.ndjson", "new.json", "old.json"]
    assert "compression = auto" in raw_schema.FILE_FORMAT_DDL
    assert "compression = auto" in raw_schema.LINES_FORMAT_DDL


def test_a_resent_object_is_not_loaded_twice(warehouse: SnowflakeWarehouse,
                                             tmp_path: Path) -> None:
    # The upload sends a file again under a new key when the store lost it (or the ledger was
    # reset); RAW already holds that content, so the load passes over it, as on DuckDB
    # (test_untrusted_store). A changed file under the same name still loads.
    lake = LocalStore(tmp_path / "lake")
    src = tmp_path / "src"
    src.mkdir()
    lines = b"".join(json.dumps({"resourceType": "Patient", "id": f"n{i}", "gender": "male",
                                 "birthDate": "2000-01-01"}).encode() + b"\n" for i in range(3))

    def put(stamp: str, name: str, data: bytes) -> None:
        (src / "f").write_bytes(data)
        lake.put_file(f"{PREFIX}2026110{stamp}T000000000000Z-000000z-{name}.gz", src / "f",
                      compress=True)

    put("1", "a.json", bundle("a"))
    put("1", "P.ndjson", lines)
    first = run_load(lake, warehouse, prefix=PREFIX, batch_size=10, max_file_bytes=1 << 20)
    assert (first.files_loaded, first.files_failed) == (2, 0)
    put("2", "a.json", bundle("a"))
    put("2", "P.ndjson", lines)
    again = run_load(lake, warehouse, prefix=PREFIX, batch_size=10, max_file_bytes=1 << 20)
    assert (again.files_loaded, again.files_failed) == (0, 0)
    assert rows(warehouse, "select count(*) from RAW.FHIR_BUNDLES") == [(2,)]
    assert rows(warehouse, "select count(*) from RAW.FHIR_RESOURCES") == [(4,)]
    put("3", "a.json", bundle("a2"))
    changed = run_load(lake, warehouse, prefix=PREFIX, batch_size=10, max_file_bytes=1 << 20)
    assert changed.files_loaded == 1
    assert rows(warehouse, "select count(*) from RAW.FHIR_BUNDLES") == [(3,)]
