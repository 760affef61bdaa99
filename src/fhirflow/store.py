"""The object store between upload and load: a local folder, or S3.

Both backends speak the same small interface, so upload and load never know which one
they talk to. Keys are '/'-separated and sort in upload order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from fhirflow.errors import FhirflowError

if TYPE_CHECKING:
    from fhirflow.config import Settings


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int


class ObjectStore(Protocol):
    """What upload and load need from an object store."""

    description: str

    def put_file(self, key: str, path: Path) -> None: ...

    def exists(self, key: str) -> bool: ...

    def list_after(self, prefix: str, start_after: str | None) -> Iterator[StoredObject]:
        """Objects under `prefix` whose key sorts after `start_after`, in key order."""
        ...

    def get_bytes(self, key: str) -> bytes: ...

    def local_path(self, key: str) -> Path | None:
        """A filesystem path holding the object, when the store is a folder; else None."""
        ...


class LocalStore:
    """A folder standing in for a bucket: `<root>/<key>`; writes are atomic renames."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"folder {root}"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise FhirflowError(f"object key {key!r} points outside the store")
        return path

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part-{os.getpid()}")
        with path.open("rb") as src, tmp.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, target)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list_after(self, prefix: str, start_after: str | None) -> Iterator[StoredObject]:
        base = self.root / prefix
        folder = base if prefix.endswith("/") else base.parent
        if not folder.is_dir():
            return
        keys = []
        for dirpath, _dirnames, filenames in os.walk(folder):
            for name in filenames:
                if name.startswith("."):
                    continue  # partial writes in flight
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix) and (start_after is None or key > start_after):
                    keys.append(key)
        for key in sorted(keys):
            yield StoredObject(key=key, size=(self.root / key).stat().st_size)

    def get_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


class S3Store:
    """An S3 bucket (or any S3-compatible endpoint) through boto3."""

    def __init__(
        self, bucket: str, *, endpoint_url: str | None = None, region: str = "us-east-1"
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.description = f"s3://{bucket}" + (f" at {endpoint_url}" if endpoint_url else "")
        # Standard retry mode backs off exponentially on throttling and 5xx answers.
        config = Config(retries={"max_attempts": 8, "mode": "standard"}, connect_timeout=5)
        self._client = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )

    def put_file(self, key: str, path: Path) -> None:
        self._client.upload_file(str(path), self.bucket, key)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise
        return True

    def list_after(self, prefix: str, start_after: str | None) -> Iterator[StoredObject]:
        paginator = self._client.get_paginator("list_objects_v2")
        kwargs = {"Bucket": self.bucket, "Prefix": prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        for page in paginator.paginate(**kwargs):
            for item in page.get("Contents", []):
                yield StoredObject(key=item["Key"], size=int(item["Size"]))

    def get_bytes(self, key: str) -> bytes:
        return self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def local_path(self, key: str) -> Path | None:
        return None


def open_store(settings: Settings, kind: str | None = None) -> ObjectStore:
    kind = kind or settings.store
    if kind == "local":
        return LocalStore(settings.lake_dir)
    if kind == "s3":
        return S3Store(
            settings.aws_s3_bucket,
            endpoint_url=settings.aws_endpoint_url,
            region=settings.aws_region,
        )
    raise FhirflowError(f"unknown object store {kind!r}; use 'local' or 's3'")
