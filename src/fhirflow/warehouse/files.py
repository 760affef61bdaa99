"""What kind of file a batch file is, and its NDJSON lines in bounded blocks.

Both without parsing JSON in Python (issue 10: parsing never recurses in Python, and JSON is
DuckDB's or Snowflake's job): the kind is read from the first bytes, the lines are cut at
newlines. A block holds whole lines and at most about BLOCK_BYTES, so a file of any size
streams through in constant memory.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

Kind = Literal["bundle", "ndjson"]

GZIP_MAGIC = b"\x1f\x8b"
BLOCK_BYTES = 32 << 20
# How far the first line is looked for when telling the kinds apart.
_SNIFF_BYTES = 4 << 20
# Names that say NDJSON. A file is NDJSON by content too (see `kind_of`).
_NDJSON_NAME = re.compile(r"\.(ndjson|jsonl)(\.gz)?$", re.IGNORECASE)
# `<stamp>-<seq>-<name>`: the upload's key of a landed file (upload.object_key).
_KEYED_NAME = re.compile(r"^\d{8}T\d+Z-\d+-(.+)$")


def is_fhir_file_name(name: str) -> bool:
    """Names the load lists: bundles (.json) and NDJSON, each optionally gzip-compressed."""
    lower = name.lower()
    return lower.endswith((".json", ".json.gz")) or bool(_NDJSON_NAME.search(lower))


def is_ndjson_name(name: str) -> bool:
    return bool(_NDJSON_NAME.search(name))


def source_name(key: str) -> str:
    """The landed file's name inside an object key: the identity a re-landed, corrected
    version of a file shares with its earlier one (keys differ by upload stamp)."""
    base = key.rsplit("/", 1)[-1]
    match = _KEYED_NAME.match(base)
    return match.group(1) if match else base


def is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_text_bytes(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when it is gzip (by its content, not its name)."""
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


@dataclass(frozen=True)
class Sniffed:
    kind: Kind
    compressed: bool


def kind_of(path: Path, key: str) -> Sniffed:
    """Bundle or NDJSON, by content: NDJSON when the first line is a whole JSON object
    (it ends in `}`) and another non-blank line follows, or, for a single-line file, when
    the name says NDJSON. A pretty-printed or single-line Bundle is a bundle; anything else
    (empty, invalid, not JSON) goes the bundle way, whose classification names its fault."""
    compressed = is_gzip(path)
    try:
        with open_text_bytes(path) as fh:
            head = fh.read(_SNIFF_BYTES)
    except (OSError, EOFError, zlib.error):
        return Sniffed("ndjson" if _NDJSON_NAME.search(key) else "bundle", compressed)
    named = bool(_NDJSON_NAME.search(key))
    first, sep, rest = head.lstrip().partition(b"\n")
    first = first.rstrip()
    if not first.startswith(b"{") or not first.endswith(b"}"):
        # A line longer than the sniffed head, or a document spread over lines.
        return Sniffed("ndjson" if named and not sep else "bundle", compressed)
    if rest.strip():
        return Sniffed("ndjson", compressed)
    return Sniffed("ndjson" if named else "bundle", compressed)


@dataclass(frozen=True)
class Block:
    """Whole lines of a file: `text` (UTF-8 decoded; None when the block is not valid
    UTF-8, then `raw` holds its bytes) starting at 1-based line `first_line`."""

    first_line: int
    text: str | None
    raw: bytes


def blocks(path: Path, block_bytes: int | None = None) -> Iterator[Block]:
    """The file's lines in blocks of whole lines; a line longer than a block is one block."""
    block_bytes = block_bytes or BLOCK_BYTES
    line = 1
    with open_text_bytes(path) as fh:
        rest = b""
        while True:
            data = fh.read(block_bytes)
            if not data:
                if rest:
                    yield _block(line, rest)
                return
            data = rest + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data  # no newline yet: the line goes on
                continue
            part, rest = data[:cut], data[cut:]
            yield _block(line, part)
            line += part.count(b"\n")


def _block(first_line: int, raw: bytes) -> Block:
    try:
        return Block(first_line, raw.decode("utf-8"), raw)
    except UnicodeDecodeError:
        return Block(first_line, None, raw)


def split_lines(block: Block) -> Iterator[tuple[int, str | None]]:
    """(line number, text or None when not UTF-8) of each non-blank line: the slow path for
    a block that did not decode as a whole, and for a warehouse that takes rows."""
    for offset, raw in enumerate(block.raw.split(b"\n")):
        if not raw.strip():
            continue
        try:
            text: str | None = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        yield block.first_line + offset, text
