"""A plan -> one SELECT statement, per dialect.

DuckDB: a chain of subqueries, one unnest in the select list per step (an unnest in a
lateral join is correlated and far slower on DuckDB). Snowflake: one FROM clause with a
LATERAL FLATTEN per step, the form Snowflake documents for semi-structured data.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhirflow.views.dialects import Dialect
from fhirflow.views.plan import Plan, UnionStep, column_sql


@dataclass(frozen=True)
class Source:
    """The table of resources a view reads: one row per resource.

    `type_column` holds the resource type when the table has one (the warehouse's
    base_fhir_entries does); otherwise the type is read from the resource itself.
    """

    table: str
    resource_column: str = "resource"
    type_column: str | None = "resource_type"
    # Columns of the table carried to every row of the view, as (column, output name):
    # the dbt models keep each row's resource id and load time for their incremental runs.
    passthrough: tuple[tuple[str, str], ...] = ()


def resource_sql(dialect: Dialect, source: Source) -> str:
    return "_resource" if dialect.name == "duckdb" else f"r.{source.resource_column}"


def _type_filter(dialect: Dialect, source: Source, resource_type: str, alias: str) -> str:
    wanted = dialect.string(resource_type)
    if source.type_column:
        return f"{alias}{source.type_column} = {wanted}"
    column = f"{alias}{source.resource_column}"
    if dialect.name == "duckdb":
        return f"json_extract_string({column}, '$.resourceType') = {wanted}"
    return f"{column}:resourceType::varchar = {wanted}"


def render(dialect: Dialect, plan: Plan, source: Source, resource_type: str,
           names: list[str], shared: set[str] | None = None) -> str:
    columns = [f"{column_sql(plan.entries[name])} as {dialect.quote(name)}" for name in names]
    if dialect.name == "duckdb":
        columns, hoisted = _hoist(columns, shared or set())
        return _duckdb(dialect, plan, source, resource_type, columns, hoisted)
    return _snowflake(dialect, plan, source, resource_type, columns)


def _hoist(columns: list[str], shared: set[str]) -> tuple[list[str], list[str]]:
    """Compute once what several columns repeat: DuckDB would parse the JSON each time.

    Only filtered collections computed on the row qualify (they refer to no lambda
    parameter), and none that can raise: hoisted, they run for every row.
    """
    defined: list[tuple[str, str]] = []  # (name, sql), longest first
    for sql in sorted(shared, key=len, reverse=True):
        texts = columns + [text for _name, text in defined]
        if "error(" in sql or sum(text.count(sql) for text in texts) < 2:
            continue
        name = f"_h{len(defined) + 1}"
        columns = [col.replace(sql, name) for col in columns]
        defined = [(n, text.replace(sql, name)) for n, text in defined] + [(name, sql)]
    # A shorter one can only sit inside a longer one: compute the shortest first.
    return columns, [f"{text} as {name}" for name, text in reversed(defined)]


def _duckdb(d: Dialect, plan: Plan, source: Source, resource_type: str,
            columns: list[str], hoisted: list[str]) -> str:
    where = [_type_filter(d, source, resource_type, ""), *plan.filters]
    carried = "".join(f", {column} as {name}" for column, name in source.passthrough)
    sql = (f"select {source.resource_column} as _resource{carried} from {source.table} "
           f"where {' and '.join(where)}")
    for n, step in enumerate(plan.steps):
        alias = f"s{n}"
        if isinstance(step, UnionStep):
            sql = f"select *, unnest(range({step.branches})) as _u{step.id} from ({sql}) as {alias}"
        else:
            items = f"_l{step.id}"
            # An inactive step's collection is never read: do not compute it.
            listed = f"case when {step.gate} then {step.items} end" if step.gate else step.items
            sql = f"select *, {listed} as {items} from ({sql}) as {alias}a"
            if step.outer:
                items = f"case when len({items}) > 0 then {items} else [null]::json[] end"
            sql = (f"select * exclude (_l{step.id}), unnest({items}) as _v{step.id}, "
                   f"unnest(range(len({items}))) as _i{step.id} from ({sql}) as {alias}")
        if plan.after.get(step.id):
            sql = f"select * from ({sql}) as {alias}w where {' and '.join(plan.after[step.id])}"
    for n, definition in enumerate(hoisted):
        sql = f"select *, {definition} from ({sql}) as shared{n}"
    columns = [*columns, *(name for _column, name in source.passthrough)]
    return "select\n    " + ",\n    ".join(columns) + f"\nfrom ({sql}) as view_rows"


def _snowflake(d: Dialect, plan: Plan, source: Source, resource_type: str,
               columns: list[str]) -> str:
    columns = [*columns, *(f"r.{column} as {name}" for column, name in source.passthrough)]
    joins = [f"{source.table} as r"]
    conditions = [_type_filter(d, source, resource_type, "r."), *plan.filters]
    for step in plan.steps:
        if isinstance(step, UnionStep):
            branches = ", ".join(str(i) for i in range(step.branches))
            joins.append(f"lateral flatten(input => array_construct({branches})) as u{step.id}")
        elif step.outer:
            items = step.items
            if not items.startswith("coalesce("):
                items = f"coalesce({items}, array_construct())"
            if step.gate:
                items = f"iff({step.gate}, {items}, array_construct())"
            joins.append(f"lateral flatten(input => {items}, outer => true) as f{step.id}")
        else:
            joins.append(f"lateral flatten(input => {step.raw or step.items}) as f{step.id}")
        conditions.extend(plan.after.get(step.id, []))
    return ("select\n    " + ",\n    ".join(columns) + "\nfrom " + ",\n    ".join(joins)
            + "\nwhere " + "\n    and ".join(conditions))
