"""FHIRPath AST -> SQL, with the static types the FHIR model gives.

Each node compiles to a `Val`. Paths stay symbolic until an operator, a function or the
output needs SQL; comparisons and arithmetic work on typed scalars; collection functions
work on JSON lists (see values.py). Errors name the view element and the expression.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fhirflow.views import fhirpath as fp
from fhirflow.views.definition import ConstantDef, InvalidViewError
from fhirflow.views.dialects import Dialect
from fhirflow.views.fhir_model import FhirModel
from fhirflow.views.values import (
    EMPTY,
    Path,
    Step,
    Val,
    json_list,
    json_scalar,
    kind_of,
    typed,
)

_NUMERIC = ("integer", "decimal")
_TEXTUAL = ("string", "date", "datetime", "time")


@dataclass(frozen=True)
class Scope:
    """Where an expression is evaluated: its input focus, the resource, %rowIndex."""

    focus: Val
    resource: Val
    row_index: str
    where: str
    text: str
    in_lambda: bool = False  # inside a where()/select() criterion, over a lambda parameter


class ExprCompiler:
    def __init__(self, dialect: Dialect, model: FhirModel, resource_type: str,
                 constants: dict[str, ConstantDef]) -> None:
        self.d = dialect
        self.model = model
        self.resource_type = resource_type
        self.constants = constants
        # Filtered collections computed on a row (not inside a lambda): several columns
        # often filter the same one (name.where(use = 'official') for three name parts).
        self.shared: set[str] = set()
        self._compiled: dict[tuple, Val] = {}
        self._on_row = True  # compiling on the row itself, not inside a lambda

    def error(self, scope: Scope, message: str) -> InvalidViewError:
        return InvalidViewError(scope.where, f"`{scope.text}`: {message}")

    # ---------------------------------------------------------------- dispatch
    def compile(self, node: fp.Node, scope: Scope) -> Val:
        # The same subexpression on the same focus compiles to the same SQL, so columns that
        # repeat one (three parts of the official name) can share it (render._hoist).
        key = (node, scope.focus, scope.row_index, scope.in_lambda)
        if key not in self._compiled:
            outer, self._on_row = self._on_row, not scope.in_lambda
            try:
                self._compiled[key] = self._compile(node, scope)
            finally:
                self._on_row = outer
        return self._compiled[key]

    def _compile(self, node: fp.Node, scope: Scope) -> Val:
        from fhirflow.views import functions

        if isinstance(node, fp.Literal):
            return self.literal(node.kind, node.value, node.text)
        if isinstance(node, fp.This):
            return scope.focus
        if isinstance(node, fp.Constant):
            return self.constant(node.name, scope)
        if isinstance(node, fp.Member):
            if node.target is None and node.name == self.resource_type and (
                    scope.focus.fhir_type == node.name):
                return scope.focus
            base = scope.focus if node.target is None else self.compile(node.target, scope)
            return self.navigate(base, node.name)
        if isinstance(node, fp.Call):
            base = None if node.target is None else self.compile(node.target, scope)
            return functions.call(self, node.name, base, node.args, scope)
        if isinstance(node, fp.Index):
            return self.index(self.compile(node.target, scope), node.index, scope)
        if isinstance(node, fp.Unary):
            value = self.compile(node.operand, scope)
            if node.op == "+":
                return value
            kind = self.numeric_kind(value, scope)
            return typed(f"(- {self.as_typed(value, kind, scope)})", kind)
        if isinstance(node, fp.Binary):
            return functions.binary(self, node.op, node.left, node.right, scope)
        if isinstance(node, fp.TypeOp):
            value = self.compile(node.target, scope)
            return functions.type_operator(self, node.op, value, node.type_name, scope)
        raise self.error(scope, f"unsupported expression {type(node).__name__}")

    # --------------------------------------------------------------- terms
    def literal(self, kind: str, value: object, text: str = "") -> Val:
        if kind == "empty":
            return EMPTY
        if kind == "boolean":
            return typed(self.d.boolean(bool(value)), "boolean", "boolean")
        if kind == "integer":
            return typed(str(int(value)), "integer", "integer")  # type: ignore[call-overload]
        if kind == "decimal":
            return typed(f"cast({text or repr(value)} as double)", "decimal", "decimal")
        fhir_type = {"date": "date", "datetime": "dateTime", "time": "time"}.get(kind, "string")
        return replace(typed(self.d.string(str(value)), kind, fhir_type), value=str(value))

    def constant(self, name: str, scope: Scope) -> Val:
        if name == "rowIndex":
            return typed(scope.row_index, "integer", "integer")
        if name in ("resource", "rootResource", "context"):
            return scope.resource
        if name in self.constants:
            const = self.constants[name]
            val = self.literal(const.kind, const.value, repr(const.value))
            return replace(val, fhir_type=const.fhir_type)
        raise self.error(scope, f"undefined constant %{name}")

    def navigate(self, base: Val, name: str) -> Val:
        if base.is_empty:
            return EMPTY
        if base.choice is not None:
            base = self.any_choice(base)
        if base.typed:
            return EMPTY  # a primitive value has no child elements in JSON
        path = self.path_of(base)
        element = self.model.element(base.fhir_type, name)
        if element is not None and element.choices:
            return Val("", "json", None, path=path, choice=element, many=path.may_repeat)
        if element is None:
            nxt = path.then(Step(name, None))
            return Val("", "json", None, path=nxt, many=nxt.may_repeat)
        nxt = path.then(Step(name, element.array))
        return Val("", kind_of(element.type), element.type, path=nxt, many=nxt.may_repeat)

    def path_of(self, base: Val) -> Path:
        if base.path is not None:
            return base.path
        base = self.materialize(base)
        return Path(base.sql, base.is_list, ())

    def of_type(self, base: Val, type_name: str) -> Val:
        if base.choice is not None:
            key = base.choice.choice_key(type_name)
            if key is None or base.path is None:
                return EMPTY
            nxt = base.path.then(Step(key, False))
            return Val("", kind_of(type_name), type_name, path=nxt, many=nxt.may_repeat)
        if base.is_empty or base.fhir_type == type_name:
            return base
        if base.fhir_type is not None and base.fhir_type != "Resource":
            return EMPTY
        # An unknown value: check its JSON type at run time (primitive types only).
        json_types = {"string": ("VARCHAR",), "boolean": ("BOOLEAN",),
                      "integer": ("BIGINT", "UBIGINT"), "decimal": ("DOUBLE", "BIGINT", "UBIGINT")}
        wanted = json_types.get(kind_of(type_name))
        if wanted is None:
            return replace(self.materialize(base), fhir_type=type_name, kind=kind_of(type_name))
        items = self.as_list(base)
        var = self.d.fresh()
        kept = self.d.list_filter(items, var, self.d.json_type_is(var, wanted))
        return json_list(kept, type_name, many=base.many)

    def any_choice(self, base: Val) -> Val:
        """A choice element read without ofType(): whichever of its types is present."""
        assert base.choice is not None and base.path is not None
        keys = [key for _type, key in base.choice.choices]
        parent = base.path
        if not parent.may_repeat:
            parts = [self.d.path_scalar(parent.base, (*parent.steps, Step(k, False)), None)
                     for k in keys]
            return json_scalar(f"coalesce({', '.join(parts)})", None)
        var = self.d.fresh()
        parts = [self.d.path_scalar(var, (Step(k, False),), None) for k in keys]
        items = self.d.list_map(self.d.path_list(parent), var, f"coalesce({', '.join(parts)})")
        return json_list(items, None)

    def index(self, base: Val, index_node: fp.Node, scope: Scope) -> Val:
        index = self.compile(index_node, scope)
        if index.is_empty or base.is_empty:
            return EMPTY
        if index.kind != "integer":
            raise self.error(scope, "an indexer must be an integer")
        literal = index.sql if index.typed and index.sql.isdigit() else None
        if literal is not None and (indexed := self.index_path(base, int(literal))) is not None:
            return indexed
        if literal is not None and not base.is_list and base.path is None and not base.many:
            return self.materialize(base) if literal == "0" else EMPTY
        items = self.as_list(base)
        position = self.as_typed(index, "integer", scope)
        return Val(self.d.list_item(items, position), base.kind, base.fhir_type)

    @staticmethod
    def index_path(base: Val, position: int) -> Val | None:
        """`a.b[n]` as one path step when `a` holds one value, so that b's items are b's
        array in order; None when the collection spans several arrays."""
        path = base.path
        if (base.choice is not None or path is None or not path.steps
                or not path.steps[-1].array or path.steps[-1].index is not None
                or Path(path.base, path.base_is_list, path.steps[:-1]).may_repeat):
            return None
        last = replace(path.steps[-1], index=position)
        return replace(base, path=replace(path, steps=(*path.steps[:-1], last)), many=False)

    # ----------------------------------------------------------- conversions
    def materialize(self, v: Val) -> Val:
        if v.choice is not None:
            v = self.any_choice(v)
        if v.path is None:
            return v
        if v.path.may_repeat:
            items = self.d.path_list(v.path)
            if self._on_row:
                self.shared.add(items)
            return Val(items, v.kind, v.fhir_type, is_list=True, many=v.many)
        sql = self.d.path_scalar(v.path.base, v.path.steps, None)
        return Val(sql, v.kind, v.fhir_type)

    def as_list(self, v: Val) -> str:
        if v.is_empty:
            return self.d.empty_list()
        v = self.materialize(v)
        if v.is_list:
            return v.sql
        return self.d.list_of_singleton(self.d.to_json(v.sql) if v.typed else v.sql)

    def as_json(self, v: Val, scope: Scope) -> str:
        """One JSON value (NULL when empty); an error at run time for several."""
        if v.is_empty:
            return "null"
        v = self.materialize(v)
        if v.is_list:
            if not v.many:
                return self.d.list_first(v.sql)
            return self.d.singleton(v.sql, "a FHIRPath operand gives several values where one "
                                           "is expected")
        return self.d.to_json(v.sql) if v.typed else v.sql

    def as_typed(self, v: Val, kind: str, scope: Scope) -> str:
        """One value as a typed SQL scalar of `kind`."""
        if v.is_empty:
            return "null"
        if v.choice is None and v.path is not None and not v.path.may_repeat:
            if v.kind == "decimal" and kind == "string":
                json = self.d.path_scalar(v.path.base, v.path.steps, None)
                return self.d.json_text(json)
            return self.d.path_scalar(v.path.base, v.path.steps, kind)
        v = self.materialize(v)
        if v.typed:
            return self.convert(v.sql, v.kind, kind)
        return self.d.json_to(kind, self.as_json(v, scope))

    def convert(self, sql: str, source: str, target: str) -> str:
        if source == target or (source in _TEXTUAL and target in _TEXTUAL):
            return sql
        if target == "decimal" and source == "integer":
            return f"cast({sql} as double)"
        if target in _TEXTUAL:
            return f"cast({sql} as varchar)"
        if target == "integer" and source == "decimal":
            return f"cast({sql} as bigint)"
        return f"cast({sql} as {_SQL_SCALAR[target]})"

    def condition(self, v: Val, scope: Scope) -> str:
        """A FHIRPath value used as a boolean: true, false or NULL (empty)."""
        if v.is_empty:
            return "cast(null as boolean)"
        if v.kind == "boolean":
            return self.as_typed(v, "boolean", scope)
        if v.kind == "json":
            value = self.as_json(v, scope)
            return (f"case when {value} is null then null when "
                    f"{self.d.json_type_is(value, ('BOOLEAN',))} then "
                    f"{self.d.json_to('boolean', value)} else true end")
        # A single non-boolean item counts as true (FHIRPath's singleton evaluation).
        return f"({self.as_json(v, scope)} is not null)"

    def numeric_kind(self, v: Val, scope: Scope) -> str:
        if v.kind in _NUMERIC:
            return v.kind
        if v.kind in ("json", "empty"):
            return "decimal"
        raise self.error(scope, f"expected a number, got a {v.fhir_type or v.kind}")


_SQL_SCALAR = {"boolean": "boolean", "integer": "bigint", "decimal": "double",
               "string": "varchar"}
