"""What Cosmos renders the transform DAG's per-model task groups from: one small manifest per
layer, written once per parse of the dbt project and afterwards only read.

Every process that imports the DAG file renders the three groups again: the DAG processor,
and under the LocalExecutor every task process (over a hundred per transform run). Rendering
from the shared manifest itself cost each of them three reads of its 2 MB (this module's
view of it, for the later layers' tests) and three more (Cosmos's own), and a rewrite check
of every layer's file. Cosmos builds its graph from a handful of fields of each node (see
`_NODE_FIELDS`), so each layer's file here holds only those, and an index (`render.json`)
records which parse of the shared manifest the files were cut from and the tests each layer
leaves to a later one: a process that finds the index current reads a few kilobytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhirflow.transform.manifest import (
    LAYER_ORDER,
    ensure_manifest,
    later_layer_tests,
    manifest_dir,
)

if TYPE_CHECKING:
    from fhirflow.config import Settings

INDEX_NAME = "render.json"
# What Cosmos 1.15 reads of a manifest (cosmos.dbt.graph: DbtGraph.load_from_dbt_manifest and
# _build_dbt_node_from_manifest_resource); the rest (columns, descriptions, raw code, macros,
# the docs) is dbt's and the docs site's.
_TOP_LEVEL = ("metadata", "selectors")
_RESOURCES = ("nodes", "sources", "exposures")
_NODE_FIELDS = ("unique_id", "name", "resource_type", "package_name", "original_file_path",
                "tags", "config", "fqn", "freshness")


def render_path(settings: Settings, layer: str) -> Path:
    return manifest_dir(settings) / f"render.{layer}.json"


def _cut(node: dict[str, Any]) -> dict[str, Any]:
    kept = {k: node[k] for k in _NODE_FIELDS if k in node}
    kept["depends_on"] = {"nodes": list((node.get("depends_on") or {}).get("nodes") or [])}
    return kept


def layer_view(manifest: dict[str, Any], layer: str) -> tuple[dict[str, Any], list[str]]:
    """The manifest as the layer's task group renders it: Cosmos's fields only, without the
    tests that read a later layer too (Cosmos attaches a test to every model it reads; those
    run with the later layer); and those tests' names."""
    excluded = set(later_layer_tests(manifest, layer))
    view: dict[str, Any] = {k: manifest[k] for k in _TOP_LEVEL if k in manifest}
    for section in _RESOURCES:
        view[section] = {uid: _cut(node) for uid, node in (manifest.get(section) or {}).items()
                         if uid not in excluded}
    names = sorted(manifest["nodes"][uid]["name"] for uid in excluded)
    return view, names


def _write(path: Path, text: str) -> None:
    # Several processes may cut the same files at once (the DAG processor and task processes
    # after a change): each writes its own temporary file and renames it, so a reader sees a
    # whole file, the same whichever wins.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _read_index(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def render_manifest(settings: Settings, layer: str) -> tuple[Path, list[str]]:
    """The layer's render manifest and the names of the tests it leaves to a later layer,
    cut from the shared manifest when that was parsed since the files were last cut."""
    source = ensure_manifest(settings)
    stamp = source.stat().st_mtime_ns
    index_path = manifest_dir(settings) / INDEX_NAME
    index = _read_index(index_path)
    if (index.get("manifest_mtime_ns") == stamp and layer in index.get("later_tests", {})
            and render_path(settings, layer).is_file()):
        return render_path(settings, layer), list(index["later_tests"][layer])
    manifest = json.loads(source.read_text())
    later: dict[str, list[str]] = {}
    for name in LAYER_ORDER:
        view, later[name] = layer_view(manifest, name)
        _write(render_path(settings, name), json.dumps(view))
    # The index last: a process that reads it current finds every layer's file written.
    _write(index_path, json.dumps({"manifest_mtime_ns": stamp, "later_tests": later}))
    return render_path(settings, layer), later[layer]
