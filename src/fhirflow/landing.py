"""The landing folder: where bundles wait until the object store holds them.

Layout (DESIGN.md): `<landing>/<patient dir>/<file>.json` for patient bundles,
`<landing>/_run/<file>.json` for the run-level bundles Synthea writes once per run
(`hospitalInformation<ts>.json`, `practitionerInformation<ts>.json`) and for bundles without a
Patient, `<landing>/_bulk/<file>.ndjson[.gz]` for FHIR Bulk Data files.

Every path segment comes from `safepath`: a Patient.id or file name from the input is used
verbatim only when plainly safe, and otherwise sanitised and hashed, so nothing in a bundle
or a file name can place a write outside the landing folder. Input is inspected in Python
only through `jsonscan` (bounded depth), so no file can crash the stage.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhirflow import jsonscan
from fhirflow.atomic import (
    is_temp_name,
    link_atomic,
    remove_stale_temps,
    write_atomic,
    write_chunks_atomic,
)
from fhirflow.digest import file_sha256
from fhirflow.errors import DiskError, FhirflowError, first_line, os_error_line
from fhirflow.intake import DATA_SUFFIXES, Discovered, Skipped, SourceFile, data_suffix, discover
from fhirflow.intake import open_source as _open_source
from fhirflow.safepath import safe_component, safe_file_name, within

__all__ = ["DATA_SUFFIXES", "Skipped", "data_suffix", "write_atomic"]

RUN_LEVEL_DIR = "_run"
BULK_DIR = "_bulk"
RUN_LEVEL_PREFIXES = ("hospitalInformation", "practitionerInformation")
_UUID_AT_END = re.compile(
    r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\.json$",
    re.IGNORECASE,
)
# Files up to this size are read once into memory, inspected and written from that copy;
# larger ones are streamed without inspection (the load quarantines what is too large).
DEFAULT_INSPECT_BYTES = 64 * 1024 * 1024
REPORT_NAME = "landing_report.json"


@dataclass(frozen=True)
class LandedFile:
    path: Path
    relpath: str  # posix path relative to the landing root, e.g. "<patient_id>/<file>.json"
    size: int
    mtime: float


@dataclass(frozen=True)
class LandingWarning:
    path: str  # the input file
    kind: str  # "empty bundle" | "unresolved references" | "not inspected"
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "kind": self.kind, "detail": self.detail}


EMPTY_BUNDLE = "empty bundle"
UNRESOLVED = "unresolved references"
NOT_INSPECTED = "not inspected"


@dataclass
class IngestResult:
    copied: int = 0
    unchanged: int = 0
    bytes: int = 0
    patients: set[str] = field(default_factory=set)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[LandingWarning] = field(default_factory=list)
    leftovers_removed: int = 0

    def count(self, kind: str) -> int:
        return sum(1 for w in self.warnings if w.kind == kind)

    @property
    def empty_bundles(self) -> int:
        return self.count(EMPTY_BUNDLE)

    @property
    def unresolved_bundles(self) -> int:
        """Patient bundles with conditional references no run-level bundle answers."""
        return self.count(UNRESOLVED)

    def note(self) -> str:
        """The run summary's note for this stage."""
        parts = [f"{self.copied} new", f"{self.unchanged} already landed"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        if self.empty_bundles:
            parts.append(f"{self.empty_bundles} empty bundles")
        if self.unresolved_bundles:
            parts.append(f"{self.unresolved_bundles} with unresolved references")
        if self.count(NOT_INSPECTED):
            parts.append(f"{self.count(NOT_INSPECTED)} not inspected")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        """What `status --json` shows of the last ingest."""
        return {
            "copied": self.copied,
            "unchanged": self.unchanged,
            "patients": len(self.patients),
            "skipped": [s.as_dict() for s in self.skipped],
            "warnings": [w.as_dict() for w in self.warnings],
            "empty_bundles": self.empty_bundles,
            "unresolved_reference_bundles": self.unresolved_bundles,
            "leftovers_removed": self.leftovers_removed,
        }


@dataclass
class CleanResult:
    removed: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)  # (relpath, reason)


def is_run_level(filename: str) -> bool:
    return filename.startswith(RUN_LEVEL_PREFIXES)


def _patient_in(doc: Any) -> str | None:
    for resource in jsonscan.resources(doc):
        if resource.get("resourceType") == "Patient" and resource.get("id"):
            return str(resource["id"])
    return None


