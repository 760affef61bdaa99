"""Load: object store -> warehouse RAW layer, incrementally and exactly once.

The seed's five steps are separate functions so the Airflow DAG can run them as tasks:
create_tables, get_last_watermark, list_new_files, load_batch, and the watermark update,
which happens inside load_batch's transaction (a separate step would leave a window where
rows are committed but the watermark is not).

This stage is the only one that talks to both sides: it reads the object store and hands the
warehouse each file as a local path (the local store's own file, or a copy fetched into a
temporary folder) or, for a warehouse that reads the store itself, as the object's URL.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fhirflow import gz
from fhirflow.store import ObjectMissing, ObjectStore, StoredObject
from fhirflow.warehouse import (
    BatchFile,
    BatchResult,
    FileAccess,
    Rejected,
    Warehouse,
    files,
    reasons,
)

# Uploads running in parallel can finish out of key order, so a key slightly below the
# watermark may appear after the watermark passed it. Listing re-reads this window below
# the watermark; keys RAW already holds are skipped, so nothing is loaded twice.
LISTING_GRACE = timedelta(hours=1)
_STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
# RAW is asked about this many keys per query.
_KNOWN_KEYS_CHUNK = 5000
# Remote objects fetched at once for a batch, unless the caller says otherwise.
FETCH_WORKERS = 8

LoadProgress = Callable[[BatchResult, int, int], None]
"""progress(batch just committed, files done, files total)"""


@dataclass
class LoadResult:
    batches: list[BatchResult] = field(default_factory=list)
    seconds: float = 0.0
    # Files of a given list that RAW already held (an earlier try loaded them): not loaded.
    files_skipped: int = 0

    @property
    def files_loaded(self) -> int:
        return sum(b.files_loaded for b in self.batches)

    @property
    def files_failed(self) -> int:
        return sum(b.files_failed for b in self.batches)

    @property
    def entries_loaded(self) -> int:
        return sum(b.entries_loaded for b in self.batches)

    @property
    def entries_rejected(self) -> int:
        return sum(b.entries_rejected for b in self.batches)

    @property
    def bytes_loaded(self) -> int:
        return sum(b.bytes_loaded for b in self.batches)

    @property
    def watermark(self) -> str | None:
        marks = [b.watermark for b in self.batches if b.watermark]
        return max(marks) if marks else None


def new_load_id() -> str:
    """Sortable by start time, unique across concurrent processes."""
    return f"{datetime.now(UTC).strftime(_STAMP_FORMAT)}-{secrets.token_hex(3)}"


def create_tables(warehouse: Warehouse) -> None:
    warehouse.create_tables()


def get_last_watermark(warehouse: Warehouse) -> str | None:
    return warehouse.last_watermark()


def listing_start(prefix: str, watermark: str | None) -> str | None:
    """The key to list after: the watermark moved back by LISTING_GRACE."""
    if watermark is None:
        return None
    stamp = watermark.removeprefix(prefix).split("-", 1)[0]
    try:
        moment = datetime.strptime(stamp, _STAMP_FORMAT)
    except ValueError:
        return prefix  # a key we did not name: list everything, dedupe does the rest
    return prefix + (moment - LISTING_GRACE).strftime(_STAMP_FORMAT)


def unique_objects(objects: Iterable[StoredObject]) -> list[StoredObject]:
    """The objects with each key once (its first occurrence), in their order."""
    first: dict[str, StoredObject] = {}
    for obj in objects:
        first.setdefault(obj.key, obj)
    return list(first.values())


def not_known(warehouse: Warehouse, objects: list[StoredObject]) -> list[StoredObject]:
    """The objects RAW holds neither as a bundle nor as an error."""
    known: set[str] = set()
    for i in range(0, len(objects), _KNOWN_KEYS_CHUNK):
        known |= warehouse.known_keys([o.key for o in objects[i : i + _KNOWN_KEYS_CHUNK]])
    return [o for o in objects if o.key not in known]


def list_new_files(
    store: ObjectStore, warehouse: Warehouse, *, prefix: str, watermark: str | None
) -> list[StoredObject]:
    """Objects under the prefix that RAW holds neither as a file nor as an error: bundles
    and NDJSON files, plain or gzip-compressed."""
    candidates = [
        obj
        for obj in store.list_after(prefix, listing_start(prefix, watermark))
        if files.is_fhir_file_name(obj.key)
    ]
    return not_known(warehouse, candidates)


def materialise(
    store: ObjectStore,
    objects: list[StoredObject],
    *,
    reads: FileAccess,
    folder: Path,
    workers: int = FETCH_WORKERS,
    max_file_bytes: int | None = None,
) -> tuple[list[BatchFile], list[Rejected]]:
    """What the warehouse reads for each object, and the objects it cannot have.

    reads "url": the objects' URLs, nothing fetched (the warehouse inflates gzip itself).
    reads "path": the local store's own files; a remote store's objects are streamed into
    `folder`. A gzip-compressed bundle (the upload stores objects compressed) is inflated
    into `folder`, at most `max_file_bytes` of it, since a warehouse parses a bundle whole
    from plain text; a gzip NDJSON file is handed over as it is (it streams). A bounded
    pool of threads does both (gzip and socket reads release the GIL), so memory holds one
    read buffer per thread, whatever the batch size.
    """
    if reads == "url":
        return [BatchFile(o.key, o.size, url=store.url(o.key)) for o in objects], []
    limit = max_file_bytes if max_file_bytes is not None else 1 << 62
    remote = any(store.local_path(o.key) is None for o in objects[:1])
    # Fetching waits on the network; inflating is CPU work, one thread per core is enough.
    threads = workers if remote else min(workers, os.cpu_count() or 2)

    def prepare(item: tuple[int, StoredObject]) -> BatchFile | Rejected:
        i, obj = item
        local = store.local_path(obj.key)
        if local is None:
            local = folder / f"{i:06d}.fetched"
            try:
                store.fetch_to(obj.key, local)
            except ObjectMissing:
                return Rejected(obj.key, obj.size, reasons.GONE)
        elif not local.is_file():
            return Rejected(obj.key, obj.size, reasons.GONE)
        return _plain(obj, local, folder / f"{i:06d}.json", limit)

    batch: list[BatchFile] = []
    refused: list[Rejected] = []
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(objects) or 1))) as pool:
        for out in pool.map(prepare, enumerate(objects)):
            (batch if isinstance(out, BatchFile) else refused).append(out)
    return batch, refused


def _plain(obj: StoredObject, path: Path, target: Path, limit: int) -> BatchFile | Rejected:
    """The object as the warehouse reads it: plain bundles and NDJSON (gzip or not) as they
    are, a gzip bundle inflated into `target`."""
    try:
        if not gz.is_gzip(path) or files.kind_of(path, obj.key).kind == "ndjson":
            return BatchFile(obj.key, obj.size, path=path)
    except FileNotFoundError:
        return Rejected(obj.key, obj.size, reasons.GONE)
    outcome = gz.inflate(path, target, limit=limit)
    if outcome == "corrupt":
        return Rejected(obj.key, obj.size, reasons.CORRUPT_GZIP)
    if outcome == "too big":
        return Rejected(obj.key, obj.size, reasons.inflates_too_big(limit))
    if path.parent == target.parent:
        path.unlink()  # the fetched copy; only the inflated one is read
    return BatchFile(obj.key, obj.size, path=target)


def load_batch(
    store: ObjectStore,
    warehouse: Warehouse,
    objects: list[StoredObject],
    *,
    max_file_bytes: int,
    fetch_workers: int = FETCH_WORKERS,
) -> BatchResult:
    """Load one batch and advance the watermark in the same transaction.

    A key listed twice counts once: the warehouse is handed each key a single time. The size
    limit is for bundles, which a warehouse parses whole; NDJSON files stream line by line.
    """
    started = datetime.now(UTC)
    objects = unique_objects(objects)
    rejected = [
        Rejected(o.key, o.size, reasons.too_big(o.size, max_file_bytes))
        for o in objects
        if _over_limit(o, max_file_bytes)
    ]
    readable = [o for o in objects if not _over_limit(o, max_file_bytes)]
    with tempfile.TemporaryDirectory(prefix="fhirflow-load-") as tmp:
        files, refused = materialise(store, readable, reads=warehouse.reads,
                                     folder=Path(tmp), workers=fetch_workers,
                                     max_file_bytes=max_file_bytes)
        return warehouse.load_batch(
            new_load_id(), files, rejected=rejected + refused, started_at=started
        )


def _over_limit(obj: StoredObject, max_file_bytes: int) -> bool:
    return obj.size > max_file_bytes and not files.is_ndjson_name(obj.key)


def run_load(
    store: ObjectStore,
    warehouse: Warehouse,
    *,
    prefix: str,
    batch_size: int,
    max_file_bytes: int,
    objects: list[StoredObject] | None = None,
    max_batches: int | None = None,
    progress: LoadProgress | None = None,
    fetch_workers: int = FETCH_WORKERS,
) -> LoadResult:
    """All five steps, batch after batch.

    objects None: every new file under `prefix` after the watermark (less the grace window),
    until none is left. objects given (an Airflow task's listing): exactly those, less the
    keys RAW already holds (a retry after some batches committed), so a retry never loads a
    file twice; `prefix` is not used then.
    """
    started = time.perf_counter()
    result = LoadResult()
    create_tables(warehouse)
    if objects is None:
        pending = list_new_files(
            store, warehouse, prefix=prefix, watermark=get_last_watermark(warehouse)
        )
    else:
        given = unique_objects(objects)
        pending = not_known(warehouse, given)
        result.files_skipped = len(given) - len(pending)
    total = len(pending)
    done = 0
    for i in range(0, total, batch_size):
        if max_batches is not None and len(result.batches) >= max_batches:
            break
        chunk = pending[i : i + batch_size]
        batch = load_batch(store, warehouse, chunk, max_file_bytes=max_file_bytes,
                           fetch_workers=fetch_workers)
        result.batches.append(batch)
        done += len(chunk)
        if progress:
            progress(batch, done, total)
    result.seconds = time.perf_counter() - started
    return result
