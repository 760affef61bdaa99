"""The landing folder: where bundles wait until the object store holds them.

Layout (DESIGN.md): `<landing>/<patient_id>/<file>.json` for patient bundles and
`<landing>/_run/<file>.json` for the run-level bundles Synthea writes once per run
(`hospitalInformation<ts>.json`, `practitionerInformation<ts>.json`).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fhirflow.atomic import copy_atomic
from fhirflow.atomic import write_atomic as write_atomic  # re-exported for the generator
from fhirflow.errors import FhirflowError

RUN_LEVEL_DIR = "_run"
RUN_LEVEL_PREFIXES = ("hospitalInformation", "practitionerInformation")
_UUID_AT_END = re.compile(
    r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\.json$"
)


@dataclass(frozen=True)
class LandedFile:
    path: Path
    relpath: str  # posix path relative to the landing root, e.g. "<patient_id>/<file>.json"
    size: int
    mtime: float


@dataclass
class IngestResult:
    copied: int = 0
    unchanged: int = 0
    bytes: int = 0
    patients: set[str] = field(default_factory=set)


@dataclass
class CleanResult:
    removed: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)  # (relpath, reason)


def is_run_level(filename: str) -> bool:
    return filename.startswith(RUN_LEVEL_PREFIXES)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def patient_id_for(path: Path) -> str | None:
    """The patient id of a Synthea patient bundle: the uuid its file name ends with.

    Synthea names bundles `Given_Family_<uuid>.json` with the Patient.id; for files named
    otherwise, the first Patient entry of the bundle tells.
    """
    match = _UUID_AT_END.search(path.name)
    if match:
        return match.group(1).lower()
    try:
        bundle = json.loads(path.read_bytes())
        for entry in bundle.get("entry", []):
            resource = entry.get("resource", {})
            if resource.get("resourceType") == "Patient" and resource.get("id"):
                return str(resource["id"])
    except (ValueError, AttributeError, OSError):
        return None
    return None


def landing_relpath(filename: str, patient_id: str | None) -> str:
    if is_run_level(filename) or not patient_id:
        return f"{RUN_LEVEL_DIR}/{filename}"
    return f"{patient_id}/{filename}"


def _same_file(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and file_sha256(a) == file_sha256(b)


# What the load reads: bundles and FHIR Bulk Data NDJSON, each optionally gzip-compressed.
LANDED_SUFFIXES = (".json", ".json.gz", ".ndjson", ".ndjson.gz")


def is_landed_name(name: str) -> bool:
    return name.endswith(LANDED_SUFFIXES)


def find_bundle_files(source: Path) -> list[Path]:
    """Bundle and NDJSON files of a Synthea (or Bulk Data export) folder: the folder itself,
    or its `fhir/` subfolder."""
    if not source.is_dir():
        raise FhirflowError(f"{source} is not a directory; pass a Synthea output folder")
    folder = source / "fhir" if (source / "fhir").is_dir() else source
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_landed_name(p.name))
    if not files:
        raise FhirflowError(f"no .json bundles in {folder}; expected Synthea FHIR output")
    return files


def ingest_synthea_output(
    source: Path, landing_root: Path, *, move: bool = False
) -> IngestResult:
    """Place a Synthea output folder's bundles into the landing layout.

    Idempotent: a file already landed with the same content is left alone. With `move`,
    the source files are removed once their copy is in place (the real-Synthea runner).
    """
    result = IngestResult()
    for path in find_bundle_files(source):
        # Only a plain bundle names one patient; NDJSON (any size) lands under _run/ unread.
        plain_bundle = path.suffix == ".json" and not is_run_level(path.name)
        patient_id = patient_id_for(path) if plain_bundle else None
        target = landing_root / landing_relpath(path.name, patient_id)
        if target.exists() and _same_file(path, target):
            result.unchanged += 1
        else:
            copy_atomic(path, target)
            result.copied += 1
            result.bytes += target.stat().st_size
        if patient_id:
            result.patients.add(patient_id)
        if move:
            path.unlink()
    return result


def iter_landed(landing_root: Path) -> Iterator[LandedFile]:
    if not landing_root.is_dir():
        return
    for path in sorted(landing_root.glob("*/*")):
        if path.name.startswith(".") or not path.is_file() or not is_landed_name(path.name):
            continue
        stat = path.stat()
        relpath = path.relative_to(landing_root).as_posix()
        yield LandedFile(path=path, relpath=relpath, size=stat.st_size, mtime=stat.st_mtime)


def list_landed(landing_root: Path) -> list[LandedFile]:
    return list(iter_landed(landing_root))


def clean_landing(
    landing_root: Path,
    ttl_hours: float,
    is_uploaded: Callable[[LandedFile], bool],
    *,
    now: float | None = None,
    dry_run: bool = False,
) -> CleanResult:
    """Remove landed files older than the TTL, but only those the object store holds.

    A file never uploaded is kept however old it is: the landing folder may be the only
    copy of it.
    """
    now = time.time() if now is None else now
    cutoff = now - ttl_hours * 3600
    result = CleanResult()
    for landed in iter_landed(landing_root):
        if landed.mtime > cutoff:
            result.kept.append((landed.relpath, "younger than the TTL"))
        elif not is_uploaded(landed):
            result.kept.append((landed.relpath, "not uploaded yet"))
        else:
            if not dry_run:
                landed.path.unlink()
            result.removed.append(landed.relpath)
    if dry_run:
        return result
    _remove_empty_dirs(landing_root, (p.split("/")[0] for p in result.removed))
    return result


def _remove_empty_dirs(root: Path, names: Iterable[str]) -> None:
    for name in set(names):
        folder = root / name
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty, or already gone
