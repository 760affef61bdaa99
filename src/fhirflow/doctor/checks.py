"""The checks of `fhirflow doctor` that look at the deployment as it is: settings, store,
warehouse, role privileges, the Snowflake stage and `dbt debug`. Each returns one
CheckResult; none raises for what it finds (a failure is a result, with what to do)."""

from __future__ import annotations

import contextlib
import io
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fhirflow.doctor import CheckResult
from fhirflow.errors import FhirflowError, first_line

if TYPE_CHECKING:
    from fhirflow.config import Settings
    from fhirflow.warehouse import Warehouse

# The layers dbt builds into (and the seeds' schema), besides RAW.
DBT_SCHEMAS = ("staging", "intermediate", "marts", "reference")
README = "README, Moving to Snowflake"


def _store_text(settings: Settings) -> str:
    if settings.store == "local":
        return f"local store {settings.lake_dir}"
    where = f" at {settings.aws_endpoint_url}" if settings.aws_endpoint_url else ""
    return f"S3 store s3://{settings.aws_s3_bucket}/{settings.aws_s3_prefix}/{where}"


def check_settings(settings: Settings) -> CheckResult:
    """The settings resolve into something usable: credentials, stage, store and mode."""
    store = _store_text(settings)
    if settings.warehouse == "duckdb":
        return CheckResult("settings", "pass", f"DuckDB {settings.duckdb_path}; {store}; dbt "
                                               f"target {settings.resolved_dbt_target}")
    from fhirflow.warehouse.snowflake import auth
    from fhirflow.warehouse.snowflake.s3_stage import s3compat_endpoint, stage_sql, stage_url

    if not settings.snowflake_account or not settings.snowflake_user:
        return CheckResult("settings", "fail", "SNOWFLAKE_ACCOUNT or SNOWFLAKE_USER is unset",
                           f"set both ({README})")
    try:
        method = auth.resolve(settings).describe()
    except FhirflowError as exc:
        return CheckResult("settings", "fail", str(exc), f"set one sign-in method ({README})")
    mode = settings.snowflake_load_mode
    if mode == "copy":
        if settings.store != "s3":
            return CheckResult("settings", "fail", "mode copy reads the files from an S3 stage "
                               "but FHIRFLOW_STORE is local",
                               "set FHIRFLOW_STORE=s3, or FHIRFLOW_SNOWFLAKE_LOAD_MODE=insert")
        try:
            secret = settings.aws_secret_access_key
            stage_sql(settings.snowflake_stage,
                      stage_url(settings.aws_s3_bucket, settings.aws_s3_prefix),
                      storage_integration=settings.snowflake_storage_integration,
                      aws_key_id=settings.aws_access_key_id,
                      aws_secret_key=secret.get_secret_value() if secret else None,
                      endpoint=s3compat_endpoint(settings.aws_endpoint_url))
        except FhirflowError as exc:
            return CheckResult("settings", "fail", str(exc), f"give the stage access ({README})")
    return CheckResult(
        "settings", "pass",
        f"Snowflake {settings.snowflake_account}/{settings.snowflake_database} as "
        f"{settings.snowflake_user} ({method}), role {settings.snowflake_role}, warehouse "
        f"{settings.snowflake_warehouse}, RAW schema {settings.snowflake_schema}, load mode "
        f"{mode}; {store}; dbt target {settings.resolved_dbt_target}")


