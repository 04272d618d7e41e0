"""commercetools query predicates (``where=...``) and ``sort`` compiled to SQLite SQL.

The documents live in ``ct_documents`` (alias ``d``) as JSON text in ``d.body`` plus indexed
columns. A predicate becomes one SQL boolean expression with bound parameters, so SQLite does the
filtering (and uses the indexes for ``id > :lastId`` keyset paging) instead of Python looping over
every row. Field names never reach the SQL text: JSON paths are bound parameters.

Supported grammar (https://docs.commercetools.com/api/predicates/query):

- comparisons ``= != <> > >= < <=`` against string (``"..."``), number, ``true``/``false`` literals
  and input variables ``:name`` (values from ``var.name`` query parameters, always strings);
- ``in (...)``, ``not in (...)``, ``is defined``, ``is not defined``, ``is empty``,
  ``is not empty``, ``contains any (...)``, ``contains all (...)``;
- nesting ``field(<predicate>)``; on an array (``lineItems``, ``paymentInfo(payments(...))``,
  ``syncInfo``, ...) it matches when *any* element matches;
- ``and``, ``or`` (``and`` binds tighter), ``not(...)``, parentheses.

Semantics chosen where the API documentation is silent: a comparison, ``!=`` and ``not in``
included, never matches a document where the field is missing. Datetime literals
(``"2026-01-31T10:00:00Z"``) compared with ``createdAt``/``lastModifiedAt`` are normalised to the
stored form ``2026-01-31T10:00:00.000Z``.

Anything else (``within circle``, geo, function calls, bad tokens, unknown variables) raises
``PredicateError`` with a message naming the problem; the app answers 400 InvalidInput.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

MAX_DEPTH = 24

# Fields that hold arrays in the resources the sandbox serves: nesting into them means "any element".
ARRAY_FIELDS = frozenset(
    {
        "lineItems",
        "customLineItems",
        "payments",
        "syncInfo",
        "deliveries",
        "parcels",
        "items",
        "variants",
        "prices",
        "attributes",
        "roles",
        "rates",
        "subRates",
        "transactions",
        "taxPortions",
        "taxedPricePortions",
        "discountedPricePerQuantity",
        "returnInfo",
        "interfaceInteractions",
        "categories",
        "images",
        "assets",
        "shipping",
        "tiers",
    }
)
# Fields known to hold objects: nesting into them is plain path navigation.
OBJECT_FIELDS = frozenset(
    {
        "masterData",
        "current",
        "staged",
        "masterVariant",
        "variant",
        "supplyChannel",
        "distributionChannel",
        "channel",
        "paymentInfo",
        "shippingInfo",
        "custom",
        "fields",
        "type",
        "totalPrice",
        "taxedPrice",
        "taxedShippingPrice",
        "price",
        "value",
        "money",
        "name",
        "slug",
        "description",
        "shippingAddress",
        "billingAddress",
        "store",
        "taxCategory",
        "productType",
        "trackingData",
        "measurements",
        "address",
        "amountPlanned",
        "amount",
        "paymentMethodInfo",
        "paymentStatus",
        "taxRate",
        "totalNet",
        "totalGross",
        "totalTax",
        "customerGroup",
    }
)

ColumnKind = Literal["text", "int", "datetime"]


@dataclass(frozen=True)
class Column:
    sql: str
    kind: ColumnKind = "text"


@dataclass(frozen=True)
class RootMapping:
    """How predicate field paths reach the stored document.

    ``columns`` maps a field path (from the queried resource's root, through objects only) to an
    indexed column. ``remap`` turns a top-level field into its JSON path in the stored document
    (product projections are stored as products: ``masterVariant`` lives in
    ``masterData.current``).
    """

    columns: Mapping[tuple[str, ...], Column] = field(default_factory=dict)
    remap: Callable[[str], tuple[str, ...]] | None = None
    body: str = "d.body"


BASE_COLUMNS: dict[tuple[str, ...], Column] = {
    ("id",): Column("d.id"),
    ("key",): Column("d.key"),
    ("version",): Column("d.version", "int"),
    ("createdAt",): Column("d.created_at", "datetime"),
    ("lastModifiedAt",): Column("d.last_modified_at", "datetime"),
}
RESOURCE_COLUMNS: dict[str, dict[tuple[str, ...], Column]] = {
    "orders": {("orderNumber",): Column("d.order_number")},
    "inventory": {("sku",): Column("d.sku"), ("supplyChannel", "id"): Column("d.supply_channel")},
}


def mapping_for(resource: str) -> RootMapping:
    """The root mapping for a stored resource queried in its own shape."""
    return RootMapping(columns={**BASE_COLUMNS, **RESOURCE_COLUMNS.get(resource, {})})


PRODUCT_ROOT_FIELDS = frozenset(
    {
        "id",
        "key",
        "version",
        "createdAt",
        "lastModifiedAt",
        "productType",
        "taxCategory",
        "state",
        "reviewRatingStatistics",
        "priceMode",
        "lastModifiedBy",
        "createdBy",
    }
)


def projection_mapping(staged: bool) -> RootMapping:
    """Root mapping for product projections stored as products."""
    data = "staged" if staged else "current"

    def remap(name: str) -> tuple[str, ...]:
        if name in PRODUCT_ROOT_FIELDS:
            return (name,)
        if name in ("published", "hasStagedChanges"):
            return ("masterData", name)
        return ("masterData", data, name)

    return RootMapping(columns=dict(BASE_COLUMNS), remap=remap)


class PredicateError(ValueError):
    """A predicate or sort expression the sandbox cannot (or the API would not) accept."""


# ---------------------------------------------------------------------------------------------
# Tokens and syntax tree

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<number>-?\d+(?:\.\d+)?(?![A-Za-z_]))
    | (?P<var>:[A-Za-z0-9]+)
    | (?P<op>!=|<>|>=|<=|=|>|<)
    | (?P<lparen>\()
    | (?P<rparen>\))
    | (?P<comma>,)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_-]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos] == '"':
                raise PredicateError(f"Unterminated string literal at position {pos}")
            raise PredicateError(f"Unexpected character {text[pos]!r} at position {pos}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


@dataclass(frozen=True)
class Lit:
    value: str | int | float | bool


@dataclass(frozen=True)
class Var:
    name: str


Value = Lit | Var


@dataclass(frozen=True)
class Compare:
    name: str
    op: str
    value: Value


@dataclass(frozen=True)
class In:
    name: str
    values: tuple[Value, ...]
    negate: bool


@dataclass(frozen=True)
class Defined:
    name: str
    negate: bool


@dataclass(frozen=True)
class Empty:
    name: str
    negate: bool


@dataclass(frozen=True)
class Contains:
    name: str
    mode: Literal["any", "all"]
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Nested:
    name: str
    inner: Node


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class BoolOp:
    op: Literal["and", "or"]
    items: tuple[Node, ...]


Node = Compare | In | Defined | Empty | Contains | Nested | Not | BoolOp


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # helpers
    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def is_word(self, word: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token is not None and token.kind == "ident" and token.text.lower() == word

    def is_kind(self, kind: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token is not None and token.kind == kind

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise PredicateError(f"Unexpected end of predicate {self.text!r}")
        self.i += 1
        return token

    def expect(self, kind: str, what: str) -> Token:
        token = self.peek()
        if token is None or token.kind != kind:
            found = "end of predicate" if token is None else repr(token.text)
            where = "" if token is None else f" at position {token.pos}"
            raise PredicateError(f"Expected {what} but found {found}{where}")
        self.i += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            raise PredicateError("Empty predicate")
        node = self.parse_or()
        token = self.peek()
        if token is not None:
            raise PredicateError(f"Unexpected {token.text!r} at position {token.pos}")
        return node

    def parse_or(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise PredicateError("Predicate is nested too deeply")
        items = [self.parse_and()]
        while self.is_word("or"):
            self.take()
            items.append(self.parse_and())
        self.depth -= 1
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def parse_and(self) -> Node:
        items = [self.parse_unary()]
        while self.is_word("and"):
            self.take()
            items.append(self.parse_unary())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def parse_group(self) -> Node:
        self.expect("lparen", "'('")
        node = self.parse_or()
        self.expect("rparen", "')'")
        return node

    def parse_unary(self) -> Node:
        if self.is_word("not") and self.is_kind("lparen", 1):
            self.take()
            return Not(self.parse_group())
        if self.is_kind("lparen"):
            return self.parse_group()
        token = self.peek()
        if token is None or token.kind != "ident":
            found = "end of predicate" if token is None else repr(token.text)
            raise PredicateError(f"Expected a field name but found {found}")
        self.take()
        return self.parse_field(token)

    def parse_field(self, name_token: Token) -> Node:
        name = name_token.text
        if self.is_kind("lparen"):
            return Nested(name, self.parse_group())
        if self.is_kind("op"):
            op = self.take().text
            return Compare(name, "!=" if op == "<>" else op, self.parse_value())
        if self.is_word("in"):
            self.take()
            return In(name, self.parse_values(), negate=False)
        if self.is_word("not") and self.is_word("in", 1):
            self.take()
            self.take()
            return In(name, self.parse_values(), negate=True)
        if self.is_word("is"):
            self.take()
            negate = False
            if self.is_word("not"):
                self.take()
                negate = True
            if self.is_word("defined"):
                self.take()
                return Defined(name, negate)
            if self.is_word("empty"):
                self.take()
                return Empty(name, negate)
            token = self.peek()
            found = "end of predicate" if token is None else repr(token.text)
            raise PredicateError(f"Expected 'defined' or 'empty' after 'is' but found {found}")
        if self.is_word("contains"):
            self.take()
            if self.is_word("any") or self.is_word("all"):
                mode: Literal["any", "all"] = "any" if self.take().text.lower() == "any" else "all"
                return Contains(name, mode, self.parse_values())
            raise PredicateError("Only 'contains any (...)' and 'contains all (...)' are supported")
        if self.is_word("within"):
            raise PredicateError(
                "Geo predicates ('within circle') are not supported by the sandbox"
            )
        token = self.peek()
        found = "end of predicate" if token is None else repr(token.text)
        raise PredicateError(f"Expected an operator after field {name!r} but found {found}")

    def parse_value(self) -> Value:
        token = self.take()
        if token.kind == "string":
            try:
                return Lit(str(json.loads(token.text)))
            except json.JSONDecodeError:
                raise PredicateError(f"Invalid escape in string literal at {token.pos}") from None
        if token.kind == "number":
            return Lit(float(token.text) if "." in token.text else int(token.text))
        if token.kind == "var":
            return Var(token.text[1:])
        if token.kind == "ident" and token.text in ("true", "false"):
            return Lit(token.text == "true")
        raise PredicateError(
            f"Expected a literal or :variable but found {token.text!r} at position {token.pos}"
        )

    def parse_values(self) -> tuple[Value, ...]:
        self.expect("lparen", "'(' starting a value list")
        values = [self.parse_value()]
        while self.is_kind("comma"):
            self.take()
            values.append(self.parse_value())
        self.expect("rparen", "')' closing the value list")
        return tuple(values)


def parse(text: str) -> Node:
    """Parse one predicate into a syntax tree (raises PredicateError)."""
    return _Parser(text).parse()


# ---------------------------------------------------------------------------------------------
# SQL generation


@dataclass
class CompiledPredicate:
    sql: str
    params: list[object]


@dataclass(frozen=True)
class _Scope:
    base: str  # SQL expression holding JSON text
    prefix: tuple[str, ...]  # JSON path inside base
    root_path: tuple[str, ...] | None  # path from the resource root, None inside arrays
    at_root: bool


def json_path(parts: Sequence[str]) -> str:
    return "$" + "".join(f'."{part}"' for part in parts)


_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T")
_CANONICAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def normalise_datetime(text: str) -> str:
    """A datetime literal in the stored form (UTC, milliseconds, Z); dates pass unchanged."""
    if _CANONICAL.fullmatch(text):
        return text
    if not _DATETIME.match(text):
        return text
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PredicateError(f"Invalid datetime literal {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _numeric(text: str) -> int | float | None:
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d+", text):
        return float(text)
    return None


class _Compiler:
    def __init__(self, mapping: RootMapping, variables: Mapping[str, str]) -> None:
        self.mapping = mapping
        self.variables = variables
        self.aliases = itertools.count(1)

    def var(self, name: str) -> str:
        if name not in self.variables:
            raise PredicateError(
                f"Input variable ':{name}' is not defined (add the query parameter var.{name})"
            )
        return self.variables[name]

    def child(self, scope: _Scope, name: str) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
        """JSON path and root path of field ``name`` in ``scope``."""
        if scope.at_root and self.mapping.remap is not None:
            path = self.mapping.remap(name)
        else:
            path = (*scope.prefix, name)
        root_path = None if scope.root_path is None else (*scope.root_path, name)
        return path, root_path

    def column(self, root_path: tuple[str, ...] | None) -> Column | None:
        return None if root_path is None else self.mapping.columns.get(root_path)

    def compile(self, node: Node, scope: _Scope) -> tuple[str, list[object]]:
        if isinstance(node, BoolOp):
            parts = [self.compile(item, scope) for item in node.items]
            joiner = " AND " if node.op == "and" else " OR "
            return "(" + joiner.join(sql for sql, _ in parts) + ")", [
                p for _, params in parts for p in params
            ]
        if isinstance(node, Not):
            sql, params = self.compile(node.inner, scope)
            # A missing field makes the inner expression NULL; not() of it must still be a boolean.
            return f"(NOT ifnull({sql}, 0))", params
        if isinstance(node, Nested):
            return self.nested(node, scope)
        if isinstance(node, Compare):
            return self.compare(node, scope)
        if isinstance(node, In):
            return self.in_list(node, scope)
        if isinstance(node, Defined):
            return self.defined(node, scope)
        if isinstance(node, Empty):
            path, _ = self.child(scope, node.name)
            op = ">" if node.negate else "="
            return f"(ifnull(json_array_length({scope.base}, ?), 0) {op} 0)", [json_path(path)]
        if isinstance(node, Contains):
            return self.contains(node, scope)
        raise PredicateError(f"Unsupported predicate element {node!r}")  # pragma: no cover

    def nested(self, node: Nested, scope: _Scope) -> tuple[str, list[object]]:
        path, root_path = self.child(scope, node.name)
        alias = f"j{next(self.aliases)}"
        element = _Scope(base=f"{alias}.value", prefix=(), root_path=None, at_root=False)
        as_object = _Scope(base=scope.base, prefix=path, root_path=root_path, at_root=False)
        if node.name in ARRAY_FIELDS:
            inner_sql, inner_params = self.compile(node.inner, element)
            sql = f"EXISTS (SELECT 1 FROM json_each({scope.base}, ?) AS {alias} WHERE {inner_sql})"
            return sql, [json_path(path), *inner_params]
        if node.name in OBJECT_FIELDS:
            return self.compile(node.inner, as_object)
        # Unknown field: decide per document whether it is an array or an object.
        array_sql, array_params = self.compile(node.inner, element)
        object_sql, object_params = self.compile(node.inner, as_object)
        sql = (
            f"(CASE WHEN json_type({scope.base}, ?) = 'array' THEN "
            f"EXISTS (SELECT 1 FROM json_each({scope.base}, ?) AS {alias} WHERE {array_sql}) "
            f"ELSE ({object_sql}) END)"
        )
        jp = json_path(path)
        return sql, [jp, jp, *array_params, *object_params]

    def value_for_column(self, column: Column, value: Value) -> object:
        if isinstance(value, Var):
            raw: str | int | float | bool = self.var(value.name)
        else:
            raw = value.value
        if isinstance(raw, bool):
            raise PredicateError(
                "Boolean literals cannot be compared with an id, key or text field"
            )
        if column.kind == "int":
            if isinstance(raw, str):
                number = _numeric(raw)
                if not isinstance(number, int):
                    raise PredicateError(f"Expected an integer but found {raw!r}")
                return number
            return raw
        if not isinstance(raw, str):
            raise PredicateError(f"Expected a string literal but found {raw!r}")
        return normalise_datetime(raw) if column.kind == "datetime" else raw

    def compare(self, node: Compare, scope: _Scope) -> tuple[str, list[object]]:
        path, root_path = self.child(scope, node.name)
        op = node.op
        column = self.column(root_path)
        if column is not None:
            return f"({column.sql} {op} ?)", [self.value_for_column(column, node.value)]
        jp = json_path(path)
        extract = f"json_extract({scope.base}, ?)"
        value = node.value
        if isinstance(value, Lit):
            literal = value.value
            if isinstance(literal, bool):
                return self.compare_bool(scope, jp, op, literal)
            return f"({extract} {op} ?)", [jp, literal]
        text = self.var(value.name)
        number = _numeric(text)
        if text in ("true", "false") and op in ("=", "!="):
            return self.compare_bool(scope, jp, op, text == "true", fallback_text=text)
        if number is not None:
            # Variables arrive as strings: compare numerically only when the field is a number.
            sql = (
                f"(CASE WHEN json_type({scope.base}, ?) IN ('integer', 'real') "
                f"THEN {extract} {op} ? ELSE {extract} {op} ? END)"
            )
            return sql, [jp, jp, number, jp, text]
        return f"({extract} {op} ?)", [jp, text]

    def compare_bool(
        self, scope: _Scope, jp: str, op: str, value: bool, fallback_text: str | None = None
    ) -> tuple[str, list[object]]:
        if op not in ("=", "!="):
            raise PredicateError(f"Operator {op!r} cannot be used with a boolean")
        kind = f"json_type({scope.base}, ?)"
        wanted = "true" if value else "false"
        if fallback_text is not None:
            # A variable "true" may also mean the string "true".
            sql = (
                f"(CASE WHEN {kind} IN ('true', 'false') THEN {kind} {op} ? "
                f"ELSE json_extract({scope.base}, ?) {op} ? END)"
            )
            return sql, [jp, jp, wanted, jp, fallback_text]
        if op == "=":
            return f"({kind} = ?)", [jp, wanted]
        return f"({kind} IN ('true', 'false') AND {kind} != ?)", [jp, jp, wanted]

    def plain_values(self, values: Sequence[Value], column: Column | None) -> list[object]:
        out: list[object] = []
        for value in values:
            if column is not None:
                out.append(self.value_for_column(column, value))
                continue
            if isinstance(value, Var):
                text = self.var(value.name)
                out.append(text)
                number = _numeric(text)
                if number is not None:
                    out.append(number)
            elif isinstance(value.value, bool):
                raise PredicateError("Boolean literals are not allowed in a value list")
            else:
                out.append(value.value)
        return out

    def in_list(self, node: In, scope: _Scope) -> tuple[str, list[object]]:
        path, root_path = self.child(scope, node.name)
        column = self.column(root_path)
        values = self.plain_values(node.values, column)
        marks = ", ".join("?" for _ in values)
        keyword = "NOT IN" if node.negate else "IN"
        if column is not None:
            return f"({column.sql} {keyword} ({marks}))", values
        return f"(json_extract({scope.base}, ?) {keyword} ({marks}))", [json_path(path), *values]

    def defined(self, node: Defined, scope: _Scope) -> tuple[str, list[object]]:
        path, root_path = self.child(scope, node.name)
        column = self.column(root_path)
        if column is not None:
            return f"({column.sql} IS {'' if node.negate else 'NOT '}NULL)", []
        op = "=" if node.negate else "!="
        return f"(ifnull(json_type({scope.base}, ?), 'null') {op} 'null')", [json_path(path)]

    def contains(self, node: Contains, scope: _Scope) -> tuple[str, list[object]]:
        path, _ = self.child(scope, node.name)
        jp = json_path(path)
        values = self.plain_values(node.values, None)
        if node.mode == "any":
            marks = ", ".join("?" for _ in values)
            sql = f"EXISTS (SELECT 1 FROM json_each({scope.base}, ?) WHERE value IN ({marks}))"
            return sql, [jp, *values]
        parts = [
            f"EXISTS (SELECT 1 FROM json_each({scope.base}, ?) WHERE value = ?)" for _ in values
        ]
        return "(" + " AND ".join(parts) + ")", [p for v in values for p in (jp, v)]


def compile_where(
    predicates: Sequence[str],
    variables: Mapping[str, str] | None = None,
    mapping: RootMapping | None = None,
) -> CompiledPredicate | None:
    """Compile ``where`` parameters (ANDed) to one SQL expression; None when there are none."""
    if not predicates:
        return None
    compiler = _Compiler(mapping or RootMapping(columns=BASE_COLUMNS), variables or {})
    root = _Scope(base=compiler.mapping.body, prefix=(), root_path=(), at_root=True)
    sqls: list[str] = []
    params: list[object] = []
    for text in predicates:
        try:
            node = parse(text)
        except RecursionError:
            raise PredicateError("Predicate is nested too deeply") from None
        sql, node_params = compiler.compile(node, root)
        sqls.append(sql)
        params.extend(node_params)
    return CompiledPredicate(" AND ".join(sqls), params)


_SORT = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*)\s+(asc|desc)\s*$", re.I
)


def compile_sort(sorts: Sequence[str], mapping: RootMapping | None = None) -> CompiledPredicate:
    """``sort=field asc|desc`` parameters to an ORDER BY list; ``id`` is the final tie-breaker."""
    mapping = mapping or RootMapping(columns=BASE_COLUMNS)
    terms: list[str] = []
    params: list[object] = []
    has_id = False
    for text in sorts:
        match = _SORT.match(text)
        if match is None:
            raise PredicateError(
                f"Invalid sort expression {text!r}: expected '<field> asc' or '<field> desc'"
            )
        parts = tuple(match.group(1).split("."))
        direction = match.group(2).upper()
        column = mapping.columns.get(parts)
        if column is not None:
            terms.append(f"{column.sql} {direction}")
            has_id = has_id or column.sql == "d.id"
            continue
        path = (*mapping.remap(parts[0]), *parts[1:]) if mapping.remap else parts
        terms.append(f"json_extract({mapping.body}, ?) {direction}")
        params.append(json_path(path))
    if not has_id:
        terms.append("d.id ASC")
    return CompiledPredicate(", ".join(terms), params)
