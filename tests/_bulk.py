"""Test helper: Synthea bundles -> a FHIR Bulk Data export, as a server's `$export` writes it.

One NDJSON file per resource type (`Patient.ndjson`, ...), one resource per line, and every
reference a server would have resolved rewritten to `Type/id`: `urn:uuid:<id>` (the bundle's
fullUrl) and the conditional `Type?identifier=<system>|<value>` of the run-level
Organizations, Locations and Practitioners. Bundle wrappers and `request` parts are gone.

Trusted input only (our shared Synthea run and copies of it): this is a fixture writer, not
part of the product, so it uses `json` freely. Two passes, one bundle in memory at a time.
"""

from __future__ import annotations

import gzip as gzip_module
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO

_REFERENCE = re.compile(r'"reference":"([^"]+)"')


def reference_targets(bundles: Iterable[Path]) -> dict[str, str]:
    """Every spelling a bundle uses for a resource -> `Type/id`."""
    targets: dict[str, str] = {}
    for path in bundles:
        for entry in json.loads(path.read_bytes()).get("entry", []):
            resource = entry["resource"]
            target = f"{resource['resourceType']}/{resource['id']}"
            if entry.get("fullUrl"):
                targets[entry["fullUrl"]] = target
            criterion = (entry.get("request") or {}).get("ifNoneExist")
            if criterion:
                targets[f"{resource['resourceType']}?{criterion}"] = target
    return targets


def bundles_to_ndjson(bundles: list[Path], out: Path, *, gzip: bool = False) -> list[Path]:
    """Write the resources of `bundles` as `<out>/<Type>.ndjson[.gz]`; returns the files."""
    targets = reference_targets(bundles)

    def rewrite(match: re.Match[str]) -> str:
        return '"reference":"' + targets.get(match.group(1), match.group(1)) + '"'

    out.mkdir(parents=True, exist_ok=True)
    handles: dict[str, IO[str]] = {}
    try:
        for path in bundles:
            for entry in json.loads(path.read_bytes()).get("entry", []):
                resource = entry["resource"]
                kind = resource["resourceType"]
                if kind not in handles:
                    name = out / f"{kind}.ndjson{'.gz' if gzip else ''}"
                    handles[kind] = (gzip_module.open(name, "wt", encoding="utf-8") if gzip
                                     else name.open("w", encoding="utf-8"))
                line = json.dumps(resource, separators=(",", ":"), ensure_ascii=False)
                handles[kind].write(_REFERENCE.sub(rewrite, line) + "\n")
    finally:
        for handle in handles.values():
            handle.close()
    return sorted(out / Path(h.name).name for h in handles.values())
