"""Upload: landing folder -> object store, exactly once per file content and store.

A small SQLite ledger in `$FHIRFLOW_HOME/state/` remembers, per store (local folder, or
bucket + prefix + endpoint), landed file and content hash, the object key it was given. The
key is written to the ledger *before* the upload (status 'pending') and confirmed after it,
so a crash mid-upload is retried under the same key on the next run instead of producing a
second copy with a new key. Each run lists the store's keys since the oldest one the landed
files were given, so an object the store no longer holds (a lifecycle rule, a restored
bucket) is noticed and sent again, under a fresh key that sorts above the loader's
watermark; the load skips content RAW already holds for that file (see load's dedupe).
"""

from __future__ import annotations

import fcntl
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fhirflow import gz
from fhirflow.atomic import remove_stale_temps
from fhirflow.digest import file_sha256
from fhirflow.errors import (
    DiskError,
    FhirflowError,
    file_advice,
    first_line,
    is_disk_full,
    os_error_line,
)
from fhirflow.landing import LandedFile, Skipped, data_suffix, scan_landing
from fhirflow.safepath import safe_file_name
from fhirflow.store import ObjectStore

_SCHEMA = """
create table if not exists uploads_v2 (
    id          integer primary key autoincrement,
    store       text not null,
    relpath     text not null,
    sha256      text not null,
    size        integer not null,
    object_key  text not null,
    status      text not null check (status in ('pending', 'done')),
    recorded_at text not null,
    unique (store, object_key)
);
create index if not exists uploads_v2_file on uploads_v2 (store, relpath, id);
"""


@dataclass
class UploadResult:
    landed: int = 0
    uploaded: int = 0
    already_uploaded: int = 0
    # Confirmed in the ledger but gone from the store, so sent again.
    resent: int = 0
    bytes: int = 0
    seconds: float = 0.0
    skipped: list[Skipped] = field(default_factory=list)  # landing entries not uploaded
    leftovers_removed: int = 0  # temp files of killed runs (landing and a local store)

    def note(self) -> str:
        """The run summary's note for this stage."""
        parts = [f"{self.already_uploaded} already uploaded"]
        if self.resent:
            parts.append(f"{self.resent} sent again (the store had lost them)")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        return ", ".join(parts)


@dataclass(frozen=True)
class Known:
    object_key: str
    status: str
    sha256: str


class UploadLedger:
    """Which landed file content went to which object key of one store."""

    def __init__(self, path: Path, store: str = "") -> None:
        self.store = store
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path)
            self._db.execute("pragma journal_mode=wal")
            self._db.executescript(_SCHEMA)
            self._adopt_v1()
        except sqlite3.Error as exc:
            raise FhirflowError(
                f"cannot open the upload ledger {path}: {first_line(exc)} "
                f"({file_advice(str(exc))})"
            ) from None
        except OSError as exc:
            raise DiskError(os_error_line(exc, f"opening the upload ledger {path}")) from None

    def _adopt_v1(self) -> None:
        """Rows of the first ledger (no store column) become this store's: the next run
        checks each against the store's listing anyway, so a wrong guess only re-sends."""
        old = self._db.execute(
            "select 1 from sqlite_master where type = 'table' and name = 'uploads'"
        ).fetchone()
        if not old:
            return
        with self._db:
            self._db.execute(
                "insert or ignore into uploads_v2 "
                "(store, relpath, sha256, size, object_key, status, recorded_at) "
                "select ?, relpath, sha256, size, object_key, status, recorded_at "
                "from uploads order by recorded_at",
                (self.store,),
            )
            self._db.execute("drop table uploads")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> UploadLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def latest(self, relpath: str) -> Known | None:
        """The last upload planned for this file in this store, whatever its content."""
        row = self._db.execute(
            "select object_key, status, sha256 from uploads_v2 "
            "where store = ? and relpath = ? order by id desc limit 1",
            (self.store, relpath),
        ).fetchone()
        return Known(*row) if row else None

    def lookup(self, relpath: str, sha256: str) -> tuple[str, str] | None:
        """(object_key, status) when this content is the file's last upload to this store."""
        known = self.latest(relpath)
        return (known.object_key, known.status) if known and known.sha256 == sha256 else None

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """One transaction; a failure (a full disk) as one line. Nothing is lost by it: a
        run that could not record an upload checks the store for it next time."""
        try:
            with self._db:
                yield
        except sqlite3.Error as exc:
            raise DiskError(
                f"recording uploads in {self.path} failed: {first_line(exc)} "
                f"({file_advice(str(exc))}; files already sent are found in the store)"
            ) from None

    def plan_many(self, plans: list[tuple[str, str, int, str]]) -> None:
        """Record (relpath, sha256, size, key) rows as pending, in one transaction."""
        now = _now_iso()
        with self._writing():
            self._db.executemany(
                "insert into uploads_v2 "
                "(store, relpath, sha256, size, object_key, status, recorded_at) "
                "values (?, ?, ?, ?, ?, 'pending', ?)",
                [(self.store, *p, now) for p in plans],
            )

    def confirm(self, key: str) -> None:
        with self._writing():
            self._db.execute(
                "update uploads_v2 set status = 'done', recorded_at = ? "
                "where store = ? and object_key = ?",
                (_now_iso(), self.store, key),
            )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def ledger_path(state_dir: Path) -> Path:
    return state_dir / "upload_ledger.sqlite"


