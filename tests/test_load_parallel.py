"""The DuckDB load parses a batch's bundles outside its transaction, in shares side by side on
connections of their own, and hashes the files in Python: the same RAW as one share gives, no
scratch left behind, and a file that vanishes before it is read is one file's error."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

from _helpers import bundle, duckdb_rows, land, patient_files, upload_and_load
from fhirflow.config import Settings, load_settings
from fhirflow.warehouse import BatchFile, duckdb_load, reasons, utcnow
from fhirflow.warehouse.duckdb import DuckDBWarehouse

# Columns of each RAW table that do not depend on when or in which load a row was written.
STABLE = {
    "fhir_resources": "object_key, entry_index, resource_type, resource_id, full_url, "
                      "request_method, request_url, bundle_type, resource::varchar",
    "fhir_bundles": "object_key, bundle_type, file_size, content_hash, entries, "
                    "entries_rejected, source_name",
    "entry_errors": "object_key, entry_index, resource_type, resource_id, reason",
    "load_errors": "object_key, file_size, reason",
}


def raw_tables(path: Path) -> dict[str, list[tuple]]:
    return {t: sorted(duckdb_rows(path, f"select {c} from raw.{t}"), key=repr)
            for t, c in STABLE.items()}


def mixed_landing(settings: Settings) -> None:
    bad_entry = b'{"resourceType": "Bundle", "type": "transaction", "entry": ' \
                b'[{"resource": {"resourceType": "Condition", "id": "c"}}, {"request": {}}]}'
    land(settings.landing_dir, {**patient_files(7), "bad/invalid.json": b"{nope",
                                "bad/entries.json": bad_entry, "bad/empty.json": b"",
                                "bad/none.json": b'{"resourceType": "Bundle", "type": "x"}'})


def test_shares_side_by_side_give_the_same_raw_as_one(tmp_path: Path,
                                                      clean_env: pytest.MonkeyPatch) -> None:
    homes = {}
    results = {}
    for threads in (1, 2):
        s = homes[threads] = load_settings(home=tmp_path / f"home{threads}", load_batch_size=5)
        mixed_landing(s)
        # One share, or two parsed side by side, whatever the machine's cores.
        clean_env.setattr(duckdb_load, "_threads", lambda con, n=threads: n)
        results[threads] = upload_and_load(s)
    assert results[1].files_loaded == results[2].files_loaded == 9
    assert results[1].entries_rejected == results[2].entries_rejected == 2

    def by_name(s: Settings) -> dict[str, list[tuple]]:
        tables = raw_tables(s.duckdb_path)
        # Keys differ by their upload stamp; the name after it is the landed file's.
        return {t: sorted((tuple(str(v).split("-", 2)[-1] if i == 0 else v
                                 for i, v in enumerate(row)) for row in rows), key=repr)
                for t, rows in tables.items()}

    assert by_name(homes[1]) == by_name(homes[2])
    assert by_name(homes[2])["load_errors"]  # the bad files are there, with their reasons


def test_no_scratch_database_outlives_a_batch_even_a_failed_one(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    land(settings.landing_dir, patient_files(3))
    upload_and_load(settings)
    wh = DuckDBWarehouse(settings.duckdb_path)
    try:
        def attached() -> list[str]:
            return [r[0] for r in wh.con.execute(
                "select database_name from duckdb_databases() "
                "where database_name like 'fhirflow_scratch%'").fetchall()]

        assert attached() == []
        monkeypatch.setattr(DuckDBWarehouse, "_insert_watermark",
                            lambda self, row: (_ for _ in ()).throw(RuntimeError("boom")))
        plain = settings.home / "extra.json"
        plain.write_bytes(bundle("x"))
        with pytest.raises(RuntimeError, match="boom"):
            wh.load_batch("L-failed", [BatchFile("raw/patients/extra.json", 10, path=plain)],
                          rejected=[], started_at=utcnow())
        assert attached() == []
        assert wh.known_keys(["raw/patients/extra.json"]) == set()
    finally:
        wh.close()


def test_a_file_gone_before_it_is_read_is_one_error_and_the_rest_loads(
        settings: Settings) -> None:
    folder = settings.home / "batch"
    folder.mkdir(parents=True)
    good = folder / "good.json"
    good.write_bytes(bundle("g"))
    packed = folder / "packed.json.gz"
    packed.write_bytes(gzip.compress(bundle("z")))
    wh = DuckDBWarehouse(settings.duckdb_path)
    try:
        wh.create_tables()
        result = wh.load_batch(
            "L-gone",
            [BatchFile("raw/patients/good.json", good.stat().st_size, path=good),
             BatchFile("raw/patients/packed.json.gz", packed.stat().st_size, path=packed),
             BatchFile("raw/patients/gone.json", 123, path=folder / "gone.json")],
            rejected=[], started_at=utcnow())
    finally:
        wh.close()
    assert result.files_loaded == 2
    assert [(e.key, e.reason) for e in result.errors] == [("raw/patients/gone.json",
                                                          reasons.GONE)]
    # The content hash is the inflated content's SHA-256, whether stored plain or gzip.
    hashes = dict(duckdb_rows(settings.duckdb_path,
                              "select object_key, content_hash from raw.fhir_bundles"))
    assert hashes == {"raw/patients/good.json": hashlib.sha256(bundle("g")).hexdigest(),
                      "raw/patients/packed.json.gz": hashlib.sha256(bundle("z")).hexdigest()}
