"""Parsing the SOQL subset the sandbox answers: a tokenizer and a recursive-descent parser.

Grammar (keywords case-insensitive, as in SOQL)::

    query     := SELECT field ("," field)* FROM name [WHERE condition]
                 [ORDER BY order ("," order)*] [LIMIT int] [OFFSET int]
    field     := name ("." name)?              -- one parent-relationship hop at most
    condition := conjunct (OR conjunct)*
    conjunct  := unary (AND unary)*
    unary     := NOT unary | "(" condition ")" | field op value
               | field [NOT] IN "(" value ("," value)* ")" | field LIKE string
    op        := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    value     := 'string' | number | TRUE | FALSE | NULL | date | dateTime
    order     := field [ASC | DESC] [NULLS (FIRST | LAST)]

Sources: "SOQL SELECT Syntax", "Comparison Operators", "Date Formats and Date Literals in
WHERE" (https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-select-dateformats.html:
dateTime literals are ``YYYY-MM-DDThh:mm:ss`` with ``Z`` or ``+hh:mm``/``-hh:mm``, unquoted;
dates ``YYYY-MM-DD``) and "ORDER BY" (ascending by default, ``NULLS FIRST|LAST``) of the
SOQL and SOSL Reference. Mixing AND and OR without parentheses is refused, as SOQL does
("Logical Operators": an ambiguous mix is an error). A dateTime literal with fractional
seconds is refused: the formats page lists whole seconds only (the harsher reading; real orgs
may accept ``.SSS``, UNVERIFIED, query: "SOQL datetime literal milliseconds"). Date literals
(``TODAY``, ``LAST_N_DAYS:n``), bind variables, functions, aggregates, sub-queries and
``FIELDS()`` are not part of the subset: they are refused as ``MALFORMED_QUERY``.

A malformed query raises :class:`SoqlError` with ``MALFORMED_QUERY`` and a message laid out like
the platform's (the query, a caret, ``ERROR at Row:1:Column:n``, ``unexpected token: 'x'``);
the exact wording is UNVERIFIED (seen in public answers, not on a reference page).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

__all__ = [
    "And",
    "Comparison",
    "Condition",
    "FieldPath",
    "InList",
    "Like",
    "Not",
    "Or",
    "OrderItem",
    "Query",
    "SoqlError",
    "Value",
    "parse",
]

#: A literal as parsed: text, number, boolean, null, date or dateTime.
Value = str | Decimal | bool | None | date | datetime
Operator = Literal["=", "!=", "<", "<=", ">", ">="]


class SoqlError(Exception):
    """A query the org refuses: ``code`` is the REST ``errorCode``, ``message`` its text."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class FieldPath:
    """``Subject`` or ``Parent.CaseNumber``, as written (matched case-insensitively later)."""

    parts: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Comparison:
    field: FieldPath
    op: Operator
    value: Value


