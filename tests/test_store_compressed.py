"""Disk (issue 11, item 5): `--from-dir` lands by hard link, the object store keeps objects
gzip-compressed, and every reader still gets the content, exactly once, beside objects an
older version stored plain."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest

from _helpers import bundle, duckdb_rows, land, moto_s3, upload_local
from fhirflow.config import Settings, load_settings
from fhirflow.landing import ingest_synthea_output, list_landed
from fhirflow.load import LoadResult, run_load
from fhirflow.store import LocalStore, ObjectStore, open_store
from fhirflow.upload import upload_landing
from fhirflow.warehouse import files, reasons
from fhirflow.warehouse.duckdb import DuckDBWarehouse


def _load(settings: Settings, store: ObjectStore | None = None, *,
          max_file_bytes: int = 1 << 26) -> LoadResult:
    wh = DuckDBWarehouse(settings.duckdb_path)
    try:
        return run_load(store or LocalStore(settings.lake_dir), wh,
                        prefix=settings.patients_prefix, batch_size=50,
                        max_file_bytes=max_file_bytes)
    finally:
        wh.close()


def _raw(settings: Settings, sql: str) -> list[tuple]:
    return duckdb_rows(settings.duckdb_path, sql)


def _ndjson(ids: list[str]) -> bytes:
    return b"".join(json.dumps({"resourceType": "Patient", "id": i, "gender": "unknown",
                                "birthDate": "2000-01-01"}).encode() + b"\n" for i in ids)


def _synthea_folder(folder: Path, n: int) -> dict[str, bytes]:
    folder.mkdir(parents=True)
    out = {}
    for i in range(n):
        name = f"Given{i}_Family{i}_0000000{i}-aaaa-bbbb-cccc-dddddddddddd.json"
        out[name] = bundle(f"0000000{i}-aaaa-bbbb-cccc-dddddddddddd", note="x" * 3000)
        (folder / name).write_bytes(out[name])
    return out


def test_from_dir_lands_by_hard_link_not_a_second_copy(settings: Settings,
                                                       tmp_path: Path) -> None:
    source = tmp_path / "synthea"
    written = _synthea_folder(source, 3)
    result = ingest_synthea_output(source, settings.landing_dir)
    assert result.copied == 3
    landed = {f.path.name: f.path for f in list_landed(settings.landing_dir)}
    for name, data in written.items():
        assert landed[name].read_bytes() == data
        assert os.path.samefile(landed[name], source / name)  # one inode: no second copy
        assert (source / name).stat().st_nlink == 2
    again = ingest_synthea_output(source, settings.landing_dir)
    assert (again.copied, again.unchanged) == (0, 3)
    # Removing the landed file (a clean-up) leaves the input alone.
    next(iter(landed.values())).unlink()
    assert all((source / n).read_bytes() == d for n, d in written.items())


def test_landing_copies_where_no_link_can_be_made(settings: Settings, tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second file system (/dev/shm) to link across")
    source = shm / f"fhirflow-test-{os.getpid()}"
    try:
        written = _synthea_folder(source, 2)
        result = ingest_synthea_output(source, settings.landing_dir)
        assert result.copied == 2
        for f in list_landed(settings.landing_dir):
            assert f.path.read_bytes() == written[f.path.name]
            assert not os.path.samefile(f.path, source / f.path.name)
    finally:
        for p in source.glob("*"):
            p.unlink()
        source.rmdir()


def test_local_store_keeps_objects_gzip_compressed(settings: Settings) -> None:
    plain = {f"p{i}/b{i}.json": bundle(f"p{i}", note="y" * 20000) for i in range(4)}
    plain["_bulk/Patient.ndjson"] = _ndjson([f"n{i}" for i in range(50)])
    ready = gzip.compress(_ndjson(["z1", "z2"]))
    land(settings.landing_dir, {**plain, "_bulk/Other.ndjson.gz": ready})
    store, up = upload_local(settings)
    assert up.uploaded == 6
    objects = list(store.list_after(settings.patients_prefix, None))
    by_name = {files.source_name(o.key): o for o in objects}
    assert set(by_name) == {"b0.json", "b1.json", "b2.json", "b3.json", "Patient.ndjson",
                            "Other.ndjson.gz"}
    for relpath, data in plain.items():
        obj = by_name[relpath.split("/")[1]]
        assert obj.key.endswith(".gz")
        stored = (settings.lake_dir / obj.key).read_bytes()
        assert stored[:2] == b"\x1f\x8b" and gzip.decompress(stored) == data
        assert obj.size < len(data) / 4
    # An export compressed already is stored as it is, not compressed twice.
    assert (settings.lake_dir / by_name["Other.ndjson.gz"].key).read_bytes() == ready
    res = _load(settings)
    assert (res.files_loaded, res.files_failed) == (6, 0)
    assert _raw(settings, "select count(*) from raw.fhir_resources") == [(4 + 50 + 2,)]
    # RAW keeps each resource's JSON, inflated, and the hash of the content.
    hashes = dict(_raw(settings, "select source_name, content_hash from raw.fhir_bundles"))
    assert hashes["b0.json"] == hashlib.sha256(plain["p0/b0.json"]).hexdigest()
    assert hashes["Patient.ndjson"] == hashlib.sha256(plain["_bulk/Patient.ndjson"]).hexdigest()
    # Sizes are of the content too, for bundles and NDJSON alike (what load MB/s count).
    sizes = dict(_raw(settings, "select source_name, file_size from raw.fhir_bundles"))
    assert sizes["b0.json"] == len(plain["p0/b0.json"])
    assert sizes["Patient.ndjson"] == len(plain["_bulk/Patient.ndjson"])
    assert res.bytes_loaded == sum(len(d) for d in plain.values()) + len(_ndjson(["z1", "z2"]))


def _plain_object(settings: Settings, store: LocalStore, key: str, data: bytes,
                  tmp: Path) -> None:
    """An object as an earlier version stored it: plain, under a plain key."""
    src = tmp / "plain-src"
    src.write_bytes(data)
    store.put_file(settings.patients_prefix + key, src)


def test_store_mixing_plain_and_compressed_objects_loads_both(settings: Settings,
                                                              tmp_path: Path) -> None:
    store = LocalStore(settings.lake_dir)
    _plain_object(settings, store, "20261101T000000000000Z-000000-old.json",
                  bundle("old"), tmp_path)
    _plain_object(settings, store, "20261101T000000000000Z-000001-Old.ndjson",
                  _ndjson(["o1", "o2"]), tmp_path)
    land(settings.landing_dir, {"new/new.json": bundle("new"),
                                "_bulk/New.ndjson": _ndjson(["n1"])})
    upload_local(settings)
    res = _load(settings)
    assert (res.files_loaded, res.files_failed) == (4, 0)
    ids = {r[0] for r in _raw(settings, "select resource_id from raw.fhir_resources")}
    assert ids == {"old", "o1", "o2", "new", "n1"}


@pytest.mark.parametrize(("name", "data"), [
    ("b.json", bundle("same")),
    ("Patient.ndjson", _ndjson(["s1", "s2", "s3"])),
])
def test_resent_compressed_copy_of_plain_object_is_not_loaded_twice(
        settings: Settings, tmp_path: Path, name: str, data: bytes) -> None:
    # An older version stored the file plain and RAW loaded it; the store then lost it and
    # this version re-sends it compressed, under a new key: the same content, not again.
    store = LocalStore(settings.lake_dir)
    old_key = f"20261101T000000000000Z-000000-{name}"
    _plain_object(settings, store, old_key, data, tmp_path)
    first = _load(settings)
    assert first.files_loaded == 1
    src = tmp_path / name
    src.write_bytes(data)
    store.put_file(f"{settings.patients_prefix}20261101T000001000000Z-000000z-{name}.gz", src,
                   compress=True)
    again = _load(settings)
    assert (again.files_loaded, again.files_failed) == (0, 0)
    n = len(data.splitlines()) if name.endswith(".ndjson") else 1
    assert _raw(settings, "select count(*) from raw.fhir_resources") == [(n,)]
    assert _raw(settings, "select count(*) from raw.fhir_bundles") == [(1,)]


def test_gzip_bomb_and_corrupt_gzip_are_quarantined(settings: Settings,
                                                    tmp_path: Path) -> None:
    store = LocalStore(settings.lake_dir)
    bomb = tmp_path / "bomb.json"
    doc = json.loads(bundle("b"))
    doc["entry"][0]["resource"]["note"] = "z" * 3_000_000
    bomb.write_bytes(json.dumps(doc).encode())
    store.put_file(f"{settings.patients_prefix}20261101T000000000000Z-000000z-bomb.json.gz",
                   bomb, compress=True)
    broken = gzip.compress(bundle("c"))
    (settings.lake_dir / settings.patients_prefix).mkdir(parents=True, exist_ok=True)
    (settings.lake_dir / settings.patients_prefix /
     "20261101T000000000000Z-000001z-broken.json.gz").write_bytes(
         broken[:12] + b"\xff" * 40 + broken[52:])
    land(settings.landing_dir, {"ok/ok.json": bundle("ok")})
    upload_local(settings)
    res = _load(settings, max_file_bytes=1 << 20)  # the bomb is far smaller compressed
    assert (res.files_loaded, res.files_failed) == (1, 2)
    errors = {files.source_name(k): r for k, r in _raw(
        settings, "select object_key, reason from raw.load_errors")}
    assert errors == {"bomb.json": reasons.inflates_too_big(1 << 20),
                      "broken.json": reasons.CORRUPT_GZIP}


def test_s3_objects_are_compressed_and_load(tmp_path: Path,
                                            clean_env: pytest.MonkeyPatch) -> None:
    with moto_s3("fhirflow-gz") as s3:
        for k, v in {**s3.env, "FHIRFLOW_STORE": "s3"}.items():
            clean_env.setenv(k, v)
        settings = load_settings(home=tmp_path / "home")
        land(settings.landing_dir, {f"p{i}/b{i}.json": bundle(f"p{i}", note="q" * 5000)
                                    for i in range(3)} | {"_bulk/P.ndjson": _ndjson(["x"])})
        store = open_store(settings)
        up = upload_landing(settings.landing_dir, store, prefix=settings.patients_prefix,
                            state_dir=settings.state_dir, workers=2)
        assert up.uploaded == 4
        import boto3

        client = boto3.client("s3", endpoint_url=settings.aws_endpoint_url,
                              region_name="us-east-1")
        for obj in store.list_after(settings.patients_prefix, None):
            got = client.get_object(Bucket=settings.aws_s3_bucket, Key=obj.key)
            body = got["Body"].read()
            assert obj.key.endswith(".gz") and body[:2] == b"\x1f\x8b"
            assert got["ContentType"] == "application/gzip" and obj.size < 5000
        res = _load(settings, store)
        assert (res.files_loaded, res.files_failed) == (4, 0)
        assert _raw(settings, "select count(*) from raw.fhir_resources") == [(4,)]


def test_corrupt_deflate_in_gzip_ndjson_is_one_file_error(settings: Settings) -> None:
    # ISA-L reports a damaged deflate block with an error of its own (not an OSError): the
    # file is quarantined whole, the file beside it loads.
    packed = gzip.compress(_ndjson([f"c{i}" for i in range(2000)]))
    broken = packed[:200] + bytes(range(256)) * 4 + packed[1224:]
    land(settings.landing_dir, {"_bulk/Broken.ndjson.gz": broken,
                                "_bulk/Fine.ndjson": _ndjson(["f1"])})
    upload_local(settings)
    res = _load(settings)
    assert (res.files_loaded, res.files_failed) == (1, 1)
    assert [r.reason for b in res.batches for r in b.errors] == [reasons.CORRUPT_GZIP]
    assert _raw(settings, "select resource_id from raw.fhir_resources") == [("f1",)]
