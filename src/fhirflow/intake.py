"""Reading an input folder we do not control (`--from-dir`, the Synthea runner's output).

Every entry of the folder ends up either as a `SourceFile` to ingest or as a `Skipped` with
the reason, so nothing vanishes without a word: hidden files, other extensions, folders,
FIFOs and devices, broken links, links that lead outside the folder (refused: they would
copy files from anywhere into landing and the object store), unreadable files.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fhirflow.errors import FhirflowError, first_line

# Data files, matched in any letter case; longest first. `.ndjson(.gz)`: FHIR Bulk Data.
DATA_SUFFIXES = (".ndjson.gz", ".ndjson", ".json")


@dataclass(frozen=True)
class Skipped:
    path: str  # as the user knows it: the input file, or the landing path
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class SourceFile:
    path: Path  # the entry in the input folder
    real: Path  # what it is once links are resolved (inside the folder)
    suffix: str  # its data suffix in lower case


@dataclass
class Discovered:
    folder: Path
    files: list[SourceFile]
    skipped: list[Skipped]


def data_suffix(name: str) -> str | None:
    """The data suffix of a file name (lower case), whatever its letter case; else None."""
    lower = name.lower()
    for suffix in DATA_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return suffix
    return None


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _input_folder(source: Path, skipped: list[Skipped]) -> Path:
    if not source.is_dir():
        raise FhirflowError(f"{source} is not a directory; pass a Synthea output folder")
    fhir = source / "fhir"
    if fhir.is_dir():
        if not fhir.resolve().is_relative_to(source.resolve()):
            skipped.append(Skipped(str(fhir), f"symbolic link to {fhir.resolve()}, outside "
                                              f"{source}: refused"))
            return source
        return fhir
    return source


def discover(source: Path) -> Discovered:
    """The data files of a Synthea output folder (the folder itself, or its `fhir/`), and
    every other entry with the reason it is skipped."""
    skipped: list[Skipped] = []
    folder = _input_folder(source, skipped)
    real_folder = folder.resolve()
    files: list[SourceFile] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        raise FhirflowError(f"cannot list {folder}: {first_line(exc)}") from None
    for entry in entries:
        path = Path(entry.path)
        shown = str(path)
        suffix = data_suffix(entry.name)
        if entry.name.startswith("."):
            skipped.append(Skipped(shown, "hidden file (its name starts with a dot)"))
            continue
        if entry.is_symlink():
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError):
                skipped.append(Skipped(shown, "broken symbolic link"))
                continue
            if not real.is_relative_to(real_folder):
                skipped.append(Skipped(shown, f"symbolic link to {real}, outside {folder}: "
                                              "refused"))
                continue
        else:
            real = real_folder / entry.name
        try:
            mode = real.stat().st_mode
        except OSError as exc:
            skipped.append(Skipped(shown, f"unreadable: {first_line(exc)}"))
            continue
        if suffix is None:
            what = "a folder (only files directly in the input folder are read)" if \
                stat.S_ISDIR(mode) else "not a .json, .ndjson or .ndjson.gz file"
            skipped.append(Skipped(shown, what))
            continue
        if not stat.S_ISREG(mode):
            skipped.append(Skipped(shown, _kind(mode)))
            continue
        files.append(SourceFile(path, real, suffix))
    return Discovered(folder, files, skipped)


def open_source(file: SourceFile) -> BinaryIO:
    """The file opened for reading, without following a final symlink and without blocking
    (a FIFO swapped in after discovery would hang the read), checked to be a regular file
    on the open handle. OSError when it cannot be read."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(file.real, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"{_kind(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