@dataclass(frozen=True)
class InList:
    field: FieldPath
    values: tuple[Value, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    field: FieldPath
    pattern: str


@dataclass(frozen=True)
class And:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Comparison | InList | Like | And | Or | Not


@dataclass(frozen=True)
class OrderItem:
    field: FieldPath
    descending: bool
    #: None: the default (nulls first).
    nulls_last: bool | None


@dataclass(frozen=True)
class Query:
    fields: tuple[FieldPath, ...]
    sobject: str
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None


# -- tokens ----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT:]))
  | (?P<number>-?\d+(?:\.\d+)?(?![\w:.-]))
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),.])
    """,
    re.VERBOSE,
)
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "b": "\b",
    "f": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
}
#: ``\%`` and ``\_`` stay escaped: they only mean something inside a LIKE pattern.
_LIKE_ESCAPES = {"%", "_"}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    column: int

    def is_word(self, *words: str) -> bool:
        return self.kind == "name" and self.text.upper() in words


def _unquote(text: str, column: int, query: str) -> str:
    out: list[str] = []
    index = 1
    while index < len(text) - 1:
        char = text[index]
        if char == "\\":
            nxt = text[index + 1]
            if nxt in _LIKE_ESCAPES:
                out.append("\\" + nxt)
            elif nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            else:
                raise _malformed(query, column + index, f"Invalid string literal '{text}'")
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None:
            raise _malformed(query, position + 1, f"unexpected token: '{query[position]}'")
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            tokens.append(_Token(kind, match.group(), position + 1))
        position = match.end()
    tokens.append(_Token("eof", "<EOF>", len(query) + 1))
    return tokens


def _malformed(query: str, column: int, detail: str) -> SoqlError:
    caret = " " * (column - 1) + "^"
    return SoqlError(
        "MALFORMED_QUERY", f"\n{query}\n{caret}\nERROR at Row:1:Column:{column}\n{detail}"
    )


# -- parser ----------------------------------------------------------------------------------


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _tokenize(query)
        self.index = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.token
        self.index += 1
        return token

    def fail(self, token: _Token | None = None) -> SoqlError:
        token = token or self.token
        return _malformed(self.query, token.column, f"unexpected token: '{token.text}'")

    def expect_word(self, word: str) -> None:
        if not self.token.is_word(word):
            raise self.fail()
        self.advance()

    def expect_punct(self, text: str) -> None:
        if self.token.kind != "punct" or self.token.text != text:
            raise self.fail()
        self.advance()

    def accept_punct(self, text: str) -> bool:
        if self.token.kind == "punct" and self.token.text == text:
            self.advance()
            return True
        return False

    def name(self) -> str:
        if self.token.kind != "name":
            raise self.fail()
        return self.advance().text

    def field(self) -> FieldPath:
        parts = [self.name()]
        if self.accept_punct("."):
            parts.append(self.name())
        if self.token.kind == "punct" and self.token.text == ".":
            # Grandparent hops (Parent.Owner.Name) are outside the subset.
            raise self.fail()
        return FieldPath(tuple(parts))

    def integer(self) -> int:
        token = self.token
        if token.kind != "number" or not token.text.isdigit():
            raise self.fail()
        self.advance()
        return int(token.text)

    def value(self) -> Value:
        token = self.advance()
        if token.kind == "string":
            return _unquote(token.text, token.column, self.query)
        if token.kind == "number":
            return Decimal(token.text)
        if token.kind == "date":
            return self._date(token)
        if token.kind == "datetime":
            return self._datetime(token)
        if token.is_word("TRUE", "FALSE"):
            return token.text.upper() == "TRUE"
        if token.is_word("NULL"):
            return None
        raise self.fail(token)

    def _date(self, token: _Token) -> date:
        try:
            return date.fromisoformat(token.text)
        except ValueError:
            raise self.fail(token) from None

    def _datetime(self, token: _Token) -> datetime:
        try:
            return datetime.fromisoformat(token.text.replace("Z", "+00:00")).astimezone(UTC)
        except ValueError:
            raise self.fail(token) from None

    # -- WHERE --------------------------------------------------------------------------

    def condition(self) -> Condition:
        first, bare_and = self.conjunct()
        if not self.token.is_word("OR"):
            return first
        items = [first]
        while self.token.is_word("OR"):
            if bare_and:
                # ``a AND b OR c`` (or ``a OR b AND c``): SOQL wants parentheses.
                raise self.fail()
            self.advance()
            item, bare_and = self.conjunct()
            items.append(item)
        if bare_and:
            raise self.fail(self.tokens[self.index - 1])
        return Or(tuple(items))

    def conjunct(self) -> tuple[Condition, bool]:
        """A run of AND, and whether it had an AND outside parentheses."""
        items = [self.unary()]
        while self.token.is_word("AND"):
            self.advance()
            items.append(self.unary())
        return (items[0], False) if len(items) == 1 else (And(tuple(items)), True)

    def unary(self) -> Condition:
        if self.token.is_word("NOT"):
            self.advance()
            return Not(self.unary())
        if self.accept_punct("("):
            inner = self.condition()
            self.expect_punct(")")
            return inner
        field = self.field()
        token = self.token
        if token.kind == "op":
            self.advance()
            op = "!=" if token.text == "<>" else token.text
            return Comparison(field, op, self.value())  # type: ignore[arg-type]
        if token.is_word("LIKE"):
            self.advance()
            pattern = self.value()
            if not isinstance(pattern, str):
                raise self.fail(self.tokens[self.index - 1])
            return Like(field, pattern)
        negated = token.is_word("NOT")
        if negated:
            self.advance()
        if self.token.is_word("IN"):
            self.advance()
            self.expect_punct("(")
            values = [self.value()]
            while self.accept_punct(","):
                values.append(self.value())
            self.expect_punct(")")
            return InList(field, tuple(values), negated)
        raise self.fail()

    # -- the statement --------------------------------------------------------------------

    def order_item(self) -> OrderItem:
        field = self.field()
        descending = False
        if self.token.is_word("ASC", "DESC"):
            descending = self.advance().text.upper() == "DESC"
        nulls_last: bool | None = None
        if self.token.is_word("NULLS"):
            self.advance()
            if not self.token.is_word("FIRST", "LAST"):
                raise self.fail()
            nulls_last = self.advance().text.upper() == "LAST"
        return OrderItem(field, descending, nulls_last)

    def statement(self) -> Query:
        self.expect_word("SELECT")
        fields = [self.field()]
        while self.accept_punct(","):
            fields.append(self.field())
        self.expect_word("FROM")
        sobject = self.name()
        where = None
        if self.token.is_word("WHERE"):
            self.advance()
            where = self.condition()
        order: list[OrderItem] = []
        if self.token.is_word("ORDER"):
            self.advance()
            self.expect_word("BY")
            order.append(self.order_item())
            while self.accept_punct(","):
                order.append(self.order_item())
        limit = offset = None
        if self.token.is_word("LIMIT"):
            self.advance()
            limit = self.integer()
        if self.token.is_word("OFFSET"):
            self.advance()
            offset = self.integer()
        if self.token.kind != "eof":
            raise self.fail()
        return Query(tuple(fields), sobject, where, tuple(order), limit, offset)


def parse(query: str) -> Query:
    """The parsed ``query``, or :class:`SoqlError` (``MALFORMED_QUERY``)."""
    if not query.strip():
        raise SoqlError("MALFORMED_QUERY", "A query string has to be specified")
    return _Parser(query).statement()
