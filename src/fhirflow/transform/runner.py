"""dbt in this process: the one place fhirflow invokes dbt.

dbt reads its connection from `dbt/profiles.yml`, which takes every value from environment
variables; `dbt_environment()` derives those from Settings, so Settings stay the one source
of configuration.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhirflow.config import exported
from fhirflow.errors import (
    ConfigError,
    FhirflowError,
    exception_chain,
    first_line,
    underlying_error,
)
from fhirflow.transform.results import TransformResult, summarise_run_results

if TYPE_CHECKING:
    from fhirflow.config import Settings

# What `build` runs without its tests: Airflow's layer tasks leave the tests to `dbt_test`.
MODELS_ONLY = ("seed", "model", "snapshot")


@dataclass(frozen=True)
class Selection:
    """A dbt node selection, as dbt's own --select / --exclude / --resource-type take it."""

    select: str | None = None
    exclude: str | None = None
    resource_types: tuple[str, ...] = ()
    # dbt's --indirect-selection: which tests of the selected models run. dbt's default
    # (eager) also runs a test whose other parent is outside the selection, e.g. a staging
    # model's relationship to an intermediate one, which fails when that is not built yet.
    indirect: str | None = None

    def args(self) -> list[str]:
        args: list[str] = []
        if self.select:
            args += ["--select", self.select]
        if self.exclude:
            args += ["--exclude", self.exclude]
        for kind in self.resource_types:
            args += ["--resource-type", kind]
        if self.indirect:
            args += ["--indirect-selection", self.indirect]
        return args

    def describe(self) -> str:
        parts = [f"--select {self.select!r}" if self.select else "every node"]
        if self.exclude:
            parts.append(f"--exclude {self.exclude!r}")
        return " ".join(parts)


def dbt_project_dir(settings: Settings) -> Path:
    if settings.dbt_project_dir is not None:
        return settings.dbt_project_dir
    return Path(__file__).resolve().parents[3] / "dbt"


def dbt_target_path(settings: Settings) -> Path:
    return settings.state_dir / "dbt" / "target"


def dbt_environment(settings: Settings) -> dict[str, str]:
    """Environment variables that dbt/profiles.yml reads."""
    env = {
        # No usage statistics sent from inside a warehouse's network (dbt sends them unless told)
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "FHIRFLOW_DUCKDB_PATH": str(settings.duckdb_path),
        "FHIRFLOW_DBT_THREADS": str(settings.dbt_threads),
        "FHIRFLOW_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit,
    }
    if settings.resolved_dbt_target.startswith("snowflake"):
        # The connection, the sign-in method (key pair, token, password), RAW schema, query
        # tag and schema prefix, resolved as the loader resolves them.
        from fhirflow.warehouse.snowflake.auth import profile_environment

        env.update(profile_environment(settings))
    return env


def project_vars(settings: Settings) -> dict[str, Any]:
    """The dbt variables fhirflow sets from Settings (every invocation, Airflow's too)."""
    return {"staging_lookback_days": settings.staging_lookback_days}


def parse_vars(text: str | None) -> dict[str, Any]:
    """`--vars` as dbt takes it: a YAML (or JSON) mapping."""
    if not text:
        return {}
    import yaml  # dbt's own dependency; dbt parses --vars with it too

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--vars is not valid YAML: {first_line(exc)}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"--vars must be a mapping such as '{{key: value}}', got {text!r}")
    return value


def dbt_args(
    settings: Settings,
    command: str,
    *,
    select: str | None = None,
    full_refresh: bool = False,
    extra: list[str] | None = None,
    selection: Selection | None = None,
    dbt_vars: dict[str, Any] | None = None,
    target_path: Path | None = None,
) -> list[str]:
    """Command line of one dbt command on fhirflow's project, profile and target path.

    `dbt_vars` go on top of the project variables fhirflow sets from Settings.
    """
    project = dbt_project_dir(settings)
    target_path = target_path or dbt_target_path(settings)
    variables = {**project_vars(settings), **(dbt_vars or {})}
    args = [
        *command.split(),
        "--project-dir", str(project),
        "--profiles-dir", str(project),
        "--target", settings.resolved_dbt_target,
        "--target-path", str(target_path),
        "--log-path", str(target_path.parent / "logs"),
        "--vars", json.dumps(variables),
    ]
    args += (selection or Selection(select=select)).args()
    if full_refresh:
        args.append("--full-refresh")
    return args + (extra or [])


