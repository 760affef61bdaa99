"""Atomic file writes: readers see the old file or the whole new one, never half of it.

Each writer fills a hidden temp file beside the target (`.<name>.tmp-<pid>-<token>`: listings
of the landing folder and the local store skip dot-files), fsyncs it so a crash after the
rename cannot leave an empty or truncated file, then renames it over the target. The landing
folder, the generator and the local object store all write through these.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1 << 20


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
