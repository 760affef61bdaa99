"""Load: object store -> warehouse RAW layer, incrementally and exactly once.

The seed's five steps are separate functions so the Airflow DAG can run them as tasks:
create_tables, get_last_watermark, list_new_files, load_batch, and the watermark update,
which happens inside load_batch's transaction (a separate step would leave a window where
rows are committed but the watermark is not).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fhirflow.store import ObjectStore, StoredObject
from fhirflow.warehouse import BatchResult, Rejected, Warehouse

# Uploads running in parallel can finish out of key order, so a key slightly below the
# watermark may appear after the watermark passed it. Listing re-reads this window below
# the watermark; keys RAW already holds are skipped, so nothing is loaded twice.
LISTING_GRACE = timedelta(hours=1)
_STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"

LoadProgress = Callable[[BatchResult, int, int], None]
"""progress(batch just committed, files done, files total)"""


@dataclass
class LoadResult:
    batches: list[BatchResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def files_loaded(self) -> int:
        return sum(b.files_loaded for b in self.batches)

    @property
    def files_failed(self) -> int:
        return sum(b.files_failed for b in self.batches)

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


def list_new_files(
    store: ObjectStore, warehouse: Warehouse, *, prefix: str, watermark: str | None
) -> list[StoredObject]:
    """Objects under the prefix that RAW holds neither as a bundle nor as an error."""
    candidates = [
        obj
        for obj in store.list_after(prefix, listing_start(prefix, watermark))
        if obj.key.endswith(".json")
    ]
    return _not_in_raw(warehouse, candidates)


def _not_in_raw(warehouse: Warehouse, objects: list[StoredObject]) -> list[StoredObject]:
    """The objects whose keys RAW holds neither as a bundle nor as an error."""
    known = set()
    for i in range(0, len(objects), 5000):
        known |= warehouse.known_keys([c.key for c in objects[i : i + 5000]])
    return [c for c in objects if c.key not in known]


def load_batch(
    store: ObjectStore,
    warehouse: Warehouse,
    objects: list[StoredObject],
    *,
    max_file_bytes: int,
) -> BatchResult:
    """Load one batch and advance the watermark in the same transaction."""
    started = datetime.now(UTC)
    too_big = [o for o in objects if o.size > max_file_bytes]
    rejected = [
        Rejected(o.key, o.size, f"file of {o.size} bytes is over the {max_file_bytes}-byte limit "
                 "(FHIRFLOW_MAX_FILE_MB)")
        for o in too_big
    ]
    readable = [o for o in objects if o.size <= max_file_bytes]
    return warehouse.load_batch(
        new_load_id(), readable, store, rejected=rejected, started_at=started
    )


def run_load(
    store: ObjectStore,
    warehouse: Warehouse,
    *,
    prefix: str,
    batch_size: int,
    max_file_bytes: int,
    max_batches: int | None = None,
    progress: LoadProgress | None = None,
    objects: list[StoredObject] | None = None,
) -> LoadResult:
    """All five steps, batch after batch until no new file is left.

    `objects`: load exactly these (the Airflow task's listing), minus the keys RAW already
    holds (a retry after some batches committed), instead of listing new files.
    """
    started = time.perf_counter()
    result = LoadResult()
    create_tables(warehouse)
    if objects is None:
        pending = list_new_files(
            store, warehouse, prefix=prefix, watermark=get_last_watermark(warehouse)
        )
    else:
        pending = _not_in_raw(warehouse, objects)
    total = len(pending)
    done = 0
    for i in range(0, total, batch_size):
        if max_batches is not None and len(result.batches) >= max_batches:
            break
        chunk = pending[i : i + batch_size]
        batch = load_batch(store, warehouse, chunk, max_file_bytes=max_file_bytes)
        result.batches.append(batch)
        done += len(chunk)
        if progress:
            progress(batch, done, total)
    result.seconds = time.perf_counter() - started
    return result
