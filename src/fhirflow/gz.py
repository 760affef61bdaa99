"""gzip for the object store: objects are kept compressed (users pay for storage), and
every reader decompresses them by their content (the gzip magic), not by their name.

gzip rather than zstd: every reader of the store takes it as it is (Python, DuckDB's
readers, Snowflake's COPY with COMPRESSION = AUTO, `zcat`). ISA-L (`isal`) writes the same
format several times faster than zlib and releases the GIL, so the upload's and the load's
threads use both cores; zlib is the fallback when it is not installed.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

try:  # pragma: no cover - which one depends on the install
    from isal import igzip as _gzip
    from isal import isal_zlib as _zlib

    # ISA-L's levels are 0..3; at 1 Synthea bundles shrink about 9 times, at several
    # hundred MB/s a core (zlib's level 1: about 8 times, at under 100 MB/s).
    LEVEL = 1
except ImportError:  # pragma: no cover
    _gzip = gzip  # type: ignore[assignment]

    _zlib = zlib  # type: ignore[assignment]
    LEVEL = 1

MAGIC = b"\x1f\x8b"
SUFFIX = ".gz"
CHUNK = 1 << 20
# The errors a damaged or truncated gzip stream raises, whichever library reads it.
CORRUPT_ERRORS: tuple[type[BaseException], ...] = (
    EOFError, zlib.error, gzip.BadGzipFile, _zlib.error)


def is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == MAGIC


def compressed_chunks(src: BinaryIO) -> Iterator[bytes]:
    """The gzip stream of everything `src` holds, a chunk at a time (memory: one chunk)."""
    packer = _zlib.compressobj(LEVEL, zlib.DEFLATED, 31)  # wbits 16 + 15: a gzip header
    while data := src.read(CHUNK):
        out = packer.compress(data)
        if out:
            yield out
    yield packer.flush()


def open_read(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when it is gzip (by its content, not its name)."""
    if is_gzip(path):
        return _gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


Inflated = Literal["done", "too big", "corrupt"]


def inflate(source: Path, target: Path, *, limit: int) -> Inflated:
    """Decompress a gzip file into `target`, streaming, stopping past `limit` bytes of
    output (a small object may inflate to any size: the cap keeps a gzip bomb from filling
    the disk). `target` is removed unless the whole file was written."""
    written = 0
    try:
        with _gzip.open(source, "rb") as src, target.open("wb") as dst:
            while data := src.read(CHUNK):
                written += len(data)
                if written > limit:
                    break
                dst.write(data)
    except CORRUPT_ERRORS:
        target.unlink(missing_ok=True)
        return "corrupt"
    if written > limit:
        target.unlink(missing_ok=True)
        return "too big"
    return "done"
