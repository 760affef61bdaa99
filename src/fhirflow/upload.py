"""Upload: landing folder -> object store, exactly once per file content.

A small SQLite ledger in `$FHIRFLOW_HOME/state/` remembers, per landed file and content
hash, the object key it was given. The key is written to the ledger *before* the upload
(status 'pending') and confirmed after it, so a crash mid-upload is retried under the same
key on the next run instead of producing a second copy with a new key.
"""

from __future__ import annotations

import fcntl
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fhirflow.errors import FhirflowError, first_line
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

    def plan_many(self, plans: list[tuple[str, str, int, str]]) -> None:
        """Record (relpath, sha256, size, key) rows as pending, in one transaction."""
        now = _now_iso()
        with self._db:
            self._db.executemany(
                "insert into uploads values (?, ?, ?, ?, 'pending', ?)",
                [(*p, now) for p in plans],
            )

    def confirm(self, key: str) -> None:
        with self._db:
            self._db.execute(
                "update uploads set status = 'done', recorded_at = ? where object_key = ?",
                (_now_iso(), key),
            )

    def rekey(self, old_key: str, new_key: str) -> None:
        """Give a planned upload that never reached the store a new key."""
        with self._db:
            self._db.execute(
                "update uploads set object_key = ?, recorded_at = ? "
                "where object_key = ? and status = 'pending'",
                (new_key, _now_iso(), old_key),
            )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def ledger_path(state_dir: Path) -> Path:
    return state_dir / "upload_ledger.sqlite"


def object_key(prefix: str, stamp: str, seq: int, landed: LandedFile) -> str:
    """`<prefix><UTC stamp>-<seq>-<file name>`: sorts by upload run, then by order in it."""
    return f"{prefix}{stamp}-{seq:06d}-{landed.path.name}"


Progress = Callable[[int, int, int, int], None]
"""progress(files_done, files_total, bytes_done, bytes_total)"""


def upload_landing(
    landing_root: Path,
    store: ObjectStore,
    *,
    prefix: str,
    state_dir: Path,
    workers: int = 8,
    progress: Progress | None = None,
) -> UploadResult:
    """Upload every landed file whose current content the store does not hold yet.

    Safe to re-run after any crash: a file planned but not confirmed is looked up in the
    store; if it arrived it is confirmed, if not it is uploaded under a fresh key (so its key
    never sorts far below a watermark the loader already passed). One upload at a time per
    state folder (a lock file), so two runs never plan the same file twice.
    """
    started = time.perf_counter()
    result = UploadResult()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    todo: list[tuple[str, LandedFile]] = []
    with _upload_lock(state_dir), UploadLedger(ledger_path(state_dir)) as ledger:
        landed_files = list(iter_landed(landing_root))
        result.landed = len(landed_files)
        # Hashing dominates a re-run over a large landing folder; hashlib releases the GIL.
        with ThreadPoolExecutor(max_workers=max(1, min(workers, 4))) as pool:
            hashes = list(pool.map(lambda f: file_sha256(f.path), landed_files))
        checked = False
        plans: list[tuple[str, str, int, str]] = []
        for seq, (landed, sha) in enumerate(zip(landed_files, hashes, strict=True)):
            known = ledger.lookup(landed.relpath, sha)
            if known and known[1] == "done":
                result.already_uploaded += 1
                continue
            if known:  # planned by a run that died before confirming
                if not checked:
                    store.check()
                    checked = True
                if store.exists(known[0]):
                    ledger.confirm(known[0])
                    result.already_uploaded += 1
                    continue
                key = object_key(prefix, stamp, seq, landed)
                ledger.rekey(known[0], key)
            else:
                key = object_key(prefix, stamp, seq, landed)
                plans.append((landed.relpath, sha, landed.size, key))
            todo.append((key, landed))
        # Every key is durable in the ledger before its upload starts (one commit).
        ledger.plan_many(plans)

        if todo and not checked:
            store.check()  # unreachable store: one clear line before any work starts
        total_bytes = sum(f.size for _, f in todo)
        done = 0
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {pool.submit(store.put_file, key, f.path): (key, f) for key, f in todo}
            try:
                for future in as_completed(futures):
                    key, landed = futures[future]
                    try:
                        future.result()
                    except FhirflowError as exc:
                        raise FhirflowError(f"upload of {landed.relpath} failed: {exc}") from exc
                    except Exception as exc:  # any library's error, reported as one line
                        raise FhirflowError(
                            f"upload of {landed.relpath} to {store.description} failed: "
                            f"{first_line(exc)}; re-run once the store is reachable "
                            "(finished files are not uploaded again)"
                        ) from exc
                    ledger.confirm(key)
                    result.uploaded += 1
                    result.bytes += landed.size
                    done += 1
                    if progress:
                        progress(done, len(todo), result.bytes, total_bytes)
            finally:
                for future in futures:
                    future.cancel()
    result.seconds = time.perf_counter() - started
    return result


@contextmanager
def _upload_lock(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "upload.lock"
    with path.open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FhirflowError(
                f"another upload is running (it holds {path}); wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def is_uploaded(state_dir: Path, store: ObjectStore) -> Callable[[LandedFile], bool]:
    """A predicate for landing clean-up: the file's current content is in the store."""
    ledger = UploadLedger(ledger_path(state_dir))

    def check(landed: LandedFile) -> bool:
        known = ledger.lookup(landed.relpath, file_sha256(landed.path))
        return bool(known and known[1] == "done" and store.exists(known[0]))

    return check