def ledger_scope(store: ObjectStore, prefix: str) -> str:
    """The ledger's name for one destination: the store's identity and the key prefix."""
    return f"{store.identity} {prefix}"


def object_key(prefix: str, stamp: str, seq: int, landed: LandedFile, *,
               compressed: bool = False) -> str:
    """`<prefix><UTC stamp>-<seq>-<file name>`: sorts by upload run, then by order in it.
    The file name is made safe (a file dropped into landing by hand may have any name).
    A file the upload compresses is `<prefix><stamp>-<seq>z-<file name>.gz`: the `z` tells
    the load that `.gz` is the upload's, not part of the landed file's name."""
    name = landed.path.name
    safe = safe_file_name(name, data_suffix(name) or ".json")
    if compressed:
        return f"{prefix}{stamp}-{seq:06d}z-{safe}{gz.SUFFIX}"
    return f"{prefix}{stamp}-{seq:06d}-{safe}"


def _fingerprint(landed: LandedFile) -> tuple[str, bool]:
    """The file's content hash, and whether the store should compress it (it is not gzip
    already: a `.ndjson.gz` export is stored as it is)."""
    return file_sha256(landed.path), not gz.is_gzip(landed.path)


def _held_keys(store: ObjectStore, prefix: str, keys: list[str]) -> set[str]:
    """Which of `keys` the store holds: one listing from just below the oldest of them (keys
    sort by upload time, so this reads the landing folder's window, not the whole bucket)."""
    if not keys:
        return set()
    wanted = set(keys)
    oldest = min(keys)
    return {o.key for o in store.list_after(prefix, oldest[:-1]) if o.key in wanted}


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
    """Upload every landed file whose current content this store does not hold.

    Safe to re-run after any crash: a file planned but not confirmed is looked up in the
    store; if it arrived it is confirmed, if not it is uploaded under a fresh key (so its key
    never sorts far below a watermark the loader already passed). A confirmed file the store
    no longer holds is sent again the same way. One upload at a time per state folder (a
    lock file), so two runs never plan the same file twice. The store is checked first, so
    a bucket that does not exist is an error even when there is nothing to send.
    """
    started = time.perf_counter()
    result = UploadResult()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    todo: list[tuple[str, LandedFile, bool]] = []
    store.check()  # unreachable store or missing bucket: one clear line before any work
    with _upload_lock(state_dir), UploadLedger(ledger_path(state_dir),
                                               ledger_scope(store, prefix)) as ledger:
        result.leftovers_removed = len(remove_stale_temps(landing_root))
        result.leftovers_removed += store.remove_leftovers()
        scan = scan_landing(landing_root)
        landed_files, result.skipped = scan.files, scan.skipped
        result.landed = len(landed_files)
        # Hashing dominates a re-run over a large landing folder; hashlib releases the GIL.
        with ThreadPoolExecutor(max_workers=max(1, min(workers, 4))) as pool:
            prints = list(pool.map(_fingerprint, landed_files))
        hashes = [sha for sha, _ in prints]
        knowns = [ledger.lookup(f.relpath, sha) for f, sha in zip(landed_files, hashes,
                                                                   strict=True)]
        held = _held_keys(store, prefix, [k[0] for k in knowns if k])
        plans: list[tuple[str, str, int, str]] = []
        for seq, (landed, (sha, compress), known) in enumerate(zip(landed_files, prints,
                                                                   knowns, strict=True)):
            if known and known[0] in held:
                if known[1] != "done":  # planned by a run that died after the PUT
                    ledger.confirm(known[0])
                result.already_uploaded += 1
                continue
            if known and known[1] == "done":
                result.resent += 1
            key = object_key(prefix, stamp, seq, landed, compressed=compress)
            plans.append((landed.relpath, sha, landed.size, key))
            todo.append((key, landed, compress))
        # Every key is durable in the ledger before its upload starts (one commit).
        ledger.plan_many(plans)
        _send(store, todo, ledger, result, workers, progress)
    result.seconds = time.perf_counter() - started
    return result


