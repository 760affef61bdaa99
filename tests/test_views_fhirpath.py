"""The FHIRPath lexer and recursive-descent parser (views/fhirpath.py)."""

from __future__ import annotations

import pytest

from fhirflow.views.fhirpath import (
    Binary,
    Call,
    Constant,
    FhirPathSyntaxError,
    Index,
    Literal,
    Member,
    This,
    TypeOp,
    Unary,
    parse,
    tokenize,
    type_argument,
)


def test_path_with_function_and_member() -> None:
    assert parse("name.where(use = 'official').family") == Member(
        Call(Member(None, "name"), "where",
             (Binary("=", Member(None, "use"), Literal("string", "official", "official")),)),
        "family")


@pytest.mark.parametrize(("text", "shape"), [
    # multiplicative binds tighter than additive, additive tighter than comparison
    ("a + b * c > d", ">(+(a,*(b,c)),d)"),
    ("a - b - c", "-(-(a,b),c)"),
    # and binds tighter than or, implies is loosest
    ("a or b and c implies d", "implies(or(a,and(b,c)),d)"),
    ("a = b and c != d", "and(=(a,b),!=(c,d))"),
    ("a | b = c", "=(|(a,b),c)"),
    ("a in b and c contains d", "and(in(a,b),contains(c,d))"),
    ("a xor b or c", "or(xor(a,b),c)"),
    ("(a or b) and c", "and(or(a,b),c)"),
    ("a <= b", "<=(a,b)"),
    ("a ~ b", "~(a,b)"),
    ("a & b", "&(a,b)"),
    ("a div b mod c", "mod(div(a,b),c)"),
])
def test_operator_precedence(text: str, shape: str) -> None:
    def show(node: object) -> str:
        if isinstance(node, Binary):
            return f"{node.op}({show(node.left)},{show(node.right)})"
        assert isinstance(node, Member) and node.target is None
        return node.name

    assert show(parse(text)) == shape


def test_literals() -> None:
    with pytest.raises(FhirPathSyntaxError):  # FHIRPath escapes quotes with \, not ''
        parse("'it''s'")
    assert parse(r"'it\'s \u0041\n'") == Literal("string", "it's A\n", "it's A\n")
    assert parse("42") == Literal("integer", 42, "42")
    assert parse("1.50") == Literal("decimal", 1.5, "1.50")
    assert parse("true") == Literal("boolean", True, "true")
    assert parse("{}") == Literal("empty", None, "{}")
    assert parse("@2020-01") == Literal("date", "2020-01", "2020-01")
    assert parse("@2020-01-02T10:00:00+02:00").kind == "datetime"
    assert parse("@T12:30") == Literal("time", "12:30", "T12:30")
    assert parse("-5") == Unary("-", Literal("integer", 5, "5"))


def test_constants_this_index_and_types() -> None:
    assert parse("%rowIndex") == Constant("rowIndex")
    assert parse("%`my const`") == Constant("my const")
    assert parse("$this") == This()
    assert parse("name[%i]") == Index(Member(None, "name"), Constant("i"))
    assert parse("value is FHIR.Quantity") == TypeOp("is", Member(None, "value"), "FHIR.Quantity")
    call = parse("value.ofType(System.String)")
    assert isinstance(call, Call) and type_argument(call.args[0]) == "System.String"
    assert parse("`given name`.first()") == Call(Member(None, "given name"), "first", ())


def test_comments_and_whitespace_are_ignored() -> None:
    assert parse("name /* all */ .family // last") == Member(Member(None, "name"), "family")


@pytest.mark.parametrize(("text", "message"), [
    ("@@", "unexpected '@' at 1"),
    ("name.", "expected a name at 6, found end of expression"),
    ("a +", "expected a name at 4"),
    ("'open", "unterminated string at 1"),
    ("name[0", "expected ']' at 7"),
    ("where(a,", "expected a name at 9"),
    ("a b", "unexpected input at 3, found 'b'"),
    ("$index", "$index is not supported"),
    ("", "empty expression"),
    ("a # b", "unexpected '#' at 3"),
    (r"'\q'", "bad escape"),
])
def test_syntax_errors_say_where(text: str, message: str) -> None:
    with pytest.raises(FhirPathSyntaxError) as caught:
        parse(text)
    assert message in str(caught.value)


def test_not_a_string() -> None:
    with pytest.raises(FhirPathSyntaxError, match="expected a string, got int"):
        parse(1)  # type: ignore[arg-type]


def test_tokens_keep_positions() -> None:
    tokens = tokenize("a.b >= 1.5")
    assert [(t.kind, t.text, t.pos) for t in tokens] == [
        ("ident", "a", 0), ("op", ".", 1), ("ident", "b", 2), ("op", ">=", 4),
        ("number", "1.5", 7), ("eof", "", 10)]