def patient_id_for(path: Path, data: bytes | None = None) -> str | None:
    """The patient id of a Synthea patient bundle: the uuid its file name ends with.

    Synthea names bundles `Given_Family_<uuid>.json` with the Patient.id; for files named
    otherwise, the first Patient entry of the bundle tells (parsed with bounded depth: a
    file that cannot be parsed safely has no patient id).
    """
    match = _UUID_AT_END.search(path.name)
    if match:
        return match.group(1).lower()
    try:
        doc = jsonscan.safe_loads(path.read_bytes() if data is None else data)
    except (jsonscan.UnsafeJson, OSError):
        return None
    return _patient_in(doc)


def landing_relpath(filename: str, patient_id: str | None) -> str:
    """Where a file of this name (and patient) lands, relative to the landing root; every
    segment safe whatever the name and id hold."""
    suffix = data_suffix(filename) or ".json"
    name = safe_file_name(filename, suffix)
    if suffix != ".json":
        return f"{BULK_DIR}/{name}"
    if is_run_level(filename) or not patient_id:
        return f"{RUN_LEVEL_DIR}/{name}"
    return f"{safe_component(patient_id)}/{name}"


def find_bundle_files(source: Path) -> Discovered:
    """The data files of a Synthea output folder (the folder itself, or its `fhir/`
    subfolder), and what was skipped there and why; an error when there are none."""
    found = discover(source)
    if not found.files:
        why = "; ".join(f"{Path(s.path).name}: {s.reason}" for s in found.skipped[:3])
        raise FhirflowError(
            f"no .json bundles in {found.folder}; expected Synthea FHIR output"
            + (f" (skipped {len(found.skipped)}: {why})" if why else "")
        )
    return found


def _write_landed(target: Path, data: bytes | None, source: SourceFile,
                  opened: os.stat_result) -> None:
    """Land the file as a hard link to the input where the file system allows (no second
    copy of the bytes on disk), else as a copy."""
    try:
        if link_atomic(source.real, target, opened):
            return
        if data is not None:
            write_atomic(target, data)
        else:
            with _open_source(source) as src:
                write_chunks_atomic(target, iter(lambda: src.read(1 << 20), b""))
    except OSError as exc:
        raise DiskError(os_error_line(exc, f"writing {target}")) from None


def _same_content(target: Path, data: bytes | None, source: SourceFile) -> bool:
    try:
        if not target.is_file() or target.is_symlink():
            return False
        if target.samefile(source.real):
            return True  # landed as a link to this very file
        if data is None:
            with _open_source(source) as src:
                digest = hashlib.file_digest(src, "sha256").hexdigest()
            return digest == file_sha256(target)
        return target.stat().st_size == len(data) and (
            hashlib.sha256(data).hexdigest() == file_sha256(target))
    except OSError:
        return False


def _inspect(shown: str, data: bytes, result: IngestResult) -> None:
    """Warn about a patient or run-level bundle with no entries (or one we cannot parse)."""
    if jsonscan.has_entry_objects(data):
        return
    try:
        doc = jsonscan.safe_loads(data)
    except jsonscan.UnsafeJson as exc:
        result.warnings.append(LandingWarning(
            shown, NOT_INSPECTED, f"{exc}; the load will quarantine it if it is not a bundle"))
        return
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle" and not jsonscan.entries(doc):
        result.warnings.append(LandingWarning(shown, EMPTY_BUNDLE, "the bundle has no entries"))


def _run_level_targets(paths: Iterable[Path], limit: int) -> set[str]:
    targets: set[str] = set()
    for path in paths:
        try:
            if path.is_symlink() or path.stat().st_size > limit:
                continue
            targets |= jsonscan.conditional_targets(jsonscan.safe_loads(path.read_bytes()))
        except (OSError, jsonscan.UnsafeJson):
            continue
    return targets


