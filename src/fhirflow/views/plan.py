"""The select tree of a view -> a flat plan: row-generating steps, filters and columns.

One row of the result is one choice per step: an item of each forEach / forEachOrNull /
repeat collection, a branch of each unionAll. Steps run in tree order, so a step's input
refers only to steps before it. A step inside a unionAll branch or under a forEachOrNull
may be *inactive* for a row (another branch was chosen, or the forEachOrNull found
nothing); it then yields exactly one padding row and its columns are NULL. The *gate* of
a node is the SQL condition under which it is active; a forEach that is active and finds
nothing removes the row. This is the specification's Process(S, N) written as one SELECT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fhirflow.views.columns import output_sql
from fhirflow.views.definition import Column, InvalidViewError, Select, View
from fhirflow.views.expressions import ExprCompiler, Scope
from fhirflow.views.values import Val, json_scalar

# repeat: how deep the compiled traversal goes. SQL has no recursion over a row's own
# JSON, so the traversal is unrolled; deeper data is an error, never silently cut.
REPEAT_DEPTH = 8


@dataclass
class IterStep:
    id: int
    kind: str  # forEach, forEachOrNull, repeat
    items: str  # SQL: the collection, a JSON list
    raw: str | None  # Snowflake: a plain VARIANT array path FLATTEN can read directly
    gate: str | None  # active when true; None: always active
    outer: bool  # yields a padding row when empty or inactive


@dataclass
class UnionStep:
    id: int
    branches: int


@dataclass
class Entry:
    gate: str | None
    sql: str
    sql_type: str
    kind: str
    row_index_only: bool
    where: str


@dataclass
class Plan:
    steps: list[IterStep | UnionStep] = field(default_factory=list)
    filters: list[str] = field(default_factory=list)
    after: dict[int, list[str]] = field(default_factory=dict)  # conditions after a step
    entries: dict[str, list[Entry]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Ctx:
    focus: Val
    row_index: str
    gate: str | None


def _and(a: str | None, b: str) -> str:
    return b if a is None else f"({a}) and ({b})"


class Planner:
    def __init__(self, compiler: ExprCompiler, view: View, resource_sql: str) -> None:
        self.c = compiler
        self.view = view
        self.resource = json_scalar(resource_sql, view.resource)
        self.plan = Plan()
        self._ids = 0

    def build(self) -> Plan:
        for expr in self.view.where:
            value = self.c.compile(expr.ast, self._scope(self.resource, "0", expr.where, expr.text))
            if value.kind not in ("boolean", "json", "empty"):
                gives = value.fhir_type or value.kind
                raise InvalidViewError(expr.where, f"`{expr.text}` gives {gives} values; a "
                                                   "where path must give a boolean")
            scope = self._scope(self.resource, "0", expr.where, expr.text)
            self.plan.filters.append(f"coalesce({self.c.condition(value, scope)}, false)")
        root = _Ctx(self.resource, "0", None)
        for select in self.view.selects:
            self._process(select, root)
        return self.plan

    def _scope(self, focus: Val, row_index: str, where: str, text: str) -> Scope:
        return Scope(focus, self.resource, row_index, where, text)

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _process(self, select: Select, ctx: _Ctx) -> None:
        child = self._iterate(select, ctx) if select.iterates else ctx
        for column in select.columns:
            self._column(column, child)
        for nested in select.selects:
            self._process(nested, child)
        branches = select.union_all
        if len(branches) == 1:
            self._process(branches[0], child)
        elif branches:
            step = UnionStep(self._next_id(), len(branches))
            self.plan.steps.append(step)
            choice = self.c.d.union_branch(step.id)
            if child.gate is not None:
                # An inactive union yields its first branch's (padding) row only.
                self.plan.after.setdefault(step.id, []).append(f"({child.gate}) or {choice} = 0")
            for i, branch in enumerate(branches):
                self._process(branch, _Ctx(child.focus, child.row_index,
                                           _and(child.gate, f"{choice} = {i}")))

    def _iterate(self, select: Select, ctx: _Ctx) -> _Ctx:
        d = self.c.d
        if select.repeat:
            kind = "repeat"
            items, item_type = self._repeat(select, ctx)
            raw = None
        else:
            kind = "forEach" if select.for_each else "forEachOrNull"
            expr = select.for_each or select.for_each_or_null
            assert expr is not None
            value = self.c.compile(expr.ast, self._scope(ctx.focus, ctx.row_index, expr.where,
                                                         expr.text))
            if value.typed or value.kind == "empty":
                raise InvalidViewError(expr.where, f"`{expr.text}` must select elements of the "
                                                   "resource to iterate over")
            items = self.c.as_list(value)
            item_type = value.fhir_type
            raw_array = getattr(d, "raw_array", None)
            raw = raw_array(value.path) if raw_array and value.path and not value.choice else None
        outer = kind == "forEachOrNull" or ctx.gate is not None
        step = IterStep(self._next_id(), kind, items, raw, ctx.gate, outer)
        self.plan.steps.append(step)
        focus = json_scalar(d.step_value(step.id), item_type)
        gate = ctx.gate
        if outer:
            active = f"not ({d.step_is_pad(step.id)})"
            if kind != "forEachOrNull":
                # Active and empty: no rows. Inactive: the single padding row stays.
                self.plan.after.setdefault(step.id, []).append(
                    active if ctx.gate is None else f"(not ({ctx.gate})) or {active}")
            gate = _and(ctx.gate, active)
        return _Ctx(focus, d.step_index(step.id), gate)

    def _repeat(self, select: Select, ctx: _Ctx) -> tuple[str, str | None]:
        """The nodes `repeat` reaches, depth first in the order the specification's
        traverse() visits them, unrolled to REPEAT_DEPTH levels."""
        c, d = self.c, self.c.d

        def children(node: Val) -> tuple[str, str | None]:
            lists, types = [], set()
            for expr in select.repeat:
                value = c.compile(expr.ast, self._scope(node, ctx.row_index, expr.where, expr.text))
                lists.append(c.as_list(value))
                if value.fhir_type is not None:
                    types.add(value.fhir_type)
            sql = lists[0] if len(lists) == 1 else d.list_concat(*lists)
            return sql, (types.pop() if len(types) == 1 else None)

        def below(node: Val, depth: int) -> str:
            kids, kid_type = children(node)
            var = d.fresh()
            kid = json_scalar(var, kid_type)
            if depth < REPEAT_DEPTH:
                sub = below(kid, depth + 1)
            else:
                grandchildren, _type = children(kid)
                message = f"{select.where}.repeat: data nested deeper than {REPEAT_DEPTH} levels"
                sub = d.fail_if(f"{d.list_len(grandchildren)} > 0", message, d.empty_list(),
                                is_list=True)
            return d.list_flatmap(kids, var, d.list_prepend(var, sub))

        _first, first_type = children(ctx.focus)
        return below(ctx.focus, 1), first_type

    def _column(self, column: Column, ctx: _Ctx) -> None:
        scope = self._scope(ctx.focus, ctx.row_index, f"{column.where}.path", column.path.text)
        value = self.c.compile(column.path.ast, scope)
        if value.many and not column.collection:
            message = (f"column {column.name!r} (`{column.path.text}`) has several values; "
                       "set \"collection\": true")
            value = Val(self.c.d.singleton(self.c.as_list(value), message), value.kind,
                        value.fhir_type)
        sql, sql_type, kind = output_sql(self.c, column, value, scope)
        row_index_only = column.path.text.strip() == "%rowIndex"
        entry = Entry(ctx.gate, sql, sql_type, kind, row_index_only, f"{column.where}.path")
        self.plan.entries.setdefault(column.name, []).append(entry)


def column_sql(entries: list[Entry]) -> str:
    """One output column from its entries (one per unionAll branch that defines it)."""
    if len(entries) == 1 and entries[0].gate is None:
        return entries[0].sql
    # In the padding row of a forEachOrNull, %rowIndex columns are 0, the rest NULL.
    fallback = "0" if all(e.row_index_only for e in entries) else "null"
    arms = " ".join(f"when {e.gate} then {e.sql}" for e in entries if e.gate is not None)
    always = [e for e in entries if e.gate is None]
    if always:
        fallback = always[0].sql
    return f"case {arms} else {fallback} end" if arms else fallback
