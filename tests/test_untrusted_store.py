"""The object store as it really behaves: switched, emptied, missing, hung; leftovers of
killed writers; links planted in the lake. Against real folders, DuckDB and moto's server."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from _helpers import (
    bundle,
    clean_environ,
    duckdb_rows,
    land,
    moto_s3,
    patient_files,
    run_cli,
)
from fhirflow.atomic import remove_stale_temps
from fhirflow.config import Settings
from fhirflow.errors import FhirflowError
from fhirflow.load import run_load
from fhirflow.store import LocalStore, S3Store, StoreError
from fhirflow.upload import upload_landing
from fhirflow.warehouse.duckdb import DuckDBWarehouse


def _upload(settings: Settings, store: LocalStore | S3Store):  # noqa: ANN202 - UploadResult
    return upload_landing(settings.landing_dir, store, prefix=settings.patients_prefix,
                          state_dir=settings.state_dir)


def _load(settings: Settings, store: LocalStore | S3Store) -> tuple[int, int]:
    wh = DuckDBWarehouse(settings.duckdb_path)
    try:
        res = run_load(store, wh, prefix=settings.patients_prefix, batch_size=5,
                       max_file_bytes=1 << 20)
    finally:
        wh.close()
    return res.files_loaded, res.files_failed


def _raw_bundles(settings: Settings) -> int:
    return duckdb_rows(settings.duckdb_path, "select count(*) from raw.fhir_bundles")[0][0]


def test_switching_the_store_uploads_everything_to_the_new_one(
    settings: Settings, tmp_path: Path
) -> None:
    land(settings.landing_dir, patient_files(4))
    first = LocalStore(settings.lake_dir)
    assert _upload(settings, first).uploaded == 4
    second = LocalStore(tmp_path / "other-lake")
    result = _upload(settings, second)
    assert (result.uploaded, result.already_uploaded) == (4, 0)
    assert len(list(second.list_after(settings.patients_prefix, None))) == 4
    # And each store keeps its own account: nothing more for either.
    assert _upload(settings, first).uploaded == 0 and _upload(settings, second).uploaded == 0


def test_objects_the_store_lost_are_sent_again_and_not_loaded_twice(settings: Settings) -> None:
    land(settings.landing_dir, patient_files(5))
    store = LocalStore(settings.lake_dir)
    _upload(settings, store)
    assert _load(settings, store) == (5, 0)
    lost = sorted(store.list_after(settings.patients_prefix, None), key=lambda o: o.key)[:2]
    for obj in lost:
        (settings.lake_dir / obj.key).unlink()

    again = _upload(settings, store)

    assert (again.uploaded, again.resent, again.already_uploaded) == (2, 2, 3)
    assert "2 sent again" in again.note()
    assert len(list(store.list_after(settings.patients_prefix, None))) == 5
    assert _load(settings, store) == (0, 0)  # RAW already holds that content
    assert _raw_bundles(settings) == 5
    # A whole lake lost (a new disk): everything is sent again, nothing loaded twice.
    shutil.rmtree(settings.lake_dir)
    assert _upload(settings, store).resent == 5
    assert _load(settings, store) == (0, 0) and _raw_bundles(settings) == 5


def test_a_corrected_then_reverted_file_is_sent_and_loaded_each_time(settings: Settings) -> None:
    land(settings.landing_dir, {"p1/a.json": bundle("v1")})
    store = LocalStore(settings.lake_dir)
    for version in ("v1", "v2", "v1"):
        land(settings.landing_dir, {"p1/a.json": bundle(version)})
        assert _upload(settings, store).uploaded == 1, version
        assert _load(settings, store) == (1, 0), version
    latest = duckdb_rows(settings.duckdb_path, "select bundle->>'$.entry[0].resource.id' from "
                         "raw.fhir_bundles order by object_key desc limit 1")
    assert latest == [("v1",)]


def test_a_bucket_that_does_not_exist_is_one_error_even_with_nothing_to_send(
    settings: Settings, tmp_path: Path
) -> None:
    land(settings.landing_dir, patient_files(2))
    with moto_s3("fhirflow-gone") as s3:
        env = clean_environ(**s3.env, FHIRFLOW_HOME=str(settings.home))
        assert run_cli("upload", "--store", "s3", env=env).returncode == 0
        env["AWS_S3_BUCKET"] = "fhirflow-no-such-bucket"
        proc = run_cli("upload", "--store", "s3", env=env)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "does not exist" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_s3_bucket_that_lost_objects_gets_them_again(
    settings: Settings, clean_env: pytest.MonkeyPatch
) -> None:
    land(settings.landing_dir, patient_files(3))
    with moto_s3("fhirflow-lost") as s3:
        for name, value in s3.env.items():
            clean_env.setenv(name, value)
        store = S3Store(s3.bucket, endpoint_url=s3.endpoint)
        assert _upload(settings, store).uploaded == 3
        key = next(iter(store.list_after(settings.patients_prefix, None))).key
        store._client.delete_object(Bucket=s3.bucket, Key=key)
        again = _upload(settings, store)
        assert (again.resent, again.already_uploaded) == (1, 2)
        assert len(list(store.list_after(settings.patients_prefix, None))) == 3


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers (a hung S3)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)  # read nothing, send nothing

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def test_a_hung_endpoint_fails_in_bounded_time_with_one_line(
    silent_server: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    land(home / "output/bundles", {"p1/b.json": bundle("p1")})
    env = clean_environ(
        FHIRFLOW_HOME=str(home), AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_ENDPOINT_URL=silent_server, AWS_S3_BUCKET="fhirflow-hung",
        FHIRFLOW_STORE_ATTEMPTS="2", FHIRFLOW_STORE_READ_TIMEOUT="2",
    )
    proc = run_cli("upload", "--store", "s3", env=env, timeout=120)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "cannot reach" in errors[0] and "after 2 attempts in" in errors[0]
    assert "read timeout 2 s" in errors[0] and "Traceback" not in proc.stderr
    # The waiting is the client's: 2 attempts x 2 s read timeout, plus its backoff.
    waited = float(errors[0].split("after 2 attempts in ")[1].split(" s")[0])
    assert 3 <= waited < 30


def test_s3_client_uses_botocore_timeouts_and_retries() -> None:
    store = S3Store("fhirflow-x", endpoint_url="http://127.0.0.1:9", attempts=3,
                    connect_timeout=1.5, read_timeout=7)
    config = store._client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (1.5, 7)
    assert config.retries == {"total_max_attempts": 3, "mode": "standard"}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_killed_writers_go_and_a_live_writers_stay(settings: Settings) -> None:
    land(settings.landing_dir, patient_files(1))
    old = time.time() - 3600
    dead = _dead_pid()
    leftovers = [
        settings.landing_dir / "patient000" / f".b.json.tmp-{dead}-0a1b2c3d",
        settings.lake_dir / "raw" / "patients" / f".k.json.part-{dead}",
    ]
    live = settings.landing_dir / "patient000" / f".c.json.tmp-{os.getpid()}-0a1b2c3d"
    fresh_dead = settings.landing_dir / "patient000" / f".d.json.tmp-{dead}-99887766"
    for path in [*leftovers, live]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
        os.utime(path, (old, old))
    fresh_dead.write_bytes(b"partial")  # dead pid, but just written: maybe another namespace

    result = _upload(settings, LocalStore(settings.lake_dir))

    assert result.leftovers_removed == 2 and result.uploaded == 1
    assert not any(p.exists() for p in leftovers)
    assert live.exists() and fresh_dead.exists()


def test_a_writer_killed_mid_write_leaves_a_temp_that_the_next_run_removes(
    tmp_path: Path
) -> None:
    target = tmp_path / "landing" / "p" / "big.json"
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from fhirflow.atomic import write_atomic_with\n"
        "def fill(h):\n"
        "    h.write(b'x' * 1000); h.flush(); print('writing', flush=True); time.sleep(60)\n"
        f"write_atomic_with(Path({str(target)!r}), fill)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    temps = [p for p in target.parent.iterdir() if p.name.startswith(".")]
    assert len(temps) == 1
    assert remove_stale_temps(tmp_path / "landing", stale_after=0) == []  # still alive
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert temps[0].exists() and not target.exists()
    assert remove_stale_temps(tmp_path / "landing", stale_after=0) == temps
    assert list(target.parent.iterdir()) == []


def test_links_planted_in_the_lake_are_refused_not_loaded(
    settings: Settings, tmp_path: Path
) -> None:
    land(settings.landing_dir, patient_files(2))
    store = LocalStore(settings.lake_dir)
    _upload(settings, store)
    secret = tmp_path / "secret.json"
    secret.write_bytes(bundle("secret"))
    planted = settings.lake_dir / settings.patients_prefix / "99990101T000000000000Z-000000-x.json"
    planted.symlink_to(secret)
    (settings.lake_dir / settings.patients_prefix / "linked-dir").symlink_to(tmp_path)

    assert _load(settings, store) == (2, 0)

    refused = dict(store.refused)
    assert "symbolic link" in refused[planted.relative_to(settings.lake_dir).as_posix()]
    assert duckdb_rows(settings.duckdb_path, "select count(*) from raw.fhir_bundles "
                       "where bundle::varchar like '%secret%'") == [(0,)]


def test_a_store_folder_linked_outside_is_refused_on_write(
    settings: Settings, tmp_path: Path
) -> None:
    land(settings.landing_dir, patient_files(1))
    outside = tmp_path / "outside"
    outside.mkdir()
    (settings.lake_dir / "raw").mkdir(parents=True)
    (settings.lake_dir / "raw" / "patients").symlink_to(outside)
    with pytest.raises(FhirflowError, match="leads outside"):
        _upload(settings, LocalStore(settings.lake_dir))
    assert list(outside.iterdir()) == []


def test_unreachable_store_error_is_a_store_error(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("AWS_ACCESS_KEY_ID", "testing")
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with pytest.raises(StoreError, match="cannot reach"):
        S3Store("fhirflow-x", endpoint_url="http://127.0.0.1:9", attempts=1).check()
