"""FHIRPath: a hand-written lexer and recursive-descent parser into a small AST.

It covers the grammar of the FHIRPath specification (N1) that views need: paths and
invocations, indexers, function calls, literals (string, number, boolean, `{}`, date/time),
`%constants`, `$this`, and every operator with the specification's precedence, from tightest
to loosest: `.` `[]`, unary `+ -`, `* / div mod`, `+ - &`, `is as`, `|`, `< <= > >=`,
`= != ~ !~`, `in contains`, `and`, `or xor`, `implies`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class FhirPathSyntaxError(ValueError):
    """A FHIRPath expression that does not parse; the message says where."""


# ------------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Node:
    pass


@dataclass(frozen=True)
class Literal(Node):
    kind: str  # string, integer, decimal, boolean, date, datetime, time, empty
    value: object
    text: str = ""


@dataclass(frozen=True)
class This(Node):
    pass


@dataclass(frozen=True)
class Constant(Node):
    name: str


@dataclass(frozen=True)
class Member(Node):
    """`target.name`, or `name` alone (target None: the input focus)."""

    target: Node | None
    name: str


@dataclass(frozen=True)
class Call(Node):
    """`target.name(args)`, or `name(args)` on the input focus."""

    target: Node | None
    name: str
    args: tuple[Node, ...] = field(default=())


@dataclass(frozen=True)
class Index(Node):
    target: Node
    index: Node


@dataclass(frozen=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class TypeOp(Node):
    op: str  # is, as
    target: Node
    type_name: str


# ----------------------------------------------------------------------------- lexer


@dataclass(frozen=True)
class Token:
    kind: str  # ident, delimited, string, number, date, datetime, time, const, special, op, eof
    text: str
    pos: int


_TWO_CHAR_OPS = ("<=", ">=", "!=", "!~")
_ONE_CHAR_OPS = "+-*/&|<>=~.[](),{}"
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n",
            "r": "\r", "t": "\t"}


def _is_ident_start(ch: str) -> bool:
    return ch.isascii() and (ch.isalpha() or ch == "_")


def _is_ident_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise FhirPathSyntaxError(f"unterminated comment at {i + 1}")
            i = end + 2
        elif ch in "'`":
            value, j = _quoted(text, i)
            tokens.append(Token("string" if ch == "'" else "delimited", value, i))
            i = j
        elif ch.isdigit():
            j = i
            while j < n and text[j].isdigit():
                j += 1
            if j + 1 < n and text[j] == "." and text[j + 1].isdigit():
                j += 1
                while j < n and text[j].isdigit():
                    j += 1
            tokens.append(Token("number", text[i:j], i))
            i = j
        elif ch == "@":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] in "-:.+TZ"):
                j += 1
            body = text[i + 1:j]
            if not body:
                raise FhirPathSyntaxError(f"unexpected '@' at {i + 1}")
            kind = "time" if body.startswith("T") else ("datetime" if "T" in body else "date")
            tokens.append(Token(kind, body, i))
            i = j
        elif ch in "%$":
            j = i + 1
            if j < n and text[j] in "'`" and ch == "%":
                value, j = _quoted(text, j)
            else:
                while j < n and _is_ident_char(text[j]):
                    j += 1
                value = text[i + 1:j]
            if not value:
                raise FhirPathSyntaxError(f"unexpected '{ch}' at {i + 1}")
            tokens.append(Token("const" if ch == "%" else "special", value, i))
            i = j
        elif _is_ident_start(ch):
            j = i + 1
            while j < n and _is_ident_char(text[j]):
                j += 1
            tokens.append(Token("ident", text[i:j], i))
            i = j
        elif text[i:i + 2] in _TWO_CHAR_OPS:
            tokens.append(Token("op", text[i:i + 2], i))
            i += 2
        elif ch in _ONE_CHAR_OPS:
            tokens.append(Token("op", ch, i))
            i += 1
        else:
            raise FhirPathSyntaxError(f"unexpected '{ch}' at {i + 1}")
    tokens.append(Token("eof", "", n))
    return tokens


def _quoted(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1
        if ch == "\\":
            nxt = text[i + 1:i + 2]
            if nxt == "u" and len(text) >= i + 6:
                out.append(chr(int(text[i + 2:i + 6], 16)))
                i += 6
                continue
            if nxt not in _ESCAPES:
                raise FhirPathSyntaxError(f"bad escape '\\{nxt}' at {i + 1}")
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    raise FhirPathSyntaxError(f"unterminated string at {start + 1}")


# ---------------------------------------------------------------------------- parser

# Binary operators by precedence level, loosest first.
_LEVELS: tuple[tuple[str, ...], ...] = (
    ("implies",),
    ("or", "xor"),
    ("and",),
    ("in", "contains"),
    ("=", "!=", "~", "!~"),
    ("<", "<=", ">", ">="),
    ("|",),
)
_ADDITIVE = ("+", "-", "&")
_MULTIPLICATIVE = ("*", "/", "div", "mod")
_HARD_KEYWORDS = {"and", "or", "xor", "implies", "div", "mod", "true", "false"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def _is_op(self, *ops: str) -> bool:
        tok = self.tok
        return (tok.kind == "op" and tok.text in ops) or (tok.kind == "ident" and tok.text in ops)

    def _next(self) -> Token:
        tok = self.tok
        self.i += 1
        return tok

    def _expect(self, op: str) -> None:
        if not self._is_op(op):
            raise self._error(f"expected '{op}'")
        self.i += 1

    def _error(self, message: str) -> FhirPathSyntaxError:
        tok = self.tok
        found = "end of expression" if tok.kind == "eof" else f"'{tok.text}'"
        return FhirPathSyntaxError(f"{message} at {tok.pos + 1}, found {found}")

    def parse(self) -> Node:
        if self.tok.kind == "eof":
            raise FhirPathSyntaxError("empty expression")
        node = self._binary(0)
        if self.tok.kind != "eof":
            raise self._error("unexpected input")
        return node

    def _binary(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self._type_expression()
        node = self._binary(level + 1)
        while self._is_op(*_LEVELS[level]):
            op = self._next().text
            node = Binary(op, node, self._binary(level + 1))
        return node

    def _type_expression(self) -> Node:
        node = self._additive()
        while self._is_op("is", "as"):
            op = self._next().text
            node = TypeOp(op, node, self._qualified_name())
        return node

    def _additive(self) -> Node:
        node = self._multiplicative()
        while self._is_op(*_ADDITIVE):
            op = self._next().text
            node = Binary(op, node, self._multiplicative())
        return node

    def _multiplicative(self) -> Node:
        node = self._unary()
        while self._is_op(*_MULTIPLICATIVE):
            op = self._next().text
            node = Binary(op, node, self._unary())
        return node

    def _unary(self) -> Node:
        if self._is_op("+", "-"):
            op = self._next().text
            return Unary(op, self._unary())
        return self._postfix()

    def _postfix(self) -> Node:
        node = self._term()
        while True:
            if self._is_op("."):
                self.i += 1
                node = self._invocation(node)
            elif self._is_op("["):
                self.i += 1
                index = self._binary(0)
                self._expect("]")
                node = Index(node, index)
            else:
                return node

    def _term(self) -> Node:
        tok = self.tok
        if tok.kind == "op" and tok.text == "(":
            self.i += 1
            node = self._binary(0)
            self._expect(")")
            return node
        if tok.kind == "op" and tok.text == "{":
            self.i += 1
            self._expect("}")
            return Literal("empty", None, "{}")
        if tok.kind == "string":
            self.i += 1
            return Literal("string", tok.text, tok.text)
        if tok.kind == "number":
            self.i += 1
            if "." in tok.text:
                return Literal("decimal", float(tok.text), tok.text)
            return Literal("integer", int(tok.text), tok.text)
        if tok.kind in ("date", "datetime", "time"):
            self.i += 1
            value = tok.text[1:] if tok.kind == "time" else tok.text
            return Literal(tok.kind, value, tok.text)
        if tok.kind == "ident" and tok.text in ("true", "false"):
            self.i += 1
            return Literal("boolean", tok.text == "true", tok.text)
        if tok.kind == "const":
            self.i += 1
            return Constant(tok.text)
        if tok.kind == "special":
            self.i += 1
            if tok.text == "this":
                return This()
            raise FhirPathSyntaxError(f"${tok.text} is not supported (at {tok.pos + 1})")
        return self._invocation(None)

    def _identifier(self) -> str:
        tok = self.tok
        if tok.kind == "delimited" or (tok.kind == "ident" and tok.text not in _HARD_KEYWORDS):
            self.i += 1
            return tok.text
        raise self._error("expected a name")

    def _invocation(self, target: Node | None) -> Node:
        if self.tok.kind == "special" and self.tok.text == "this" and target is not None:
            self.i += 1
            return target
        name = self._identifier()
        if self._is_op("("):
            self.i += 1
            args: list[Node] = []
            if not self._is_op(")"):
                args.append(self._binary(0))
                while self._is_op(","):
                    self.i += 1
                    args.append(self._binary(0))
            self._expect(")")
            return Call(target, name, tuple(args))
        return Member(target, name)

    def _qualified_name(self) -> str:
        parts = [self._identifier()]
        while self._is_op(".") and self.tokens[self.i + 1].kind in ("ident", "delimited"):
            self.i += 1
            parts.append(self._identifier())
        return ".".join(parts)


def parse(text: str) -> Node:
    """The AST of one FHIRPath expression; FhirPathSyntaxError when it does not parse."""
    if not isinstance(text, str):
        raise FhirPathSyntaxError(f"expected a string, got {type(text).__name__}")
    return _Parser(text).parse()


def type_argument(node: Node) -> str | None:
    """The type name written as a function argument: `ofType(Quantity)`, `FHIR.string`."""
    if isinstance(node, Member):
        prefix = type_argument(node.target) if node.target is not None else None
        if node.target is not None and prefix is None:
            return None
        return f"{prefix}.{node.name}" if prefix else node.name
    return None
