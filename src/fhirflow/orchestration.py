"""What the Airflow DAGs need beyond the stages themselves.

The DAG files in `dags/` only schedule and wire tasks; every task body is a call into this
module, which calls the same stage functions as the CLI. Nothing here imports Airflow at
module level, so the CLI and tests can use it without Airflow installed:

- `dag_settings()`: schedules, trigger mode, retries, alerting (config.DagSettings).
- `settings_for_task()`: fhirflow Settings, with the store and warehouse parameters taken
  from the Airflow connections `aws_default` / `snowflake_default` when those exist.
- one function per task: generate, upload, the seed's five load steps, the dbt steps.
- `latest_load_logical_date()`: which run of the load DAG the transform DAG waits for.
- `on_task_failure()`: the failure callback (a log line; e-mail when configured).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fhirflow.config import DagSettings, Settings, exported, load_dag_settings, load_settings
from fhirflow.errors import FhirflowError

log = logging.getLogger(__name__)

# DAG ids as the seed's deployment steps name them.
GENERATION_DAG_ID = "synthea_generation"
UPLOAD_DAG_ID = "s3_upload"
LOAD_DAG_ID = "s3_to_snowflake_load"
TRANSFORM_DAG_ID = "dbt_transform_fhir"

AWS_CONN_ID = "aws_default"
SNOWFLAKE_CONN_ID = "snowflake_default"

# The Asset the load DAG updates when it loaded new files; the transform DAG can run on it.
RAW_BUNDLES_ASSET_NAME = "fhirflow_raw_fhir_bundles"
RAW_BUNDLES_ASSET_URI = "fhirflow://warehouse/raw/fhir_bundles"

# dbt layers in the order the transform DAG runs them: (command, selector). Staging also
# (re)loads the seeds, the small reference tables its models join; `build` limited to seeds
# and models does that in one dbt invocation, so one run_results.json reports both. Tests run
# in the dbt_test task.
DBT_LAYERS = {
    "staging": ("build", "resource_type:seed tag:staging"),
    "intermediate": ("run", "tag:intermediate"),
    "marts": ("run", "tag:marts"),
}
DBT_BUILD_WITHOUT_TESTS = ["--resource-type", "seed", "--resource-type", "model"]


def dag_settings() -> DagSettings:
    return load_dag_settings()


# --- schedules -------------------------------------------------------------------------------

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_schedule(value: str) -> str | timedelta | None:
    """`10s` -> timedelta(seconds=10); `none` -> None; cron and presets pass through."""
    text = value.strip()
    if text.lower() in {"", "none", "manual"}:
        return None
    if text[:-1].isdigit() and text[-1:].lower() in _UNITS:
        return timedelta(seconds=int(text[:-1]) * _UNITS[text[-1].lower()])
    if text.isdigit():
        return timedelta(seconds=int(text))
    return text


def default_args(ds: DagSettings) -> dict[str, Any]:
    """Task defaults every DAG shares: retries with exponential backoff, failure callback."""
    return {
        "owner": "fhirflow",
        "retries": ds.retries,
        "retry_delay": timedelta(seconds=ds.retry_delay_seconds),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=ds.max_retry_delay_minutes),
        "on_failure_callback": on_task_failure,
    }


def latest_tick(schedule: str | timedelta | None, moment: datetime) -> datetime:
    """The newest tick of a cron schedule at or before `moment` (`moment` for other kinds)."""
    if not isinstance(schedule, str) or schedule.startswith("@once"):
        return moment
    from croniter import croniter

    if not croniter.is_valid(schedule):
        return moment
    # croniter's get_prev is strictly before its start, so start just after the moment.
    itr = croniter(schedule, moment + timedelta(microseconds=1))
    tick = itr.get_prev(datetime)
    return tick if tick.tzinfo else tick.replace(tzinfo=UTC)


# How far the sensor looks for load runs around its own logical date, in load ticks.
_TICKS_AFTER, _TICKS_BEFORE = 12, 6
# A load tick this recent may simply not have its run created yet: wait for it.
_CREATION_GRACE = timedelta(minutes=2)


def latest_load_logical_date(logical_date: datetime, **context: Any) -> datetime:
    """`execution_date_fn` of `wait_for_s3_load`: the load run this transform run waits for.

    A run triggered by the load DAG's Asset waits for the load run that emitted the event
    (its logical date travels in the event's extra). A time-scheduled run waits for the
    latest load run, found through the load DAG's cron schedule although the two DAGs run
    on different ones: the newest load tick at or before this run's logical date (10:10
    waits for the 10:10 load, 10:07 for the 10:05 one) when that run exists or is about to
    be created; else the newest load run that exists around it (after a restart, or a
    load DAG unpaused later, the ticks before may have no run and never will).
    Called at every poke, so a run created meanwhile is found on the next one.
    """
    events = context.get("triggering_asset_events") or {}
    stamps: list[str] = []
    try:
        for _asset, asset_events in events.items():
            for event in asset_events:
                extra = getattr(event, "extra", None) or {}
                if extra.get("load_logical_date"):
                    stamps.append(str(extra["load_logical_date"]))
    except (AttributeError, TypeError):
        stamps = []
    if stamps:
        return datetime.fromisoformat(max(stamps))
    schedule = parse_schedule(dag_settings().load_schedule)
    tick = latest_tick(schedule, logical_date)
    ti = context.get("ti")
    if ti is None or not isinstance(schedule, str):
        return tick
    return _existing_load_tick(ti, schedule, tick, datetime.now(UTC))


def _existing_load_tick(ti: Any, schedule: str, tick: datetime, now: datetime) -> datetime:
    from croniter import croniter

    def exists(moment: datetime) -> bool:
        return ti.get_dr_count(dag_id=LOAD_DAG_ID, logical_dates=[moment]) > 0

    if exists(tick) or now - tick < _CREATION_GRACE:
        return tick
    later = croniter(schedule, tick)
    after = []
    for _ in range(_TICKS_AFTER):
        moment = later.get_next(datetime)
        if moment > now:
            break
        after.append(moment)
    earlier = croniter(schedule, tick)
    before = [earlier.get_prev(datetime) for _ in range(_TICKS_BEFORE)]
    for moment in [*reversed(after), *before]:
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if exists(moment):
            log.info("no %s run at %s; waiting for the one at %s instead",
                     LOAD_DAG_ID, tick.isoformat(), moment.isoformat())
            return moment
    return tick


def seed_for_run(base_seed: int, dag_id: str, run_key: str) -> int:
    """A generator seed per DAG run: new patients every run, the same ones on a retry."""
    return (base_seed * 1_000_003 + zlib.crc32(f"{dag_id}/{run_key}".encode())) % (2**31 - 1)


def run_key(logical_date: datetime | None, run_id: str) -> str:
    """What tells one run from another: its logical date, which a re-run of the same
    interval shares (a manual run id carries the trigger time); the run id when a run has
    no logical date."""
    return logical_date.isoformat() if logical_date is not None else run_id


# --- settings from Airflow connections --------------------------------------------------------

ConnectionGetter = Callable[[str], Any]


def _airflow_connection(conn_id: str) -> Any | None:
    """The Airflow connection, or None when it is not defined (or Airflow is absent)."""
    try:
        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:
        return None
    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def _extras(conn: Any) -> dict[str, Any]:
    extra = getattr(conn, "extra_dejson", None)
    if extra is None:
        import json

        raw = getattr(conn, "extra", None) or "{}"
        extra = json.loads(raw) if isinstance(raw, str) else dict(raw)
    return dict(extra or {})


def snowflake_overrides(conn: Any) -> dict[str, Any]:
    """Settings fields from a `snowflake_default` connection (only the values it sets)."""
    extra = _extras(conn)
    values = {
        "snowflake_account": extra.get("account") or getattr(conn, "host", None),
        "snowflake_user": getattr(conn, "login", None),
        "snowflake_password": getattr(conn, "password", None),
        "snowflake_database": extra.get("database"),
        "snowflake_warehouse": extra.get("warehouse"),
        "snowflake_role": extra.get("role"),
        "snowflake_schema": getattr(conn, "schema", None),
        # Snowflake-compatible test servers (fakesnow): host/port/protocol in the extras.
        "snowflake_host": extra.get("host"),
        "snowflake_port": extra.get("port"),
        "snowflake_protocol": extra.get("protocol"),
    }
    if extra.get("account") and getattr(conn, "host", None) and not extra.get("host"):
        values["snowflake_host"] = None  # host is the account's URL, not a test server
    return {k: v for k, v in values.items() if v not in (None, "")}


def aws_overrides(conn: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """(Settings fields, credential environment) from an `aws_default` connection."""
    extra = _extras(conn)
    endpoint = extra.get("endpoint_url") or (extra.get("service_config", {}) or {}).get(
        "s3", {}
    ).get("endpoint_url")
    fields = {"aws_endpoint_url": endpoint, "aws_region": extra.get("region_name")}
    creds = {
        "AWS_ACCESS_KEY_ID": getattr(conn, "login", None) or extra.get("aws_access_key_id"),
        "AWS_SECRET_ACCESS_KEY": getattr(conn, "password", None)
        or extra.get("aws_secret_access_key"),
        "AWS_SESSION_TOKEN": extra.get("aws_session_token"),
    }
    return (
        {k: v for k, v in fields.items() if v},
        {k: v for k, v in creds.items() if v},
    )


@dataclass
class TaskSettings:
    """Settings for one task, and the credential environment it runs with."""

    settings: Settings
    env: dict[str, str]
    sources: dict[str, str]

    @contextmanager
    def active(self) -> Iterator[Settings]:
        """Export the credentials (boto3 reads them) for the duration of the task."""
        with exported(self.env):
            yield self.settings


def settings_for_task(get_connection: ConnectionGetter = _airflow_connection) -> TaskSettings:
    """fhirflow Settings, with store/warehouse parameters from Airflow connections when set.

    FHIRFLOW_STORE / FHIRFLOW_WAREHOUSE still choose the kind (a default `aws_default`
    connection must not turn the embedded setup into an S3 one); the connections supply
    the parameters and credentials of that kind.
    """
    base = load_settings()
    overrides: dict[str, Any] = {}
    env: dict[str, str] = {}
    sources = {"store": f"{base.store} (settings)", "warehouse": f"{base.warehouse} (settings)"}
    if base.store == "s3":
        conn = get_connection(AWS_CONN_ID)
        if conn is not None:
            fields, env = aws_overrides(conn)
            overrides.update(fields)
            sources["store"] = f"s3 (connection {AWS_CONN_ID})"
    if base.warehouse == "snowflake":
        conn = get_connection(SNOWFLAKE_CONN_ID)
        if conn is not None:
            overrides.update(snowflake_overrides(conn))
            sources["warehouse"] = f"snowflake (connection {SNOWFLAKE_CONN_ID})"
    settings = load_settings(**overrides) if overrides else base
    return TaskSettings(settings=settings, env=env, sources=sources)


@contextmanager
def task_settings() -> Iterator[Settings]:
    ts = settings_for_task()
    log.info("store: %s; warehouse: %s; FHIRFLOW_HOME: %s",
             ts.sources["store"], ts.sources["warehouse"], ts.settings.home)
    with ts.active() as settings:
        yield settings


@contextmanager
def open_warehouse_for(settings: Settings) -> Iterator[Any]:
    from fhirflow.warehouse import open_warehouse

    warehouse = open_warehouse(settings)
    try:
        yield warehouse
    finally:
        warehouse.close()


# --- generation and upload --------------------------------------------------------------------


def generate_for_run(settings: Settings, ds: DagSettings, *, dag_id: str, run_id: str,
                     logical_date: datetime | None = None) -> dict[str, Any]:
    """Generate this run's patients into the landing folder (real Synthea when SYNTHEA_JAR
    is set, else the built-in simulator)."""
    seed = seed_for_run(ds.generation_seed, dag_id, run_key(logical_date, run_id))
    started = time.perf_counter()
    if settings.synthea_jar is not None:
        from fhirflow.generate import run_synthea

        made = run_synthea(
            settings.landing_dir, jar=settings.synthea_jar, patients=ds.generation_patients,
            seed=seed,
            years_of_history=ds.generation_years, state=ds.generation_state,
        )
    else:
        from fhirflow.generate import generate_patients

        made = generate_patients(
            settings.landing_dir, patients=ds.generation_patients, seed=seed,
            years_of_history=ds.generation_years, state=ds.generation_state,
        )
    summary = {
        "seed": seed,
        "patients": getattr(made, "patients", ds.generation_patients),
        "files": getattr(made, "files", None),
        "bytes": getattr(made, "bytes", None),
        "seconds": round(time.perf_counter() - started, 2),
        "landing": str(settings.landing_dir),
    }
    log.info("generated %(patients)s patients (seed %(seed)s): %(files)s files, "
             "%(bytes)s bytes in %(seconds)ss into %(landing)s", summary)
    return summary


def upload_new_files(settings: Settings) -> dict[str, Any]:
    from fhirflow.store import open_store
    from fhirflow.upload import upload_landing

    store = open_store(settings)
    result = upload_landing(settings.landing_dir, store, prefix=settings.patients_prefix,
                            state_dir=settings.state_dir)
    summary = {"store": store.description, **asdict(result)}
    log.info("uploaded %(uploaded)s files (%(bytes)s bytes) to %(store)s; "
             "%(already_uploaded)s already there; %(landed)s landed", summary)
    return summary


def clean_landing_folder(settings: Settings) -> dict[str, Any]:
    """TTL clean-up: only files older than the TTL *and* held by the object store go."""
    from fhirflow.landing import clean_landing
    from fhirflow.store import open_store
    from fhirflow.upload import is_uploaded

    store = open_store(settings)
    result = clean_landing(settings.landing_dir, settings.landing_ttl_hours,
                           is_uploaded(settings.state_dir, store))
    not_uploaded = sum(1 for _, reason in result.kept if reason == "not uploaded yet")
    summary = {"removed": len(result.removed), "kept": len(result.kept),
               "kept_not_uploaded": not_uploaded}
    log.info("landing clean-up (TTL %sh): removed %s, kept %s (%s not uploaded yet)",
             settings.landing_ttl_hours, summary["removed"], summary["kept"], not_uploaded)
    return summary


# --- the seed's five load steps ---------------------------------------------------------------


def create_tables(settings: Settings) -> str:
    from fhirflow import load

    with open_warehouse_for(settings) as warehouse:
        load.create_tables(warehouse)
        log.info("RAW tables ready in %s", warehouse.description)
        return warehouse.description


def last_watermark(settings: Settings) -> dict[str, str | None]:
    """{'watermark': key or None}: a dict, because a task returning None pushes no XCom."""
    from fhirflow import load

    with open_warehouse_for(settings) as warehouse:
        mark = load.get_last_watermark(warehouse)
    log.info("last committed watermark: %s", mark or "(none: nothing loaded yet)")
    return {"watermark": mark}


def list_new_files(settings: Settings, watermark: str | None, *, limit: int
                   ) -> dict[str, Any]:
    """New object keys after the watermark, capped at `limit` (the next run takes the rest)."""
    from fhirflow import load
    from fhirflow.store import open_store

    store = open_store(settings)
    with open_warehouse_for(settings) as warehouse:
        pending = load.list_new_files(store, warehouse, prefix=settings.patients_prefix,
                                      watermark=watermark)
    taken = pending[:limit]
    log.info("%s new files in %s under %s; this run takes %s",
             len(pending), store.description, settings.patients_prefix, len(taken))
    return {"files": [[o.key, o.size] for o in taken], "remaining": len(pending) - len(taken)}


def load_listed_files(settings: Settings, files: list[list[Any]]) -> dict[str, Any]:
    """Load the listed files in batches; each batch commits its rows and watermark together.

    Keys RAW already holds (a retry after some batches committed) are skipped, so a retry
    never loads a file twice.
    """
    from fhirflow import load
    from fhirflow.store import StoredObject, open_store

    store = open_store(settings)
    objects = [StoredObject(key=str(k), size=int(s)) for k, s in files]
    loaded = failed = nbytes = 0
    batches = 0
    watermark = None
    started = time.perf_counter()
    with open_warehouse_for(settings) as warehouse:
        load.create_tables(warehouse)
        known = warehouse.known_keys([o.key for o in objects]) if objects else set()
        todo = [o for o in objects if o.key not in known]
        if known:
            log.info("%s files already in RAW (an earlier try loaded them); skipped", len(known))
        size = settings.load_batch_size
        for i in range(0, len(todo), size):
            batch = load.load_batch(store, warehouse, todo[i : i + size],
                                    max_file_bytes=int(settings.max_file_mb * 1024 * 1024))
            batches += 1
            loaded += batch.files_loaded
            failed += batch.files_failed
            nbytes += batch.bytes_loaded
            watermark = max(filter(None, [watermark, batch.watermark]), default=None)
            log.info("batch %s (%s): %s loaded, %s quarantined, watermark %s", batches,
                     batch.load_id, batch.files_loaded, batch.files_failed, batch.watermark)
            for error in batch.errors:
                log.warning("quarantined %s: %s", error.key, error.reason)
    summary = {"batches": batches, "files_loaded": loaded, "files_failed": failed,
               "bytes_loaded": nbytes, "watermark": watermark,
               "seconds": round(time.perf_counter() - started, 2)}
    log.info("load: %(files_loaded)s files in %(batches)s batches, %(files_failed)s "
             "quarantined in RAW.LOAD_ERRORS, %(seconds)ss", summary)
    return summary


def verify_watermark(settings: Settings, expected: str | None) -> dict[str, Any]:
    """Report the committed watermark and check it covers what this run loaded.

    The watermark is written by each batch in the same transaction as its rows, so there
    is nothing left to write here; a committed watermark below what the load reported
    would mean a lost commit, and fails the task.
    """
    with open_warehouse_for(settings) as warehouse:
        committed = warehouse.last_watermark()
        recent = [r.as_dict() for r in warehouse.recent_loads(3)]
        counts = warehouse.raw_counts()
    if expected and (committed is None or committed < expected):
        raise FhirflowError(
            f"committed watermark {committed!r} is behind this run's last loaded key "
            f"{expected!r}; inspect RAW.LOAD_WATERMARK"
        )
    log.info("committed watermark: %s; RAW holds %s bundles, %s quarantined files, %s loads",
             committed, counts.get("bundles"), counts.get("errors"), counts.get("loads"))
    for row in recent:
        log.info("recent load %(load_id)s: %(status)s, %(files_loaded)s loaded, "
                 "%(files_failed)s failed, watermark %(watermark)s", row)
    return {"watermark": committed, **counts}


# --- dbt --------------------------------------------------------------------------------------


def check_dbt(settings: Settings) -> dict[str, str]:
    """dbt and the adapter of the configured target are installed; the project is there."""
    from importlib.metadata import PackageNotFoundError, version

    from fhirflow.transform import dbt_project_dir

    adapter = "dbt-snowflake" if settings.warehouse == "snowflake" else "dbt-duckdb"
    found: dict[str, str] = {}
    for package in ("dbt-core", adapter):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            raise FhirflowError(f"{package} is not installed in the Airflow environment; "
                                "install fhirflow with its dependencies") from None
    project = dbt_project_dir(settings)
    for needed in ("dbt_project.yml", "profiles.yml"):
        if not (project / needed).is_file():
            raise FhirflowError(f"{project / needed} is missing; mount the dbt project there "
                                "or set FHIRFLOW_DBT_PROJECT_DIR")
    found["project"] = str(project)
    found["target"] = settings.resolved_dbt_target
    log.info("dbt ready: %s", found)
    return found


def invoke_dbt(settings: Settings, command: str, *, target_path: Path | None = None) -> None:
    """A dbt command with no run results to summarise (deps, debug, docs generate)."""
    from fhirflow.transform import dbt_args, invoke

    args = ["--no-use-colors", *dbt_args(settings, command)]
    i = args.index("--target-path")
    if command.split()[0] in {"deps", "debug"}:
        del args[i : i + 2]  # neither subcommand takes --target-path
    elif target_path is not None:
        args[i + 1] = str(target_path)
    outcome = invoke(settings, args, command)
    if not outcome.success:
        raise FhirflowError(f"dbt {command} failed; see the task log above")
    log.info("dbt %s succeeded", command)


def run_dbt_layer(settings: Settings, layer: str) -> dict[str, Any]:
    """Run one dbt layer (or, for `test`, every test).

    Model and test failures are left to the parse task that follows (it logs them in
    detail, then fails the run); only a dbt that cannot run at all fails here.
    """
    from fhirflow.transform import run_dbt

    if layer == "test":
        command, select, extra = "test", None, None
    else:
        command, select = DBT_LAYERS[layer]
        extra = DBT_BUILD_WITHOUT_TESTS if command == "build" else None
    result = run_dbt(settings, command, select=select, extra=extra)
    log.info("dbt %s --select %s finished in %.1fs: %s", command, select or "(all)",
             result.seconds, "success" if result.success else "with failures")
    return {"command": command, "select": select, "success": result.success,
            "seconds": round(result.seconds, 2), "target_path": str(result.target_path)}


def parse_dbt_results(target_path: Path | str, layer: str, *, tests: bool = False
                      ) -> dict[str, Any]:
    """Log per-layer successes, failures, skips and seconds per model from run_results.json,
    and fail when a model (or, for `tests`, a test) failed."""
    from fhirflow.transform import summarise_run_results

    result = summarise_run_results(Path(target_path))
    report: dict[str, Any] = {}
    for name, s in result.layers.items():
        report[name] = {
            "models_ok": s.models_ok, "models_failed": s.models_failed,
            "models_skipped": s.models_skipped, "tests_passed": s.tests_passed,
            "tests_failed": s.tests_failed, "tests_warned": s.tests_warned,
            "seconds": round(s.seconds, 2),
        }
        if tests:
            log.info("[%s] tests: %s passed, %s failed, %s warned (%.1fs)", name,
                     s.tests_passed, s.tests_failed, s.tests_warned, s.seconds)
        else:
            log.info("[%s] models: %s succeeded, %s failed, %s skipped (%.1fs)", name,
                     s.models_ok, s.models_failed, s.models_skipped, s.seconds)
        for model, seconds in sorted(s.model_seconds.items(), key=lambda kv: -kv[1]):
            log.info("[%s]   %-40s %7.2fs", name, model, seconds)
    if not result.layers:
        log.warning("dbt selected nothing for %s", layer)
    failures = result.failures
    for failure in failures:
        log.error("%s", failure)
    if failures:
        raise FhirflowError(f"dbt {layer}: {len(failures)} failed: {'; '.join(failures[:5])}")
    return {"layer": layer, "layers": report}


def docs_dir(settings: Settings, ds: DagSettings) -> Path:
    from fhirflow.transform import dbt_project_dir

    return ds.dbt_docs_dir or dbt_project_dir(settings) / "target"


def generate_docs(settings: Settings, ds: DagSettings) -> str:
    target = docs_dir(settings, ds)
    invoke_dbt(settings, "docs generate", target_path=target)
    index = target / "index.html"
    if not index.is_file():
        raise FhirflowError(f"dbt docs generate wrote no {index}")
    log.info("dbt docs written to %s (serve: dbt docs serve --target-path %s)", index, target)
    return str(index)


# --- failure callback -------------------------------------------------------------------------


def on_task_failure(context: Mapping[str, Any]) -> None:
    """Log one line per failed task; e-mail it when FHIRFLOW_ALERT_EMAIL is set."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = getattr(ti, "run_id", context.get("run_id", "?"))
    try_number = getattr(ti, "try_number", "?")
    exc = context.get("exception")
    summary = f"{dag_id}.{task_id} failed (run {run_id}, try {try_number}): {exc}"
    log.error("%s", summary)
    try:
        ds = dag_settings()
    except FhirflowError:
        return
    if not ds.alert_recipients:
        return
    try:
        _send_alert_email(ds.alert_recipients, ds.smtp_conn_id,
                          f"[fhirflow] {dag_id}.{task_id} failed", f"<p>{summary}</p>", context)
    except Exception:  # noqa: BLE001 - an alert that cannot be sent must not mask the failure
        log.exception("could not send the failure e-mail to %s", ds.alert_recipients)


def _send_alert_email(to: list[str], smtp_conn_id: str, subject: str, html: str,
                      context: Mapping[str, Any]) -> None:
    """Through the SMTP provider's notifier and the `smtp_default` connection."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    SmtpNotifier(to=to, smtp_conn_id=smtp_conn_id, subject=subject,
                 html_content=html).notify(dict(context))
