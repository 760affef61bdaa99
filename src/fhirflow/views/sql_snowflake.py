"""Snowflake's SQL for the compiler: VARIANT values, ARRAY lists and the higher-order
functions FILTER, TRANSFORM and REDUCE (every function used is in Snowflake's reference)."""

from __future__ import annotations

from fhirflow.views.dialects import SIMPLE_KEY, Dialect
from fhirflow.views.values import Path, Step

# Keys Snowflake's `:` path syntax reads as something else unless quoted.
_SNOWFLAKE_RESERVED = frozenset({
    "all", "alter", "and", "any", "as", "between", "by", "case", "cast", "check", "column",
    "connect", "constraint", "create", "cross", "current", "delete", "distinct", "drop",
    "else", "exists", "false", "following", "for", "from", "full", "grant", "group", "having",
    "ilike", "in", "increment", "inner", "insert", "intersect", "into", "is", "join",
    "lateral", "left", "like", "localtime", "localtimestamp", "minus", "natural", "not",
    "null", "of", "on", "or", "order", "qualify", "regexp", "revoke", "right", "rlike", "row",
    "rows", "sample", "select", "set", "some", "start", "table", "tablesample", "then", "to",
    "trigger", "true", "try_cast", "union", "unique", "update", "using", "values", "when",
    "whenever", "where", "with",
})


