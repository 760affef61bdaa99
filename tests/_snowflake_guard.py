"""The Snowflake SQL guard: constructs Snowflake documents as unsupported, found by parsing the
SQL with sqlglot's Snowflake dialect. fakesnow runs every one of them (it is DuckDB inside),
so only a check like this catches them before a real account does.

`offences(sql)` lists what it finds, one line each; an empty list means nothing found. Rules
and the Snowflake documentation each one follows:

- unparsable: sqlglot's Snowflake dialect cannot parse the statement (e.g. DuckDB's
  `lambda x: ...`).
- subquery over FLATTEN: a subquery whose FLATTEN reads a column of the outer query, or any
  subquery in a select list over FLATTEN. "Subqueries with a correlation inside of FLATTEN are
  currently unsupported" (Working with subqueries, Limitations); Snowflake answers
  "Unsupported subquery type".
- correlated scalar subquery: one that reads an outer column and is not an aggregate without
  GROUP BY: "correlated scalar subqueries are currently supported only if they can be
  statically determined to return one row" (Working with subqueries); a LIMIT/FETCH in a
  correlated subquery likewise.
- TRY_CAST of a non-string: "these functions only support string expressions (i.e. VARCHAR
  or CHAR data type) as input" (Conversion functions, Error-handling conversion functions):
  a VARIANT path (`x:a`), a cast to a non-string type or a number literal fails there.
- DuckDB function or type: a function sqlglot's Snowflake dialect does not know (parsed as
  Anonymous), a DuckDB function name Snowflake lacks (`json_extract_string`, `unnest`,
  `list_filter`, `strftime`, `try`, ...), a DuckDB JSONPath (`'$.a'`, Snowflake paths have no
  `$`), or a cast to JSON, STRUCT, MAP or a typed list (Snowflake has VARIANT, OBJECT, ARRAY).
- recursive CTE with UNION: Snowflake's recursive clause takes UNION ALL only (WITH, Usage
  notes for recursive CTEs).

Unqualified column names cannot be told apart from outer ones here, so the correlation rules
only see qualified references (`source.resource`), which is how our macros write them; the
select-list FLATTEN rule needs no correlation and catches the rest.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

# Snowflake functions that sqlglot's Snowflake dialect parses as Anonymous (it does not model
# them); they are Snowflake's own, so they pass. Add one only with its Snowflake docs page.
SNOWFLAKE_ONLY_FUNCTIONS: frozenset[str] = frozenset({
    "try_to_timestamp", "try_to_timestamp_tz", "try_to_timestamp_ntz", "try_to_date",
    "try_to_number", "try_to_double", "try_to_boolean", "system$typeof",
})

# DuckDB functions that Snowflake does not have but sqlglot maps onto a Snowflake-capable
# expression (so the parsed tree alone cannot show them): found by name in the tokens.
DUCKDB_FUNCTIONS: frozenset[str] = frozenset({
    "json_extract_string", "json_extract", "json_transform", "json_keys", "unnest",
    "list_filter", "list_transform", "list_value", "list_extract", "range", "string_agg",
    "strftime", "strptime", "epoch", "epoch_ms", "regexp_matches",
    "struct_pack", "try", "read_blob", "read_text", "read_json", "list_contains",
})

_NESTED_TYPES = {
    exp.DataType.Type.JSON, exp.DataType.Type.STRUCT, exp.DataType.Type.MAP,
}
_STRING_TYPES = {
    exp.DataType.Type.VARCHAR, exp.DataType.Type.CHAR, exp.DataType.Type.TEXT,
    exp.DataType.Type.NVARCHAR, exp.DataType.Type.NCHAR,
}


def offences(sql: str) -> list[str]:
    """What in `sql` (one or more statements) Snowflake documents as unsupported."""
    found = _duckdb_function_names(sql)
    try:
        statements = [s for s in sqlglot.parse(sql, read="snowflake") if s is not None]
    except (ParseError, TokenError) as exc:
        return [*found, f"unparsable as Snowflake SQL: {str(exc).splitlines()[0][:160]}"]
    for statement in statements:
        found += _subqueries(statement)
        found += _try_casts(statement)
        found += _duckdb_expressions(statement)
        found += _recursive_unions(statement)
    return found


def _snippet(node: exp.Expression) -> str:
    return " ".join(node.sql(dialect="snowflake").split())[:160]


def _duckdb_function_names(sql: str) -> list[str]:
    try:
        tokens = sqlglot.tokenize(sql, read="snowflake")
    except TokenError as exc:
        return [f"untokenisable as Snowflake SQL: {exc}"]
    found = []
    for token, after in zip(tokens, tokens[1:], strict=False):
        if after.token_type == TokenType.L_PAREN and token.text.lower() in DUCKDB_FUNCTIONS:
            # `t.len(...)` would be a method call, not ours; a plain name before "(" is.
            found.append(f"DuckDB function {token.text.lower()}() does not exist on Snowflake")
    return found


def _sources(select: exp.Expression) -> set[str]:
    """Names (aliases, tables, CTEs) a query can refer to from inside itself."""
    names: set[str] = set()
    for table in select.find_all(exp.Table):
        names.add(table.alias_or_name.lower())
        names.add(table.name.lower())
    for node in select.find_all(exp.Lateral, exp.Subquery, exp.CTE, exp.Unnest):
        alias = node.args.get("alias")
        if isinstance(alias, exp.TableAlias) and alias.name:
            names.add(alias.name.lower())
    return names


def _outer_references(query: exp.Expression) -> list[exp.Column]:
    inner = _sources(query)
    return [c for c in query.find_all(exp.Column) if c.table and c.table.lower() not in inner]


def _is_predicate_subquery(subquery: exp.Expression) -> bool:
    """EXISTS (...), x IN (...), x = ANY (...): Snowflake supports these correlated."""
    parent = subquery.parent
    return isinstance(parent, (exp.Exists, exp.In, exp.Any, exp.All))


def _in_projection(node: exp.Expression) -> bool:
    child, parent = node, node.parent
    while parent is not None:
        if isinstance(parent, exp.Select) and child in parent.expressions:
            return True
        if isinstance(parent, (exp.From, exp.Join)):
            return False
        child, parent = parent, parent.parent
    return False


def _flattens(query: exp.Expression) -> list[exp.Expression]:
    return [e for e in query.find_all(exp.Explode)
            if isinstance(e.parent, exp.Lateral) or e.find_ancestor(exp.Lateral) is not None]


def _subqueries(statement: exp.Expression) -> list[str]:
    found = []
    for subquery in statement.find_all(exp.Subquery):
        query = subquery.this
        if not isinstance(query, exp.Query) or isinstance(subquery.parent, (exp.From, exp.Join)):
            continue  # a derived table: not correlated (LATERAL aside, which Snowflake allows)
        flattens = _flattens(query)
        outer = _outer_references(query)
        flatten_outer = [c for f in flattens for c in _outer_references_in(f, query)]
        if flattens and (flatten_outer or _in_projection(subquery)):
            found.append(f"subquery over FLATTEN (Snowflake: unsupported subquery type): "
                         f"{_snippet(subquery)}")
            continue
        if not outer or _is_predicate_subquery(subquery):
            continue
        select = query if isinstance(query, exp.Select) else query.find(exp.Select)
        if select is None:
            continue
        if select.args.get("limit") or select.args.get("fetch"):
            found.append(f"LIMIT/FETCH in a correlated subquery: {_snippet(subquery)}")
        aggregate_only = (not select.args.get("group")
                          and all(e.find(exp.AggFunc) for e in select.expressions))
        if not aggregate_only:
            found.append("correlated scalar subquery that is not one aggregate row: "
                         f"{_snippet(subquery)}")
    return found


def _outer_references_in(flatten: exp.Expression, query: exp.Expression) -> list[exp.Column]:
    """Columns of FLATTEN's input that name a relation defined outside `query`."""
    inner = _sources(query)
    return [c for c in flatten.find_all(exp.Column) if c.table and c.table.lower() not in inner]


