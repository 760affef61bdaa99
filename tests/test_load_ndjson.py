"""FHIR Bulk Data NDJSON input (issue 17): files of one resource per line, plain or gzip,
alone or beside bundles, load into RAW.FHIR_RESOURCES with their file and line; a bad line
is quarantined with its line number and the lines around it load; exactly once."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from _helpers import duckdb_rows, land, upload_and_load
from fhirflow.config import Settings, load_settings
from fhirflow.warehouse import entry_rules, files


def patient(i: int) -> dict[str, object]:
    return {"resourceType": "Patient", "id": f"n{i}", "gender": "female",
            "birthDate": "1990-01-01"}


def condition(i: int) -> dict[str, object]:
    return {"resourceType": "Condition", "id": f"c{i}",
            "subject": {"reference": f"Patient/n{i}"}}


def bundle_of(*resources: dict[str, object]) -> bytes:
    return json.dumps({"resourceType": "Bundle", "type": "transaction",
                       "entry": [{"resource": r} for r in resources]}).encode()


def ndjson(resources: list[dict[str, object]]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in resources)


@pytest.fixture
def s(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Settings:
    return load_settings(home=tmp_path / "home", max_file_mb=1 / 1024, load_batch_size=3)


def rows(settings: Settings, sql: str) -> list[tuple]:
    return duckdb_rows(settings.duckdb_path, sql)


def test_ndjson_plain_gzip_and_bundles_load_side_by_side(s: Settings) -> None:
    # Over the 1 KB bundle limit: NDJSON streams, so the limit does not apply to it.
    patients = ndjson([patient(i) for i in range(40)])
    assert len(patients) > s.max_file_bytes
    land(s.landing_dir, {
        "_run/Patient.ndjson": patients,
        "_run/Condition.000.ndjson.gz": gzip.compress(ndjson([condition(i) for i in range(5)])),
        "p1/b1.json": bundle_of(patient(99)),
    })
    res = upload_and_load(s)
    assert (res.files_loaded, res.files_failed, res.entries_rejected) == (3, 0, 0)
    assert res.entries_loaded == 46
    got = rows(s, "select resource_type, count(*), min(line_number), max(line_number) "
                  "from raw.fhir_resources group by 1 order by 1")
    assert got == [("Condition", 5, 1, 5), ("Patient", 41, 1, 40)]
    formats = rows(s, "select source_name, file_format, entries from raw.fhir_bundles "
                      "order by 1")
    assert formats == [("Condition.000.ndjson.gz", "ndjson", 5),
                       ("Patient.ndjson", "ndjson", 40), ("b1.json", "bundle", 1)]
    # The resource is the line, unchanged as JSON.
    (doc,) = rows(s, "select resource from raw.fhir_resources where resource_id = 'n7'")[0]
    assert json.loads(doc) == patient(7)


def test_kind_is_decided_by_content_not_name(s: Settings) -> None:
    land(s.landing_dir, {"_run/export.json": ndjson([patient(1), patient(2)]),
                         "p1/pretty.ndjson": json.dumps(json.loads(bundle_of(patient(3))),
                                                         indent=2)})
    res = upload_and_load(s)
    assert res.files_failed == 0, res.batches[0].errors
    assert rows(s, "select source_name, file_format, entries from raw.fhir_bundles "
                   "order by 1") == [("export.json", "ndjson", 2), ("pretty.ndjson", "bundle", 1)]


def test_bad_lines_are_quarantined_with_their_line_and_the_rest_loads(s: Settings) -> None:
    lines = [
        json.dumps(patient(1)).encode(),
        b"",                                                       # 2: blank, skipped
        b'{"resourceType": "Patient", "id": "n3", "gender": tx',   # 3: invalid
        json.dumps(patient(4)).encode(),
        b'{"resourceType": "Patient", "id": "caf\xe9"}',           # 5: not UTF-8
        b"[1, 2]",                                                 # 6: not an object
        json.dumps({"resourceType": "Patient", "gender": "male"}).encode(),  # 7: no id
        json.dumps(patient(8)).encode(),
    ]
    land(s.landing_dir, {"_run/Patient.ndjson": b"\n".join(lines) + b"\n"})
    res = upload_and_load(s)
    assert res.files_loaded == 1 and res.files_failed == 0
    assert (res.entries_loaded, res.entries_rejected) == (3, 4)
    assert rows(s, "select line_number from raw.fhir_resources order by 1") == [(1,), (4,), (8,)]
    errors = rows(s, "select line_number, reason from raw.entry_errors order by 1")
    assert errors == [(3, entry_rules.INVALID_LINE), (5, entry_rules.INVALID_LINE),
                      (6, entry_rules.NO_RESOURCE_TYPE), (7, entry_rules.NO_ID)]
    assert [e.where() for e in res.batches[0].entry_errors] == [
        "line 3", "line 5", "line 6", "line 7"]


def test_lines_across_block_boundaries_keep_their_numbers(
    s: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 64-byte blocks: every block boundary falls inside a line, many lines per file.
    monkeypatch.setattr(files, "BLOCK_BYTES", 64)
    resources = [patient(i) for i in range(200)]
    body = ndjson(resources)
    land(s.landing_dir, {"_run/Patient.ndjson.gz": gzip.compress(body)})
    res = upload_and_load(s)
    assert res.entries_loaded == 200 and res.entries_rejected == 0
    got = rows(s, "select line_number, resource_id from raw.fhir_resources order by 1")
    assert got == [(i + 1, f"n{i}") for i in range(200)]


def test_blocks_hold_whole_lines_and_bounded_bytes(tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_bytes(b"a\n" + b"b" * 300 + b"\nc\nd")
    got = list(files.blocks(path, block_bytes=100))
    # "a", then the long line with "c" (read together), then "d" on line 4.
    assert [b.first_line for b in got] == [1, 2, 4]
    assert b"".join(b.raw for b in got) == path.read_bytes()
    assert all(b.raw.endswith(b"\n") for b in got[:-1])


def test_rerun_adds_nothing_and_a_damaged_gzip_is_one_file_error(s: Settings) -> None:
    good = gzip.compress(ndjson([patient(i) for i in range(30)]))
    land(s.landing_dir, {"_run/Patient.ndjson.gz": good,
                         "_run/Broken.ndjson.gz": good[: len(good) // 2]})
    first = upload_and_load(s)
    assert first.files_loaded == 1 and first.files_failed == 1
    assert "gzip" in first.batches[0].errors[0].reason
    before = rows(s, "select (select count(*) from raw.fhir_resources), "
                     "(select count(*) from raw.entry_errors), "
                     "(select count(*) from raw.load_errors)")
    assert before == [(30, 0, 1)]
    again = upload_and_load(s)
    assert again.files_loaded == 0 and again.files_failed == 0
    assert rows(s, "select (select count(*) from raw.fhir_resources), "
                   "(select count(*) from raw.entry_errors), "
                   "(select count(*) from raw.load_errors)") == before
