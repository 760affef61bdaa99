"""The S3 path against moto's S3 server on 127.0.0.1: the same boto3 code as production."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _helpers import (
    bundle,
    clean_environ,
    duckdb_rows,
    free_port,
    land,
    moto_s3,
    run_cli,
)
from fhirflow.config import Settings, load_settings
from fhirflow.load import run_load
from fhirflow.store import ObjectMissing, S3Store, StoreError, open_store
from fhirflow.upload import upload_landing
from fhirflow.warehouse.duckdb import DuckDBWarehouse


@pytest.fixture
def s3_env(clean_env: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A moto S3 server and its bucket, in this process's environment (FHIRFLOW_STORE=s3)."""
    with moto_s3("fhirflow-test") as s3:
        env = {**s3.env, "FHIRFLOW_STORE": "s3"}
        for name, value in env.items():
            clean_env.setenv(name, value)
        yield env


@pytest.fixture
def s3_settings(tmp_path: Path, s3_env: dict[str, str]) -> Settings:
    return load_settings(home=tmp_path / "home", load_batch_size=3)


def test_s3_store_round_trip(s3_settings: Settings, tmp_path: Path) -> None:
    store = open_store(s3_settings)
    assert isinstance(store, S3Store)
    store.check()
    src = tmp_path / "a.json"
    src.write_bytes(b'{"a": 1}')
    for i in range(3):
        store.put_file(f"raw/patients/k{i}.json", src)
    assert store.exists("raw/patients/k1.json") and not store.exists("raw/patients/nope")
    assert [o.key for o in store.list_after("raw/patients/", "raw/patients/k0.json")] == [
        "raw/patients/k1.json", "raw/patients/k2.json"]
    out = tmp_path / "out.json"
    store.fetch_to("raw/patients/k2.json", out)
    assert out.read_bytes() == b'{"a": 1}'
    with pytest.raises(ObjectMissing):
        store.fetch_to("raw/patients/gone.json", out)


def test_missing_bucket_is_one_clear_error(s3_settings: Settings) -> None:
    store = S3Store("no-such-bucket", endpoint_url=s3_settings.aws_endpoint_url)
    with pytest.raises(StoreError, match="does not exist"):
        store.check()


def test_upload_and_duckdb_load_from_s3(s3_settings: Settings) -> None:
    files = {f"p{i}/b{i}.json": bundle(f"p{i}") for i in range(7)}
    files["p9/bad.json"] = b"{truncated"
    files["p9/empty.json"] = b""
    land(s3_settings.landing_dir, files)
    store = open_store(s3_settings)
    up = upload_landing(s3_settings.landing_dir, store, prefix=s3_settings.patients_prefix,
                        state_dir=s3_settings.state_dir, workers=4)
    assert up.uploaded == 9

    def load() -> tuple[int, int]:
        wh = DuckDBWarehouse(s3_settings.duckdb_path)
        try:
            res = run_load(store, wh, prefix=s3_settings.patients_prefix, batch_size=3,
                           max_file_bytes=1 << 20, fetch_workers=4)
        finally:
            wh.close()
        return res.files_loaded, res.files_failed

    assert load() == (7, 2)
    # Changed content is uploaded again (a new key) and loaded as a new row; the rest not.
    land(s3_settings.landing_dir, {"p0/b0.json": bundle("p100")})
    again = upload_landing(s3_settings.landing_dir, store, prefix=s3_settings.patients_prefix,
                           state_dir=s3_settings.state_dir)
    assert (again.uploaded, again.already_uploaded) == (1, 8)
    assert load() == (1, 0)
    nothing = upload_landing(s3_settings.landing_dir, store, prefix=s3_settings.patients_prefix,
                             state_dir=s3_settings.state_dir)
    assert nothing.uploaded == 0
    assert load() == (0, 0)
    assert duckdb_rows(s3_settings.duckdb_path, "select count(*), count(distinct object_key) "
                       "from raw.fhir_bundles") == [(8, 8)]
    assert len(list(store.list_after(s3_settings.patients_prefix, None))) == 10


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=clean_environ(**env), timeout=120)


def test_cli_upload_and_load_with_store_s3(s3_env: dict[str, str], tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    land(settings.landing_dir, {f"p{i}/b{i}.json": bundle(f"p{i}") for i in range(4)})
    env = {**s3_env, "FHIRFLOW_HOME": str(settings.home)}
    env.pop("FHIRFLOW_STORE")
    up = cli(env, "upload", "--store", "s3")
    assert up.returncode == 0, up.stderr
    assert f"s3://{s3_env['AWS_S3_BUCKET']}" in up.stderr
    load = cli(env, "load", "--store", "s3")
    assert load.returncode == 0, load.stderr
    assert "│ load  │     4 │" in load.stdout
    again = cli(env, "upload", "--store", "s3")
    assert "4 already uploaded" in again.stdout


def test_unreachable_endpoint_is_one_line_and_fails_fast(tmp_path: Path) -> None:
    settings_home = tmp_path / "home"
    land(settings_home / "output/bundles", {"p1/b.json": bundle("p1")})
    env = {
        "FHIRFLOW_HOME": str(settings_home),
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "AWS_S3_BUCKET": "fhirflow-test",
    }
    started = time.monotonic()
    result = cli(env, "upload", "--store", "s3")
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "cannot reach" in errors[0] and "AWS_ENDPOINT_URL" in errors[0]
    assert "Traceback" not in result.stderr
    assert elapsed < 60  # bounded retries; typically a few seconds
