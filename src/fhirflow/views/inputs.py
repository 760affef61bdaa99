"""FHIR input files -> a DuckDB table of resources, one row per resource.

Reads NDJSON (`.ndjson`, `.jsonl`), JSON files holding one resource, an array of them or a
Bundle (its entries' resources), and folders of such files at any depth, so a Synthea output
folder works as it is. DuckDB parses the JSON itself (several hundred MB/s, against about
100 MB/s for Python's json). A file that is not JSON is skipped and counted, never fatal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhirflow.errors import FhirflowError

NDJSON_SUFFIXES = (".ndjson", ".jsonl")
JSON_SUFFIXES = (".json",)


@dataclass
class LoadedInput:
    files: int = 0
    resources: int = 0
    bytes: int = 0
    skipped: list[str] = field(default_factory=list)  # files that are not JSON


def input_files(paths: Iterable[Path]) -> tuple[list[Path], list[Path]]:
    """(JSON files, NDJSON files) under the given files and folders, in a stable order."""
    json_files: list[Path] = []
    ndjson_files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise FhirflowError(f"input {path} does not exist")
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in candidates:
            suffix = file.suffix.lower()
            if suffix in NDJSON_SUFFIXES:
                ndjson_files.append(file)
            elif suffix in JSON_SUFFIXES or path.is_file():
                json_files.append(file)
    return json_files, ndjson_files


def _sql_list(files: list[Path]) -> str:
    return "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"


def load_resources(con: Any, paths: Iterable[Path], table: str = "resources") -> LoadedInput:
    """Create `table` (resource JSON, resource_type VARCHAR) from the input files."""
    json_files, ndjson_files = input_files(paths)
    if not json_files and not ndjson_files:
        raise FhirflowError("no .json, .ndjson or .jsonl files in the input")
    result = LoadedInput(files=len(json_files) + len(ndjson_files))
    result.bytes = sum(f.stat().st_size for f in (*json_files, *ndjson_files))
    try:
        # Most inputs are all valid JSON: read them without a separate validating pass.
        con.execute(_load_sql(table, json_files, ndjson_files, validate=False))
    except Exception as exc:  # DuckDB's error for a file that is not JSON
        if "json" not in str(exc).lower():
            raise
        con.execute(_load_sql(table, json_files, ndjson_files, validate=True))
        if json_files:
            invalid = con.execute(f"select filename from read_text({_sql_list(json_files)}) "
                                  "where not json_valid(content) order by filename").fetchall()
            result.skipped = [row[0] for row in invalid]
    result.resources = con.execute(f"select count(*) from {table}").fetchone()[0]
    return result


def _load_sql(table: str, json_files: list[Path], ndjson_files: list[Path], *,
              validate: bool) -> str:
    parts = []
    if json_files:
        valid = "where json_valid(content)" if validate else ""
        # One parse of each file gives its resourceType and its Bundle entries.
        parts.append(f"""
            docs as (
                select content, json_extract(content, ['$.resourceType', '$.entry']) as head
                from read_text({_sql_list(json_files)}) {valid}
            ),
            file_items as (
                select unnest(cast(json_extract(head[2], '$[*].resource') as json[])) as resource
                from docs where json_extract_string(head[1], '$') = 'Bundle'
                union all
                select content::json as resource
                from docs where json_extract_string(head[1], '$') <> 'Bundle'
                union all
                select unnest(cast(content::json as json[])) as resource
                from docs where head[1] is null and json_type(content::json) = 'ARRAY'
            )""")
    if ndjson_files:
        parts.append(f"""
            lines as (
                select json as line from read_json_objects({_sql_list(ndjson_files)},
                    format = 'newline_delimited', ignore_errors = true)
            ),
            line_items as (
                select unnest(cast(json_extract(line, '$.entry[*].resource') as json[]))
                    as resource
                from lines where json_extract_string(line, '$.resourceType') = 'Bundle'
                union all
                select line as resource
                from lines where json_extract_string(line, '$.resourceType') <> 'Bundle'
            )""")
    sources = " union all ".join(
        f"select resource from {name}" for name, wanted in
        (("file_items", json_files), ("line_items", ndjson_files)) if wanted)
    return f"""
        create or replace table {table} as
        with {", ".join(parts)},
        resources as ({sources})
        select resource, json_extract_string(resource, '$.resourceType') as resource_type
        from resources
        where json_type(resource) = 'OBJECT'
          and json_extract_string(resource, '$.resourceType') is not null
    """
