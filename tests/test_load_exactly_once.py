"""Exactly once: whatever dies between loading a batch and committing its watermark, a re-run
leaves each file in RAW once; listing re-reads a grace window for keys that arrive late."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from _helpers import duckdb_rows, land, patient_files, upload_local
from fhirflow.config import Settings
from fhirflow.load import (
    LISTING_GRACE,
    LoadResult,
    list_new_files,
    listing_start,
    load_batch,
    run_load,
)
from fhirflow.store import LocalStore
from fhirflow.upload import upload_landing
from fhirflow.warehouse.duckdb import DuckDBWarehouse

MAX = 1 << 20


def land_patients(settings: Settings, n: int, start: int = 0) -> None:
    land(settings.landing_dir, patient_files(n, start))


def upload(settings: Settings) -> LocalStore:
    return upload_local(settings)[0]


def load(settings: Settings, store: LocalStore, batch_size: int = 3) -> LoadResult:
    wh = DuckDBWarehouse(settings.duckdb_path)
    try:
        return run_load(store, wh, prefix=settings.patients_prefix, batch_size=batch_size,
                        max_file_bytes=MAX)
    finally:
        wh.close()


def counts(settings: Settings) -> tuple[int, int, int]:
    """(bundles, distinct keys, loads) in RAW."""
    return duckdb_rows(
        settings.duckdb_path,
        "select count(*), count(distinct object_key), "
        "(select count(*) from raw.load_watermark) from raw.fhir_bundles",
    )[0]


def stored_keys(store: LocalStore, settings: Settings) -> list[str]:
    return [o.key for o in store.list_after(settings.patients_prefix, None)]


# -- watermark and listing ------------------------------------------------------------------

def test_listing_starts_one_grace_window_below_the_watermark() -> None:
    prefix = "raw/patients/"
    mark = prefix + "20260101T120000000000Z-000007-x.json"
    start = listing_start(prefix, mark)
    assert start == prefix + (datetime(2026, 1, 1, 12) - LISTING_GRACE).strftime(
        "%Y%m%dT%H%M%S%fZ")
    assert listing_start(prefix, None) is None
    assert listing_start(prefix, prefix + "not-our-name.json") == prefix


def test_no_watermark_until_a_batch_commits(settings: Settings) -> None:
    land_patients(settings, 2)
    store = upload(settings)
    wh = DuckDBWarehouse(settings.duckdb_path)
    try:
        wh.create_tables()
        assert wh.last_watermark() is None
        new = list_new_files(store, wh, prefix=settings.patients_prefix, watermark=None)
        assert len(new) == 2
        batch = load_batch(store, wh, new, max_file_bytes=MAX)
        assert wh.last_watermark() == max(o.key for o in new) == batch.watermark
        assert list_new_files(store, wh, prefix=settings.patients_prefix,
                              watermark=wh.last_watermark()) == []
    finally:
        wh.close()


def test_late_key_inside_the_grace_window_is_loaded(settings: Settings) -> None:
    land_patients(settings, 3)
    store = upload(settings)
    load(settings, store)
    wh_mark = max(stored_keys(store, settings))
    stamp = datetime.strptime(wh_mark.removeprefix(settings.patients_prefix).split("-")[0],
                              "%Y%m%dT%H%M%S%fZ")
    # An upload that began earlier finishes now: its key sorts below the watermark.
    late_key = (settings.patients_prefix
                + (stamp - timedelta(minutes=10)).strftime("%Y%m%dT%H%M%S%fZ")
                + "-000000-late.json")
    src = settings.home / "late.json"
    src.write_text('{"resourceType": "Bundle", "type": "batch"}')
    store.put_file(late_key, src)
    assert late_key < wh_mark
    res = load(settings, store)
    assert res.files_loaded == 1
    assert counts(settings)[:2] == (4, 4)


# -- failures between loading and committing -------------------------------------------------

def test_failure_before_watermark_commit_rolls_back_the_batch(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    land_patients(settings, 7)
    store = upload(settings)
    calls = {"n": 0}
    real = DuckDBWarehouse._insert_watermark

    def flaky(self: DuckDBWarehouse, row: list[object]) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # second batch: rows inserted, watermark insert fails
            raise RuntimeError("injected: crash before the watermark commit")
        real(self, row)

    monkeypatch.setattr(DuckDBWarehouse, "_insert_watermark", flaky)
    with pytest.raises(RuntimeError, match="injected"):
        load(settings, store, batch_size=3)
    assert counts(settings) == (3, 3, 1)  # only the first batch is in RAW

    monkeypatch.setattr(DuckDBWarehouse, "_insert_watermark", real)
    res = load(settings, store, batch_size=3)
    assert res.files_loaded == 4
    assert counts(settings)[:2] == (7, 7)
    assert load(settings, store).files_loaded == 0
    assert counts(settings)[:2] == (7, 7)


def test_process_killed_mid_batch_then_rerun(settings: Settings) -> None:
    land_patients(settings, 5)
    store = upload(settings)
    # A separate process dies (os._exit, no cleanup) after inserting a batch's rows and
    # before its commit, as a kill -9 would.
    script = f"""