class Snowflake(Dialect):
    name = "snowflake"

    def string(self, text: str) -> str:
        # Snowflake reads backslash escapes inside single-quoted literals.
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def quote(self, name: str) -> str:
        if SIMPLE_KEY.match(name) and name.lower() not in _SNOWFLAKE_RESERVED:
            return name
        return '"' + name.replace('"', '""') + '"'

    def _key(self, key: str) -> str:
        if SIMPLE_KEY.match(key) and key.lower() not in _SNOWFLAKE_RESERVED:
            return key
        return '"' + key.replace('"', '""') + '"'

    def get_path(self, base: str, steps: tuple[Step, ...]) -> str:
        if not steps:
            return base
        out = base
        for i, step in enumerate(steps):
            out += (":" if i == 0 else ".") + self._key(step.key)
            if step.index is not None:
                out += f"[{step.index}]"
        return out

    def path_scalar(self, base: str, steps: tuple[Step, ...], kind: str | None) -> str:
        value = self.get_path(base, steps)
        return self.json_to(kind, value) if kind else value

    def _list_from_item(self, item: str, steps: tuple[Step, ...]) -> str:
        split = 0
        while split < len(steps) and not (steps[split].array is not False
                                           and steps[split].index is None):
            split += 1
        if split == len(steps):
            return self.list_of_singleton(self.get_path(item, steps))
        items = f"to_array({self.get_path(item, steps[:split + 1])})"
        rest = steps[split + 1:]
        if not rest:
            return f"coalesce({items}, array_construct())"
        var = self.fresh()
        if all(s.array is False or s.index is not None for s in rest):
            return self.list_map(items, var, self.get_path(var, rest))
        return self.list_flatmap(items, var, self._list_from_item(var, rest))

    def list_of_singleton(self, json_sql: str) -> str:
        return f"array_construct_compact({json_sql})"

    def list_filter(self, items: str, var: str, condition: str) -> str:
        return f"filter({items}, {var} -> coalesce({condition}, false))"

    def list_map(self, items: str, var: str, value: str) -> str:
        out = self.fresh()
        return f"filter(transform({items}, {var} -> {value}), {out} -> {out} is not null)"

    def list_flatmap(self, items: str, var: str, sublist: str) -> str:
        acc = self.fresh("acc")
        return (f"reduce({items}, array_construct(), ({acc}, {var}) -> "
                f"array_cat({acc}, coalesce({sublist}, array_construct())))")

    def list_len(self, items: str) -> str:
        return f"coalesce(array_size({items}), 0)"

    def list_first(self, items: str) -> str:
        return f"get({items}, 0)"

    def list_last(self, items: str) -> str:
        return f"get({items}, array_size({items}) - 1)"

    def list_item(self, items: str, index0: str) -> str:
        return f"get({items}, {index0})"

    def list_concat(self, *lists: str) -> str:
        out = f"coalesce({lists[0]}, array_construct())"
        for other in lists[1:]:
            out = f"array_cat({out}, coalesce({other}, array_construct()))"
        return out

    def list_distinct(self, items: str) -> str:
        return f"array_distinct({items})"

    def list_contains(self, items: str, json_item: str) -> str:
        return f"array_contains({json_item}, {items})"

    def list_join(self, items: str, separator: str) -> str:
        var = self.fresh()
        return (f"coalesce(array_to_string(transform({items}, {var} -> {var}::string), "
                f"{separator}), '')")

    def list_equal(self, left: str, right: str) -> str:
        return (f"case when {self.list_len(left)} = 0 or {self.list_len(right)} = 0 then null "
                f"else {left} = {right} end")

    def list_output(self, items: str) -> str:
        return f"coalesce({items}, array_construct())"

    def empty_list(self) -> str:
        return "array_construct()"

    # ------------------------------------------------------------ scalars
    def json_to(self, kind: str | None, sql: str) -> str:
        if kind in ("string", "date", "datetime", "time"):
            return f"{sql}::varchar"
        if kind == "boolean":
            return f"{sql}::boolean"
        if kind == "integer":
            return f"{sql}::integer"
        if kind == "decimal":
            return f"{sql}::float"
        return sql

    def to_json(self, sql: str) -> str:
        return f"to_variant({sql})"

    def json_type_is(self, sql: str, json_types: tuple[str, ...]) -> str:
        names = {"VARCHAR": "VARCHAR", "BOOLEAN": "BOOLEAN", "BIGINT": "INTEGER",
                 "UBIGINT": "INTEGER", "DOUBLE": "DOUBLE", "OBJECT": "OBJECT",
                 "ARRAY": "ARRAY"}
        wanted = sorted({names[t] for t in json_types} | (
            {"DECIMAL"} if "DOUBLE" in json_types else set()))
        return f"typeof({sql}) in ({', '.join(self.string(t) for t in wanted)})"

    def json_text(self, sql: str) -> str:
        return f"{sql}::varchar"

    def fail_if(self, condition: str, message: str, value: str, *, is_list: bool = False) -> str:
        # Snowflake has no function that raises; a failing conversion carries the message.
        # The text depends on the row, so the compiler cannot fold it into a constant error.
        failing = (f"to_number({self.string('fhirflow: ' + message + ' (')} "
                   f"|| ({condition})::varchar || ')')")
        raise_sql = f"to_array({failing})" if is_list else f"to_variant({failing})"
        return f"case when {condition} then {raise_sql} else {value} end"

    def list_prepend(self, item: str, items: str) -> str:
        return f"array_prepend({items}, {item})"

    def step_value(self, step: int) -> str:
        return f"f{step}.value"

    def step_index(self, step: int) -> str:
        return f"coalesce(f{step}.index, 0)"

    def step_is_pad(self, step: int) -> str:
        return f"f{step}.index is null"

    def union_branch(self, step: int) -> str:
        return f"u{step}.index"

    def raw_array(self, path: Path) -> str | None:
        """The plain VARIANT path of a collection that is one array reached through
        single-valued elements: what FLATTEN reads directly, without building an ARRAY."""
        steps = path.steps
        if path.base_is_list or not steps or not steps[-1].array or steps[-1].index is not None:
            return None
        if any(s.array is not False and s.index is None for s in steps[:-1]):
            return None
        return self.get_path(path.base, steps)

    def regex_group(self, text: str, pattern: str, group: int) -> str:
        return f"regexp_substr({text}, {self.string(pattern)}, 1, 1, 'e', {group})"

    def regex_matches(self, text: str, pattern: str) -> str:
        return f"regexp_like({text}, {self.string(pattern)})"

    def last_day_of_month(self, year_month: str) -> str:
        return f"to_char(last_day(to_date({year_month} || '-01')), 'YYYY-MM-DD')"

    def decimal_places(self, text: str) -> str:
        return f"length(coalesce(regexp_substr({text}, '\\\\.([0-9]+)', 1, 1, 'e', 1), ''))"

    def power10(self, exponent: str) -> str:
        return f"power(10, {exponent})"

    def cast(self, sql: str, sql_type: str, *, lenient: bool) -> str:
        return f"{'try_cast' if lenient else 'cast'}({sql} as {sql_type})"

    def integer_division(self, left: str, right: str) -> str:
        return f"trunc({left} / nullif({right}, 0))"

    def modulo(self, left: str, right: str) -> str:
        return f"mod({left}, nullif({right}, 0))"

    def lower(self, sql: str) -> str:
        return f"lower({sql})"