def _is_string(node: exp.Expression) -> bool | None:
    """True/False when the expression's type is evident from its form; None when it is not."""
    if isinstance(node, exp.Paren):
        return _is_string(node.this)
    if isinstance(node, exp.Literal):
        return bool(node.is_string)
    if isinstance(node, exp.Cast) and not isinstance(node, exp.TryCast):
        return node.to.this in _STRING_TYPES
    if isinstance(node, (exp.JSONExtract, exp.Bracket, exp.ParseJSON)):
        return False  # VARIANT
    if isinstance(node, (exp.Substring, exp.Lower, exp.Upper, exp.Trim, exp.Concat, exp.DPipe,
                         exp.JSONExtractScalar, exp.SplitPart, exp.Replace)):
        return True
    if isinstance(node, exp.Coalesce):
        kinds = {_is_string(a) for a in [node.this, *node.expressions]}
        return False if False in kinds else (True if kinds == {True} else None)
    return None


def _try_casts(statement: exp.Expression) -> list[str]:
    return [f"TRY_CAST of a non-string (Snowflake: string input only): {_snippet(t)}"
            for t in statement.find_all(exp.TryCast) if _is_string(t.this) is False]


def _duckdb_expressions(statement: exp.Expression) -> list[str]:
    found = []
    for anonymous in statement.find_all(exp.Anonymous):
        name = anonymous.name.lower()
        if name not in SNOWFLAKE_ONLY_FUNCTIONS and name not in DUCKDB_FUNCTIONS:
            found.append(f"function {name}() is unknown to Snowflake's dialect: "
                         f"{_snippet(anonymous)}")
    for key in statement.find_all(exp.JSONPathKey):
        if key.this == "$":
            found.append("DuckDB JSONPath ('$.' prefix) in a Snowflake path: "
                         f"{_snippet(key.find_ancestor(exp.JSONExtract) or key)}")
    for cast in statement.find_all(exp.Cast):
        kind = cast.to.this
        nested_list = kind == exp.DataType.Type.ARRAY and bool(cast.to.expressions)
        if kind in _NESTED_TYPES or nested_list:
            found.append(f"cast to {cast.to.sql()} (no such Snowflake type): {_snippet(cast)}")
    return found


def _recursive_unions(statement: exp.Expression) -> list[str]:
    found = []
    for with_ in statement.find_all(exp.With):
        if not with_.args.get("recursive"):
            continue
        for cte in with_.expressions:
            union = cte.this if isinstance(cte.this, exp.Union) else None
            if union is not None and union.args.get("distinct"):
                found.append(f"recursive CTE {cte.alias} joins with UNION, not UNION ALL")
    return found
