"""The Snowflake session: connecting from Settings (the sign-in method from `auth.py`), running
statements with one-line errors, transactions, and keeping secrets (the stage statement's AWS
keys) out of logs and messages."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fhirflow.errors import ConfigError, FhirflowError, first_line
from fhirflow.warehouse.snowflake import auth

if TYPE_CHECKING:
    from fhirflow.config import Settings


def connect_kwargs(settings: Settings, *, schema: str, query_tag: str | None = None
                   ) -> dict[str, Any]:
    """snowflake.connector.connect() arguments from Settings (secrets included: never log).

    No `network_timeout`: the connector turns it into a timer that cancels any statement
    running longer (error 000604, "SQL execution was cancelled by the client due to a
    timeout"), so a large COPY, one waiting for a warehouse to resume, or an anti-join insert
    over a big RAW would fail every retry alike. Statements run until they finish or hit the
    account's STATEMENT_TIMEOUT_IN_SECONDS; only the login is bounded.
    """
    if not settings.snowflake_account or not settings.snowflake_user:
        raise ConfigError(
            "SNOWFLAKE_ACCOUNT and SNOWFLAKE_USER must be set to use Snowflake"
        )
    kwargs: dict[str, Any] = {
        "account": settings.snowflake_account,
        "user": settings.snowflake_user,
        **auth.resolve(settings).connector_kwargs(),
        "database": settings.snowflake_database,
        "warehouse": settings.snowflake_warehouse,
        "schema": schema,
        "role": settings.snowflake_role,
        "paramstyle": "qmark",
        "login_timeout": 30,
        "session_parameters": {
            "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False,
            "QUERY_TAG": query_tag or settings.snowflake_query_tag,
        },
    }
    for name in ("host", "port", "protocol"):
        value = getattr(settings, f"snowflake_{name}")
        if value is not None:
            kwargs[name] = value
    return kwargs


def connect(settings: Settings, *, schema: str, query_tag: str | None = None) -> Any:
    """A snowflake-connector-python connection (qmark binding), or one FhirflowError line."""
    import snowflake.connector

    kwargs = connect_kwargs(settings, schema=schema, query_tag=query_tag)
    method = auth.resolve(settings).describe()
    try:
        return snowflake.connector.connect(**kwargs)
    except snowflake.connector.errors.Error as exc:
        raise FhirflowError(
            f"cannot connect to Snowflake account {settings.snowflake_account!r} as "
            f"{settings.snowflake_user!r} ({method}): {first_line(exc)}; check the SNOWFLAKE_* "
            "variables"
        ) from None


@contextmanager
def quiet_connector() -> Iterator[None]:
    """The connector logs statement text at INFO; keep a statement with keys out of logs."""
    logger = logging.getLogger("snowflake.connector")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def redacted(message: str, statement: str) -> str:
    """The message without any string literal of the statement (keys, in stage DDL), which a
    compilation error can quote back."""
    for literal in re.findall(r"'((?:[^'\\]|\\.)*)'", statement):
        if len(literal) >= 8:
            message = message.replace(literal, "***")
    return message


class Client:
    """Statements on one connection, each error one line that names the statement."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        # QUERY_TAG of the statements run now (None: the session's own, set at connect).
        self.query_tag: str | None = None

    def cursor(self) -> Any:
        return self.connection.cursor()

    def _tagged(self) -> dict[str, Any]:
        # A statement-level QUERY_TAG, as Snowpark sets it: no ALTER SESSION round trip, and
        # nothing left behind on the session once the block is over.
        return {"_statement_params": {"QUERY_TAG": self.query_tag}} if self.query_tag else {}

    @contextmanager
    def tagged(self, tag: str) -> Iterator[None]:
        """Statements run inside the block carry QUERY_TAG `tag` (QUERY_HISTORY shows it)."""
        saved, self.query_tag = self.query_tag, tag
        try:
            yield
        finally:
            self.query_tag = saved

    def execute(self, sql: str, params: Any = None) -> Any:
        import snowflake.connector

        cur = self.connection.cursor()
        try:
            cur.execute(sql, params, **self._tagged())
        except snowflake.connector.errors.Error as exc:
            first = " ".join(sql.split())[:60]
            raise FhirflowError(f"Snowflake rejected `{first}...`: {first_line(exc)}") from None
        return cur

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.connection.cursor().executemany(sql, rows, **self._tagged())

    def execute_secret(self, sql: str, failure: str) -> None:
        """Run a statement that holds secrets: not logged, and its literals cut from the
        error, which reads `<failure>: <Snowflake's message>`."""
        with quiet_connector():
            try:
                self.connection.cursor().execute(sql, **self._tagged())
            except Exception as exc:  # noqa: BLE001 - any error may quote the statement
                raise FhirflowError(f"{failure}: {redacted(first_line(exc), sql)}") from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT; ROLLBACK on any error, which is re-raised as it was."""
        self.execute("begin")
        try:
            yield
        except BaseException:
            # A rollback that fails too (the session is gone) must not hide the first error;
            # Snowflake rolls back an open transaction when its session ends.
            with contextlib.suppress(Exception):
                self.connection.cursor().execute("rollback", **self._tagged())
            raise
        self.execute("commit")

    def close(self) -> None:
        self.connection.close()
