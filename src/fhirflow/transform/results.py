"""What a dbt invocation did, per layer, from dbt's own artifacts in its target path."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from fhirflow.errors import FhirflowError

LAYERS = ("base", "staging", "intermediate", "marts")


@dataclass
class LayerSummary:
    layer: str
    models_ok: int = 0
    models_failed: int = 0
    models_skipped: int = 0
    tests_passed: int = 0
    tests_failed: int = 0
    tests_warned: int = 0
    seconds: float = 0.0  # wall time: the layer's first node started to its last finished
    thread_seconds: float = 0.0  # the nodes' own times added up (more than wall with threads)
    model_seconds: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@dataclass
class TransformResult:
    command: str
    success: bool
    layers: dict[str, LayerSummary]
    seconds: float = 0.0
    target_path: Path | None = None
    # unique_id -> dbt's status of every node this invocation ran (success, error, pass...)
    statuses: dict[str, str] = field(default_factory=dict)

    @property
    def failures(self) -> list[str]:
        return [f for layer in self.layers.values() for f in layer.failures]

    @property
    def models_ok(self) -> int:
        """Models built, seeds not counted."""
        return sum(s.models_ok for name, s in self.layers.items() if name != "seeds")

    @property
    def tests_passed(self) -> int:
        return sum(s.tests_passed for s in self.layers.values())


def layer_of(node: dict) -> str:
    """The layer of a manifest node: its folder under models/ (`seeds` for seeds), so a new
    folder (views/, say) is a layer of its own without a change here."""
    if node.get("resource_type") == "seed":
        return "seeds"
    fqn = node.get("fqn") or []
    for part in fqn[1:]:
        if part in LAYERS:
            return part
    return fqn[1] if len(fqn) > 2 else "other"


def summarise_run_results(target_path: Path, *, command: str = "build") -> TransformResult:
    """Per-layer successes, failures, skips and seconds from dbt's target/ artifacts.

    Tests are counted in the layer of the model they test.
    """
    results_file = target_path / "run_results.json"
    manifest_file = target_path / "manifest.json"
    if not results_file.exists():
        raise FhirflowError(f"no dbt run results in {target_path}; run `fhirflow transform`")
    results = json.loads(results_file.read_text())["results"]
    nodes: dict = {}
    if manifest_file.exists():
        nodes = json.loads(manifest_file.read_text()).get("nodes", {})
    layers: dict[str, LayerSummary] = defaultdict(lambda: LayerSummary(layer="other"))
    spans: dict[str, list[datetime]] = defaultdict(list)
    statuses: dict[str, str] = {}
    for item in results:
        uid = item["unique_id"]
        node = nodes.get(uid, {})
        resource_type = uid.split(".", 1)[0]
        statuses[uid] = str(item.get("status"))
        if resource_type == "test":
            parents = [p for p in node.get("depends_on", {}).get("nodes", []) if p in nodes]
            layer = layer_of(nodes[parents[0]]) if parents else "other"
        else:
            layer = layer_of(node) if node else "other"
        summary = layers[layer]
        summary.layer = layer
        status = item.get("status")
        seconds = float(item.get("execution_time") or 0.0)
        summary.thread_seconds += seconds
        spans[layer] += _moments(item)
        name = uid.split(".")[-1] if resource_type != "test" else uid.split(".")[2]
        if resource_type == "test":
            if status == "pass":
                summary.tests_passed += 1
            elif status == "warn":
                summary.tests_warned += 1
            elif status in {"fail", "error"}:
                summary.tests_failed += 1
                summary.failures.append(f"test {name}: {item.get('message') or status}")
        elif resource_type in {"model", "seed", "snapshot"}:
            summary.model_seconds[name] = seconds
            if status == "success":
                summary.models_ok += 1
            elif status == "skipped":
                summary.models_skipped += 1
            elif status == "error":
                summary.models_failed += 1
                summary.failures.append(f"model {name}: {_message(item)}")
    for layer, moments in spans.items():
        layers[layer].seconds = ((max(moments) - min(moments)).total_seconds() if moments
                                 else layers[layer].thread_seconds)
    known = ("seeds", *LAYERS)
    names = [*(k for k in known if k in layers), *sorted(k for k in layers if k not in known)]
    ordered = {k: layers[k] for k in names}
    success = not any(s.models_failed or s.tests_failed for s in ordered.values())
    return TransformResult(command=command, success=success, layers=ordered,
                           target_path=target_path, statuses=statuses)


def _moments(item: dict) -> list[datetime]:
    """When a node's compile/execute steps started and completed (dbt's `timing`)."""
    moments = []
    for step in item.get("timing") or []:
        for key in ("started_at", "completed_at"):
            if step.get(key):
                moments.append(datetime.fromisoformat(step[key].replace("Z", "+00:00")))
    return moments


def _message(item: dict) -> str:
    message = (item.get("message") or "").strip()
    return message.splitlines()[0][:300] if message else "error"
