"""The object store between upload and load: a local folder, or S3.

Both backends speak the same small interface, so upload and load never know which one
they talk to. Keys are '/'-separated and sort in upload order.

Every call that touches the store is retried a bounded number of times with exponential
backoff when the failure looks transient, and has connect and read timeouts, so a store that
hangs fails within about a minute. S3 uses botocore's own mechanisms for both (its Config:
`connect_timeout`, `read_timeout`, `retries={"mode": "standard", "total_max_attempts"}`); the
local folder, which botocore does not cover, keeps `with_retries` for the errors a busy
network filesystem gives (EIO, ESTALE, EAGAIN). A failure that outlasts the retries becomes
one `StoreError` line that says what was tried, how long it waited, and what to check.
"""

from __future__ import annotations

import errno
import os
import random
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, TypeVar

from fhirflow import gz
from fhirflow.atomic import copy_atomic, is_temp_name, remove_stale_temps, write_chunks_atomic
from fhirflow.errors import FhirflowError, first_line, os_error_line

if TYPE_CHECKING:
    from fhirflow.config import Settings

T = TypeVar("T")

# Files above this go to S3 as multipart uploads; below it, one PUT (retried as a whole).
_MULTIPART_THRESHOLD = 64 * 1024 * 1024
# Defaults of the S3 client's timeouts and attempts (Settings overrides them): a hung
# endpoint costs attempts x read timeout plus botocore's backoff, about 50 s.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 12.0
ATTEMPTS = 4


class StoreError(FhirflowError):
    """The object store refused or could not be reached, after the retries."""


class ObjectMissing(FhirflowError):
    """A key that was listed is no longer in the store."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int


class ObjectStore(Protocol):
    """What upload and load need from an object store."""

    description: str
    identity: str
    """Names this store for the upload ledger: its kind and location (folder, or
    endpoint + bucket), so uploads to one store never count for another."""

    def check(self) -> None:
        """Raise StoreError (one line) unless the store is reachable and usable."""
        ...

    def put_file(self, key: str, path: Path, *, compress: bool = False) -> None:
        """Store the file under `key`; with `compress`, gzip-compressed on the way (the
        object holds the gzip stream; readers inflate it by its content)."""
        ...

    def exists(self, key: str) -> bool: ...

    def list_after(self, prefix: str, start_after: str | None) -> Iterator[StoredObject]:
        """Objects under `prefix` whose key sorts after `start_after`, in key order."""
        ...

    def fetch_to(self, key: str, path: Path) -> None:
        """Copy the object into a local file, streaming; ObjectMissing if it is gone."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A filesystem path holding the object, when the store is a folder; else None."""
        ...

    def url(self, key: str) -> str:
        """Where the object lives, for a reader that fetches it itself (`s3://bucket/key`,
        `file:///...`)."""
        ...

    def remove_leftovers(self) -> int:
        """Remove what killed writers left behind (stale temp files); how many."""
        ...