def _send(store: ObjectStore, todo: list[tuple[str, LandedFile, bool]], ledger: UploadLedger,
          result: UploadResult, workers: int, progress: Progress | None) -> None:
    total_bytes = sum(f.size for _, f, _ in todo)
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        # The store compresses on the way (gzip releases the GIL: both cores work).
        futures = {pool.submit(store.put_file, key, f.path, compress=compress): (key, f)
                   for key, f, compress in todo}
        try:
            for future in as_completed(futures):
                key, landed = futures[future]
                try:
                    future.result()
                except FileNotFoundError:
                    # Removed from landing since the listing (a clean-up): nothing to send.
                    result.skipped.append(Skipped(landed.relpath, "removed while uploading"))
                    continue
                except FhirflowError as exc:
                    raise type(exc)(f"upload of {landed.relpath} failed: {exc}") from exc
                except OSError as exc:
                    if is_disk_full(exc):
                        raise DiskError(os_error_line(exc, f"upload of {landed.relpath}")) from None
                    raise FhirflowError(f"upload of {landed.relpath} failed: "
                                        f"{first_line(exc)}") from exc
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


def is_uploaded(state_dir: Path, store: ObjectStore, prefix: str = ""
                ) -> Callable[[LandedFile], bool]:
    """A predicate for landing clean-up: the file's current content is in this store.
    `prefix`: the key prefix uploads used (Settings.patients_prefix); without it, any
    prefix of this store counts."""
    ledger = (UploadLedger(ledger_path(state_dir), ledger_scope(store, prefix)) if prefix
              else _AnyPrefix(ledger_path(state_dir), store.identity))

    def check(landed: LandedFile) -> bool:
        known = ledger.lookup(landed.relpath, file_sha256(landed.path))
        return bool(known and known[1] == "done" and store.exists(known[0]))

    return check


class _AnyPrefix(UploadLedger):
    """A ledger view across every prefix of one store (for clean-up called without one)."""

    def __init__(self, path: Path, identity: str) -> None:
        super().__init__(path, "")
        self._identity = identity

    def latest(self, relpath: str) -> Known | None:
        row = self._db.execute(
            "select object_key, status, sha256 from uploads_v2 "
            "where (store = ? or store like ?) and relpath = ? order by id desc limit 1",
            (self._identity, self._identity + " %", relpath),
        ).fetchone()
        return Known(*row) if row else None