def ingest_synthea_output(
    source: Path,
    landing_root: Path,
    *,
    move: bool = False,
    max_inspect_bytes: int = DEFAULT_INSPECT_BYTES,
) -> IngestResult:
    """Place a Synthea output folder's bundles into the landing layout.

    Idempotent: a file already landed with the same content is left alone. A file lands as
    a hard link to its input where both are on one file system (no second copy of its
    bytes; removing the landed file later leaves the input alone), else as a copy. A linked
    file is the input file: an input rewritten in place after landing changes the landed
    file too, and the upload, which hashes what it sends, sends that content as a new
    version. With `move`, the source files are removed once they are landed (the
    real-Synthea runner).
    Every entry of the folder is either landed or listed in `skipped` with its reason; bundles
    with no entries, and patient bundles whose conditional references no run-level bundle
    (here or already landed) answers, are listed in `warnings`. Temp files of a killed earlier
    run are removed first. A full disk stops the ingest with one DiskError line.
    """
    result = IngestResult()
    found = find_bundle_files(source)
    result.skipped = found.skipped
    result.leftovers_removed = len(remove_stale_temps(landing_root))
    references: dict[str, set[str]] = {}
    run_level: list[Path] = []
    for file in found.files:
        shown = str(file.path)
        try:
            with _open_source(file) as src:
                opened = os.fstat(src.fileno())
                data = src.read() if opened.st_size <= max_inspect_bytes else None
        except OSError as exc:
            result.skipped.append(Skipped(shown, f"unreadable: {first_line(exc)}"))
            continue
        name = file.path.name
        patient_id = None
        if file.suffix == ".json" and not is_run_level(name):
            # A file too large to inspect keeps only the patient id its name gives.
            patient_id = patient_id_for(file.path, b"" if data is None else data)
        try:
            target = within(landing_root, landing_relpath(name, patient_id))
        except FhirflowError as exc:  # a symlink planted in the landing folder
            result.skipped.append(Skipped(shown, str(exc)))
            continue
        if _same_content(target, data, file):
            result.unchanged += 1
        else:
            _write_landed(target, data, file, opened)
            result.copied += 1
            result.bytes += target.stat().st_size
        if data is not None and file.suffix == ".json":
            _inspect(shown, data, result)
            if is_run_level(name):
                run_level.append(target)
            elif patient_id:
                references[shown] = jsonscan.conditional_references(data)
        if patient_id:
            result.patients.add(safe_component(patient_id))
        if move:
            file.path.unlink()
    if any(references.values()):
        landed_run = sorted((landing_root / RUN_LEVEL_DIR).glob("*.json"))
        targets = _run_level_targets(dict.fromkeys([*run_level, *landed_run]), max_inspect_bytes)
        for shown, refs in references.items():
            missing = sorted(refs - targets)
            if missing:
                result.warnings.append(LandingWarning(
                    shown, UNRESOLVED,
                    f"{len(missing)} conditional references that no hospitalInformation/"
                    f"practitionerInformation bundle answers (e.g. {missing[0]}); land the "
                    "run's run-level bundles too"))
    return result


def write_report(state_dir: Path, result: IngestResult, *, source: Path) -> None:
    """Keep the last ingest's skipped files and warnings for `fhirflow status --json`."""
    doc = {"source": str(source), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           **result.as_dict()}
    try:
        write_atomic(within(state_dir, REPORT_NAME), json.dumps(doc, indent=1).encode())
    except OSError as exc:
        raise DiskError(os_error_line(exc, f"writing {state_dir / REPORT_NAME}")) from None


def read_report(state_dir: Path) -> dict[str, Any] | None:
    """The last ingest's report (`write_report`), or None when there is none."""
    try:
        doc = json.loads((state_dir / REPORT_NAME).read_bytes())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


@dataclass
class LandingScan:
    files: list[LandedFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        return sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        return []


def scan_landing(landing_root: Path) -> LandingScan:
    """The landed data files, and every other entry of the landing folder with the reason
    it is not uploaded (hidden files, links, stray folders or files). Temp files of writers
    in flight are neither: they are not data yet."""
    scan = LandingScan()
    if not landing_root.is_dir():
        return scan
    for top in _entries(landing_root):
        where = top.name
        if is_temp_name(top.name):
            continue
        if top.name.startswith("."):
            scan.skipped.append(Skipped(where, "hidden (its name starts with a dot)"))
        elif top.is_symlink():
            scan.skipped.append(Skipped(where, "symbolic link in the landing folder: refused"))
        elif not top.is_dir():
            scan.skipped.append(Skipped(where, "not in a patient folder"))
        else:
            _scan_folder(landing_root, top, scan)
    return scan


def _scan_folder(root: Path, folder: os.DirEntry[str], scan: LandingScan) -> None:
    for entry in _entries(Path(folder.path)):
        relpath = f"{folder.name}/{entry.name}"
        if is_temp_name(entry.name):
            continue
        if entry.name.startswith("."):
            scan.skipped.append(Skipped(relpath, "hidden (its name starts with a dot)"))
        elif entry.is_symlink():
            scan.skipped.append(Skipped(relpath, "symbolic link in the landing folder: refused"))
        elif data_suffix(entry.name) is None:
            scan.skipped.append(Skipped(relpath, "not a .json, .ndjson or .ndjson.gz file"))
        elif not entry.is_file(follow_symlinks=False):
            scan.skipped.append(Skipped(relpath, "not a regular file"))
        else:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed since the listing
            scan.files.append(LandedFile(path=Path(entry.path), relpath=relpath,
                                         size=info.st_size, mtime=info.st_mtime))


def iter_landed(landing_root: Path) -> Iterator[LandedFile]:
    yield from scan_landing(landing_root).files


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
    copy of it. A file landed as a hard link has its input's age (they are one inode).
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
