"""Layer builds that stay consistent: no model is built over inputs from different loads.

`fhirflow transform --layer marts` after new data was loaded and only staging rebuilt would
otherwise join fresh staging rows with intermediate tables built from the previous load
(prescriptions without their claim's cost or their condition's reason, and every test
passing). So fhirflow records, per model, which RAW load its content reflects (the load
ledger, `state/dbt/builds.json`), and before a build works out what each selected model
would read: a source is RAW as it is now, a model built in the same run is what that run
makes of it, any other model is what the ledger says. A model whose inputs come from
different loads, or from a model whose last build failed or was never recorded, is refused
before dbt starts, with one line naming the layer that is behind. `--select +tag:marts`
(dbt's own graph operator) builds everything marts read, and is always consistent.

Views and ephemeral models hold no data of their own: they pass their inputs' loads through.
Seeds are reference data and belong to no load.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fhirflow.errors import FhirflowError

# The load of RAW before its first load: still a version, so an empty RAW builds consistently.
NO_LOAD = "(no load yet)"
_PASS_THROUGH = {"view", "ephemeral"}
_BUILT = {"model", "snapshot"}


@dataclass(frozen=True)
class Node:
    unique_id: str
    resource_type: str  # model, snapshot, seed, source
    layer: str
    parents: tuple[str, ...] = ()
    materialized: str = "table"

    @property
    def name(self) -> str:
        return self.unique_id.rsplit(".", 1)[-1]

    @property
    def holds_data(self) -> bool:
        return self.resource_type in _BUILT and self.materialized not in _PASS_THROUGH


@dataclass(frozen=True)
class Built:
    """The ledger's entry for one model: the RAW load its content reflects."""

    load: str | None
    ok: bool
    at: str = ""


@dataclass(frozen=True)
class Conflict:
    """A model the build would make from inputs of different (or unknown) loads."""

    model: Node
    behind: Node
    behind_load: str | None
    ahead: Node | None
    ahead_load: str | None

    failed: bool = False  # for a behind model with no known load: its last build failed

    def message(self) -> str:
        reads = f"{self.model.layer} model {self.model.name} would read {self.behind.name}"
        if self.ahead is None and self.failed:
            return f"{self.behind.layer} is behind: {reads}, whose last build failed"
        if self.ahead is None:
            return f"{self.behind.layer} has no recorded build: {reads}, not built here yet"
        return (f"{self.behind.layer} is behind {self.ahead.layer}: {reads} (built from load "
                f"{self.behind_load}) with {self.ahead.name} (load {self.ahead_load})")


class InconsistentBuild(FhirflowError):
    """Refused before dbt starts: the build would mix loads."""


def graph_from_manifest(manifest: Any) -> dict[str, Node]:
    """Models, snapshots, seeds and sources of a parsed project (dbt's Manifest object)."""
    from fhirflow.transform.results import layer_of

    graph: dict[str, Node] = {}
    for uid, node in manifest.nodes.items():
        kind = str(getattr(node.resource_type, "value", node.resource_type))
        if kind not in {"model", "snapshot", "seed"}:
            continue
        layer = layer_of({"resource_type": kind, "fqn": list(node.fqn)})
        graph[uid] = Node(uid, kind, "staging" if layer == "base" else layer,
                          tuple(getattr(node.depends_on, "nodes", ())),
                          str(getattr(node.config, "materialized", "table")))
    for uid in manifest.sources:
        graph[uid] = Node(uid, "source", "raw")
    return graph


def graph_from_manifest_json(manifest: Mapping[str, Any]) -> dict[str, Node]:
    """The same graph from a manifest.json document (what Airflow's tasks share)."""
    from fhirflow.transform.results import layer_of

    graph: dict[str, Node] = {}
    for uid, node in manifest.get("nodes", {}).items():
        kind = node.get("resource_type")
        if kind not in {"model", "snapshot", "seed"}:
            continue
        layer = layer_of(node)
        graph[uid] = Node(uid, kind, "staging" if layer == "base" else layer,
                          tuple(node.get("depends_on", {}).get("nodes", [])),
                          str(node.get("config", {}).get("materialized", "table")))
    for uid in manifest.get("sources", {}):
        graph[uid] = Node(uid, "source", "raw")
    return graph


