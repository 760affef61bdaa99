"""fhirflow Settings for an Airflow task, with store and warehouse parameters taken from the
Airflow connections `aws_default` / `snowflake_default` when those exist.

Each connection maps to Settings declaratively, as Cosmos maps connections to dbt profiles:
a field map (target -> where in the connection its value is; the first non-empty of the
places wins) and the list of secret fields, whose values are never logged. A lower-case
target is a Settings field; an upper-case one an environment variable exported while the
task runs, for libraries that read their credentials from the environment (boto3).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fhirflow.config import Settings, exported, load_settings
from fhirflow.orchestration import AWS_CONN_ID, SNOWFLAKE_CONN_ID

log = logging.getLogger(__name__)

ConnectionGetter = Callable[[str], Any]


@dataclass(frozen=True)
class ConnectionMapping:
    conn_id: str
    setting: str  # the Settings field that chooses the backend ...
    kind: str  # ... and the value for which this connection supplies it
    fields: Mapping[str, tuple[str, ...]]
    secret_fields: frozenset[str]
    # when the connection sets the first target, the second's value goes to the third: the
    # Snowflake provider's convention that with a key file the password is its passphrase
    moved_when: tuple[tuple[str, str, str], ...] = ()

    def values(self, conn: Any) -> dict[str, Any]:
        """Target -> value, for the targets the connection sets."""
        found = {}
        for target, places in self.fields.items():
            value = next((v for v in (_lookup(conn, p) for p in places)
                          if v not in (None, "")), None)
            if value is not None:
                found[target] = value
        for present, source, target in self.moved_when:
            if present in found and source in found:
                found[target] = found.pop(source)
        return found

    def describe(self, values: Mapping[str, Any]) -> str:
        """For the task log: what the connection supplied, secrets masked."""
        shown = [f"{k}={'***' if k in self.secret_fields else v}" for k, v in values.items()]
        return f"connection {self.conn_id} supplies {', '.join(shown) or 'nothing'}"


AWS = ConnectionMapping(
    conn_id=AWS_CONN_ID,
    setting="store",
    kind="s3",
    fields={
        "aws_endpoint_url": ("extra.endpoint_url", "extra.service_config.s3.endpoint_url"),
        "aws_region": ("extra.region_name",),
        "AWS_ACCESS_KEY_ID": ("login", "extra.aws_access_key_id"),
        "AWS_SECRET_ACCESS_KEY": ("password", "extra.aws_secret_access_key"),
        "AWS_SESSION_TOKEN": ("extra.aws_session_token",),
    },
    secret_fields=frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}),
)

SNOWFLAKE = ConnectionMapping(
    conn_id=SNOWFLAKE_CONN_ID,
    setting="warehouse",
    kind="snowflake",
    fields={
        "snowflake_account": ("extra.account", "host"),
        "snowflake_user": ("login",),
        "snowflake_password": ("password",),
        "snowflake_private_key_path": ("extra.private_key_file",),
        "snowflake_authenticator": ("extra.authenticator",),
        "snowflake_token": ("extra.token",),
        "snowflake_database": ("extra.database",),
        "snowflake_warehouse": ("extra.warehouse",),
        "snowflake_role": ("extra.role",),
        "snowflake_schema": ("schema",),
        # Snowflake-compatible test servers (fakesnow) only; a connection's own `host` is
        # the account's URL, never one of these.
        "snowflake_host": ("extra.host",),
        "snowflake_port": ("extra.port",),
        "snowflake_protocol": ("extra.protocol",),
    },
    secret_fields=frozenset({"snowflake_password", "snowflake_private_key_passphrase",
                             "snowflake_token"}),
    moved_when=(("snowflake_private_key_path", "snowflake_password",
                 "snowflake_private_key_passphrase"),),
)

MAPPINGS = (AWS, SNOWFLAKE)


def _extras(conn: Any) -> dict[str, Any]:
    extra = getattr(conn, "extra_dejson", None)
    if extra is None:
        raw = getattr(conn, "extra", None) or "{}"
        extra = json.loads(raw) if isinstance(raw, str) else dict(raw)
    return dict(extra or {})


def _lookup(conn: Any, place: str) -> Any:
    """`login` -> conn.login; `extra.a.b` -> conn's extras["a"]["b"]."""
    head, *path = place.split(".")
    if head != "extra":
        return getattr(conn, head, None)
    value: Any = _extras(conn)
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


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
    the parameters and credentials of that kind, and anything they leave out comes from
    the environment as without Airflow.
    """
    base = load_settings()
    overrides: dict[str, Any] = {}
    env: dict[str, str] = {}
    sources = {"store": f"{base.store} (settings)", "warehouse": f"{base.warehouse} (settings)"}
    for mapping in MAPPINGS:
        if getattr(base, mapping.setting) != mapping.kind:
            continue
        conn = get_connection(mapping.conn_id)
        if conn is None:
            continue
        values = mapping.values(conn)
        overrides.update({k: v for k, v in values.items() if k.islower()})
        env.update({k: str(v) for k, v in values.items() if k.isupper()})
        sources[mapping.setting] = f"{mapping.kind} ({mapping.describe(values)})"
    if not overrides and not env:
        return TaskSettings(settings=base, env=env, sources=sources)
    # Read with the credentials exported, so Settings' own AWS key fields (the Snowflake
    # stage uses them) are the connection's too.
    with exported(env):
        settings = load_settings(**overrides)
    return TaskSettings(settings=settings, env=env, sources=sources)


@contextmanager
def task_settings() -> Iterator[Settings]:
    """The settings of the running task, its credentials exported while it runs."""
    ts = settings_for_task()
    log.info("store: %s; warehouse: %s; FHIRFLOW_HOME: %s",
             ts.sources["store"], ts.sources["warehouse"], ts.settings.home)
    with ts.active() as settings:
        yield settings
