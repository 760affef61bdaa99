"""Bad files never stop the good ones beside them and are never dropped silently.

Each kind of bad file gets a RAW.LOAD_ERRORS row with its key and reason; the summary
counts them; a re-run of upload + load adds nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from _helpers import bundle, clean_environ, duckdb_rows, land, run_cli, upload_local
from fhirflow.config import Settings, load_settings
from fhirflow.load import LoadResult, run_load
from fhirflow.upload import UploadResult
from fhirflow.warehouse import files, reasons
from fhirflow.warehouse.duckdb import DuckDBWarehouse

HUGE = bundle("h", note="x" * 5000)
GOOD = {f"good{i}.json": bundle(f"p{i}") for i in range(3)}
# file name -> (content, the reason RAW.LOAD_ERRORS gives)
BAD = {
    "invalid.json": (b'{"resourceType": "Bundle", "type": tx}', reasons.INVALID_JSON),
    "truncated.json": (bundle("t")[:40], reasons.INVALID_JSON),
    "empty.json": (b"", reasons.EMPTY),
    "patient.json": (b'{"resourceType": "Patient", "id": "x"}', reasons.NOT_A_BUNDLE),
    "array.json": (b"[1, 2, 3]", reasons.NOT_A_BUNDLE),
    "latin1.json": ('{"resourceType": "Bundle", "x": "café"}'.encode("latin-1"),
                    reasons.NOT_UTF8),
    "bom.json": (b"\xef\xbb\xbf" + bundle("b"), reasons.BYTE_ORDER_MARK),
    # Stored gzip-compressed (a few hundred bytes): its limit applies to what it inflates to.
    "huge.json": (HUGE, reasons.inflates_too_big(4096)),
}


@pytest.fixture
def small_limit(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Settings:
    # 4 KB: every good bundle fits, huge.json does not.
    return load_settings(home=tmp_path / "home", max_file_mb=4 / 1024, load_batch_size=4)


def upload_and_load(settings: Settings) -> tuple[UploadResult, LoadResult]:
    store, up = upload_local(settings)
    wh = DuckDBWarehouse(settings.duckdb_path)
    try:
        res = run_load(store, wh, prefix=settings.patients_prefix,
                       batch_size=settings.load_batch_size,
                       max_file_bytes=settings.max_file_bytes)
    finally:
        wh.close()
    return up, res


def raw(settings: Settings, sql: str) -> list[tuple]:
    return duckdb_rows(settings.duckdb_path, sql)


def land_mixed(settings: Settings, files: dict[str, bytes]) -> None:
    land(settings.landing_dir, {f"mixed/{name}": data for name, data in files.items()})


def test_each_bad_kind_is_quarantined_with_its_reason(small_limit: Settings) -> None:
    land_mixed(small_limit, GOOD | {name: data for name, (data, _) in BAD.items()})
    up, res = upload_and_load(small_limit)
    assert up.uploaded == len(GOOD) + len(BAD)
    assert res.files_loaded == len(GOOD)
    assert res.files_failed == len(BAD)

    loaded = raw(small_limit, "select object_key from raw.fhir_bundles")
    assert sorted(files.source_name(k) for (k,) in loaded) == sorted(GOOD)
    errors = dict(
        (files.source_name(k), reason)
        for k, reason in raw(small_limit, "select object_key, reason from raw.load_errors")
    )
    assert set(errors) == set(BAD)
    for name, (_, reason) in BAD.items():
        assert errors[name] == reason, name
    # Every key is either a bundle or an error: nothing dropped.
    assert len(loaded) + len(errors) == up.uploaded


def test_bad_batch_neighbours_still_load_in_every_batch(small_limit: Settings) -> None:
    # Batches of 4 mixing good and bad files: every batch commits its good ones.
    files = {}
    for i in range(6):
        files[f"f{i}g.json"] = bundle(f"q{i}")
        files[f"f{i}h.json"] = b"{not json"
    land_mixed(small_limit, files)
    _, res = upload_and_load(small_limit)
    assert len(res.batches) == 3
    assert all(b.files_loaded == 2 and b.files_failed == 2 for b in res.batches)


def test_rerun_of_upload_and_load_adds_nothing(small_limit: Settings) -> None:
    land_mixed(small_limit, GOOD | {name: data for name, (data, _) in BAD.items()})
    upload_and_load(small_limit)
    before = raw(small_limit, "select (select count(*) from raw.fhir_bundles), "
                              "(select count(*) from raw.load_errors)")
    up, res = upload_and_load(small_limit)
    assert up.uploaded == 0 and up.already_uploaded == len(GOOD) + len(BAD)
    assert res.files_loaded == 0 and res.files_failed == 0
    assert raw(small_limit, "select (select count(*) from raw.fhir_bundles), "
                            "(select count(*) from raw.load_errors)") == before


def test_cli_load_prints_each_quarantined_file(small_limit: Settings) -> None:
    land_mixed(small_limit, GOOD | {"empty.json": b"", "patient.json": BAD["patient.json"][0]})
    env = clean_environ(FHIRFLOW_HOME=str(small_limit.home))
    up = run_cli("upload", env=env)
    assert up.returncode == 0, up.stderr
    result = run_cli("load", env=env)
    assert result.returncode == 0, result.stderr
    assert "2 files quarantined in RAW.LOAD_ERRORS" in result.stdout
    # Named by object key: the store keeps them gzip-compressed.
    assert "empty.json.gz: empty file" in result.stderr
    assert "patient.json.gz: valid JSON but not a FHIR Bundle" in result.stderr