def ledger_path(state_dir: Path) -> Path:
    return state_dir / "dbt" / "builds.json"


def read_ledger(path: Path, target: str) -> dict[str, Built]:
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except ValueError:
        return {}  # a damaged ledger only means builds must start from the whole graph
    return {uid: Built(e.get("load"), bool(e.get("ok")), e.get("at", ""))
            for uid, e in doc.get(target, {}).items()}


def write_ledger(path: Path, target: str, ledger: Mapping[str, Built]) -> None:
    from fhirflow.atomic import write_atomic

    doc = json.loads(path.read_text()) if path.is_file() else {}
    doc[target] = {uid: {"load": b.load, "ok": b.ok, "at": b.at}
                   for uid, b in sorted(ledger.items())}
    write_atomic(path, json.dumps(doc, indent=1).encode())


def _order(graph: Mapping[str, Node], uids: Iterable[str]) -> list[str]:
    """The selected nodes in dependency order (parents first), ordered over the whole graph
    so that a path through nodes outside the selection (a view, say) counts too."""
    from graphlib import TopologicalSorter

    wanted = set(uids)
    sorter = TopologicalSorter({u: [p for p in n.parents if p in graph] for u, n in graph.items()})
    return [u for u in sorter.static_order() if u in wanted]


def plan(graph: Mapping[str, Node], ledger: Mapping[str, Built], selected: Iterable[str],
         raw_load: str) -> tuple[dict[str, str], list[Conflict]]:
    """The load each selected model would reflect after the build, and the conflicts."""
    predicted: dict[str, str] = {}
    conflicts: list[Conflict] = []

    def load_of(uid: str) -> list[tuple[Node, str | None]]:
        node = graph.get(uid)
        if node is None or node.resource_type == "seed":
            return []
        if node.resource_type == "source":
            return [(node, raw_load)]
        if not node.holds_data:
            return [pair for parent in node.parents for pair in load_of(parent)]
        if uid in predicted:
            return [(node, predicted[uid])]
        built = ledger.get(uid)
        return [(node, built.load if built and built.ok else None)]

    for uid in _order(graph, selected):
        node = graph[uid]
        if not node.holds_data:
            continue
        inputs = [pair for parent in node.parents for pair in load_of(parent)]
        unknown = [(n, built) for n, built in inputs if built is None]
        loads = sorted({load for _n, load in inputs if load is not None})
        if unknown:
            behind = unknown[0][0]
            conflicts.append(Conflict(node, behind, None, None, None,
                                      failed=behind.unique_id in ledger))
        elif len(loads) > 1:
            behind = next(n for n, load in inputs if load == loads[0])
            ahead = next(n for n, load in inputs if load == loads[-1])
            conflicts.append(Conflict(node, behind, loads[0], ahead, loads[-1]))
        if loads:
            predicted[uid] = loads[-1]
        elif not inputs:
            predicted[uid] = NO_LOAD  # reads seeds only
    return predicted, conflicts


def check(graph: Mapping[str, Node], ledger: Mapping[str, Built], selected: Iterable[str],
          raw_load: str, *, hint: str) -> dict[str, str]:
    """`plan`, raising InconsistentBuild (one line) when the build would mix loads."""
    predicted, conflicts = plan(graph, ledger, selected, raw_load)
    if conflicts:
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise InconsistentBuild(f"refusing to build: {conflicts[0].message()}{more}; {hint}")
    return predicted


def record(ledger: dict[str, Built], predicted: Mapping[str, str],
           statuses: Mapping[str, str]) -> dict[str, Built]:
    """The ledger after a build: each model that succeeded reflects its predicted load;
    one that failed or was skipped keeps its old content, which no longer counts."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    updated = dict(ledger)
    for uid, status in statuses.items():
        if uid not in predicted:
            continue  # tests, seeds, views
        if status == "success":
            updated[uid] = Built(predicted[uid], True, now)
        else:
            old = ledger.get(uid)
            updated[uid] = Built(old.load if old else None, False, now)
    return updated