import os
from fhirflow.load import run_load
from fhirflow.store import LocalStore
from fhirflow.warehouse.duckdb import DuckDBWarehouse
DuckDBWarehouse._insert_watermark = lambda self, row: os._exit(9)
wh = DuckDBWarehouse(__import__("pathlib").Path({str(settings.duckdb_path)!r}))
run_load(LocalStore(__import__("pathlib").Path({str(settings.lake_dir)!r})), wh,
         prefix={settings.patients_prefix!r}, batch_size=2, max_file_bytes={MAX})
"""
    proc = subprocess.run([sys.executable, "-c", script], timeout=120, env=os.environ.copy())
    assert proc.returncode == 9
    assert counts(settings) == (0, 0, 0)
    assert load(settings, store, batch_size=2).files_loaded == 5
    assert counts(settings)[:2] == (5, 5)


def test_same_batch_loaded_twice_adds_nothing(settings: Settings) -> None:
    # An Airflow task retried after its commit succeeded hands the same list in again.
    land_patients(settings, 4)
    store = upload(settings)
    wh = DuckDBWarehouse(settings.duckdb_path)
    try:
        wh.create_tables()
        objects = list(store.list_after(settings.patients_prefix, None))
        objects.append(objects[0])  # and a duplicate inside one list
        first = load_batch(store, wh, objects[:3], max_file_bytes=MAX)
        again = load_batch(store, wh, objects, max_file_bytes=MAX)
        assert first.files_loaded == 3 and again.files_loaded == 1
    finally:
        wh.close()
    assert counts(settings)[:2] == (4, 4)


def test_rerun_of_upload_and_load_adds_nothing(settings: Settings) -> None:
    land_patients(settings, 4)
    store = upload(settings)
    load(settings, store)
    keys = stored_keys(store, settings)
    store = upload(settings)
    load(settings, store)
    assert stored_keys(store, settings) == keys
    assert counts(settings)[:2] == (4, 4)


def test_crash_mid_upload_then_rerun_has_no_duplicates(settings: Settings) -> None:
    from fhirflow.upload import UploadLedger, ledger_path, ledger_scope

    land_patients(settings, 4)
    store = upload(settings)
    load(settings, store)
    land_patients(settings, 3, start=10)
    # Simulate a run that planned 3 uploads, put one of them, and died before confirming.
    from fhirflow.digest import file_sha256
    from fhirflow.landing import iter_landed

    new = [f for f in iter_landed(settings.landing_dir) if f.path.name >= "b010"]
    # The dead run started a few minutes ago (its stamp is in its keys).
    stamp = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y%m%dT%H%M%S%fZ")
    scope = ledger_scope(store, settings.patients_prefix)
    with UploadLedger(ledger_path(settings.state_dir), scope) as ledger:
        plans = [(f.relpath, file_sha256(f.path), f.size,
                  f"{settings.patients_prefix}{stamp}-{i:06d}-{f.path.name}")
                 for i, f in enumerate(new)]
        ledger.plan_many(plans)
    store.put_file(plans[0][3], new[0].path)  # arrived; the other two never did

    result = upload_landing(settings.landing_dir, store, prefix=settings.patients_prefix,
                            state_dir=settings.state_dir)
    assert result.uploaded == 2 and result.already_uploaded == 5
    keys = stored_keys(store, settings)
    assert len(keys) == 7
    # The arrived one is confirmed under its key; the two that never arrived got fresh keys
    # (a key from the dead run could sort below a watermark that passed it meanwhile).
    assert plans[0][3] in keys
    assert plans[1][3] not in keys and plans[2][3] not in keys
    load(settings, store)
    assert counts(settings)[:2] == (7, 7)


def test_a_key_listed_twice_in_one_batch_loads_once(settings: Settings) -> None:
    land_patients(settings, 2)
    store = upload(settings)
    wh = DuckDBWarehouse(settings.duckdb_path)
    try:
        wh.create_tables()
        a, b = store.list_after(settings.patients_prefix, None)
        batch = load_batch(store, wh, [a, b, a], max_file_bytes=MAX)
        assert (batch.files_loaded, batch.files_failed, batch.files_seen) == (2, 0, 2)
    finally:
        wh.close()
    assert counts(settings)[:2] == (2, 2)


def test_given_objects_load_exactly_those_in_batches(settings: Settings) -> None:
    # An Airflow task loads the listing an earlier task made: only those keys, not whatever
    # else arrived meanwhile, in batches, and a retry skips what a first try committed.
    land_patients(settings, 7)
    store = upload(settings)
    listed = list(store.list_after(settings.patients_prefix, None))
    wanted = listed[1:6]
    wh = DuckDBWarehouse(settings.duckdb_path)
    try:
        first = run_load(store, wh, prefix=settings.patients_prefix, batch_size=2,
                         max_file_bytes=MAX, objects=wanted[:3])
        assert (first.files_loaded, len(first.batches), first.files_skipped) == (3, 2, 0)
        retry = run_load(store, wh, prefix=settings.patients_prefix, batch_size=2,
                         max_file_bytes=MAX, objects=wanted + [wanted[0]])
        assert (retry.files_loaded, len(retry.batches), retry.files_skipped) == (2, 1, 3)
        loaded = {k for (k,) in wh.con.execute("select object_key from raw.fhir_bundles")
                  .fetchall()}
        assert loaded == {o.key for o in wanted}
        assert run_load(store, wh, prefix=settings.patients_prefix, batch_size=2,
                        max_file_bytes=MAX, objects=[]).batches == []
    finally:
        wh.close()
