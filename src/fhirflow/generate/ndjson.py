"""The simulator's output as a FHIR Bulk Data export: one NDJSON file per resource type.

What a server's `$export` writes after it has taken the transaction bundles in: one resource
per line, no Bundle wrapper or `request` parts, and every reference the server resolved
spelled `Type/id`: the bundle-local `urn:uuid:<id>` and the conditional
`Organization|Location|Practitioner?identifier=<system>|<value>` of the run-level resources.

A run writes `<landing>/_bulk/<Type>.<seed>.ndjson` (`.ndjson.gz` compressed). The seed is in
the name because the load takes a file of the same name as a corrected version of the earlier
one (it supersedes it): runs with other seeds must not replace each other's patients, and
the same run written again replaces itself with the same bytes.

Workers never share a file: each chunk of patients writes its own part per type (a hidden
temp file named after the final file, so listings skip it and the landing clean-up removes
it if a killed run leaves it behind), and the parent appends the parts in patient order to
each final file as the chunks come in (compressing there, so a gzip file is one stream any
reader takes), then renames the files into place. Chunks have a fixed size, so the bytes and
the set of files are the same whatever the number of workers; memory holds one patient.
"""

from __future__ import annotations

import gzip
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, Literal

import orjson

from fhirflow.generate.providers import build_network, hospital_bundle, practitioner_bundle
from fhirflow.landing import BULK_DIR, landing_relpath

Json = dict[str, Any]

OutputFormat = Literal["bundle", "ndjson", "ndjson.gz"]
FORMATS: tuple[OutputFormat, ...] = ("bundle", "ndjson", "ndjson.gz")

# A Reference's `reference` as orjson writes it; strings with escapes are never ours.
_REFERENCE = re.compile(rb'"reference":"([^"\\]+)"')
# zlib's default. On 108 MB of our NDJSON: level 6 gave 8.3 MB in 0.59 s of CPU, level 1
# 11.1 MB in 0.28 s; the parent compresses while the workers simulate.
GZIP_LEVEL = 6
_COPY_BYTES = 1 << 20


@dataclass(frozen=True)
class BulkTarget:
    """Where one run's NDJSON goes and how its parts are named (it must pickle to workers)."""

    landing_root: Path
    seed: int
    compress: bool
    owner_pid: int  # the parent's: its parts stay protected from clean-up while it runs
    token: str

    @classmethod
    def for_run(cls, landing_root: Path, seed: int, compress: bool) -> BulkTarget:
        return cls(landing_root, seed, compress, os.getpid(), secrets.token_hex(4))

    @property
    def folder(self) -> Path:
        return self.landing_root / BULK_DIR

    def final_path(self, kind: str) -> Path:
        name = f"{kind}.{self.seed}.ndjson" + (".gz" if self.compress else "")
        return self.landing_root / landing_relpath(name, None)

    def part_path(self, kind: str, start: int) -> Path:
        # atomic.py's temp-file shape (`.<name>.tmp-<pid>-<hex>`): skipped by listings,
        # removed by remove_stale_temps once the owner is gone.
        final = self.final_path(kind).name
        return self.folder / f".{final}.{start:09d}.tmp-{self.owner_pid}-{self.token}"

    def remove_parts(self) -> None:
        """Every part of this run still on disk (after a failure)."""
        for path in self.folder.glob(f".*.tmp-{self.owner_pid}-{self.token}"):
            path.unlink(missing_ok=True)


@cache
def conditional_targets(state: str) -> dict[bytes, bytes]:
    """`Type?identifier=<system>|<value>` -> `Type/id` for every provider of the state.

    Read from the run-level bundles' own conditional creates (`ifNoneExist`), built for the
    whole network, so the spelling is the one patient bundles use by construction.
    """
    network = build_network(state)
    clinicians = [c for org in network.organizations for c in org.clinicians]
    targets: dict[bytes, bytes] = {}
    for bundle in (hospital_bundle(network.organizations, {}, network.home_location_id),
                   practitioner_bundle(clinicians, {})):
        for entry in bundle["entry"]:
            resource = entry["resource"]
            criterion = entry.get("request", {}).get("ifNoneExist")
            if criterion:
                kind = resource["resourceType"]
                targets[f"{kind}?{criterion}".encode()] = f"{kind}/{resource['id']}".encode()
    return targets


