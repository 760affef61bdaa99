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
    parts = []
    if json_files:
        con.execute(f"create or replace temp table _fhirflow_docs as select filename, content, "
                    f"size from read_text({_sql_list(json_files)})")
        invalid = con.execute("select filename from _fhirflow_docs "
                              "where not json_valid(content) order by filename").fetchall()
        result.skipped = [row[0] for row in invalid]
        parts.append("select content::json as item from _fhirflow_docs where json_valid(content) "
                     "and json_type(content::json) = 'OBJECT'")
        parts.append("select unnest(cast(content::json as json[])) as item from _fhirflow_docs "
                     "where json_valid(content) and json_type(content::json) = 'ARRAY'")
        result.bytes += con.execute("select coalesce(sum(size), 0) from _fhirflow_docs").fetchone()[0]
    if ndjson_files:
        parts.append(f"select json as item from read_json_objects({_sql_list(ndjson_files)}, "
                     "format = 'newline_delimited', ignore_errors = true)")
        result.bytes += sum(f.stat().st_size for f in ndjson_files)
    items = " union all ".join(parts)
    con.execute(f"""
        create or replace table {table} as
        with items as ({items}),
        typed as (
            select item, json_extract_string(item, '$.resourceType') as item_type from items
        ),
        resources as (
            select item as resource from typed where item_type is not null and item_type <> 'Bundle'
            union all
            select unnest(json_extract(item, '$.entry[*].resource')) as resource
            from typed where item_type = 'Bundle'
        )
        select resource, json_extract_string(resource, '$.resourceType') as resource_type
        from resources
        where json_type(resource) = 'OBJECT'
          and json_extract_string(resource, '$.resourceType') is not null
    """)
    con.execute("drop table if exists _fhirflow_docs")
    result.resources = con.execute(f"select count(*) from {table}").fetchone()[0]
    return result
