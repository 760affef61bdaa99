"""Path components built from untrusted text (Patient.id, file names), and writes confined to
a root folder.

A name taken from input is used as is only when it is plainly safe on every filesystem we
write to (Linux, macOS, Windows shares, S3 keys): letters, digits, `-`, `_` and `.`, not
starting with a dot, not a Windows device name, and short. Anything else becomes a sanitised
form plus a hash of the original, so two different unsafe names never share a path and the
same name always maps to the same path (landing stays idempotent).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from fhirflow.errors import FhirflowError

# FHIR's id grammar is [A-Za-z0-9\-\.]{1,64}; `_` is allowed here too (our own names use it).
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9_.\-]+")
# Windows refuses these as a file's stem whatever the extension ("con.json", "NUL").
_WINDOWS_DEVICES = {
    "con", "prn", "aux", "nul", "conin$", "conout$",
    *(f"com{i}" for i in "0123456789"), *(f"lpt{i}" for i in "0123456789"),
}
# Room left in a 255-byte name for the temp-file decoration atomic.py adds
# (`.<name>.tmp-<pid>-<token>`) and the upload's key prefix.
_MAX_STEM = 80


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def is_safe_component(name: str) -> bool:
    """True when `name` is usable verbatim as one path component (and one key segment)."""
    if not _SAFE.fullmatch(name) or name.endswith("."):
        return False
    return name.split(".", 1)[0].lower() not in _WINDOWS_DEVICES


def safe_component(name: str) -> str:
    """`name` itself if safe; else its safe characters (at most _MAX_STEM) + `-` + a hash."""
    if is_safe_component(name) and len(name) <= _MAX_STEM:
        return name
    return _sanitised(name, name, "id")


def _sanitised(text: str, original: str, fallback: str, suffix: str = "") -> str:
    """The safe characters of `text`, a hash of the whole `original` name (so names that
    differ only in what was cleaned away stay apart), and `suffix`."""
    cleaned = _UNSAFE_CHAR.sub("_", text).strip("._-")[:_MAX_STEM] or fallback
    if cleaned.split(".", 1)[0].lower() in _WINDOWS_DEVICES:
        cleaned = f"{fallback}-{cleaned}"  # "aux.txt" must not become "aux.txt-<hash>"
    return f"{cleaned}-{_digest(original)}{suffix}"


def safe_file_name(name: str, suffix: str) -> str:
    """A landed file name for an input file `name` whose data suffix (any letter case) is
    `suffix` (lower case, e.g. ".json"): the suffix is written in lower case so every later
    stage recognises the file, and a name that had to change gets a hash of the original."""
    has_suffix = name.lower().endswith(suffix) and len(name) > len(suffix)
    stem = name[: len(name) - len(suffix)] if has_suffix else name
    if name.endswith(suffix) and is_safe_component(stem) and len(stem) <= _MAX_STEM:
        return name
    return _sanitised(stem, name, "file", suffix)


def within(root: Path, relpath: str) -> Path:
    """`root/relpath`, refusing any result whose real location (symlinks resolved, after
    the folders exist) is not inside `root`'s real location."""
    real_root = root.resolve()
    target = root / relpath
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    real_parent = parent.resolve()
    if not real_parent.is_relative_to(real_root):
        raise FhirflowError(
            f"refusing to write {target}: {parent} leads outside {root} (to {real_parent}); "
            "remove the symbolic link"
        )
    if target.is_symlink():
        # os.replace would swap the link itself, but a reader would have followed it.
        target.unlink()
    return real_parent / target.name
