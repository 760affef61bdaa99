"""One checked dbt build: parse once, select with dbt, refuse what would mix loads, build,
and record in the load ledger what each model now reflects."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fhirflow.errors import FhirflowError
from fhirflow.transform import consistency
from fhirflow.transform.results import TransformResult
from fhirflow.transform.runner import (
    MODELS_ONLY,
    NodeDone,
    NodeProgress,
    Selection,
    list_selected,
    parse_project,
    run_dbt,
)

if TYPE_CHECKING:
    from fhirflow.config import Settings

# `--layer X` selects these. Staging also (re)loads the seeds, the small reference tables
# its models join, so a layer build on a fresh warehouse has them.
LAYER_SELECTORS = {
    "staging": "resource_type:seed tag:staging",
    "intermediate": "tag:intermediate",
    "marts": "tag:marts",
}

Mode = Literal["build", "models", "tests"]
"""build: models, seeds, snapshots and their tests (`dbt build`); models: the same without
tests (Airflow's layer tasks); tests: only tests (`dbt test`)."""

_TEST_TYPES = ("test", "unit_test")


def layer_selection(layer: str) -> Selection:
    if layer not in LAYER_SELECTORS:
        raise FhirflowError(f"unknown layer {layer!r}; use one of {', '.join(LAYER_SELECTORS)}")
    # cautious: a layer's build runs the tests whose every parent it builds; a test that
    # reaches into the next layer runs with that layer's build.
    return Selection(select=LAYER_SELECTORS[layer], indirect="cautious")


def consistency_hint(selection: Selection, layer: str | None) -> str:
    """What to run instead, for the one-line refusal: dbt's `+` graph operator."""
    if layer is not None:
        return f"build {layer} with what it reads: `fhirflow transform --select +tag:{layer}`"
    if selection.select:
        plus = " ".join(part if part.startswith("+") else f"+{part}"
                        for part in selection.select.split())
        return f"build what it reads too: `fhirflow transform --select '{plus}'`"
    return "run `fhirflow transform` to build every layer"


def build(
    settings: Settings,
    selection: Selection,
    *,
    raw_load: str | None,
    mode: Mode = "build",
    full_refresh: bool = False,
    dbt_vars: dict[str, Any] | None = None,
    layer: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> TransformResult:
    """Build a selection, refusing (InconsistentBuild, before dbt starts) a build that would
    make a model from inputs of different RAW loads; `raw_load` is RAW's newest load id
    (None when RAW has none yet); `layer` names the layer the selection came from;
    `progress` gets one line per node as dbt finishes it (`12/30 OK model stg_patients`)."""
    command = "test" if mode == "tests" else "build"
    if mode == "models":
        selection = replace(selection, resource_types=MODELS_ONLY)
    manifest = parse_project(settings, dbt_vars=dbt_vars)
    listed = selection if mode != "tests" else replace(selection, resource_types=_TEST_TYPES)
    selected = list_selected(settings, manifest, listed, dbt_vars=dbt_vars)
    if not selected:
        raise FhirflowError(f"nothing matched {selection.describe()}: dbt selected no "
                            f"{'test' if mode == 'tests' else 'model, seed or test'}")
    target = settings.resolved_dbt_target
    path = consistency.ledger_path(settings.state_dir)
    ledger = consistency.read_ledger(path, target)
    predicted: dict[str, str] = {}
    if mode != "tests":
        graph = consistency.graph_from_manifest(manifest)
        predicted = consistency.check(graph, ledger, selected, raw_load or consistency.NO_LOAD,
                                      hint=consistency_hint(selection, layer))
        # Written ahead: a build that dies half-way leaves its models counted as failed,
        # not as still holding the load they held before.
        consistency.write_ledger(path, target, consistency.record(
            ledger, predicted, {uid: "started" for uid in predicted}))
    result = run_dbt(settings, command, selection=selection, full_refresh=full_refresh,
                     dbt_vars=dbt_vars, manifest=manifest,
                     progress=node_lines(progress, len(selected)) if progress else None)
    if predicted:
        consistency.write_ledger(path, target,
                                 consistency.record(ledger, predicted, result.statuses))
    if not result.statuses:
        raise FhirflowError(f"nothing matched {selection.describe()}: dbt ran no node")
    return result


_SHOWN = {"success": "OK", "pass": "PASS", "error": "ERROR", "fail": "FAIL", "warn": "WARN",
          "skipped": "SKIP"}


def node_lines(say: Callable[[str], None], total: int) -> NodeProgress:
    """A dbt progress callback that says one numbered line per finished node, as `dbt build`
    prints them (dbt's worker threads call it; the count is kept under a lock)."""
    lock = threading.Lock()
    done = 0

    def progress(node: NodeDone) -> None:
        nonlocal done
        with lock:
            done += 1
            number = done
        status = _SHOWN.get(node.status, node.status.upper())
        say(f"{number}/{total} {status} {node.resource_type} {node.name} ({node.seconds:.1f} s)")

    return progress


# --- layer builds that another runner carries out (Airflow's Cosmos task groups) -------------


@dataclass(frozen=True)
class PlannedBuild:
    """A layer build checked before another runner starts it: the load each model of the
    layer will reflect when it succeeds."""

    target: str
    layer: str
    raw_load: str
    predicted: dict[str, str]


def _pending_path(settings: Settings) -> Path:
    return settings.state_dir / "dbt" / "pending.json"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}


def begin_layer_build(settings: Settings, layer: str, *, raw_load: str | None) -> PlannedBuild:
    """The checks `build` makes before dbt starts, for a layer some other runner builds:
    refuse (InconsistentBuild) what would mix loads, write the ledger ahead, and keep the
    prediction for `finish_layer_build`. The graph comes from the shared manifest."""
    from fhirflow.atomic import write_atomic
    from fhirflow.transform.manifest import layer_nodes, read_manifest

    manifest = read_manifest(settings)
    layer_selection(layer)  # an unknown layer is one line, as for `--layer`
    selected = layer_nodes(manifest, layer)
    if not selected:
        raise FhirflowError(f"no model is tagged {layer!r} in the dbt project")
    target = settings.resolved_dbt_target
    path = consistency.ledger_path(settings.state_dir)
    ledger = consistency.read_ledger(path, target)
    load = raw_load or consistency.NO_LOAD
    predicted = consistency.check(consistency.graph_from_manifest_json(manifest), ledger,
                                  selected, load,
                                  hint=consistency_hint(layer_selection(layer), layer))
    consistency.write_ledger(path, target, consistency.record(
        ledger, predicted, {uid: "started" for uid in predicted}))
    pending = _read_json(_pending_path(settings))
    pending.setdefault(target, {})[layer] = {"raw_load": load, "predicted": predicted}
    write_atomic(_pending_path(settings), json.dumps(pending, indent=1).encode())
    return PlannedBuild(target, layer, load, predicted)


def finish_layer_build(settings: Settings, layer: str, statuses: dict[str, str], *,
                       complete: bool = True) -> int:
    """Record in the ledger what the layer's models reflect after a build (dbt's status
    per unique id); the number of models recorded (0 when no build was begun).

    `complete`: the build of the whole layer, where a model the runner never reached counts
    as failed (as in a build that died); otherwise a rebuild of some of its models (a model
    task's retry), which records only those, against the same prediction.
    """
    target = settings.resolved_dbt_target
    planned = _read_json(_pending_path(settings)).get(target, {}).get(layer)
    if not planned:
        return 0
    predicted = {uid: load for uid, load in planned["predicted"].items()
                 if complete or uid in statuses}
    path = consistency.ledger_path(settings.state_dir)
    ledger = consistency.read_ledger(path, target)
    outcome = {uid: statuses.get(uid, "not run") for uid in predicted}
    consistency.write_ledger(path, target, consistency.record(ledger, predicted, outcome))
    return len(predicted)
