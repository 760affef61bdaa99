"""ViewDefinition -> one SQL SELECT for DuckDB or Snowflake: the package's entry point."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhirflow.views.columns import OutputColumn
from fhirflow.views.definition import InvalidViewError, View, parse_view
from fhirflow.views.dialects import dialect_for
from fhirflow.views.expressions import ExprCompiler
from fhirflow.views.fhir_model import load_model
from fhirflow.views.plan import Planner
from fhirflow.views.render import Source, render, resource_sql

DIALECTS = ("duckdb", "snowflake")
_NUMERIC_TYPES = {"bigint", "integer", "double", "float"}


@dataclass(frozen=True)
class CompiledView:
    view: View
    dialect: str
    sql: str
    columns: tuple[OutputColumn, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def load_view_file(path: Path) -> Any:
    """A ViewDefinition file's JSON; InvalidViewError for a file that is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidViewError("", f"{path}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidViewError("", f"{path}: not JSON ({exc})") from None


def compile_view(doc: Any, dialect: str = "duckdb", source: Source | None = None) -> CompiledView:
    """Compile a ViewDefinition (parsed JSON or a checked View).

    Raises InvalidViewError, naming the offending element, for anything that cannot run.
    """
    if dialect not in DIALECTS:
        raise InvalidViewError("", f"unknown dialect {dialect!r}: {' or '.join(DIALECTS)}")
    view = doc if isinstance(doc, View) else parse_view(doc)
    source = source or Source("resources")
    d = dialect_for(dialect)
    compiler = ExprCompiler(d, load_model(), view.resource, view.constants)
    plan = Planner(compiler, view, resource_sql(d, source)).build()
    names = view.column_names
    outputs = []
    for column in view.columns:
        entries = plan.entries[column.name]
        types = {e.sql_type for e in entries}
        if len(types) > 1:
            if not types <= _NUMERIC_TYPES:
                odd = next(e for e in entries if e.sql_type != entries[0].sql_type)
                raise InvalidViewError(odd.where, f"column {column.name!r} is {odd.sql_type} here "
                                       f"but {entries[0].sql_type} in the first unionAll branch")
            wide = "double" if dialect == "duckdb" else "float"
            for entry in entries:
                entry.sql = f"cast({entry.sql} as {wide})"
            types = {wide}
        outputs.append(OutputColumn(column.name, types.pop(), entries[0].kind,
                                    column.collection, column.type, column.description))
    sql = render(d, plan, source, view.resource, names, compiler.shared)
    return CompiledView(view, dialect, sql, tuple(outputs))

