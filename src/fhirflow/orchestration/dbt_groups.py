"""The transform DAG's dbt layers as Cosmos task groups: one task per model, one per model's
tests, wired by dbt's own dependencies.

Each group (`dbt_run_staging`, `dbt_run_intermediate`, `dbt_run_marts`) runs dbt once, in
Cosmos's watcher mode: its producer task (`dbt_producer_watcher`) runs `dbt build` over the
layer in this process with dbt's threads, and every model task (`<model>.run`) and test task
(`<model>.test`) succeeds or fails as dbt finishes that node, so the UI shows each model's
state, log and timing while the run costs one dbt invocation per layer. A model task that is
retried or cleared runs its model alone (Cosmos's fallback). Cosmos renders the groups from
the shared manifest (`fhirflow.transform.manifest`; parsed again only when the project
changed), and each group's check hands Cosmos's partial-parse cache of the group the newest
file of the DAG (`share_partial_parse`), so dbt parses the project once per change rather
than once per layer. The profile comes from the Airflow connections through Cosmos's
profile mappings (`orchestration.profiles`).

fhirflow's checks wrap each producer: before dbt starts it refuses a build that would mix
loads (as `fhirflow transform --layer X` does) and writes the load ledger ahead; after dbt it
records what each model now reflects and leaves `run_results.json` in
`$FHIRFLOW_HOME/state/dbt/target/` for the `parse_<layer>_results` task.

Imported by the transform DAG only: it imports Cosmos and Airflow.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from cosmos import DbtTaskGroup, ExecutionConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

from fhirflow.config import DagSettings, Settings
from fhirflow.errors import FhirflowError
from fhirflow.orchestration import DUCKDB_CONN_ID
from fhirflow.orchestration.connections import task_settings
from fhirflow.orchestration.docs import forget_builds, keep_build_manifest
from fhirflow.orchestration.profiles import profile_config, profile_path
from fhirflow.orchestration.rendering import render_manifest
from fhirflow.orchestration.watcher import push_fewer_xcoms
from fhirflow.transform import LAYER_SELECTORS, dbt_project_dir, dbt_target_path
from fhirflow.transform.runner import project_vars

log = logging.getLogger(__name__)

LAYERS = ("staging", "intermediate", "marts")


def group_id(layer: str) -> str:
    return f"dbt_run_{layer}"


def share_partial_parse(dag_id: str, layer: str) -> Path | None:
    """Hand this group's Cosmos cache the newest partial-parse file of the DAG's groups.

    Cosmos keeps dbt's partial_parse.msgpack per task group, so on a first run (or after the
    project changed) each layer's producer would parse the whole project again although the
    group before it has just done so with the same profile and variables. dbt still checks
    the file (profile, variables, file hashes) and parses from scratch when it does not fit,
    so a wrong one costs a full parse, never a wrong build. Returns the file copied, if any.
    """
    from cosmos import cache
    from cosmos.dbt.project import get_partial_parse_path

    def cache_dir(name: str) -> Path:
        return cache._obtain_cache_dir_path(f"{dag_id.replace('.', '___')}__{group_id(name)}")

    mine = get_partial_parse_path(cache_dir(layer))
    found = [f for f in (get_partial_parse_path(cache_dir(o)) for o in LAYERS if o != layer)
             if f.is_file()]
    newest = max(found, key=lambda f: f.stat().st_mtime, default=None)
    if newest is None or (mine.is_file() and mine.stat().st_mtime >= newest.stat().st_mtime):
        return None
    cache._update_partial_parse_cache(newest, cache_dir(layer))
    return newest


def check_layer(layer: str, dag_id: str | None = None, *,
                run_load: str | None = None) -> dict[str, Any]:
    """The group's first task: refuse a build that would mix loads, write the ledger ahead,
    and clear the previous run's results so the parse task reads only this run's; then let
    the producer start from the newest partial parse of the DAG (`share_partial_parse`).

    `run_load`: the RAW load this DAG run's staging check planned. The later layers are
    checked against it, not against RAW's newest load: the load DAG keeps loading while
    the transform runs (every 15 s under `make airflow`), and a load landing between
    staging and intermediate (which reads RAW through base_fhir_entries too) would
    otherwise refuse every run, its retries included, so the marts would never move. A run
    is then as consistent as one `dbt build` from the CLI, which reads RAW as it goes too;
    a staging layer that failed or is older than the run's load is still refused.
    """
    from fhirflow import pipeline
    from fhirflow.transform.checked import begin_layer_build

    with task_settings() as settings:
        path = profile_path(profile_config(settings))
        if path is not None and Path(path).resolve() != settings.duckdb_path.resolve():
            raise FhirflowError(
                f"dbt's DuckDB profile (connection {DUCKDB_CONN_ID}) points at {path}, but the "
                f"load writes {settings.duckdb_path}; make the connection's host FHIRFLOW_HOME's "
                "warehouse.duckdb, or drop the connection")
        (dbt_target_path(settings) / "run_results.json").unlink(missing_ok=True)
        if layer == LAYERS[0]:
            forget_builds(settings)  # a new run: the docs take SQL from its builds only
        planned = begin_layer_build(settings, layer,
                                    raw_load=run_load or pipeline.raw_load(settings))
        log.info("%s: %d models to build from RAW load %s", layer, len(planned.predicted),
                 planned.raw_load)
        shared = share_partial_parse(dag_id, layer) if dag_id else None
        if shared is not None:
            log.info("%s: dbt starts from the partial parse of %s", layer, shared)
        return {"layer": layer, "raw_load": planned.raw_load, "models": len(planned.predicted)}


def finish_layer(project_dir: str, layer: str = "", complete: bool = True,
                 **_context: Any) -> None:
    """Cosmos's callback after a dbt command of the group (also when it failed): keep dbt's
    artifacts for the parse task and record in the load ledger what the models now reflect.
    `complete`: the producer's build of the whole layer (a model it did not reach counts as
    failed); otherwise a model task's own retry, which records only its model."""
    import json

    from fhirflow.transform.checked import finish_layer_build
    from fhirflow.transform.runner import release_duckdb_connection

    # Cosmos ran dbt in this process: let go of the DuckDB file dbt-duckdb keeps open, as
    # fhirflow's own runner does after every invocation.
    release_duckdb_connection()
    with task_settings() as settings:
        source = Path(project_dir) / "target"
        target = dbt_target_path(settings)
        target.mkdir(parents=True, exist_ok=True)
        if complete:
            for name in ("run_results.json", "manifest.json"):
                if (source / name).is_file():
                    shutil.copyfile(source / name, target / f".{name}.tmp")
                    (target / f".{name}.tmp").replace(target / name)
            # What the build compiled, for the docs task (`orchestration.docs`).
            keep_build_manifest(settings, source, layer)
        results = source / "run_results.json"
        statuses = ({r["unique_id"]: str(r.get("status"))
                     for r in json.loads(results.read_text())["results"]}
                    if results.is_file() else {})
        recorded = finish_layer_build(settings, layer, statuses, complete=complete)
        log.info("%s: recorded %d models in the load ledger", layer, recorded)


