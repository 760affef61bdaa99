"""The parsed project that Airflow's dbt tasks share: one manifest.json per FHIRFLOW_HOME.

Cosmos renders the transform DAG's per-model tasks from it (LoadMode.DBT_MANIFEST), every
task copies it next to dbt's partial-parse file instead of parsing the project again, and the
layer checks read their graph from it. It is parsed again only when a file of the dbt project
is newer than it, under a lock, so the DAG processor and the tasks that import the DAG file
at the same moment parse it once between them.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhirflow.errors import FhirflowError
from fhirflow.transform.runner import dbt_args, dbt_project_dir, invoke

if TYPE_CHECKING:
    from fhirflow.config import Settings

# What a change to would change the parsed project (target/ and logs/ are dbt's output).
_PROJECT_PARTS = ("dbt_project.yml", "packages.yml", "models", "macros", "seeds", "snapshots",
                  "tests", "analyses")


def manifest_dir(settings: Settings) -> Path:
    return settings.state_dir / "dbt" / "manifest"


def manifest_path(settings: Settings) -> Path:
    return manifest_dir(settings) / "manifest.json"


def project_mtime(project: Path) -> float:
    """The newest modification time of the files that make up the dbt project."""
    newest = 0.0
    for part in _PROJECT_PARTS:
        path = project / part
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            for file in path.rglob("*"):
                if file.is_file():
                    newest = max(newest, file.stat().st_mtime)
    return newest


def is_current(settings: Settings) -> bool:
    path = manifest_path(settings)
    return path.is_file() and path.stat().st_mtime >= project_mtime(dbt_project_dir(settings))


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_manifest(settings: Settings) -> Path:
    """The shared manifest.json, parsed now when missing or older than the project."""
    path = manifest_path(settings)
    if is_current(settings):
        return path
    with _locked(manifest_dir(settings)):
        if is_current(settings):  # another process parsed it while this one waited
            return path
        # dbt writes manifest.json into its target path; its partial_parse.msgpack there
        # makes the next parse after a small change a partial one.
        args = ["--log-level", "none", "--no-use-colors",
                *dbt_args(settings, "parse", target_path=manifest_dir(settings))]
        outcome = invoke(settings, args, "parse")
        if not outcome.success or not path.is_file():
            raise FhirflowError("dbt parse failed; run `fhirflow --verbose transform` for "
                                "dbt's log")
        os.utime(path)  # newer than the project even when dbt kept an older file
    return path


def read_manifest(settings: Settings) -> dict[str, Any]:
    return json.loads(ensure_manifest(settings).read_text())


def layer_nodes(manifest: dict[str, Any], layer: str) -> list[str]:
    """Models and snapshots tagged with the layer: what `--select tag:<layer>` builds that
    holds data (the seeds staging also loads are reference data of no load)."""
    return sorted(uid for uid, node in manifest.get("nodes", {}).items()
                  if node.get("resource_type") in {"model", "snapshot"}
                  and layer in (node.get("tags") or []))


LAYER_ORDER = ("staging", "intermediate", "marts")


def later_layer_tests(manifest: dict[str, Any], layer: str) -> list[str]:
    """Tests that read a model of a layer built after `layer` (a relationship from an
    intermediate model to a staging one, say). They belong to that later layer's build:
    run with `layer`, they would read a table not built yet, or built from an older load."""
    later = set(LAYER_ORDER[LAYER_ORDER.index(layer) + 1:])
    nodes = manifest.get("nodes", {})
    found = []
    for uid, node in nodes.items():
        if node.get("resource_type") != "test":
            continue
        parents = [nodes.get(p, {}) for p in node.get("depends_on", {}).get("nodes", [])]
        tags = [set(p.get("tags") or []) for p in parents]
        if any(layer in t for t in tags) and any(later & t for t in tags):
            found.append(uid)
    return sorted(found)
