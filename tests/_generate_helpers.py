"""Shared helpers for the generator tests (walking JSON paths, finding the shared sample)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
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
