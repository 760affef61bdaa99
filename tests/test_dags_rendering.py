"""What the transform DAG's tasks read at every import of the DAG file (the layers' render
manifests), and the docs task's manifest built from the run's builds. Neither imports
Airflow: plain files, as the DAG file and the docs task leave them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from fhirflow.config import Settings
from fhirflow.orchestration import docs, rendering
from fhirflow.transform.manifest import manifest_dir, manifest_path

STG = "model.fhirflow.stg_a"
INT = "model.fhirflow.int_b"
NOT_NULL = "test.fhirflow.not_null_stg_a_id.1"
CROSS = "test.fhirflow.relationships_int_b_a_id__id__ref_stg_a_.2"
SEED = "seed.fhirflow.us_states"


def _node(uid: str, tags: list[str], parents: list[str] = (), **extra: Any) -> dict[str, Any]:
    kind, _, name = uid.split(".")[:3]
    return {"unique_id": uid, "name": name, "resource_type": kind, "package_name": "fhirflow",
            "original_file_path": f"models/{name}.sql", "tags": tags, "fqn": ["fhirflow", name],
            "config": {"materialized": "table", "tags": tags},
            "depends_on": {"nodes": list(parents), "macros": ["macro.dbt.x"]},
            "columns": {"id": {"description": "x" * 200}}, "raw_code": "select 1",
            "checksum": {"name": "sha256", "checksum": f"sum-{name}"}, **extra}


def _manifest() -> dict[str, Any]:
    return {
        "metadata": {"project_name": "fhirflow"},
        "nodes": {
            STG: _node(STG, ["staging"]),
            INT: _node(INT, ["intermediate"], [STG]),
            NOT_NULL: _node(NOT_NULL, [], [STG]),
            CROSS: _node(CROSS, [], [INT, STG]),
            SEED: _node(SEED, ["staging"]),
        },
        "sources": {}, "exposures": {}, "selectors": {},
        "macros": {"macro.dbt.x": {"macro_sql": "y" * 5000}}, "docs": {},
    }


def _write_shared(settings: Settings, manifest: dict[str, Any], when: float) -> Path:
    """The shared manifest as `ensure_manifest` leaves it: newer than the dbt project, so
    nothing parses it again."""
    path = manifest_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    os.utime(path, (when, when))
    return path


def test_render_manifest_holds_what_cosmos_reads_without_later_layers_tests(
        settings: Settings) -> None:
    _write_shared(settings, _manifest(), time.time() + 3600)
    path, later = rendering.render_manifest(settings, "staging")
    assert later == ["relationships_int_b_a_id__id__ref_stg_a_"]
    view = json.loads(path.read_text())
    assert set(view["nodes"]) == {STG, INT, NOT_NULL, SEED}
    # Cosmos's fields, not dbt's documentation or code
    assert view["nodes"][INT]["depends_on"] == {"nodes": [STG]}
    assert view["nodes"][STG]["tags"] == ["staging"]
    assert view["nodes"][STG]["config"]["materialized"] == "table"
    assert "columns" not in view["nodes"][STG] and "raw_code" not in view["nodes"][STG]
    assert "macros" not in view
    assert view["metadata"] == {"project_name": "fhirflow"}
    # the cross-layer test renders with the later layer
    path, later = rendering.render_manifest(settings, "intermediate")
    assert later == [] and CROSS in json.loads(path.read_text())["nodes"]


def test_render_manifest_reads_the_shared_manifest_once_per_parse(settings: Settings) -> None:
    when = time.time() + 3600
    shared = _write_shared(settings, _manifest(), when)
    first, _ = rendering.render_manifest(settings, "marts")
    # Same parse (same modification time): the cut files are current, the shared manifest
    # is not read again (it would not parse now).
    stamp = shared.stat().st_mtime_ns
    shared.write_text("not json")
    os.utime(shared, ns=(stamp, stamp))
    again, later = rendering.render_manifest(settings, "staging")
    assert again == rendering.render_path(settings, "staging") and later
    # A new parse: cut again, with the new model
    manifest = _manifest()
    manifest["nodes"]["model.fhirflow.fct_c"] = _node("model.fhirflow.fct_c", ["marts"], [INT])
    _write_shared(settings, manifest, when + 60)
    path, _ = rendering.render_manifest(settings, "marts")
    assert "model.fhirflow.fct_c" in json.loads(path.read_text())["nodes"]
    assert sorted(p.name for p in manifest_dir(settings).glob("render*")) == [
        "render.intermediate.json", "render.json", "render.marts.json", "render.staging.json"]


def _built(target: Path, *compiled: str, checksum: str | None = None) -> Path:
    """A build's manifest.json as dbt writes it: the nodes it ran carry their SQL."""
    manifest = _manifest()
    for uid in compiled:
        node = manifest["nodes"][uid]
        node.update(compiled=True, compiled_code=f"-- compiled {uid}", extra_ctes=[],
                    extra_ctes_injected=True, compiled_path=f"target/compiled/{uid}.sql")
        if checksum:
            node["checksum"] = {"name": "sha256", "checksum": checksum}
    target.mkdir(parents=True, exist_ok=True)
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def test_docs_manifest_takes_the_sql_each_build_compiled(settings: Settings,
                                                         tmp_path: Path) -> None:
    _write_shared(settings, _manifest(), time.time() + 3600)
    assert docs.keep_build_manifest(settings, _built(tmp_path / "stg", STG, NOT_NULL), "staging")
    assert not docs.keep_build_manifest(settings, tmp_path / "nothing", "marts")
    manifest, missing = docs.compiled_manifest(settings)
    assert manifest is None and missing == [INT, CROSS]  # intermediate not built yet
    docs.keep_build_manifest(settings, _built(tmp_path / "int", INT, CROSS), "intermediate")
    manifest, missing = docs.compiled_manifest(settings)
    assert missing == [] and manifest is not None
    nodes = manifest["nodes"]
    assert nodes[STG]["compiled_code"] == f"-- compiled {STG}"
    assert nodes[CROSS]["compiled_code"] == f"-- compiled {CROSS}"
    assert "compiled" not in nodes[SEED]  # seeds have no SQL; dbt does not compile them
    assert nodes[STG]["columns"]  # the documentation is the shared parse's
    target = tmp_path / "docs"
    assert docs.prepare_no_compile(settings, target) == []
    assert json.loads((target / "manifest.json").read_text())["nodes"][INT]["compiled"]


def test_docs_manifest_never_takes_sql_of_another_version_of_the_project(
        settings: Settings, tmp_path: Path) -> None:
    _write_shared(settings, _manifest(), time.time() + 3600)
    # a build of another version of stg_a (another checksum)
    docs.keep_build_manifest(settings, _built(tmp_path / "a", STG, NOT_NULL, INT, CROSS,
                                              checksum="older"), "staging")
    _, missing = docs.compiled_manifest(settings)
    assert set(missing) == {CROSS, INT, STG, NOT_NULL}
    # a build made before the dbt project last changed
    docs.forget_builds(settings)
    docs.keep_build_manifest(settings, _built(tmp_path / "b", STG, NOT_NULL, INT, CROSS), "all")
    kept = docs.builds_dir(settings) / "manifest.all.json"
    os.utime(kept, (0, 0))
    _, missing = docs.compiled_manifest(settings)
    assert set(missing) == {CROSS, INT, STG, NOT_NULL}
    target = tmp_path / "docs"
    assert docs.prepare_no_compile(settings, target) and not (target / "manifest.json").exists()
    # a new run forgets the last run's builds
    docs.forget_builds(settings)
    assert not docs.builds_dir(settings).exists()
