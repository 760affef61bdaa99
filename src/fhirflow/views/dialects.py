"""SQL building blocks for the two warehouses.

The compiler speaks in FHIRPath terms (navigate, filter a collection, first item, ...); each
dialect turns that into its SQL. DuckDB holds resources as JSON and collections as `JSON[]`
lists with `lambda` functions; Snowflake holds them as VARIANT and ARRAY, with the
higher-order functions FILTER, TRANSFORM and REDUCE (never a correlated subquery, which
Snowflake cannot evaluate over FLATTEN in a select list).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import count

from fhirflow.views.values import Path, Step

SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Dialect:
    name = "base"

    def __init__(self) -> None:
        self._names = count(1)

    def fresh(self, prefix: str = "fp") -> str:
        """A lambda parameter name unused elsewhere in the statement."""
        return f"{prefix}_{next(self._names)}"

    # ---------------------------------------------------------------- literals
    def string(self, text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    @staticmethod
    def boolean(value: bool) -> str:
        return "true" if value else "false"

    # ------------------------------------------------------- collections (generic)
    def list_of_singleton(self, json_sql: str) -> str:
        raise NotImplementedError

    def path_list(self, path: Path) -> str:
        """The items a path reaches, as a JSON list."""
        if not path.base_is_list:
            if not path.steps:
                return self.list_of_singleton(path.base)
            return self._list_from_item(path.base, path.steps)
        if not path.steps:
            return path.base
        var = self.fresh()
        if all(s.array is False or s.index is not None for s in path.steps):
            return self.list_map(path.base, var, self.path_scalar(var, path.steps, None))
        return self.list_flatmap(path.base, var, self._list_from_item(var, path.steps))

    def path_scalar(self, base: str, steps: tuple[Step, ...], kind: str | None) -> str:
        raise NotImplementedError

    def _list_from_item(self, item: str, steps: tuple[Step, ...]) -> str:
        """Items reached from one JSON value by `steps`, as a list."""
        raise NotImplementedError

    def list_flatmap(self, items: str, var: str, sublist: str) -> str:
        raise NotImplementedError

    def bind(self, value: str, body: Callable[[str], str]) -> str:
        """`body` of one computed value, the value written once: SQL has no `let`, so a
        dialect that re-evaluates repeated subexpressions computes it once here."""
        return body(value)

    def singleton(self, items: str, message: str) -> str:
        """The only item of a list, NULL when empty, an error when there are several."""
        return self.bind(items, lambda v: self.fail_if(f"{self.list_len(v)} > 1", message,
                                                       self.list_first(v)))

    def list_len(self, items: str) -> str:
        raise NotImplementedError

    def list_first(self, items: str) -> str:
        raise NotImplementedError

    def fail_if(self, condition: str, message: str, value: str, *, is_list: bool = False) -> str:
        raise NotImplementedError

    # Names of the row-generation steps' values (see render.py).
    def step_value(self, step: int) -> str:
        raise NotImplementedError

    def step_index(self, step: int) -> str:
        raise NotImplementedError

    def step_is_pad(self, step: int) -> str:
        raise NotImplementedError

    def union_branch(self, step: int) -> str:
        raise NotImplementedError


def dialect_for(name: str) -> Dialect:
    from fhirflow.views.sql_duckdb import DuckDB
    from fhirflow.views.sql_snowflake import Snowflake

    if name == "duckdb":
        return DuckDB()
    if name == "snowflake":
        return Snowflake()
    raise ValueError(f"unknown dialect {name!r}: duckdb or snowflake")
