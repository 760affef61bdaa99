"""What a compiled FHIRPath (sub)expression is: SQL text plus what the compiler knows of it.

FHIRPath values are collections. In SQL a collection is either a scalar (when the model says
it holds at most one item; NULL is the empty collection) or a list of JSON items (DuckDB
`JSON[]`, Snowflake `ARRAY`). Navigation stays symbolic (`Path`) until something needs SQL,
so `name.given` becomes one JSON extraction rather than one call per step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fhirflow.views.fhir_model import Element

STRING_TYPES = frozenset({
    "string", "code", "id", "uri", "url", "canonical", "oid", "uuid", "markdown",
    "base64Binary", "xhtml",
})
_KINDS = {
    "boolean": "boolean",
    "integer": "integer", "positiveInt": "integer", "unsignedInt": "integer",
    "integer64": "integer",
    "decimal": "decimal",
    "date": "date", "dateTime": "datetime", "instant": "datetime", "time": "time",
}
# FHIRPath's System types, as written in ofType()/is/as.
SYSTEM_TYPES = {
    "String": "string", "Boolean": "boolean", "Integer": "integer", "Decimal": "decimal",
    "Date": "date", "DateTime": "dateTime", "Time": "time", "Long": "integer64",
}

def kind_of(fhir_type: str | None) -> str:
    """The FHIRPath kind of a FHIR type: how its values are compared and output."""
    if fhir_type is None:
        return "json"
    if fhir_type in STRING_TYPES:
        return "string"
    return _KINDS.get(fhir_type, "json")


def fhir_type_name(written: str) -> str:
    """`FHIR.Quantity` -> Quantity, `System.String` -> string, `string` -> string."""
    if written.startswith("FHIR."):
        return written[5:]
    if written.startswith("System."):
        return SYSTEM_TYPES.get(written[7:], written[7:])
    return written


@dataclass(frozen=True)
class Step:
    key: str
    array: bool | None  # None: not in the model, may or may not repeat
    index: int | None = None  # a literal indexer applied to this (array) step


@dataclass(frozen=True)
class Path:
    """`base` (SQL of one JSON value, or of a JSON list when `base_is_list`) then steps."""

    base: str
    base_is_list: bool
    steps: tuple[Step, ...]

    def then(self, step: Step) -> Path:
        return replace(self, steps=(*self.steps, step))

    @property
    def may_repeat(self) -> bool:
        return self.base_is_list or any(s.array is not False and s.index is None
                                        for s in self.steps)


@dataclass(frozen=True)
class Val:
    """One compiled expression.

    sql:       SQL text (unused while `path` or `choice` is pending)
    kind:      FHIRPath kind of the items: string, boolean, integer, decimal, date,
               datetime, time, json (a complex or unknown value), empty (`{}`)
    fhir_type: FHIR type of the items when the model knows it
    is_list:   sql is a list of JSON items rather than a scalar
    many:      the collection may hold more than one item
    typed:     (scalars) sql is a typed SQL value (VARCHAR, BOOLEAN...), not JSON
    path:      pending navigation, materialised by the dialect when needed
    choice:    a choice element (`value[x]`) waiting for ofType(); `path` leads to its parent
    value:     the Python value of a literal or a constant (for folding)
    """

    sql: str
    kind: str
    fhir_type: str | None = None
    is_list: bool = False
    many: bool = False
    typed: bool = False
    path: Path | None = None
    choice: Element | None = None
    value: object = None  # the Python value of a literal or constant

    @property
    def is_empty(self) -> bool:
        return self.kind == "empty"


EMPTY = Val("null", "empty")


def typed(sql: str, kind: str, fhir_type: str | None = None) -> Val:
    return Val(sql, kind, fhir_type, typed=True)


def json_scalar(sql: str, fhir_type: str | None) -> Val:
    return Val(sql, kind_of(fhir_type), fhir_type)


def json_list(sql: str, fhir_type: str | None, kind: str | None = None,
              many: bool = True) -> Val:
    return Val(sql, kind or kind_of(fhir_type), fhir_type, is_list=True, many=many)