def release_duckdb_connection() -> None:
    """Close the DuckDB database dbt-duckdb keeps open for the rest of the process.

    dbt-duckdb holds one process-wide DuckDB instance across invocations; while it is open
    DuckDB refuses this process any other connection to the file with another
    configuration (a read-only one, say), so every caller after dbt would need its own
    workaround. Released here, once, after every invocation.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb not installed: a Snowflake-only environment
        return
    with DuckDBConnectionManager._LOCK:
        try:
            environment = DuckDBConnectionManager.env()
        except Exception:  # noqa: BLE001 - raised when no environment was created yet
            return
        environment.close()
        DuckDBConnectionManager.close_all_connections()


@dataclass(frozen=True)
class NodeDone:
    """One model, seed, snapshot or test that dbt has just finished (dbt's NodeFinished)."""

    unique_id: str
    resource_type: str
    name: str
    status: str  # dbt's: success, error, skipped, pass, fail, warn
    seconds: float


NodeProgress = Callable[[NodeDone], None]


def _on_node_finished(progress: NodeProgress) -> Callable[[Any], None]:
    """A dbtRunner callback that hands each finished node to `progress` as dbt reports it
    (dbt calls it from its worker threads, one event at a time)."""

    def callback(event: Any) -> None:
        if event.info.name != "NodeFinished":
            return
        node, result = event.data.node_info, event.data.run_result
        progress(NodeDone(node.unique_id, node.resource_type, node.node_name,
                          result.status or node.node_status, float(result.execution_time)))

    return callback


def invoke(settings: Settings, args: list[str], command: str, *, manifest: Any = None,
           progress: NodeProgress | None = None) -> Any:
    """dbt in this process with the environment profiles.yml reads; its dbtRunnerResult.

    Raises when dbt could not run at all; failed models and tests are the caller's to read.
    `manifest`: a parsed project (from `parse_project`), so dbt does not parse it again.
    `progress`: called once per node as dbt finishes it.
    """
    from dbt.cli.main import dbtRunner

    if settings.warehouse == "duckdb":
        settings.duckdb_path.parent.mkdir(parents=True, exist_ok=True)
    callbacks = [_on_node_finished(progress)] if progress is not None else []
    try:
        with exported(dbt_environment(settings)):
            outcome = dbtRunner(manifest=manifest, callbacks=callbacks).invoke(args)
    finally:
        release_duckdb_connection()
    if outcome.exception is not None:
        raise FhirflowError(f"dbt {command} could not run: {dbt_error(outcome.exception)}")
    return outcome


def dbt_error(exc: BaseException) -> str:
    """dbt's error as one line. When dbt wraps another library's error (a driver that could
    not connect), what dbt was doing and that library's own first line (`underlying_error`);
    otherwise dbt's message without its generic header (`Runtime Error`), lines joined."""
    if any(not type(e).__module__.startswith("dbt") for e in exception_chain(exc)[1:]):
        return underlying_error(exc)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and re.fullmatch(r"[A-Z][\w ]*Error", lines[0]):
        lines = lines[1:]
    text = " ".join(lines).replace(": - ", ": ").replace(" - ", ", ")
    return text[:500] if text else first_line(exc)


def parse_project(settings: Settings, *, dbt_vars: dict[str, Any] | None = None) -> Any:
    """The parsed project (dbt's Manifest): its graph, and reused by the build that follows."""
    # --log-level none: a project or profile mistake is reported once, as our one line.
    # --no-write-json: the build that follows writes manifest.json with its results (a
    # second 2.5 MB write of the same graph cost a tenth of a second of every build); the
    # partial-parse state is written either way.
    outcome = invoke(settings, ["--log-level", "none", "--no-use-colors", "--no-write-json",
                                *dbt_args(settings, "parse", dbt_vars=dbt_vars)], "parse")
    if not outcome.success or outcome.result is None:
        raise FhirflowError("dbt parse failed; run `fhirflow --verbose transform` for dbt's log")
    return outcome.result


def list_selected(settings: Settings, manifest: Any, selection: Selection, *,
                  dbt_vars: dict[str, Any] | None = None) -> list[str]:
    """Unique ids of the nodes a selection matches, selected by dbt itself (`dbt ls`)."""
    # --log-level none: `ls` prints what it lists even with --quiet.
    args = ["--log-level", "none", "--no-use-colors",
            *dbt_args(settings, "ls", selection=selection, dbt_vars=dbt_vars),
            "--output", "json", "--output-keys", "unique_id"]
    outcome = invoke(settings, args, "ls", manifest=manifest)
    return [json.loads(line)["unique_id"] for line in outcome.result or []]


def run_dbt(
    settings: Settings,
    command: str = "build",
    *,
    select: str | None = None,
    full_refresh: bool = False,
    extra: list[str] | None = None,
    quiet: bool = True,
    selection: Selection | None = None,
    dbt_vars: dict[str, Any] | None = None,
    manifest: Any = None,
    progress: NodeProgress | None = None,
) -> TransformResult:
    """Run one dbt command in this process and summarise run_results.json."""
    started = time.perf_counter()
    args = dbt_args(settings, command, select=select, full_refresh=full_refresh, extra=extra,
                    selection=selection, dbt_vars=dbt_vars)
    if quiet:
        args = ["--quiet", "--no-use-colors", *args]
    outcome = invoke(settings, args, command, manifest=manifest, progress=progress)
    result = summarise_run_results(dbt_target_path(settings), command=command)
    result.success = bool(outcome.success)
    result.seconds = time.perf_counter() - started
    return result


def dbt_command(settings: Settings, command: str, *, target_path: Path | None = None) -> None:
    """A dbt command with no run results to summarise (deps, debug, docs generate)."""
    args = ["--no-use-colors", *dbt_args(settings, command)]
    i = args.index("--target-path")
    if command.split()[0] in {"deps", "debug"}:
        del args[i : i + 2]  # neither subcommand takes --target-path
    elif target_path is not None:
        args[i + 1] = str(target_path)
    if not invoke(settings, args, command).success:
        raise FhirflowError(f"dbt {command} failed; see dbt's output above")


def check_installation(settings: Settings) -> dict[str, str]:
    """dbt and the adapter of the configured target are installed; the project is there."""
    from importlib.metadata import PackageNotFoundError, version

    adapter = "dbt-snowflake" if settings.warehouse == "snowflake" else "dbt-duckdb"
    found: dict[str, str] = {}
    for package in ("dbt-core", adapter):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            raise FhirflowError(f"{package} is not installed; install fhirflow with its "
                                "dependencies") from None
    project = dbt_project_dir(settings)
    for needed in ("dbt_project.yml", "profiles.yml"):
        if not (project / needed).is_file():
            raise FhirflowError(f"{project / needed} is missing; mount the dbt project there "
                                "or set FHIRFLOW_DBT_PROJECT_DIR")
    found["project"] = str(project)
    found["target"] = settings.resolved_dbt_target
    return found
