"""DuckDB's SQL for the compiler: JSON values, `JSON[]` lists and `lambda` list functions."""

from __future__ import annotations

from collections.abc import Callable

from fhirflow.views.dialects import SIMPLE_KEY, Dialect
from fhirflow.views.values import Step


class DuckDB(Dialect):
    name = "duckdb"

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def json_path(self, steps: tuple[Step, ...]) -> str:
        out = "$"
        for step in steps:
            quoted = '"' + step.key.replace('"', '\\"') + '"'
            key = step.key if SIMPLE_KEY.match(step.key) else quoted
            out += f".{key}"
            if step.index is not None:
                out += f"[{step.index}]"
            elif step.array:
                out += "[*]"
        return out

    def path_scalar(self, base: str, steps: tuple[Step, ...], kind: str | None) -> str:
        """One value at a path without repeating steps; typed when `kind` is given."""
        if not steps:
            return self.json_to(kind, base) if kind else base
        path = self.string(self.json_path(steps))
        if kind in ("string", "date", "datetime", "time"):
            return f"json_extract_string({base}, {path})"
        value = f"json_extract({base}, {path})"
        return self.json_to(kind, value) if kind else value

    def _list_from_item(self, item: str, steps: tuple[Step, ...]) -> str:
        known = 0
        while known < len(steps) and steps[known].array is not None:
            known += 1
        head, rest = steps[:known], steps[known:]
        if head and any(s.array and s.index is None for s in head):
            items = f"json_extract({item}, {self.string(self.json_path(head))})"
        else:
            items = self.list_of_singleton(self.path_scalar(item, head, None))
        if not rest:
            return items
        # An element the model does not know: it may hold one value or an array.
        var = self.fresh()
        value = f"json_extract({var}, {self.string(self.json_path((Step(rest[0].key, False),)))})"
        loose = (f"case when {value} is null then []::json[] when json_type({value}) = 'ARRAY' "
                 f"then cast({value} as json[]) else [{value}] end")
        next_items = self.list_flatmap(items, var, loose)
        if len(rest) == 1:
            return next_items
        var2 = self.fresh()
        return self.list_flatmap(next_items, var2, self._list_from_item(var2, rest[1:]))

    def bind(self, value: str, body: Callable[[str], str]) -> str:
        # DuckDB computes a subexpression each time it is written; a one-item list and a
        # lambda bind the value to a name instead (cheaper than re-parsing JSON).
        var = self.fresh("let")
        return f"list_transform([{value}], lambda {var}: {body(var)})[1]"

    def list_of_singleton(self, json_sql: str) -> str:
        var = self.fresh()
        return f"list_filter([{json_sql}], lambda {var}: {var} is not null)"

    def list_filter(self, items: str, var: str, condition: str) -> str:
        return f"list_filter({items}, lambda {var}: {condition})"

    def list_map(self, items: str, var: str, value: str) -> str:
        """Map then drop the NULLs (an item whose value is empty contributes nothing)."""
        out = self.fresh()
        return (f"list_filter(list_transform({items}, lambda {var}: {value}), "
                f"lambda {out}: {out} is not null)")

    def list_flatmap(self, items: str, var: str, sublist: str) -> str:
        return f"flatten(list_transform({items}, lambda {var}: {sublist}))"

    def list_len(self, items: str) -> str:
        return f"coalesce(len({items}), 0)"

    def list_first(self, items: str) -> str:
        return f"{items}[1]"

    def list_last(self, items: str) -> str:
        return f"{items}[-1]"

    def list_item(self, items: str, index0: str) -> str:
        return f"{items}[({index0}) + 1]"

    def list_concat(self, *lists: str) -> str:
        return f"list_concat({', '.join(lists)})"

    def list_distinct(self, items: str) -> str:
        return f"list_distinct({items})"

    def list_contains(self, items: str, json_item: str) -> str:
        return f"list_contains({items}, {json_item})"

    def list_join(self, items: str, separator: str) -> str:
        var = self.fresh()
        return (f"coalesce(array_to_string(list_transform({items}, lambda {var}: "
                f"json_extract_string({var}, '$')), {separator}), '')")

    def list_equal(self, left: str, right: str) -> str:
        return (f"case when {self.list_len(left)} = 0 or {self.list_len(right)} = 0 then null "
                f"else {left} = {right} end")

    def list_output(self, items: str) -> str:
        return f"to_json(coalesce({items}, []::json[]))"

    def empty_list(self) -> str:
        return "[]::json[]"

    def pad_list(self, items: str) -> str:
        return "[null]::json[]"

    # ------------------------------------------------------------ scalars
    def json_to(self, kind: str | None, sql: str) -> str:
        if kind in ("string", "date", "datetime", "time"):
            return f"json_extract_string({sql}, '$')"
        if kind == "boolean":
            return f"cast({sql} as boolean)"
        if kind == "integer":
            return f"cast({sql} as bigint)"
        if kind == "decimal":
            return f"cast({sql} as double)"
        return sql

    def to_json(self, sql: str) -> str:
        return f"to_json({sql})"

    def json_type_is(self, sql: str, json_types: tuple[str, ...]) -> str:
        names = ", ".join(self.string(t) for t in json_types)
        return f"json_type({sql}) in ({names})"

    def json_text(self, sql: str) -> str:
        """A JSON number's own text (its written precision)."""
        return f"cast({sql} as varchar)"

    def fail_if(self, condition: str, message: str, value: str, *, is_list: bool = False) -> str:
        return f"case when {condition} then error({self.string(message)}) else {value} end"

    def list_prepend(self, item: str, items: str) -> str:
        return f"list_prepend({item}, {items})"

    def step_value(self, step: int) -> str:
        return f"_v{step}"

    def step_index(self, step: int) -> str:
        return f"_i{step}"

    def step_is_pad(self, step: int) -> str:
        return f"_v{step} is null"

    def union_branch(self, step: int) -> str:
        return f"_u{step}"

    def regex_group(self, text: str, pattern: str, group: int) -> str:
        return f"nullif(regexp_extract({text}, {self.string(pattern)}, {group}), '')"

    def regex_matches(self, text: str, pattern: str) -> str:
        return f"regexp_matches({text}, {self.string(pattern)})"

    def last_day_of_month(self, year_month: str) -> str:
        return f"strftime(last_day(cast({year_month} || '-01' as date)), '%Y-%m-%d')"

    def decimal_places(self, text: str) -> str:
        return f"length(coalesce(regexp_extract({text}, '\\.([0-9]+)', 1), ''))"

    def power10(self, exponent: str) -> str:
        return f"power(10.0, {exponent})"

    def cast(self, sql: str, sql_type: str, *, lenient: bool) -> str:
        return f"{'try_cast' if lenient else 'cast'}({sql} as {sql_type})"

    def integer_division(self, left: str, right: str) -> str:
        return f"({left} // nullif({right}, 0))"

    def modulo(self, left: str, right: str) -> str:
        return f"({left} % nullif({right}, 0))"

    def lower(self, sql: str) -> str:
        return f"lower({sql})"
