"""What the compiler does beyond the HL7 suite, run on DuckDB, and the shape of its SQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import duckdb
import pytest

from fhirflow.views.compiler import compile_view
from fhirflow.views.engines import DuckDBEngine
from fhirflow.views.plan import REPEAT_DEPTH

PATIENT = {
    "resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1970-06",
    "name": [{"use": "official", "family": "Smith", "given": ["Ann", "Marie"]},
             {"use": "maiden", "family": "Jones", "given": ["Ann"]}],
    "link": [
        {"other": {"reference": "urn:uuid:p2"}},
        {"other": {"reference": "urn:uuid:p3", "type": "RelatedPerson"}},
        {"other": {"reference": "https://example.org/fhir/Patient/p4/_history/2"}},
        {"other": {"reference": "Patient?identifier=urn:oid:1|5"}},
        {"other": {"reference": "#contained"}},
    ],
}
ENCOUNTER = {"resourceType": "Encounter", "id": "e1", "status": "finished",
             "class": {"code": "AMB"},
             "period": {"start": "2010-10-10T10:20:30.5+02:00", "end": "2010-10-10"}}
OBSERVATION = {"resourceType": "Observation", "id": "o1", "status": "final",
               "code": {"text": "t"}, "valueString": "high"}
DEVICE = {"resourceType": "Device", "id": "d1",
          "udiCarrier": [{"carrierAIDC": "aGVsbG8=", "deviceIdentifier": "1.587"}]}


def run(columns: list[dict[str, Any]], resource: str = "Patient",
        resources: list[dict] | None = None, **view: Any) -> list[dict[str, Any]]:
    doc = {"resource": resource, "select": [{"column": columns}], **view}
    con = duckdb.connect()
    try:
        engine = DuckDBEngine(con)
        engine.load(resources or [PATIENT, ENCOUNTER, OBSERVATION, DEVICE])
        return list(engine.rows(compile_view(doc, "duckdb")))
    finally:
        con.close()


def one(path: str, resource: str = "Patient", **column: Any) -> Any:
    (row,) = run([{"name": "v", "path": path, **column}], resource)
    return row["v"]


@pytest.mark.parametrize(("path", "value"), [
    # urn:uuid (Synthea's references): the id, when no type or a matching type is declared
    ("link.other.getReferenceKey()", ["p2", "p3", "p4"]),
    ("link.other.getReferenceKey(Patient)", ["p2", "p4"]),
    # an untyped urn:uuid names no type, so it cannot be ruled out
    ("link.other.getReferenceKey(RelatedPerson)", ["p2", "p3"]),
    ("link.other.getReferenceKey(Observation)", ["p2"]),
])
def test_reference_keys(path: str, value: list[str]) -> None:
    assert one(path, collection=True) == value


@pytest.mark.parametrize(("path", "value"), [
    ("Patient.name.family.first()", "Smith"),
    ("name.given.count()", 3),
    ("name.last().family", "Jones"),
    ("(name.given | name.given).count()", 2),
    ("'Ann' in name.given", True),
    ("name.given contains 'Bob'", False),
    ("iif(gender = 'female', 'F', 'M')", "F"),
    ("name.exists(use = 'maiden')", True),
    ("name.where(use = 'nickname').empty()", True),
    ("{}.exists()", False),
    ("gender = {}", None),
    ("gender ~ 'FEMALE'", True),
    ("gender !~ 'male'", True),
    ("7 div 2", 3),
    ("7 mod 2", 1),
    ("7 / 2", 3.5),
    ("gender & '-' & {}", "female-"),
    ("'a' + 'b'", "ab"),
    ("-(2 * 3)", -6),
    ("name.select(given.first()).join('/')", "Ann/Ann"),
    ("name[1].given[0]", "Ann"),
    ("gender.first()[0 + 0]", "female"),  # an index computed at run time, on one value
    ("'abc'[1 - 1]", "abc"),
    ("name.family[1]", "Jones"),
    ("birthDate.lowBoundary()", "1970-06-01"),
    ("birthDate.highBoundary()", "1970-06-30"),
    ("nonsense.element", None),
    ("%resource.id", "p1"),
    ("gender is code", True),
    ("gender.is(string)", False),
    ("(gender as code).length", None),
])
def test_fhirpath_on_a_patient(path: str, value: Any) -> None:
    assert one(path) == value


@pytest.mark.parametrize(("path", "value"), [
    ("period.lowBoundary()", "2010-10-10T10:20:30.500+02:00"),
    ("period.highBoundary()", "2010-10-10T23:59:59.999-12:00"),
    ("period.start.highBoundary()", "2010-10-10T10:20:30.599+02:00"),
    ("class.code = 'AMB' and status = 'finished'", True),
])
def test_fhirpath_on_an_encounter(path: str, value: Any) -> None:
    assert one(path, "Encounter") == value


def test_a_choice_read_without_oftype() -> None:
    assert one("value", "Observation", type="string") == "high"


def test_decimal_boundaries_follow_the_written_precision() -> None:
    con = duckdb.connect()
    engine = DuckDBEngine(con)
    engine.load([{"resourceType": "Observation", "id": "o", "status": "final", "code": {},
                  "valueQuantity": {"value": 1.587}}])
    doc = {"resource": "Observation", "select": [{"column": [
        {"name": "low", "path": "value.ofType(Quantity).value.lowBoundary()"},
        {"name": "high", "path": "value.ofType(Quantity).value.highBoundary()"}]}]}
    (row,) = engine.rows(compile_view(doc, "duckdb"))
    assert row["low"] == pytest.approx(1.5865) and row["high"] == pytest.approx(1.5875)


@pytest.mark.parametrize(("ansi", "path", "value"), [
    ("DATE", "'1978-03-12'", dt.date(1978, 3, 12)),
    ("DATE", "birthDate", None),  # a partial date is no DATE: null, not an error
    ("INTEGER", "'12'", 12),
    ("DECIMAL(10,2)", "7 / 2", Decimal("3.50")),
    ("CHARACTER VARYING", "name.given.count()", "3"),
    ("TIMESTAMP WITH TIME ZONE", "'2015-02-07T13:28:17.239+02:00'",
     dt.datetime(2015, 2, 7, 11, 28, 17, 239000, tzinfo=dt.UTC)),
])
def test_ansi_type_tags_cast(ansi: str, path: str, value: Any) -> None:
    con = duckdb.connect()  # without the icu extension, DuckDB keeps time zones in UTC
    engine = DuckDBEngine(con)
    engine.load([PATIENT])
    doc = {"resource": "Patient", "select": [{"column": [
        {"name": "v", "path": path, "tag": [{"name": "ansi/type", "value": ansi}]}]}]}
    compiled = compile_view(doc, "duckdb")
    (row,) = con.execute(compiled.sql).fetchall()
    assert row[0] == value


def test_base64_binary_as_binary() -> None:
    con = duckdb.connect()
    engine = DuckDBEngine(con)
    engine.load([DEVICE])
    doc = {"resource": "Device", "select": [{"column": [
        {"name": "v", "path": "udiCarrier.carrierAIDC.first()", "type": "base64Binary",
         "tag": [{"name": "ansi/type", "value": "BINARY"}]}]}]}
    assert con.execute(compile_view(doc, "duckdb").sql).fetchone()[0] == b"hello"


def test_collection_columns_are_lists_even_when_empty() -> None:
    rows = run([{"name": "id", "path": "id"},
                {"name": "nicknames", "path": "name.where(use = 'nickname').given",
                 "collection": True},
                {"name": "given", "path": "name.given", "collection": True}])
    assert rows == [{"id": "p1", "nicknames": [], "given": ["Ann", "Marie", "Ann"]}]


def test_several_values_without_collection_is_an_error_naming_the_column() -> None:
    with pytest.raises(duckdb.Error, match="column 'given'.*set \"collection\": true"):
        run([{"name": "given", "path": "name.given"}])


def nested_items(depth: int) -> dict[str, Any]:
    item: dict[str, Any] = {"linkId": str(depth)}
    for level in range(depth - 1, 0, -1):
        item = {"linkId": str(level), "item": [item]}
    return {"resourceType": "QuestionnaireResponse", "id": "q", "status": "completed",
            "item": [item]}


def test_repeat_goes_as_deep_as_its_limit_and_fails_beyond() -> None:
    doc = {"resource": "QuestionnaireResponse",
           "select": [{"repeat": ["item"], "column": [{"name": "link", "path": "linkId"},
                                                      {"name": "i", "path": "%rowIndex"}]}]}
    con = duckdb.connect()
    engine = DuckDBEngine(con)
    engine.load([nested_items(REPEAT_DEPTH)])
    rows = list(engine.rows(compile_view(doc, "duckdb")))
    assert [(r["link"], r["i"]) for r in rows] == [(str(n), n - 1) for n in range(1,
                                                                                  REPEAT_DEPTH + 1)]
    engine.load([nested_items(REPEAT_DEPTH + 1)])
    with pytest.raises(duckdb.Error, match=f"deeper than {REPEAT_DEPTH} levels"):
        list(engine.rows(compile_view(doc, "duckdb")))


def test_where_on_a_value_of_unknown_type() -> None:
    rows = run([{"name": "id", "path": "id"}], where=[{"path": "undeclared"}],
               resources=[{**PATIENT, "undeclared": True}, {**PATIENT, "id": "p2"}])
    assert rows == [{"id": "p1"}]


# ------------------------------------------------------------------ the SQL itself

FOR_EACH = {"resource": "Patient", "select": [
    {"column": [{"name": "id", "path": "getResourceKey()"}]},
    {"forEach": "name", "column": [{"name": "family", "path": "family"}]},
]}
OR_NULL = {"resource": "Patient", "select": [
    {"forEachOrNull": "address", "column": [{"name": "city", "path": "city"}]}]}
UNION = {"resource": "Patient", "select": [{"unionAll": [
    {"forEach": "telecom", "column": [{"name": "v", "path": "value"}]},
    {"forEach": "contact.telecom", "column": [{"name": "v", "path": "value"}]}]}]}


def test_duckdb_unnests_in_the_select_list_not_in_lateral_joins() -> None:
    sql = compile_view(FOR_EACH, "duckdb").sql
    assert "unnest(_l1) as _v1" in sql and "json_extract(_resource, '$.name[*]')" in sql
    assert "lateral" not in sql.lower()


def test_snowflake_uses_one_from_clause_of_lateral_flattens() -> None:
    sql = compile_view(FOR_EACH, "snowflake").sql
    assert "lateral flatten(input => r.resource:name) as f1" in sql
    assert "outer" not in sql and "select" not in sql[len("select"):]
    or_null = compile_view(OR_NULL, "snowflake").sql
    assert "outer => true" in or_null and "case when not (f1.index is null)" in or_null
    union = compile_view(UNION, "snowflake").sql
    assert "lateral flatten(input => array_construct(0, 1)) as u1" in union
    assert "iff(u1.index = 0," in union


def test_snowflake_string_literals_survive_backslashes_and_quotes() -> None:
    sqlglot = pytest.importorskip("sqlglot")
    from sqlglot import exp

    text = "a\\b'c"
    doc = {"resource": "Patient", "constant": [{"name": "c", "valueString": text}],
           "select": [{"column": [{"name": "v", "path": "%c"}]}]}
    tree = sqlglot.parse_one(compile_view(doc, "snowflake").sql, read="snowflake")
    assert text in [lit.this for lit in tree.find_all(exp.Literal)]
    (row,) = run([{"name": "v", "path": "%c"}], constant=doc["constant"])
    assert row["v"] == text


def test_snowflake_raises_for_several_values_with_the_column_in_the_message() -> None:
    doc = {"resource": "Patient", "select": [{"column": [{"name": "given", "path": "name.given"}]}]}
    sql = compile_view(doc, "snowflake").sql
    assert "to_number('fhirflow: column \\'given\\'" in sql