def with_retries(
    op: Callable[[], T],
    *,
    attempts: int,
    transient: Callable[[BaseException], bool],
    base_delay: float = 0.2,
    max_delay: float = 4.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `op`; on a transient failure wait base*2^n (with jitter, capped) and try again.

    Only for the local folder store: filesystem calls have no client library with a retry
    policy of its own (S3 uses botocore's)."""
    for attempt in range(1, attempts + 1):
        try:
            return op()
        except Exception as exc:
            if attempt >= attempts or not transient(exc):
                raise
            delay = min(max_delay, base_delay * 2 ** (attempt - 1))
            sleep(delay * (0.5 + random.random() / 2))
    raise AssertionError("unreachable")  # pragma: no cover


_TRANSIENT_ERRNOS = {
    errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.EIO, errno.ETIMEDOUT, errno.ESTALE,
}


def _transient_os_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


class LocalStore:
    """A folder standing in for a bucket: `<root>/<key>`; writes are atomic renames."""

    def __init__(self, root: Path, *, attempts: int = 4) -> None:
        self.root = root
        self.attempts = attempts
        self.description = f"folder {root}"
        self.identity = f"local {root.absolute()}"
        # Entries a listing passed over and why (links, devices): `fhirflow load` shows them.
        self.refused: list[tuple[str, str]] = []

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StoreError(
                f"object key {key!r} leads outside {self.description} (to {path}): "
                "remove the symbolic link from the store folder"
            )
        return path

    def _retry(self, op: Callable[[], T], action: str) -> T:
        try:
            return with_retries(op, attempts=self.attempts, transient=_transient_os_error)
        except FileNotFoundError as exc:
            raise ObjectMissing(f"{action}: {first_line(exc)}") from exc
        except OSError as exc:
            raise StoreError(os_error_line(exc, f"{action} in {self.description}")) from exc

    def remove_leftovers(self) -> int:
        return len(remove_stale_temps(self.root))

    def check(self) -> None:
        def probe() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, "not writable", str(self.root))

        self._retry(probe, "opening the store")

    def put_file(self, key: str, path: Path, *, compress: bool = False) -> None:
        target = self._path(key)

        def put() -> None:
            if not compress:
                copy_atomic(path, target)
                return
            with path.open("rb") as src:
                write_chunks_atomic(target, gz.compressed_chunks(src))

        self._retry(put, f"writing {key}")

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_after(self, prefix: str, start_after: str | None) -> Iterator[StoredObject]:
        base = self.root / prefix
        folder = base if prefix.endswith("/") else base.parent
        if not folder.is_dir():
            return
        keys = []
        # os.walk does not descend into linked folders; linked files are refused below.
        for dirpath, dirnames, filenames in os.walk(folder):
            for name in filenames + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
                if name.startswith(".") or is_temp_name(name):
                    continue  # partial writes in flight
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix) and (start_after is None or key > start_after):
                    keys.append(key)
        for key in sorted(keys):
            try:
                info = (self.root / key).lstat()
            except FileNotFoundError:
                continue  # removed since the walk
            if not stat.S_ISREG(info.st_mode):
                what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
                self.refused.append((key, f"{what} in the store folder: refused, not loaded"))
                continue
            yield StoredObject(key=key, size=info.st_size)

    def fetch_to(self, key: str, path: Path) -> None:
        source = self._path(key)

        def copy() -> None:
            with source.open("rb") as src, path.open("wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)

        self._retry(copy, f"reading {key}")

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def url(self, key: str) -> str:
        return self._path(key).as_uri()


_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
_DENIED_CODES = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}


