"""Mode insert: the batch's local files sent as text into the session table
FHIRFLOW_INCOMING_TEXT (a bundle whole, an NDJSON file line by line with its line numbers),
in chunks of ~32 MB, for PARSE_TEXT to parse inside Snowflake as in mode copy. The only mode
fakesnow can run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from fhirflow import gz
from fhirflow.warehouse import BatchFile, Rejected, files, reasons
from fhirflow.warehouse.snowflake.batch_sql import INSERT_TEXT


def send_texts(
    executemany: Callable[[str, list[tuple[Any, ...]]], None],
    named: list[tuple[BatchFile, str]],
    kinds: dict[str, str | None],
) -> list[Rejected]:
    """Send each local file's text (`named`: the file and its name in FHIRFLOW_BATCH_FILES);
    the files that cannot be sent are returned with their reason."""
    rejected: list[Rejected] = []
    chunk = _Chunk(executemany)
    for file, name in named:
        if file.path is None or not file.path.is_file():
            rejected.append(Rejected(file.key, file.size, reasons.GONE))
        elif kinds[file.key] == "ndjson":
            bad = chunk.add_lines(name, file.path)
            if bad:
                rejected.append(Rejected(file.key, file.size, bad))
        else:
            bad = chunk.add_bundle(name, file.path)
            if bad:
                rejected.append(Rejected(file.key, file.size, bad))
    chunk.flush()
    return rejected


class _Chunk:
    """Rows for FHIRFLOW_INCOMING_TEXT, sent whenever ~32 MB are pending."""

    LIMIT = 32 * 1024 * 1024

    def __init__(self, send: Callable[[str, list[tuple[Any, ...]]], None]) -> None:
        self.send = send
        self.rows: list[tuple[Any, ...]] = []
        self.pending = 0

    def _add(self, row: tuple[Any, ...], size: int) -> None:
        self.rows.append(row)
        self.pending += size
        if self.pending > self.LIMIT:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.send(INSERT_TEXT, self.rows)
        self.rows, self.pending = [], 0

    def add_bundle(self, name: str, path: Any) -> str | None:
        """A bundle's text, or the reason it cannot be sent (classified like COPY's)."""
        try:
            with files.open_text_bytes(path) as fh:
                data = fh.read()
        except (OSError, EOFError, *gz.CORRUPT_ERRORS) as exc:
            if isinstance(exc, FileNotFoundError):
                return reasons.GONE
            return reasons.CORRUPT_GZIP
        if not data:
            return None  # classified as 'empty file' from its size
        if data.startswith(b"\xef\xbb\xbf"):
            return reasons.BYTE_ORDER_MARK
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return reasons.NOT_UTF8
        self._add((name, text, 1, hashlib.sha256(data).hexdigest()), len(data))
        return None

    def add_lines(self, name: str, path: Any) -> str | None:
        """An NDJSON file's non-blank lines with their numbers (a line that is not UTF-8 is
        sent as NULL and quarantined as an invalid line); streams, block by block. The
        content hash rides on the first line (CLASSIFY takes the file's one non-NULL)."""
        try:
            digest = hashlib.sha256()
            for block in files.blocks(path):
                digest.update(block.raw)
            content_hash: str | None = digest.hexdigest()
            for block in files.blocks(path):
                for line_number, text in files.split_lines(block):
                    self._add((name, text, line_number, content_hash), len(text or ""))
                    content_hash = None
        except FileNotFoundError:
            return reasons.GONE
        except (OSError, EOFError, *gz.CORRUPT_ERRORS):
            return reasons.CORRUPT_GZIP
        return None
