"""A file's SHA-256, the content identity that landing, the upload ledger and RAW share."""

from __future__ import annotations

import hashlib
from pathlib import Path

# Large reads: OpenSSL's SHA-256 releases the GIL, so files hash side by side on threads.
CHUNK = 4 << 20


def file_sha256(path: Path) -> str:
    """The file's SHA-256, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