def check_store(settings: Settings) -> CheckResult:
    """Reachable and writable: a probe object written, read back and compared."""
    from fhirflow.store import open_store

    prefix = f"{settings.aws_s3_prefix}/_doctor" if settings.aws_s3_prefix else "_doctor"
    key = f"{prefix}/probe-{secrets.token_hex(4)}.json"
    fix = ("check AWS_S3_BUCKET, AWS_ENDPOINT_URL and the AWS credentials (s3:PutObject, "
           "s3:GetObject, s3:ListBucket on the prefix)" if settings.store == "s3"
           else "make FHIRFLOW_HOME writable")
    probe = b'{"resourceType": "Bundle", "type": "batch", "entry": []}'
    try:
        store = open_store(settings)
        store.check()
        with tempfile.TemporaryDirectory(prefix="fhirflow-doctor-") as tmp:
            sent, back = Path(tmp) / "sent.json", Path(tmp) / "back.json"
            sent.write_bytes(probe)
            store.put_file(key, sent)
            store.fetch_to(key, back)
            if back.read_bytes() != probe or not store.exists(key):
                return CheckResult("store", "fail", f"{key} read back differs", fix)
        local = store.local_path(key)
        if local is not None:
            local.unlink(missing_ok=True)
    except FhirflowError as exc:
        return CheckResult("store", "fail", first_line(exc), fix)
    left = "" if local is not None else f" (the probe stays at {key}: loads never list it)"
    return CheckResult("store", "pass", f"{store.description}: wrote and read back {key}{left}")


@contextlib.contextmanager
def opened_warehouse(settings: Settings) -> Iterator[tuple[Warehouse | None, CheckResult]]:
    """The warehouse, reached, and the result saying so; (None, failure) if it cannot be."""
    from fhirflow.warehouse import open_warehouse

    try:
        warehouse = open_warehouse(settings)
    except FhirflowError as exc:
        fix = ("check the SNOWFLAKE_* variables, the network and the user's network policy"
               if settings.warehouse == "snowflake"
               else "wait for the other fhirflow or dbt process, or use another FHIRFLOW_HOME")
        yield None, CheckResult("warehouse", "fail", first_line(exc), fix)
        return
    try:
        cur = warehouse.cursor()
        if settings.warehouse == "snowflake":
            version, role = cur.execute("select current_version(), current_role()").fetchone()
            found = f"{warehouse.description}, Snowflake {version}, role {role}"
        else:
            (version,) = cur.execute("select version()").fetchone()
            found = f"DuckDB {version} at {settings.duckdb_path}"
        yield warehouse, CheckResult("warehouse", "pass", found)
    finally:
        warehouse.close()


def _schemas(settings: Settings) -> list[str]:
    raw = settings.snowflake_schema if settings.warehouse == "snowflake" else "raw"
    return [raw, *(settings.dbt_schema_prefix + s for s in DBT_SCHEMAS)]


def _existing(cur: Any) -> set[str]:
    rows = cur.execute("select schema_name from information_schema.schemata").fetchall()
    return {str(r[0]).upper() for r in rows}


@dataclass(frozen=True)
class _Probe:
    """A scratch schema or table the role must be able to create (and drop again)."""

    kind: str  # "schema" or "table"
    name: str
    checks: str  # what a pass says the role may create
    label: str  # what a failure starts with
    grant: str  # the fix on Snowflake

    def run(self, cur: Any) -> str | None:
        """Create and drop it; the first line of the error if the role may not."""
        columns = " (x integer)" if self.kind == "table" else ""
        try:
            cur.execute(f"create {self.kind} {self.name}{columns}")
        except Exception as exc:  # noqa: BLE001 - any driver error means the role may not
            return first_line(exc)
        with contextlib.suppress(Exception):
            cur.execute(f"drop {self.kind} {self.name}")
        return None