class S3Store:
    """An S3 bucket (or any S3-compatible endpoint) through boto3.

    boto3 was chosen for being AWS's own, long-maintained SDK that any S3-compatible endpoint
    accepts; its credential chain (env, profile, instance role) is used as is. Retries and
    timeouts are botocore's: standard retry mode (exponential backoff with jitter on
    throttling, 5xx, connection errors and timeouts) with `attempts` in total, and connect /
    read timeouts on every request, so no call can hang.
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        attempts: int = ATTEMPTS,
        max_connections: int = 16,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.attempts = attempts
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.description = f"s3://{bucket}" + (f" at {endpoint_url}" if endpoint_url else "")
        self.identity = f"s3 {endpoint_url or 'aws'} {bucket}"
        config = Config(
            retries={"total_max_attempts": attempts, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_connections,
        )
        self._client = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )

    def _policy(self, waited: float) -> str:
        return (f"after {self.attempts} attempts in {waited:.0f} s (connect timeout "
                f"{self.connect_timeout:g} s, read timeout {self.read_timeout:g} s each; "
                "FHIRFLOW_STORE_ATTEMPTS, FHIRFLOW_STORE_CONNECT_TIMEOUT, "
                "FHIRFLOW_STORE_READ_TIMEOUT)")

    def _retry(self, op: Callable[[], T], action: str) -> T:
        """Run one boto3 call (botocore retries it); its failure as one StoreError line."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            HTTPClientError,
            NoCredentialsError,
        )

        started = time.monotonic()
        try:
            return op()
        except NoCredentialsError:
            raise StoreError(
                f"{action}: no AWS credentials found; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or a profile / instance role)"
            ) from None
        except (ConnectionError, HTTPClientError) as exc:
            # Refused connections, connect and read timeouts, resets.
            where = self.endpoint_url or "S3"
            raise StoreError(
                f"{action}: cannot reach {where} ({first_line(exc)}) "
                f"{self._policy(time.monotonic() - started)}; check AWS_ENDPOINT_URL and the "
                "network, then re-run"
            ) from None
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if code in _MISSING_CODES:
                raise ObjectMissing(f"{action}: not found in {self.description}") from None
            if code in {"NoSuchBucket"}:
                raise StoreError(
                    f"{action}: bucket {self.bucket!r} does not exist; create it or set "
                    "AWS_S3_BUCKET"
                ) from None
            if code in _DENIED_CODES:
                raise StoreError(
                    f"{action}: access denied to {self.description} ({code}); check the AWS "
                    "credentials and the bucket policy"
                ) from None
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if isinstance(status, int) and status >= 500:
                raise StoreError(
                    f"{action} on {self.description} failed: {first_line(exc)} "
                    f"{self._policy(time.monotonic() - started)}; re-run when it is back"
                ) from None
            raise StoreError(f"{action} on {self.description} failed: {first_line(exc)}") from None
        except BotoCoreError as exc:
            raise StoreError(f"{action} on {self.description} failed: {first_line(exc)}") from None

    def remove_leftovers(self) -> int:
        # A killed multipart upload leaves parts S3 keeps invisibly (a lifecycle rule's job:
        # AbortIncompleteMultipartUpload); nothing under a key is ever half-written.
        return 0

    def check(self) -> None:
        try:
            self._retry(lambda: self._client.head_bucket(Bucket=self.bucket), "opening the bucket")
        except ObjectMissing:
            raise StoreError(
                f"bucket {self.bucket!r} does not exist at {self.endpoint_url or 'S3'}; "
                "create it or set AWS_S3_BUCKET"
            ) from None

    def put_file(self, key: str, path: Path, *, compress: bool = False) -> None:
        if not compress:
            with path.open("rb") as body:
                self._send(key, body, path.stat().st_size, "application/fhir+json")
            return
        # Compressed into memory up to the multipart threshold, into a temp file beyond it.
        with tempfile.SpooledTemporaryFile(max_size=_MULTIPART_THRESHOLD) as body:
            with path.open("rb") as src:
                for chunk in gz.compressed_chunks(src):
                    body.write(chunk)
            size = body.tell()
            body.seek(0)
            # Content-Type, not Content-Encoding: with `Content-Encoding: gzip` some HTTP
            # clients would hand out the inflated bytes under the `.gz` name.
            self._send(key, body, size, "application/gzip")

    def _send(self, key: str, body: BinaryIO, size: int, content_type: str) -> None:
        if size >= _MULTIPART_THRESHOLD:
            from boto3.s3.transfer import TransferConfig

            transfer = TransferConfig(multipart_threshold=_MULTIPART_THRESHOLD, use_threads=False)
            self._retry(
                lambda: self._client.upload_fileobj(body, self.bucket, key, Config=transfer,
                                                    ExtraArgs={"ContentType": content_type}),
                f"uploading {key}",
            )
            return
        self._retry(lambda: self._client.put_object(Bucket=self.bucket, Key=key, Body=body,
                                                    ContentType=content_type),
                    f"uploading {key}")

    def exists(self, key: str) -> bool:
        try:
            self._retry(lambda: self._client.head_object(Bucket=self.bucket, Key=key),
                        f"checking {key}")
        except ObjectMissing:
            return False
        return True

    def list_after(self, prefix: str, start_after: str | None) -> Iterator[StoredObject]:
        kwargs = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": 1000}
        if start_after:
            kwargs["StartAfter"] = start_after
        while True:
            page = self._retry(lambda: self._client.list_objects_v2(**kwargs), "listing objects")
            for item in page.get("Contents", []):
                yield StoredObject(key=item["Key"], size=int(item["Size"]))
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def fetch_to(self, key: str, path: Path) -> None:
        def fetch() -> None:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            with path.open("wb") as dst:
                for chunk in body.iter_chunks(1 << 20):
                    dst.write(chunk)

        self._retry(fetch, f"reading {key}")

    def local_path(self, key: str) -> Path | None:
        return None

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def open_store(settings: Settings, kind: str | None = None) -> ObjectStore:
    kind = kind or settings.store
    if kind == "local":
        return LocalStore(settings.lake_dir, attempts=settings.store_attempts)
    if kind == "s3":
        return S3Store(
            settings.aws_s3_bucket,
            endpoint_url=settings.aws_endpoint_url,
            region=settings.aws_region,
            attempts=settings.store_attempts,
            max_connections=max(10, settings.upload_workers * 2),
            connect_timeout=settings.store_connect_timeout,
            read_timeout=settings.store_read_timeout,
        )
    raise FhirflowError(f"unknown object store {kind!r}; use 'local' or 's3'")