def layer_group(layer: str, settings: Settings, ds: DagSettings) -> DbtTaskGroup:
    """The Cosmos task group `dbt_run_<layer>`: the producer (in the warehouse pool) and one
    task per model and per model's tests, rendered from the layer's cut of the shared
    manifest (`rendering`)."""
    manifest, later_tests = render_manifest(settings, layer)
    project = ProjectConfig(
        dbt_project_path=dbt_project_dir(settings),
        manifest_path=manifest,
        install_dbt_deps=False,  # the DAG's dbt_deps task does that, when packages change
        partial_parse=True,
        dbt_vars=project_vars(settings),
    )
    render = RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        select=LAYER_SELECTORS[layer].split(),
        # dbt runs these with the later layer they also read (Cosmos passes the exclusion
        # to the producer's `dbt build`).
        exclude=later_tests,
        test_behavior=TestBehavior.AFTER_EACH,
        emit_datasets=False,  # the marts' freshness is reported by `fhirflow status`
    )
    execution = ExecutionConfig(
        execution_mode=ExecutionMode.WATCHER,
        invocation_mode=InvocationMode.DBT_RUNNER,
        setup_operator_args={
            # Only the producer opens the warehouse; the model tasks only watch it.
            "pool": ds.warehouse_pool,
            "callback_args": {"layer": layer, "complete": True},
            "doc_md": f"Runs `dbt build` over the {layer} layer once; the model tasks of "
                      "this group follow it. Refuses to start when the layer would mix loads.",
        },
    )
    group = DbtTaskGroup(
        group_id=group_id(layer),
        project_config=project,
        profile_config=profile_config(settings),
        execution_config=execution,
        render_config=render,
        operator_args={"poke_interval": ds.dbt_watch_poke_seconds, "install_deps": False,
                       "callback": finish_layer,
                       "callback_args": {"layer": layer, "complete": False}},
        tooltip=f"dbt {layer}: one task per model and one per model's tests",
    )
    _wire(group, layer, ds)
    return group


def _wire(group: DbtTaskGroup, layer: str, ds: DagSettings) -> None:
    """The consistency check first, then the producer (`watcher`: fewer XComs), then the
    first model tasks.

    The model tasks start after the producer (Cosmos's DbtDag does the same; in a task
    group they would start beside it), so they never wait for a dbt run that has not begun:
    `dag.test()` runs tasks one at a time. They run when the producer failed too, to show
    which models failed; not when the check refused the build (a model task that finds no
    result would otherwise build its model alone, which is what the check prevents).
    """
    from airflow.sdk import task

    producer = group.children[f"{group.group_id}.dbt_producer_watcher"]
    if not push_fewer_xcoms(producer):
        log.warning("%s: Cosmos's producer is a %s; it pushes an XCom for every dbt event",
                    group.group_id, type(producer).__name__)
    roots = [t for t in group.get_roots() if t is not producer]

    @task(task_id="check_consistency", pool=ds.warehouse_pool, task_group=group,
          doc_md=f"Refuses the {layer} build when it would read a layer built from another "
                 "load (or whose last build failed); writes the load ledger ahead.")
    def check_consistency(dag: Any = None, ti: Any = None) -> dict[str, Any]:
        # Airflow passes the DAG and the task instance in. The later layers build from the
        # load this run's staging check planned (see check_layer).
        planned = (ti.xcom_pull(task_ids=f"{group_id(LAYERS[0])}.check_consistency")
                   if ti is not None and layer != LAYERS[0] else None)
        return check_layer(layer, dag.dag_id if dag is not None else None,
                           run_load=(planned or {}).get("raw_load"))

    check = check_consistency()
    check >> producer
    for root in roots:
        check >> root
        producer >> root
        root.trigger_rule = "all_done_min_one_success"