def resource_lines(bundle: Json, conditional: dict[bytes, bytes]) -> Iterator[tuple[str, bytes]]:
    """(resource type, NDJSON line) of each entry, references spelled `Type/id`.

    A reference neither the bundle nor the provider network answers stays as it is, as a
    server's export keeps an external reference.
    """
    local = {entry["fullUrl"].encode(): f"{entry['resource']['resourceType']}/"
                                        f"{entry['resource']['id']}".encode()
             for entry in bundle["entry"] if entry.get("fullUrl")}

    def rewrite(match: re.Match[bytes]) -> bytes:
        spelled = match.group(1)
        target = local.get(spelled) or conditional.get(spelled)
        return b'"reference":"' + target + b'"' if target is not None else match.group(0)

    for entry in bundle["entry"]:
        resource = entry["resource"]
        yield resource["resourceType"], _REFERENCE.sub(rewrite, orjson.dumps(resource)) + b"\n"


class ChunkParts:
    """The part files of one chunk of patients, one per resource type, opened as needed."""

    def __init__(self, target: BulkTarget, start: int, state: str) -> None:
        self.target = target
        self.start = start
        self.conditional = conditional_targets(state)
        self._handles: dict[str, BinaryIO] = {}

    def write(self, bundle: Json) -> None:
        for kind, line in resource_lines(bundle, self.conditional):
            handle = self._handles.get(kind)
            if handle is None:
                self.target.folder.mkdir(parents=True, exist_ok=True)
                path = self.target.part_path(kind, self.start)
                handle = self._handles[kind] = path.open("wb", buffering=1 << 16)
            handle.write(line)

    def close(self) -> dict[str, Path]:
        """Close every part; type -> its file. (The parent fsyncs the final files.)"""
        parts = {}
        for kind, handle in self._handles.items():
            handle.close()
            parts[kind] = Path(handle.name)
        self._handles.clear()
        return parts

    def discard(self) -> None:
        for path in self.close().values():
            path.unlink(missing_ok=True)


class BulkWriter:
    """The run's final files, filled as chunks finish: each chunk's parts are appended in
    chunk order (and removed), so the parts of only a few chunks are on disk at a time and
    compression runs while the workers still simulate. Each file is a temp file beside its
    target until `finish` renames it into place (atomic.py's way: fsync, then rename)."""

    def __init__(self, target: BulkTarget) -> None:
        self.target = target
        self._files: dict[str, tuple[BinaryIO, BinaryIO]] = {}  # type -> (file, stream)

    def _stream(self, kind: str) -> BinaryIO:
        opened = self._files.get(kind)
        if opened is None:
            handle = self._temp(kind).open("wb")
            stream: BinaryIO = handle
            if self.target.compress:
                # No name and a zero time in the header: the same bytes on every run.
                stream = gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0,
                                       compresslevel=GZIP_LEVEL)  # type: ignore[assignment]
            opened = self._files[kind] = (handle, stream)
        return opened[1]

    def _temp(self, kind: str) -> Path:
        final = self.target.final_path(kind)
        return final.with_name(f".{final.name}.tmp-{self.target.owner_pid}-{self.target.token}")

    def append(self, parts: dict[str, Path]) -> None:
        """One chunk's parts (the next chunk in patient order)."""
        for kind in sorted(parts):
            with parts[kind].open("rb") as src:
                shutil.copyfileobj(src, self._stream(kind), _COPY_BYTES)
            parts[kind].unlink()

    def finish(self, run_level: Iterable[Json]) -> list[Path]:
        """Append the run-level resources, then put every file in place; the files, sorted."""
        for bundle in run_level:
            # Run-level resources refer to each other by logical identifier, never by a
            # `reference` string: nothing conditional to resolve in them.
            for kind, line in resource_lines(bundle, {}):
                self._stream(kind).write(line)
        written = []
        for kind in sorted(self._files):
            handle, stream = self._files.pop(kind)
            if stream is not handle:
                stream.close()  # writes the gzip trailer; the file stays open
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            final = self.target.final_path(kind)
            os.replace(self._temp(kind), final)
            written.append(final)
        return written

    def abort(self) -> None:
        """Close and remove what was written so far (the parts are `remove_parts`')."""
        for kind, (handle, _stream) in self._files.items():
            handle.close()
            self._temp(kind).unlink(missing_ok=True)
        self._files.clear()
