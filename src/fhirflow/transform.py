"""Transform: run the dbt project in-process and summarise what it did, per layer.

dbt reads its connection from `dbt/profiles.yml`, which takes every value from environment
variables; `dbt_environment()` derives those from Settings, so Settings stay the one source
of configuration.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhirflow.config import exported
from fhirflow.errors import FhirflowError

if TYPE_CHECKING:
    from fhirflow.config import Settings

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
    seconds: float = 0.0
    model_seconds: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@dataclass
class TransformResult:
    command: str
    success: bool
    layers: dict[str, LayerSummary]
    seconds: float = 0.0
    target_path: Path | None = None

    @property
    def failures(self) -> list[str]:
        return [f for layer in self.layers.values() for f in layer.failures]


def dbt_project_dir(settings: Settings) -> Path:
    if settings.dbt_project_dir is not None:
        return settings.dbt_project_dir
    return Path(__file__).resolve().parents[2] / "dbt"


def dbt_target_path(settings: Settings) -> Path:
    return settings.state_dir / "dbt" / "target"


def dbt_environment(settings: Settings) -> dict[str, str]:
    """Environment variables that dbt/profiles.yml reads."""
    env = {
        "FHIRFLOW_DUCKDB_PATH": str(settings.duckdb_path),
        "FHIRFLOW_DBT_THREADS": str(settings.dbt_threads),
    }
    if settings.resolved_dbt_target.startswith("snowflake"):
        from fhirflow.warehouse.snowflake.auth import profile_environment

        env.update(profile_environment(settings))
    return env


def dbt_args(
    settings: Settings,
    command: str,
    *,
    select: str | None = None,
    full_refresh: bool = False,
    extra: list[str] | None = None,
) -> list[str]:
    project = dbt_project_dir(settings)
    target_path = dbt_target_path(settings)
    args = [
        *command.split(),
        "--project-dir", str(project),
        "--profiles-dir", str(project),
        "--target", settings.resolved_dbt_target,
        "--target-path", str(target_path),
        "--log-path", str(target_path.parent / "logs"),
        "--vars", json.dumps({"staging_lookback_days": settings.staging_lookback_days}),
    ]
    if select:
        args += ["--select", select]
    if full_refresh:
        args.append("--full-refresh")
    return args + (extra or [])


def run_dbt(
    settings: Settings,
    command: str = "build",
    *,
    select: str | None = None,
    full_refresh: bool = False,
    extra: list[str] | None = None,
    quiet: bool = True,
) -> TransformResult:
    """Run one dbt command in this process and summarise run_results.json."""
    started = time.perf_counter()
    args = dbt_args(settings, command, select=select, full_refresh=full_refresh, extra=extra)
    if quiet:
        args = ["--quiet", "--no-use-colors", *args]
    outcome = invoke(settings, args, command)
    target = dbt_target_path(settings)
    result = summarise_run_results(target, command=command)
    result.success = bool(outcome.success)
    result.seconds = time.perf_counter() - started
    return result


def invoke(settings: Settings, args: list[str], command: str) -> Any:
    """dbt in this process with the environment profiles.yml reads; its dbtRunnerResult.

    Raises when dbt could not run at all; failed models and tests are the caller's to read.
    """
    from dbt.cli.main import dbtRunner

    if settings.warehouse == "duckdb":
        settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    with exported(dbt_environment(settings)):
        outcome = dbtRunner().invoke(args)
    if outcome.exception is not None:
        raise FhirflowError(f"dbt {command} could not run: {_first_line(outcome.exception)}")
    return outcome


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _layer_of(node: dict) -> str:
    if node.get("resource_type") == "seed":
        return "seeds"
    fqn = node.get("fqn") or []
    for part in fqn[1:]:
        if part in LAYERS:
            return part
    return "other"


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
    for item in results:
        uid = item["unique_id"]
        node = nodes.get(uid, {})
        resource_type = uid.split(".", 1)[0]
        if resource_type == "test":
            parents = [p for p in node.get("depends_on", {}).get("nodes", []) if p in nodes]
            layer = _layer_of(nodes[parents[0]]) if parents else "other"
        else:
            layer = _layer_of(node) if node else "other"
        summary = layers[layer]
        summary.layer = layer
        status = item.get("status")
        seconds = float(item.get("execution_time") or 0.0)
        summary.seconds += seconds
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
                summary.failures.append(f"model {name}: {_msg(item)}")
    ordered = {k: layers[k] for k in ("seeds", *LAYERS, "other") if k in layers}
    success = not any(s.models_failed or s.tests_failed for s in ordered.values())
    return TransformResult(command=command, success=success, layers=ordered,
                           target_path=target_path)


def _msg(item: dict) -> str:
    message = (item.get("message") or "").strip()
    return message.splitlines()[0][:300] if message else "error"
