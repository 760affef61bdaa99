"""Shared helpers for the generator tests: walking JSON paths and references, finding the
shared sample, and the scaffold of the worker tests (a run's files as bytes, a caller with a
thread running)."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "shared" / "synthea" / "synthea-2024-04" / "fhir"
SAMPLE_MISSING = (f"real Synthea sample not found at {SAMPLE_DIR} "
                  "(it lives in ../shared beside the repo)")


def walk_paths(value: Any, prefix: str = "") -> Iterator[str]:
    """Every leaf path of a JSON value, lists written as `[]` (e.g. `code.coding[].system`)."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield from walk_paths(child, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list):
        for child in value:
            yield from walk_paths(child, prefix + "[]")
    else:
        yield prefix


def paths_by_type(bundles: Iterable[dict]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for bundle in bundles:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            found[resource["resourceType"]].update(walk_paths(resource))
    return found


def load_bundles(folder: Path) -> list[dict]:
    return [json.loads(p.read_bytes()) for p in sorted(folder.rglob("*.json"))]


def references(value: Any) -> list[str]:
    """Every `reference` string of a resource (or any JSON value), depth first."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "reference" and isinstance(child, str):
                found.append(child)
            else:
                found += references(child)
    elif isinstance(value, list):
        for child in value:
            found += references(child)
    return found


def file_bytes(folder: Path, pattern: str = "*") -> dict[str, bytes]:
    """The files under `folder` matching `pattern`, by their path relative to it: what two
    runs compare to be byte-identical."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.glob(pattern))}


@contextmanager
def another_thread_running() -> Iterator[None]:
    """A caller with a second thread alive, as an Airflow task is: the generator must spawn
    its workers then (forking a threaded process is unsafe), not fork them."""
    stop = threading.Event()
    waiter = threading.Thread(target=stop.wait, daemon=True)
    waiter.start()
    try:
        yield
    finally:
        stop.set()
        waiter.join()
