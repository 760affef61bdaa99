"""Atomic file writes: readers see the old file or the whole new one, never half of it.

Each writer fills a hidden temp file beside the target (`.<name>.tmp-<pid>-<token>`: listings
of the landing folder and the local store skip dot-files), fsyncs it so a crash after the
rename cannot leave an empty or truncated file, then renames it over the target. The landing
folder, the generator and the local object store all write through these.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1 << 20
# Our temp files, and the `.part-<pid>` ones earlier versions of the local store wrote.
_TEMP_NAME = re.compile(r"\..+\.(?:tmp|part)-(\d+)(?:-[0-9a-f]+)?")
# A temp file younger than this is left alone even when its pid looks dead: the writer may
# run in another pid namespace (a container sharing the volume) and still be writing.
STALE_AFTER_SECONDS = 300.0
# Older than this, a temp file is a leftover whatever its pid says (pids are reused).
ABANDONED_AFTER_SECONDS = 24 * 3600.0


def _temp_beside(target: Path) -> Path:
    # pid and a token: two threads or processes writing the same target never share a temp.
    return target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def write_atomic_with(target: Path, fill: Callable[[BinaryIO], None]) -> None:
    """Create `target` from what `fill` writes into an open binary file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(target)
    try:
        with tmp.open("wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(target: Path, data: bytes) -> None:
    """Write `data` to `target` atomically."""
    write_atomic_with(target, lambda handle: handle.write(data))


def write_chunks_atomic(target: Path, chunks: Iterable[bytes]) -> None:
    """Write a stream of byte chunks to `target` atomically (memory holds one chunk)."""

    def fill(handle: BinaryIO) -> None:
        for chunk in chunks:
            handle.write(chunk)

    write_atomic_with(target, fill)


def copy_atomic(source: Path, target: Path) -> None:
    """Copy `source` to `target` atomically, streaming."""
    with source.open("rb") as src:
        write_chunks_atomic(target, iter(lambda: src.read(_CHUNK), b""))


def link_atomic(source: Path, target: Path, expect: os.stat_result) -> bool:
    """Make `target` a hard link to `source` (no second copy of the bytes), atomically:
    linked beside the target, checked, renamed over it. `expect` is the stat of the handle
    the caller opened and inspected: when the entry at `source` is no longer that file (it
    was swapped, or is a link now), nothing is linked. False when no link can be made
    (another file system, a file system without links, a file we may not link): the
    caller copies instead."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(target)
    try:
        os.link(source, tmp, follow_symlinks=False)
    except OSError:
        return False
    try:
        info = tmp.lstat()
        if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) != (
                expect.st_dev, expect.st_ino):
            tmp.unlink()
            return False
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def is_temp_name(name: str) -> bool:
    return _TEMP_NAME.fullmatch(name) is not None


def remove_stale_temps(
    root: Path,
    *,
    stale_after: float = STALE_AFTER_SECONDS,
    now: float | None = None,
) -> list[Path]:
    """Delete the temp files that killed writers left under `root`; return them.

    A temp file goes when its writer's pid is dead and it has not changed for `stale_after`
    seconds, or when it is older than a day. A live writer's temp file is never touched, so
    this is safe to run while another process writes. Symbolic links are not followed.
    """
    now = time.time() if now is None else now
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            match = _TEMP_NAME.fullmatch(name)
            if not match:
                continue
            path = Path(dirpath, name)
            try:
                age = now - path.lstat().st_mtime
            except FileNotFoundError:
                continue  # its writer renamed or removed it meanwhile
            dead = not _pid_alive(int(match.group(1)))
            if (dead and age >= stale_after) or age >= ABANDONED_AFTER_SECONDS:
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                removed.append(path)
    return removed
