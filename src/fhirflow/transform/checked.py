"""One checked dbt build: parse once, select with dbt, refuse what would mix loads, build,
and record in the load ledger what each model now reflects."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from fhirflow.errors import FhirflowError
from fhirflow.transform import consistency
from fhirflow.transform.results import TransformResult
from fhirflow.transform.runner import (
    MODELS_ONLY,
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
    return Selection(select=LAYER_SELECTORS[layer])


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
) -> TransformResult:
    """Build a selection, refusing (InconsistentBuild, before dbt starts) a build that would
    make a model from inputs of different RAW loads; `raw_load` is RAW's newest load id
    (None when RAW has none yet); `layer` names the layer the selection came from."""
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
                     dbt_vars=dbt_vars, manifest=manifest)
    if predicted:
        consistency.write_ledger(path, target,
                                 consistency.record(ledger, predicted, result.statuses))
    if not result.statuses:
        raise FhirflowError(f"nothing matched {selection.describe()}: dbt ran no node")
    return result