def check_privileges(settings: Settings, warehouse: Warehouse) -> CheckResult:
    """The role can create tables in RAW and the dbt schemas that exist, and schemas where
    they do not yet (the first load and build create them)."""
    cur = warehouse.cursor()
    role = settings.snowflake_role
    database = settings.snowflake_database
    try:
        existing = _existing(cur)
    except Exception as exc:  # noqa: BLE001 - any driver error: cannot even list schemas
        return CheckResult("privileges", "fail", f"cannot list schemas: {first_line(exc)}",
                           f"grant usage on database {database} to role {role}")
    scratch = f"FHIRFLOW_DOCTOR_PROBE_{secrets.token_hex(3).upper()}"
    missing = [s for s in _schemas(settings) if s.upper() not in existing]
    probes: list[_Probe] = []
    if missing:
        probes.append(_Probe("schema", scratch, f"the schemas {', '.join(missing)} (not there yet)",
                             "creating a schema",
                             f"grant create schema on database {database} to role {role}"))
    probes += [_Probe("table", f"{schema}.{scratch}", f"tables in {schema}", schema,
                      f"grant create table on schema {database}.{schema} to role {role}")
               for schema in _schemas(settings) if schema not in missing]
    problems: list[tuple[str, str]] = []
    for probe in probes:
        error = probe.run(cur)
        if error:
            problems.append((f"{probe.label}: {error}", probe.grant))
    if problems:
        fix = ("; ".join(sorted({g for _e, g in problems})) if settings.warehouse == "snowflake"
               else "make the DuckDB file writable")
        return CheckResult("privileges", "fail", "; ".join(e for e, _g in problems), fix)
    return CheckResult("privileges", "pass", "may create " + ", ".join(p.checks for p in probes))


def check_stage(settings: Settings, warehouse: Warehouse) -> CheckResult:
    """In mode copy, the stage (if the first load made it already) points at the bucket and
    prefix the settings name."""
    if settings.warehouse != "snowflake":
        return CheckResult("stage", "skip", "DuckDB reads the files itself")
    if settings.snowflake_load_mode != "copy":
        return CheckResult("stage", "skip", "mode insert sends the files' text; no stage")
    from fhirflow.warehouse.snowflake.s3_stage import s3compat_endpoint, show_stage_sql, stage_url

    url = stage_url(settings.aws_s3_bucket, settings.aws_s3_prefix)
    if s3compat_endpoint(settings.aws_endpoint_url):
        url = "s3compat://" + url.removeprefix("s3://")
    name = f"{settings.snowflake_schema}.{settings.snowflake_stage}"
    cur = warehouse.cursor()
    try:
        cur.execute(show_stage_sql(settings.snowflake_database, settings.snowflake_stage,
                                   schema=settings.snowflake_schema))
        columns = [d[0].lower() for d in cur.description or []]
        rows = [dict(zip(columns, r, strict=False)) for r in cur.fetchall()]
    except Exception as exc:  # noqa: BLE001 - any driver error: the stage cannot be read
        return CheckResult("stage", "fail", f"cannot show stage {name}: {first_line(exc)}",
                           f"grant usage on schema {settings.snowflake_database}."
                           f"{settings.snowflake_schema} to role {settings.snowflake_role}")
    found = [r for r in rows if str(r.get("name", "")).upper() == settings.snowflake_stage]
    if not found:
        return CheckResult("stage", "pass", f"{name} not created yet: the first load creates "
                                            f"it on {url} (the round trip makes one)")
    actual = str(found[0].get("url") or "").strip('[]"')
    if actual.rstrip("/") != url.rstrip("/"):
        return CheckResult("stage", "fail", f"{name} points at {actual}, the settings at {url}",
                           "run `fhirflow load`: it re-creates the stage from the settings")
    return CheckResult("stage", "pass", f"{name} points at {url}")


def check_dbt_debug(settings: Settings) -> CheckResult:
    """`dbt debug`: the project parses, the profile renders, the connection opens."""
    from fhirflow.transform import dbt_args, invoke

    args = ["--quiet", "--no-use-colors", *dbt_args(settings, "debug")]
    i = args.index("--target-path")
    del args[i : i + 2]  # dbt debug takes no --target-path
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured):  # keeps --json output one document
            outcome = invoke(settings, args, "debug")
    except FhirflowError as exc:
        return CheckResult("dbt debug", "fail", first_line(exc),
                           "check dbt/profiles.yml and the dbt project")
    if not outcome.success:
        lines = [ln.strip() for ln in captured.getvalue().splitlines() if ln.strip()]
        why = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "")
        return CheckResult("dbt debug", "fail", f"dbt debug failed: {why[:200]}",
                           "run `dbt debug` in dbt/ with the same variables for the details")
    return CheckResult("dbt debug", "pass", f"target {settings.resolved_dbt_target}: "
                                            "project, profile and connection OK")
