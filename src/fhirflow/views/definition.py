"""ViewDefinition JSON -> checked dataclasses, or an error that names the offending element.

Checks the structure of the SQL on FHIR v2 logical model (required elements, types, the
`sql-name` and `sql-expressions` invariants), parses every FHIRPath expression, and applies
the specification's ValidateColumns step: column names unique across the view, and every
`unionAll` branch producing the same column names in the same order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fhirflow.errors import ConfigError
from fhirflow.views.fhir_model import load_model
from fhirflow.views.fhirpath import FhirPathSyntaxError, Node, parse

# The `sql-name` invariant of the specification (a regular expression over a name, not
# over FHIRPath).
_SQL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

# value[x] types a constant may have, and the FHIRPath literal kind each becomes.
CONSTANT_TYPES = {
    "valueBase64Binary": ("base64Binary", "string"),
    "valueBoolean": ("boolean", "boolean"),
    "valueCanonical": ("canonical", "string"),
    "valueCode": ("code", "string"),
    "valueDate": ("date", "date"),
    "valueDateTime": ("dateTime", "datetime"),
    "valueDecimal": ("decimal", "decimal"),
    "valueId": ("id", "string"),
    "valueInstant": ("instant", "datetime"),
    "valueInteger": ("integer", "integer"),
    "valueInteger64": ("integer64", "integer"),
    "valueOid": ("oid", "string"),
    "valuePositiveInt": ("positiveInt", "integer"),
    "valueString": ("string", "string"),
    "valueTime": ("time", "time"),
    "valueUnsignedInt": ("unsignedInt", "integer"),
    "valueUri": ("uri", "string"),
    "valueUrl": ("url", "string"),
    "valueUuid": ("uuid", "string"),
}
_PY_TYPES = {"boolean": (bool,), "integer": (int,), "decimal": (int, float)}
# Elements every FHIR element may carry besides its own.
_ANY_ELEMENT = {"id", "extension", "modifierExtension"}
_SELECT_KEYS = {"column", "select", "forEach", "forEachOrNull", "repeat", "unionAll"}
_COLUMN_KEYS = {"name", "path", "description", "collection", "type", "tag"}


class InvalidViewError(ConfigError):
    """A ViewDefinition that cannot be run; the message names the element (exit code 2)."""

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        super().__init__(f"invalid view: {where}: {message}" if where
                         else f"invalid view: {message}")


@dataclass(frozen=True)
class Expression:
    text: str
    ast: Node
    where: str  # location in the view, for error messages


@dataclass(frozen=True)
class Column:
    name: str
    path: Expression
    collection: bool
    type: str | None
    description: str | None
    tags: tuple[tuple[str, str], ...]
    where: str

    @property
    def ansi_type(self) -> str | None:
        for name, value in self.tags:
            if name == "ansi/type":
                return value
        return None


@dataclass(frozen=True)
class Select:
    columns: tuple[Column, ...]
    selects: tuple[Select, ...]
    union_all: tuple[Select, ...]
    for_each: Expression | None
    for_each_or_null: Expression | None
    repeat: tuple[Expression, ...]
    where: str

    @property
    def iterates(self) -> bool:
        return bool(self.for_each or self.for_each_or_null or self.repeat)


@dataclass(frozen=True)
class ConstantDef:
    name: str
    fhir_type: str
    kind: str
    value: object


@dataclass(frozen=True)
class View:
    resource: str
    name: str | None
    title: str | None
    description: str | None
    constants: dict[str, ConstantDef]
    selects: tuple[Select, ...]
    where: tuple[Expression, ...]
    columns: tuple[Column, ...] = field(default=())  # in output order

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def parse_view(doc: Any) -> View:
    """Check a ViewDefinition (parsed JSON) and return it; InvalidViewError otherwise."""
    if not isinstance(doc, dict):
        raise InvalidViewError("", "a ViewDefinition must be a JSON object")
    if doc.get("resourceType", "ViewDefinition") != "ViewDefinition":
        raise InvalidViewError("resourceType",
                               f"expected 'ViewDefinition', got {doc['resourceType']!r}")
    resource = doc.get("resource")
    if resource is None:
        raise InvalidViewError("resource", "required (the FHIR resource type the view reads)")
    if not isinstance(resource, str) or not load_model().is_resource(resource):
        raise InvalidViewError("resource", f"{resource!r} is not a FHIR R4 resource type")
    name = _optional_str(doc, "name", "name")
    if name is not None and not _SQL_NAME.match(name):
        raise InvalidViewError("name", f"{name!r} must match ^[A-Za-z][A-Za-z0-9_]*$")
    constants = _constants(doc.get("constant", []))
    selects = doc.get("select")
    if not isinstance(selects, list) or not selects:
        raise InvalidViewError("select", "required: a non-empty list of select structures")
    parsed = tuple(_select(s, f"select[{i}]") for i, s in enumerate(selects))
    where = doc.get("where", [])
    if not isinstance(where, list):
        raise InvalidViewError("where", "must be a list of {path}")
    filters = []
    for i, item in enumerate(where):
        loc = f"where[{i}]"
        if not isinstance(item, dict):
            raise InvalidViewError(loc, "must be an object with a path")
        _no_unknown(item, {"path", "description"}, loc)
        filters.append(_expression(item.get("path"), f"{loc}.path", required=True))
    columns = _validate_columns(parsed)
    return View(resource=resource, name=name, title=_optional_str(doc, "title", "title"),
                description=_optional_str(doc, "description", "description"),
                constants=constants, selects=parsed, where=tuple(filters), columns=columns)


def _optional_str(doc: dict, key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidViewError(where, f"must be a string, got {type(value).__name__}")
    return value


def _no_unknown(doc: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(doc) - allowed - _ANY_ELEMENT)
    if unknown:
        raise InvalidViewError(f"{where}.{unknown[0]}", "is not an element of ViewDefinition")


def _expression(text: Any, where: str, *, required: bool = False) -> Expression:
    if text is None and required:
        raise InvalidViewError(where, "required")
    if not isinstance(text, str):
        raise InvalidViewError(where, f"must be a FHIRPath string, got {type(text).__name__}")
    try:
        return Expression(text, parse(text), where)
    except FhirPathSyntaxError as exc:
        raise InvalidViewError(where, f"`{text}`: {exc}") from None


def _constants(items: Any) -> dict[str, ConstantDef]:
    if not isinstance(items, list):
        raise InvalidViewError("constant", "must be a list")
    out: dict[str, ConstantDef] = {}
    for i, item in enumerate(items):
        loc = f"constant[{i}]"
        if not isinstance(item, dict):
            raise InvalidViewError(loc, "must be an object with a name and a value[x]")
        name = item.get("name")
        if not isinstance(name, str) or not _SQL_NAME.match(name):
            raise InvalidViewError(f"{loc}.name", f"{name!r} must match ^[A-Za-z][A-Za-z0-9_]*$")
        values = [k for k in item if k.startswith("value")]
        if len(values) != 1:
            raise InvalidViewError(loc, f"constant {name!r} needs exactly one value[x], "
                                        f"found {len(values)}")
        key = values[0]
        if key not in CONSTANT_TYPES:
            raise InvalidViewError(f"{loc}.{key}", "is not an allowed constant type")
        _no_unknown(item, {"name", key}, loc)
        fhir_type, kind = CONSTANT_TYPES[key]
        value = item[key]
        expected = _PY_TYPES.get(kind, (str,))
        if not isinstance(value, expected) or (kind != "boolean" and isinstance(value, bool)):
            raise InvalidViewError(f"{loc}.{key}", f"{value!r} is not a valid {fhir_type}")
        if name in out:
            raise InvalidViewError(f"{loc}.name", f"constant {name!r} is defined twice")
        out[name] = ConstantDef(name, fhir_type, kind, value)
    return out


def _select(doc: Any, where: str) -> Select:
    if not isinstance(doc, dict):
        raise InvalidViewError(where, "a select must be an object")
    _no_unknown(doc, _SELECT_KEYS, where)
    iterations = [k for k in ("forEach", "forEachOrNull", "repeat") if k in doc]
    if len(iterations) > 1:
        raise InvalidViewError(where, f"has both {iterations[0]} and {iterations[1]}; "
                                      "at most one of forEach, forEachOrNull, repeat")
    for_each = for_each_or_null = None
    if "forEach" in doc:
        for_each = _expression(doc["forEach"], f"{where}.forEach", required=True)
    if "forEachOrNull" in doc:
        for_each_or_null = _expression(doc["forEachOrNull"], f"{where}.forEachOrNull",
                                       required=True)
    repeat: tuple[Expression, ...] = ()
    if "repeat" in doc:
        paths = doc["repeat"]
        if not isinstance(paths, list) or not paths:
            raise InvalidViewError(f"{where}.repeat",
                                   "must be a non-empty list of FHIRPath strings")
        repeat = tuple(_expression(p, f"{where}.repeat[{i}]", required=True)
                       for i, p in enumerate(paths))
    columns = tuple(_column(c, f"{where}.column[{i}]")
                    for i, c in enumerate(_list(doc, "column", where)))
    selects = tuple(_select(s, f"{where}.select[{i}]")
                    for i, s in enumerate(_list(doc, "select", where)))
    union_all = tuple(_select(s, f"{where}.unionAll[{i}]")
                      for i, s in enumerate(_list(doc, "unionAll", where)))
    if not (columns or selects or union_all):
        raise InvalidViewError(where, "has no column, select or unionAll")
    return Select(columns, selects, union_all, for_each, for_each_or_null, repeat, where)


def _list(doc: dict, key: str, where: str) -> list:
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise InvalidViewError(f"{where}.{key}", "must be a list")
    return value


def _column(doc: Any, where: str) -> Column:
    if not isinstance(doc, dict):
        raise InvalidViewError(where, "a column must be an object with a name and a path")
    _no_unknown(doc, _COLUMN_KEYS, where)
    name = doc.get("name")
    if not isinstance(name, str) or not _SQL_NAME.match(name):
        raise InvalidViewError(f"{where}.name", f"{name!r} must match ^[A-Za-z][A-Za-z0-9_]*$")
    path = _expression(doc.get("path"), f"{where}.path", required=True)
    collection = doc.get("collection", False)
    if not isinstance(collection, bool):
        raise InvalidViewError(f"{where}.collection", "must be true or false")
    col_type = doc.get("type")
    if col_type is not None and not isinstance(col_type, str):
        raise InvalidViewError(f"{where}.type", "must be a FHIR type name")
    tags = []
    for i, tag in enumerate(_list(doc, "tag", where)):
        if not (isinstance(tag, dict) and isinstance(tag.get("name"), str)
                and isinstance(tag.get("value"), str)):
            raise InvalidViewError(f"{where}.tag[{i}]", "must have a string name and value")
        tags.append((tag["name"], tag["value"]))
    description = doc.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidViewError(f"{where}.description", "must be a string")
    return Column(name, path, collection, col_type, description, tuple(tags), where)


def _validate_columns(selects: tuple[Select, ...]) -> tuple[Column, ...]:
    """The view's columns in output order; errors for duplicates and unequal union branches."""
    seen: dict[str, Column] = {}
    ordered: list[Column] = []

    def add(column: Column) -> None:
        if column.name in seen:
            raise InvalidViewError(f"{column.where}.name",
                                   f"column {column.name!r} is already defined at "
                                   f"{seen[column.name].where}")
        seen[column.name] = column
        ordered.append(column)

    for select in selects:
        for column in select_columns(select):
            add(column)
    return tuple(ordered)


def select_columns(select: Select) -> list[Column]:
    """Columns a select produces, in order: its own, its selects', then its unionAll's."""
    out = list(select.columns)
    for child in select.selects:
        out.extend(select_columns(child))
    if select.union_all:
        first = select_columns(select.union_all[0])
        names = [c.name for c in first]
        for branch in select.union_all[1:]:
            other = [c.name for c in select_columns(branch)]
            if other != names:
                raise InvalidViewError(branch.where,
                                       "unionAll branches must have the same columns in the "
                                       f"same order: {names} vs {other}")
        out.extend(first)
    names_here: set[str] = set()
    for column in out:
        if column.name in names_here:
            raise InvalidViewError(f"{column.where}.name",
                                   f"column {column.name!r} is already defined")
        names_here.add(column.name)
    return out
