"""Upload: landing folder -> object store, exactly once per file content.

A small SQLite ledger in `$FHIRFLOW_HOME/state/` remembers, per landed file and content
hash, the object key it was given. The key is written to the ledger *before* the upload
(status 'pending') and confirmed after it, so a crash mid-upload is retried under the same
key on the next run instead of producing a second copy with a new key.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fhirflow.errors import FhirflowError
from fhirflow.landing import LandedFile, file_sha256, iter_landed
from fhirflow.store import ObjectStore

_SCHEMA = """
create table if not exists uploads (
    relpath     text not null,
    sha256      text not null,
    size        integer not null,
    object_key  text not null unique,
    status      text not null check (status in ('pending', 'done')),
    recorded_at text not null,
    primary key (relpath, sha256)
)
"""


@dataclass
class UploadResult:
    landed: int = 0
    uploaded: int = 0
    already_uploaded: int = 0
    bytes: int = 0
    seconds: float = 0.0


class UploadLedger:
    """Which landed file content went to which object key."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> UploadLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lookup(self, relpath: str, sha256: str) -> tuple[str, str] | None:
        """(object_key, status) for this content of this file, if ever planned."""
        row = self._db.execute(
            "select object_key, status from uploads where relpath = ? and sha256 = ?",
            (relpath, sha256),
        ).fetchone()
        return (row[0], row[1]) if row else None

    def plan(self, relpath: str, sha256: str, size: int, key: str) -> None:
        with self._db:
            self._db.execute(
                "insert into uploads values (?, ?, ?, ?, 'pending', ?)",
                (relpath, sha256, size, key, _now_iso()),
            )

    def confirm(self, key: str) -> None:
        with self._db:
            self._db.execute(
                "update uploads set status = 'done', recorded_at = ? where object_key = ?",
                (_now_iso(), key),
            )

    def uploaded_key(self, relpath: str) -> str | None:
        """The key of the newest confirmed upload of this landed path."""
        row = self._db.execute(
            "select object_key from uploads where relpath = ? and status = 'done' "
            "order by object_key desc limit 1",
            (relpath,),
        ).fetchone()
        return row[0] if row else None


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def ledger_path(state_dir: Path) -> Path:
    return state_dir / "upload_ledger.sqlite"


def object_key(prefix: str, stamp: str, seq: int, landed: LandedFile) -> str:
    """`<prefix><UTC stamp>-<seq>-<file name>`: sorts by upload run, then by order in it."""
    return f"{prefix}{stamp}-{seq:06d}-{landed.path.name}"


def upload_landing(
    landing_root: Path,
    store: ObjectStore,
    *,
    prefix: str,
    state_dir: Path,
    workers: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> UploadResult:
    """Upload every landed file whose current content the store does not hold yet."""
    started = time.perf_counter()
    result = UploadResult()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    todo: list[tuple[str, LandedFile]] = []
    with UploadLedger(ledger_path(state_dir)) as ledger:
        for seq, landed in enumerate(iter_landed(landing_root)):
            result.landed += 1
            sha = file_sha256(landed.path)
            known = ledger.lookup(landed.relpath, sha)
            if known and known[1] == "done":
                result.already_uploaded += 1
                continue
            if known:  # planned by a run that died: retry under the same key
                key = known[0]
            else:
                key = object_key(prefix, stamp, seq, landed)
                ledger.plan(landed.relpath, sha, landed.size, key)
            todo.append((key, landed))

        done = 0
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {pool.submit(store.put_file, key, f.path): (key, f) for key, f in todo}
            try:
                for future in as_completed(futures):
                    key, landed = futures[future]
                    try:
                        future.result()
                    except Exception as exc:  # noqa: BLE001 - reported as one line below
                        raise FhirflowError(
                            f"upload of {landed.relpath} to {store.description} failed: "
                            f"{_short(exc)}; check that the store is reachable, then re-run "
                            "(finished files are not uploaded again)"
                        ) from exc
                    ledger.confirm(key)
                    result.uploaded += 1
                    result.bytes += landed.size
                    done += 1
                    if progress:
                        progress(done, len(todo))
            finally:
                for future in futures:
                    future.cancel()
    result.seconds = time.perf_counter() - started
    return result


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def is_uploaded(state_dir: Path, store: ObjectStore) -> Callable[[LandedFile], bool]:
    """A predicate for landing clean-up: the file's current content is in the store."""
    ledger = UploadLedger(ledger_path(state_dir))

    def check(landed: LandedFile) -> bool:
        known = ledger.lookup(landed.relpath, file_sha256(landed.path))
        return bool(known and known[1] == "done" and store.exists(known[0]))

    return check
