"""ViewDefinition validation: every error names the element at fault, in one line."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fhirflow.views.compiler import compile_view
from fhirflow.views.definition import InvalidViewError, parse_view

BASE: dict[str, Any] = {
    "resourceType": "ViewDefinition",
    "resource": "Patient",
    "select": [{"column": [{"name": "id", "path": "id"},
                           {"name": "family", "path": "name.family.first()"}]}],
}


def view(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    doc.update(changes)
    return doc


def select(**fields: Any) -> dict[str, Any]:
    return view(select=[fields])


@pytest.mark.parametrize(("doc", "where", "message"), [
    ([], "", "must be a JSON object"),
    (view(resourceType="Patient"), "resourceType", "expected 'ViewDefinition'"),
    ({"select": BASE["select"]}, "resource", "required"),
    (view(resource="Patiant"), "resource", "'Patiant' is not a FHIR R4 resource type"),
    (view(name="1st"), "name", "must match"),
    (view(select=[]), "select", "non-empty list"),
    (view(select={"column": []}), "select", "non-empty list"),
    (select(colum=[{"name": "id", "path": "id"}]), "select[0].colum", "not an element"),
    (select(column=[{"name": "id"}]), "select[0].column[0].path", "required"),
    (select(column=[{"name": "bad-name", "path": "id"}]), "select[0].column[0].name", "must match"),
    (select(column=[{"name": "id", "path": "id", "collection": "yes"}]),
     "select[0].column[0].collection", "true or false"),
    (select(column=[{"name": "id", "path": "id"}, {"name": "id", "path": "gender"}]),
     "select[0].column[1].name", "already defined"),
    (view(select=[{"column": [{"name": "id", "path": "id"}]},
                  {"column": [{"name": "id", "path": "gender"}]}]),
     "select[1].column[0].name", "already defined at select[0].column[0]"),
    (select(forEach="name", forEachOrNull="address", column=[{"name": "id", "path": "id"}]),
     "select[0]", "at most one of forEach, forEachOrNull, repeat"),
    (select(repeat="item", column=[{"name": "id", "path": "id"}]), "select[0].repeat",
     "non-empty list"),
    (select(forEach="name"), "select[0]", "no column, select or unionAll"),
    (select(unionAll=[{"column": [{"name": "a", "path": "id"}]},
                      {"column": [{"name": "b", "path": "id"}]}]),
     "select[0].unionAll[1]", "same columns in the same order"),
    (select(column=[{"name": "x", "path": "name.("}]), "select[0].column[0].path",
     "`name.(`: expected a name at 6"),
    (view(constant=[{"name": "c"}]), "constant[0]", "exactly one value[x], found 0"),
    (view(constant=[{"name": "c", "valueString": "a", "valueCode": "b"}]), "constant[0]",
     "found 2"),
    (view(constant=[{"name": "c", "valueQuantity": {}}]), "constant[0].valueQuantity",
     "not an allowed constant type"),
    (view(constant=[{"name": "c", "valueInteger": "1"}]), "constant[0].valueInteger",
     "not a valid integer"),
    (view(constant=[{"name": "c", "valueString": "a"}, {"name": "c", "valueString": "b"}]),
     "constant[1].name", "defined twice"),
    (view(where={"path": "active"}), "where", "must be a list"),
    (view(where=[{"path": 3}]), "where[0].path", "must be a FHIRPath string, got int"),
    (select(column=[{"name": "id", "path": "id", "tag": [{"name": "ansi/type"}]}]),
     "select[0].column[0].tag[0]", "string name and value"),
])
def test_structure_errors_name_the_element(doc: Any, where: str, message: str) -> None:
    with pytest.raises(InvalidViewError) as caught:
        parse_view(doc)
    assert caught.value.where == where
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(("doc", "where", "message"), [
    (select(column=[{"name": "x", "path": "name.where(use = %nope)"}]),
     "select[0].column[0].path", "undefined constant %nope"),
    (select(column=[{"name": "x", "path": "name.family.soundex()"}]),
     "select[0].column[0].path", "function soundex() is not supported"),
    (select(column=[{"name": "x", "path": "name.first(1)"}]),
     "select[0].column[0].path", "first() takes 0 argument(s), got 1"),
    (select(column=[{"name": "x", "path": "birthDate * 2"}]),
     "select[0].column[0].path", "expected a number"),
    (select(column=[{"name": "x", "path": "gender.lowBoundary()"}]),
     "select[0].column[0].path", "lowBoundary() needs a decimal"),
    (view(where=[{"path": "name.given"}]), "where[0].path", "gives string values"),
    (select(forEach="'constant'", column=[{"name": "x", "path": "$this"}]), "select[0].forEach",
     "must select elements"),
    (select(column=[{"name": "x", "path": "id", "tag": [{"name": "ansi/type", "value": "MONEY"}]}]),
     "select[0].column[0].tag", "ansi/type 'MONEY'"),
    (select(unionAll=[{"column": [{"name": "a", "path": "active"}]},
                      {"column": [{"name": "a", "path": "gender"}]}]),
     "select[0].unionAll[1].column[0].path", "is varchar here but boolean"),
])
def test_expression_errors_name_the_element(doc: Any, where: str, message: str) -> None:
    for dialect in ("duckdb", "snowflake"):
        with pytest.raises(InvalidViewError) as caught:
            compile_view(doc, dialect)
        assert caught.value.where == where, str(caught.value)
        assert message in str(caught.value)


def test_columns_in_output_order() -> None:
    doc = view(select=[
        {"column": [{"name": "a", "path": "id"}],
         "select": [{"forEach": "name", "column": [{"name": "b", "path": "family"}]}],
         "unionAll": [{"column": [{"name": "c", "path": "gender"}]},
                      {"column": [{"name": "c", "path": "id"}]}]},
        {"column": [{"name": "d", "path": "birthDate"}]},
    ])
    assert parse_view(doc).column_names == ["a", "b", "c", "d"]


def test_extension_elements_are_allowed() -> None:
    doc = select(column=[{"name": "id", "path": "id", "extension": [{"url": "x"}]}])
    assert parse_view(doc).column_names == ["id"]
