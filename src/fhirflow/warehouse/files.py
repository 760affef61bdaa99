"""What kind of file a batch file is, and its NDJSON lines in bounded blocks.

Both without parsing JSON in Python (issue 10: parsing never recurses in Python, and JSON is
DuckDB's or Snowflake's job): the kind is read from the first bytes, the lines are cut at
newlines. A block holds whole lines and at most about BLOCK_BYTES, so a file of any size
streams through in constant memory.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fhirflow import gz

Kind = Literal["bundle", "ndjson"]

GZIP_MAGIC = gz.MAGIC
BLOCK_BYTES = 32 << 20
# How far the first line is looked for when telling the kinds apart.
_SNIFF_BYTES = 4 << 20
# Names that say NDJSON. A file is NDJSON by content too (see `kind_of`).
_NDJSON_NAME = re.compile(r"\.(ndjson|jsonl)(\.gz)?$", re.IGNORECASE)
# `<stamp>-<seq>-<name>`: the upload's key of a landed file (upload.object_key);
# `<stamp>-<seq>z-<name>.gz`: the key of one the upload compressed (the `z` says so).
_KEYED_NAME = re.compile(r"^\d{8}T\d+Z-\d+-(.+)$")
_COMPRESSED_KEYED_NAME = re.compile(r"^\d{8}T\d+Z-\d+z-(.+)\.gz$")
# A first look at a file's head: enough to see a pretty-printed bundle's first line.
_QUICK_SNIFF_BYTES = 64 << 10


def is_fhir_file_name(name: str) -> bool:
    """Names the load lists: bundles (.json) and NDJSON, each optionally gzip-compressed."""
    lower = name.lower()
    return lower.endswith((".json", ".json.gz")) or bool(_NDJSON_NAME.search(lower))


def is_ndjson_name(name: str) -> bool:
    return bool(_NDJSON_NAME.search(name))


def source_name(key: str) -> str:
    """The landed file's name inside an object key: the identity a re-landed, corrected
    version of a file shares with its earlier one (keys differ by upload stamp).

    The upload's own compression is no part of it: `Foo.json` uploaded plain by an earlier
    version and `Foo.json` uploaded gzip-compressed are the same file, so RAW's content
    hash check (of the decompressed content) passes a re-sent copy over."""
    base = key.rsplit("/", 1)[-1]
    match = _COMPRESSED_KEYED_NAME.match(base) or _KEYED_NAME.match(base)
    return match.group(1) if match else base


is_gzip = gz.is_gzip
open_text_bytes = gz.open_read


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
    named = bool(_NDJSON_NAME.search(key))
    try:
        with open_text_bytes(path) as fh:
            head = fh.read(_QUICK_SNIFF_BYTES)
            first = head.lstrip().partition(b"\n")
            # A first line that is not a whole object decides at once (a pretty-printed
            # bundle, `{` alone): no need to read (or inflate) megabytes of it.
            if not (first[1] and not _whole_object(first[0])):
                head += fh.read(_SNIFF_BYTES - len(head))
    except (OSError, EOFError, zlib.error, *gz.CORRUPT_ERRORS):
        return Sniffed("ndjson" if named else "bundle", compressed)
    first, sep, rest = head.lstrip().partition(b"\n")
    if not _whole_object(first):
        # A line longer than the sniffed head, or a document spread over lines.
        return Sniffed("ndjson" if named and not sep else "bundle", compressed)
    if rest.strip():
        return Sniffed("ndjson", compressed)
    return Sniffed("ndjson" if named else "bundle", compressed)


def _whole_object(line: bytes) -> bool:
    line = line.rstrip()
    return line.startswith(b"{") and line.endswith(b"}")


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
