"""Helpers the tests share: small FHIR bundles, landing folders, an upload, RAW queries, the
`fhirflow` command as a subprocess, a moto S3 server on 127.0.0.1, and Snowflake key pairs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from fhirflow.config import Settings
from fhirflow.load import LoadResult, run_load
from fhirflow.store import LocalStore
from fhirflow.upload import UploadResult, upload_landing
from fhirflow.warehouse.duckdb import DuckDBWarehouse

# Variables of the developer's shell that would change what a subprocess under test does.
OWN_PREFIXES = ("FHIRFLOW_", "AWS_", "SNOWFLAKE_")
# What the encrypted keys of `write_private_key` are encrypted with.
KEY_PASSPHRASE = "correct horse battery staple"


def bundle(patient_id: str = "p", *, note: str | None = None) -> bytes:
    """A minimal transaction Bundle holding one Patient (with a `note` to pad it): with the
    birthDate and gender that staging needs, so the load accepts it."""
    patient: dict[str, str] = {"resourceType": "Patient", "id": patient_id,
                               "gender": "unknown", "birthDate": "2000-01-01"}
    if note is not None:
        patient["note"] = note
    doc = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": patient}]}
    return json.dumps(doc).encode()


def patient_files(n: int, start: int = 0) -> dict[str, bytes]:
    """`patient<i>/b<i>.json` -> a bundle of patient `p<i>`, for i in start..start+n-1."""
    return {f"patient{i:03d}/b{i:03d}.json": bundle(f"p{i}") for i in range(start, start + n)}


def land(landing_dir: Path, files: Mapping[str, bytes | str]) -> None:
    """Write files into a landing folder: relative path -> content."""
    for relpath, data in files.items():
        path = landing_dir / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)


def upload_local(settings: Settings) -> tuple[LocalStore, UploadResult]:
    """Upload the landing folder to the local store of these settings."""
    store = LocalStore(settings.lake_dir)
    result = upload_landing(settings.landing_dir, store, prefix=settings.patients_prefix,
                            state_dir=settings.state_dir)
    return store, result


def upload_and_load(settings: Settings) -> LoadResult:
    """Upload the landing folder to the local store, then load the store into the DuckDB
    warehouse of these settings, batch after batch (what the load tests run)."""
    store, _ = upload_local(settings)
    wh = DuckDBWarehouse(settings.duckdb_path)
    try:
        return run_load(store, wh, prefix=settings.patients_prefix,
                        batch_size=settings.load_batch_size,
                        max_file_bytes=settings.max_file_bytes)
    finally:
        wh.close()


def duckdb_rows(path: Path, sql: str) -> list[tuple]:
    """Rows of a query over a DuckDB file, on a read-only connection of its own."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without FHIRFLOW_/AWS_/SNOWFLAKE_ variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    env.update(extra)
    return env


def run_cli(*args: str, env: Mapping[str, str], timeout: float = 180
            ) -> subprocess.CompletedProcess[str]:
    """`fhirflow <args>` in a subprocess with exactly `env` (wide columns: tables uncut)."""
    return subprocess.run([sys.executable, "-m", "fhirflow.cli", *args],
                          env={"COLUMNS": "400", **env}, capture_output=True, text=True,
                          timeout=timeout)


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        """What boto3 and fhirflow need to use this server's bucket."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_S3_BUCKET": self.bucket,
        }


@contextmanager
def moto_s3(bucket_prefix: str = "fhirflow") -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 with a fresh bucket; stopped on exit. moto keeps buckets
    per process, so every server gets a bucket name of its own."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        s3 = S3Server(f"http://127.0.0.1:{port}", f"{bucket_prefix}-{uuid.uuid4().hex[:12]}")
        boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id="testing",
                     aws_secret_access_key="testing", region_name="us-east-1"
                     ).create_bucket(Bucket=s3.bucket)
        yield s3
    finally:
        server.stop()


def write_private_key(path: Path, passphrase: str | None) -> Path:
    """A new 2048-bit RSA key as PKCS#8 PEM (as Snowflake's docs make one with openssl),
    encrypted with `passphrase` unless it is None: a key-pair sign-in's private key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    encryption = (serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
                  else serialization.NoEncryption())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8, encryption))
    return path
