"""The transform DAG's docs site from the SQL its builds just compiled.

`dbt docs generate` compiles every node of the project again (its step 2) before it queries
the warehouse for the catalog: about 4 of its 4-6 s in the DAG, and the builds the run just
made compiled the same nodes. With `--no-compile` dbt skips that step and writes only
index.html and catalog.json, expecting manifest.json in the target path already; so the
task writes one there first: the shared parse of the project (`transform.manifest`) with
each node's compiled SQL taken from this run's builds (each dbt invocation writes a
manifest.json holding the nodes it compiled, kept here per build by `keep_build_manifest`).
When a node is left without compiled SQL (a build failed half-way, the project changed since
it ran) the task compiles as before: the docs never show SQL older than the project.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhirflow.transform.manifest import manifest_dir, project_mtime, read_manifest
from fhirflow.transform.runner import dbt_project_dir

if TYPE_CHECKING:
    from fhirflow.config import Settings

log = logging.getLogger(__name__)

# A node's compiled SQL in manifest.json (dbt's CompiledNode fields).
_COMPILED_FIELDS = ("compiled", "compiled_code", "compiled_path", "extra_ctes_injected",
                    "extra_ctes")
# What `dbt docs generate` compiles; seeds and sources have no SQL to show.
_COMPILED_TYPES = {"model", "snapshot", "test", "analysis"}


def builds_dir(settings: Settings) -> Path:
    return settings.state_dir / "dbt" / "builds"


def forget_builds(settings: Settings) -> None:
    """At a run's first build: the docs take compiled SQL from this run's builds only."""
    shutil.rmtree(builds_dir(settings), ignore_errors=True)


def keep_build_manifest(settings: Settings, target_path: Path, name: str) -> bool:
    """Keep the manifest.json a dbt invocation wrote in `target_path` as build `name`."""
    source = target_path / "manifest.json"
    if not source.is_file():
        return False
    directory = builds_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.tmp"
    shutil.copyfile(source, tmp)
    tmp.replace(directory / f"manifest.{name}.json")
    return True


def seed_partial_parse(settings: Settings, target: Path, *, newer: bool = False) -> bool:
    """Give a dbt target path the shared parse's partial-parse file (`transform.manifest`,
    parsed with fhirflow's profile and variables) when it has none (or, `newer`, an older
    one), so dbt's first invocation there parses partially rather than from scratch. dbt
    checks the file (profile, variables, file hashes) and parses in full when it does not
    fit, so a wrong one costs a parse, never a wrong build."""
    shared = manifest_dir(settings) / "partial_parse.msgpack"
    mine = target / "partial_parse.msgpack"
    if not shared.is_file() or (mine.is_file() and (
            not newer or mine.stat().st_mtime >= shared.stat().st_mtime)):
        return False
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / ".partial_parse.msgpack.tmp"
    shutil.copyfile(shared, tmp)
    tmp.replace(mine)
    return True


def compiled_manifest(settings: Settings) -> tuple[dict[str, Any] | None, list[str]]:
    """The shared manifest with every compiled node's SQL from the builds; or None and the
    nodes no build compiled as the project now stands."""
    manifest = read_manifest(settings)
    nodes: dict[str, Any] = manifest["nodes"]
    newest_change = project_mtime(dbt_project_dir(settings))
    builds = sorted((p for p in builds_dir(settings).glob("manifest.*.json")
                     if p.stat().st_mtime >= newest_change), key=lambda p: p.stat().st_mtime)
    for path in builds:  # oldest first: a later build of the same node wins
        try:
            built = json.loads(path.read_text()).get("nodes", {})
        except ValueError:
            continue
        for uid, node in built.items():
            mine = nodes.get(uid)
            # Only over the same source: the checksum is dbt's hash of the node's file.
            if (mine is not None and node.get("compiled") and node.get("compiled_code")
                    and node.get("checksum") == mine.get("checksum")):
                mine.update({k: node[k] for k in _COMPILED_FIELDS if k in node})
    missing = sorted(uid for uid, node in nodes.items()
                     if node.get("resource_type") in _COMPILED_TYPES and not node.get("compiled"))
    return (None if missing else manifest), missing


def prepare_no_compile(settings: Settings, target: Path) -> list[str]:
    """Write the docs' manifest.json into `target` for `dbt docs generate --no-compile`;
    the nodes it lacks compiled SQL for (nothing written then)."""
    manifest, missing = compiled_manifest(settings)
    if manifest is None:
        return missing
    target.mkdir(parents=True, exist_ok=True)
    # dbt parses the project again (it does without compiling too)
    seed_partial_parse(settings, target, newer=True)
    tmp = target / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest))
    tmp.replace(target / "manifest.json")
    return []
