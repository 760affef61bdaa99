"""FHIRPath functions and operators: the Shareable profile's subset plus a few common ones.

Functions: where, exists, empty, first, last, count, not, join, ofType, extension, select,
getResourceKey, getReferenceKey, lowBoundary, highBoundary. Operators: = != ~ !~ < <= > >=,
and or xor implies, + - * / div mod &, |, in contains, is as.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhirflow.views import fhirpath as fp
from fhirflow.views.boundaries import boundary
from fhirflow.views.values import (
    EMPTY,
    Val,
    fhir_type_name,
    json_list,
    json_scalar,
    typed,
)

if TYPE_CHECKING:
    from fhirflow.views.expressions import ExprCompiler, Scope

_NULL_BOOL = "cast(null as boolean)"
# The literal reference forms getReferenceKey() reads: [base/]Type/id[/_history/v] and
# urn:uuid:<id>, the form Synthea's bundles use. Regular expressions over reference text,
# not over FHIRPath.
_LITERAL_REF = r"(^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9.-]+)(/_history/[A-Za-z0-9.-]+)?$"
_URN_PREFIX = "urn:uuid:"


def _arity(c: ExprCompiler, scope: Scope, name: str, args: tuple, allowed: tuple[int, ...]) -> None:
    if len(args) not in allowed:
        wanted = " or ".join(str(n) for n in allowed)
        raise c.error(scope, f"{name}() takes {wanted} argument(s), got {len(args)}")


def _focus(base: Val | None, scope: Scope) -> Val:
    return scope.focus if base is None else base


def _lambda_scope(scope: Scope, item: Val) -> Scope:
    from fhirflow.views.expressions import Scope

    return Scope(item, scope.resource, scope.row_index, scope.where, scope.text, in_lambda=True)


def _item(c: ExprCompiler, v: Val, var: str) -> Val:
    return json_scalar(var, v.fhir_type) if v.kind != "empty" else EMPTY


def where(c: ExprCompiler, base: Val, criteria: fp.Node, scope: Scope) -> Val:
    if base.is_empty:
        return EMPTY
    items = c.as_list(base)
    var = c.d.fresh()
    test = c.condition(c.compile(criteria, _lambda_scope(scope, _item(c, base, var))), scope)
    return _shared(c, scope, json_list(c.d.list_filter(items, var, test), base.fhir_type,
                                       base.kind, many=base.many))


def _shared(c: ExprCompiler, scope: Scope, value: Val) -> Val:
    if not scope.in_lambda:
        c.shared.add(value.sql)
    return value


def exists(c: ExprCompiler, base: Val) -> str:
    if base.is_empty:
        return "false"
    v = c.materialize(base)
    if v.is_list:
        return f"({c.d.list_len(v.sql)} > 0)"
    return f"({v.sql} is not null)"


def call(c: ExprCompiler, name: str, base: Val | None, args: tuple[fp.Node, ...],
         scope: Scope) -> Val:
    focus = _focus(base, scope)
    if name == "where":
        _arity(c, scope, name, args, (1,))
        return where(c, focus, args[0], scope)
    if name in ("exists", "empty"):
        _arity(c, scope, name, args, (0, 1))
        target = where(c, focus, args[0], scope) if args else focus
        test = exists(c, target)
        return typed(test if name == "exists" else f"(not {test})", "boolean", "boolean")
    if name == "count":
        _arity(c, scope, name, args, (0,))
        v = c.materialize(focus)
        if v.is_empty:
            return typed("0", "integer", "integer")
        sql = c.d.list_len(v.sql) if v.is_list else f"(case when {v.sql} is null then 0 else 1 end)"
        return typed(sql, "integer", "integer")
    if name in ("first", "last", "single"):
        _arity(c, scope, name, args, (0,))
        if name == "first" and (indexed := c.index_path(focus, 0)) is not None:
            return indexed
        v = c.materialize(focus)
        if not v.is_list:
            return v
        if name == "single":
            return Val(c.as_json(v, scope), v.kind, v.fhir_type)
        pick = c.d.list_first(v.sql) if name == "first" else c.d.list_last(v.sql)
        return Val(pick, v.kind, v.fhir_type)
    if name == "not":
        _arity(c, scope, name, args, (0,))
        return typed(f"(not {c.condition(focus, scope)})", "boolean", "boolean")
    if name == "join":
        _arity(c, scope, name, args, (0, 1))
        separator = "''"
        if args:
            sep = c.compile(args[0], scope)
            if sep.kind != "string":
                raise c.error(scope, "join() takes a string separator")
            separator = c.as_typed(sep, "string", scope)
        return typed(c.d.list_join(c.as_list(focus), separator), "string", "string")
    if name in ("ofType", "as"):
        _arity(c, scope, name, args, (1,))
        return c.of_type(focus, _type_arg(c, args[0], scope))
    if name == "is":
        _arity(c, scope, name, args, (1,))
        return type_operator(c, "is", focus, fp.type_argument(args[0]) or "", scope)
    if name == "extension":
        _arity(c, scope, name, args, (1,))
        url = c.compile(args[0], scope)
        if url.kind != "string" or not url.typed:
            raise c.error(scope, "extension() takes a url string")
        extensions = c.navigate(focus, "extension")
        var = c.d.fresh()
        item = c.navigate(json_scalar(var, "Extension"), "url")
        test = f"({c.as_typed(item, 'string', scope)} = {url.sql})"
        return _shared(c, scope, json_list(c.d.list_filter(c.as_list(extensions), var, test),
                                           "Extension"))
    if name == "select":
        _arity(c, scope, name, args, (1,))
        items = c.as_list(focus)
        var = c.d.fresh()
        result = c.compile(args[0], _lambda_scope(scope, _item(c, focus, var)))
        return json_list(c.d.list_flatmap(items, var, c.as_list(result)), result.fhir_type,
                         result.kind)
    if name == "getResourceKey":
        _arity(c, scope, name, args, (0,))
        key = c.navigate(scope.resource, "id")
        return typed(c.as_typed(key, "string", scope), "string", "string")
    if name == "getReferenceKey":
        _arity(c, scope, name, args, (0, 1))
        wanted = _type_arg(c, args[0], scope) if args else None
        return reference_key(c, focus, wanted, scope)
    if name in ("lowBoundary", "highBoundary"):
        _arity(c, scope, name, args, (0,))
        return boundary(c, focus, name == "lowBoundary", scope)
    if name == "iif":
        _arity(c, scope, name, args, (2, 3))
        test = c.condition(c.compile(args[0], scope), scope)
        yes = c.compile(args[1], scope)
        no = c.compile(args[2], scope) if len(args) == 3 else EMPTY
        return Val(f"(case when {test} then {c.as_json(yes, scope)} else "
                   f"{c.as_json(no, scope)} end)", yes.kind, yes.fhir_type)
    raise c.error(scope, f"function {name}() is not supported")


def _type_arg(c: ExprCompiler, node: fp.Node, scope: Scope) -> str:
    name = fp.type_argument(node)
    if not name:
        raise c.error(scope, "expected a type name, such as Quantity or string")
    return fhir_type_name(name)


def reference_key(c: ExprCompiler, focus: Val, wanted: str | None, scope: Scope) -> Val:
    """The resource key a Reference points to: the id of `Type/id` (checked against
    `wanted`) or of `urn:uuid:id` (checked against Reference.type when present)."""
    if focus.is_empty:
        return EMPTY
    d = c.d
    if not focus.many:
        # Read the Reference once; its parts then come from the small object, not the resource.
        return typed(d.bind(c.as_json(focus, scope), lambda ref_json: _key(
            c, json_scalar(ref_json, focus.fhir_type or "Reference"), wanted, scope)),
            "string", "string")
    var = d.fresh()
    key = _key(c, json_scalar(var, focus.fhir_type or "Reference"), wanted, scope)
    return json_list(d.list_map(c.as_list(focus), var, d.to_json(key)), "string", "string")


def _key(c: ExprCompiler, item: Val, wanted: str | None, scope: Scope) -> str:
    d = c.d
    declared = c.as_typed(c.navigate(item, "type"), "string", scope)

    def key_of(ref: str) -> str:
        literal_id = d.regex_group(ref, _LITERAL_REF, 3)
        urn_id = f"nullif(substr({ref}, {len(_URN_PREFIX) + 1}), '')"
        if wanted is None:
            urn, literal = urn_id, literal_id
        else:
            want = d.string(wanted)
            urn = f"case when coalesce({declared}, {want}) = {want} then {urn_id} end"
            literal = (f"case when {d.regex_group(ref, _LITERAL_REF, 2)} = {want} "
                       f"then {literal_id} end")
        return f"(case when {ref} like '{_URN_PREFIX}%' then {urn} else {literal} end)"

    return d.bind(c.as_typed(c.navigate(item, "reference"), "string", scope), key_of)


def type_operator(c: ExprCompiler, op: str, value: Val, type_name: str, scope: Scope) -> Val:
    wanted = fhir_type_name(type_name)
    matched = c.of_type(value, wanted)
    if op == "as":
        return matched
    if value.is_empty:
        return typed(_NULL_BOOL, "boolean", "boolean")
    return typed(exists(c, matched), "boolean", "boolean")


# ------------------------------------------------------------------------- operators


def binary(c: ExprCompiler, op: str, left_node: fp.Node, right_node: fp.Node,
           scope: Scope) -> Val:
    left = c.compile(left_node, scope)
    right = c.compile(right_node, scope)
    if op in ("and", "or", "xor", "implies"):
        a, b = c.condition(left, scope), c.condition(right, scope)
        sql = {"and": f"({a} and {b})", "or": f"({a} or {b})",
               "xor": f"(({a} and not {b}) or (not {a} and {b}))",
               "implies": f"((not {a}) or {b})"}[op]
        return typed(sql, "boolean", "boolean")
    if op in ("=", "!="):
        return _equality(c, left, right, op == "!=", scope)
    if op in ("~", "!~"):
        kind = _common_kind(left, right)
        a, b = c.as_typed(left, kind, scope), c.as_typed(right, kind, scope)
        if kind in ("string", "date", "datetime", "time"):
            a, b = c.d.lower(a), c.d.lower(b)
        same = f"(({a} is null and {b} is null) or coalesce({a} = {b}, false))"
        return typed(same if op == "~" else f"(not {same})", "boolean", "boolean")
    if op in ("<", "<=", ">", ">="):
        if left.is_empty or right.is_empty:
            return typed(_NULL_BOOL, "boolean", "boolean")
        kind = _common_kind(left, right)
        a, b = c.as_typed(left, kind, scope), c.as_typed(right, kind, scope)
        return typed(f"({a} {op} {b})", "boolean", "boolean")
    if op == "|":
        items = c.d.list_distinct(c.d.list_concat(c.as_list(left), c.as_list(right)))
        same = left.fhir_type if left.fhir_type == right.fhir_type else None
        return json_list(items, same, left.kind if left.kind == right.kind else "json")
    if op in ("in", "contains"):
        item, collection = (left, right) if op == "in" else (right, left)
        if item.is_empty:
            return typed(_NULL_BOOL, "boolean", "boolean")
        found = c.d.list_contains(c.as_list(collection), c.as_json(item, scope))
        return typed(f"coalesce({found}, false)", "boolean", "boolean")
    if op == "&":
        a, b = c.as_typed(left, "string", scope), c.as_typed(right, "string", scope)
        return typed(f"(coalesce({a}, '') || coalesce({b}, ''))", "string", "string")
    if op == "+" and isinstance(left.value, str) and isinstance(right.value, str):
        return c.literal("string", left.value + right.value)  # two constants: joined once here
    return _arithmetic(c, op, left, right, scope)


def _common_kind(left: Val, right: Val) -> str:
    kinds = {left.kind, right.kind} - {"json", "empty"}
    if not kinds:
        return "string"
    if kinds <= {"integer", "decimal"}:
        return "decimal" if "decimal" in kinds else "integer"
    if len(kinds) == 1:
        return kinds.pop()
    return "string"


def _equality(c: ExprCompiler, left: Val, right: Val, negate: bool, scope: Scope) -> Val:
    if left.is_empty or right.is_empty:
        return typed(_NULL_BOOL, "boolean", "boolean")
    if left.many or right.many:
        sql = c.d.list_equal(c.as_list(left), c.as_list(right))
    else:
        kind = _common_kind(left, right)
        sql = f"({c.as_typed(left, kind, scope)} = {c.as_typed(right, kind, scope)})"
    return typed(f"(not {sql})" if negate else sql, "boolean", "boolean")


def _arithmetic(c: ExprCompiler, op: str, left: Val, right: Val, scope: Scope) -> Val:
    if left.is_empty or right.is_empty:
        return EMPTY
    if op == "+" and "string" in (left.kind, right.kind):
        a, b = c.as_typed(left, "string", scope), c.as_typed(right, "string", scope)
        return typed(f"({a} || {b})", "string", "string")
    kinds = {c.numeric_kind(left, scope), c.numeric_kind(right, scope)}
    kind = "integer" if kinds == {"integer"} and op not in ("/",) else "decimal"
    if op in ("div", "mod"):
        kind = "integer" if kinds == {"integer"} else "decimal"
    a, b = c.as_typed(left, kind, scope), c.as_typed(right, kind, scope)
    if op == "/":
        sql = f"({a} / nullif({b}, 0))"
    elif op == "div":
        sql = c.d.integer_division(a, b)
    elif op == "mod":
        sql = c.d.modulo(a, b)
    else:
        sql = f"({a} {op} {b})"
    return typed(sql, kind, "integer" if kind == "integer" else "decimal")
