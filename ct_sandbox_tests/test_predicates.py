"""Query predicates and sort compiled to SQL, checked against a real SQLite document store."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ct_sandbox.documents import DocumentStore
from ct_sandbox.predicates import (
    PredicateError,
    compile_sort,
    compile_where,
    mapping_for,
    normalise_datetime,
    parse,
    projection_mapping,
)


def _order(number: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"order-{number:04d}",
        "version": 1,
        "createdAt": f"2026-01-{number % 28 + 1:02d}T10:00:00.000Z",
        "lastModifiedAt": f"2026-02-{number % 28 + 1:02d}T10:00:00Z",
        "orderNumber": f"UK-{number}",
        "orderState": "Open",
        **extra,
    }


@pytest.fixture
def store(tmp_path: Path) -> DocumentStore:
    store = DocumentStore(tmp_path / "world.db")
    store.insert_many(
        "orders",
        [
            _order(
                1,
                orderState="Confirmed",
                lineItems=[{"variant": {"sku": "TEA-1"}, "quantity": 2}],
                paymentInfo={"payments": [{"typeId": "payment", "id": "pay-1"}]},
                syncInfo=[{"channel": {"typeId": "channel", "id": "erp"}, "externalId": "SO-1"}],
                custom={"fields": {"giftWrap": True, "points": 12}},
                shipmentState="Shipped",
            ),
            _order(
                2,
                lineItems=[{"variant": {"sku": "MUG-1"}, "quantity": 1}],
                custom={"fields": {"giftWrap": False, "points": 3}},
            ),
            _order(3, orderState="Cancelled", lineItems=[], tags=["vip", "trade"]),
            _order(4, orderNumber="123", tags=["vip"], reference={"code": "123"}),
        ],
    )
    return store


def _ids(store: DocumentStore, *predicates: str, **variables: str) -> list[str]:
    where = compile_where(list(predicates), variables, mapping_for("orders"))
    assert where is not None
    page = store.query("orders", where=[where], limit=500)
    return [json.loads(body)["id"].removeprefix("order-000") for body in page.bodies]


@pytest.mark.parametrize(
    ("predicate", "expected"),
    [
        ('orderState = "Open"', ["2", "4"]),
        ('orderState != "Open"', ["1", "3"]),
        ('orderState <> "Open"', ["1", "3"]),
        ('orderNumber in ("UK-1", "UK-3")', ["1", "3"]),
        ('orderNumber not in ("UK-1", "UK-3")', ["2", "4"]),
        ("shipmentState is defined", ["1"]),
        ("shipmentState is not defined", ["2", "3", "4"]),
        ('lineItems(variant(sku = "MUG-1"))', ["2"]),
        ("lineItems(quantity >= 2)", ["1"]),
        ('paymentInfo(payments(id = "pay-1"))', ["1"]),
        ('syncInfo(channel(id = "erp") and externalId = "SO-1")', ["1"]),
        ("custom(fields(giftWrap = true))", ["1"]),
        ("custom(fields(giftWrap = false))", ["2"]),
        ("custom(fields(points > 5))", ["1"]),
        ('not(orderState = "Open")', ["1", "3"]),
        (
            'orderState = "Open" or orderState = "Cancelled" and orderNumber = "UK-3"',
            ["2", "3", "4"],
        ),
        ('(orderState = "Open" or orderState = "Cancelled") and orderNumber = "UK-3"', ["3"]),
        (
            'createdAt >= "2026-01-03T10:00:00Z" and createdAt < "2026-01-05T00:00:00+00:00"',
            ["2", "3"],
        ),
        ('lastModifiedAt = "2026-02-02T10:00:00.000Z"', ["1"]),
        ('tags contains any ("trade", "none")', ["3"]),
        ('tags contains all ("vip", "trade")', ["3"]),
        ("lineItems is empty", ["3", "4"]),
        ("lineItems is not empty", ["1", "2"]),
        ("version = 1", ["1", "2", "3", "4"]),
    ],
)
def test_predicates_select_the_right_documents(
    store: DocumentStore, predicate: str, expected: list[str]
) -> None:
    assert _ids(store, predicate) == expected


def test_repeated_predicates_are_anded(store: DocumentStore) -> None:
    assert _ids(store, 'orderState = "Open"', "tags is defined") == ["4"]


def test_variables_are_strings_compared_by_the_field_type(store: DocumentStore) -> None:
    # orderNumber "123" is a string field: the variable must not be turned into a number.
    assert _ids(store, "orderNumber = :n", n="123") == ["4"]
    assert _ids(store, "custom(fields(points > :p))", p="5") == ["1"]
    assert _ids(store, "custom(fields(giftWrap = :g))", g="true") == ["1"]
    assert _ids(store, "id > :lastId", lastId="order-0002") == ["3", "4"]
    assert _ids(store, "version = :v", v="1") == ["1", "2", "3", "4"]
    assert _ids(store, "orderNumber in (:a, :b)", a="UK-2", b="123") == ["2", "4"]


def test_string_literal_does_not_match_a_number_field(store: DocumentStore) -> None:
    assert _ids(store, 'custom(fields(points = "12"))') == []
    # Indexed string fields are typed: a number literal is a mistake the API would reject.
    with pytest.raises(PredicateError, match="Expected a string literal"):
        _ids(store, "orderNumber = 123")


def test_keyset_paging_predicate_uses_the_id_index(store: DocumentStore) -> None:
    where = compile_where(["id > :lastId"], {"lastId": "x"}, mapping_for("orders"))
    assert where is not None
    plan = store.conn.execute(
        f"EXPLAIN QUERY PLAN SELECT body FROM ct_documents AS d WHERE d.resource = ? AND {where.sql} "
        "ORDER BY d.id LIMIT 500",
        ["orders", *where.params],
    ).fetchall()
    detail = " ".join(str(row[-1]) for row in plan)
    assert "ct_documents_id" in detail
    assert "TEMP B-TREE" not in detail


def test_inventory_supply_channel_uses_the_indexed_column() -> None:
    where = compile_where(
        ['supplyChannel(id = "ch-1") and sku = "TEA-1"'], {}, mapping_for("inventory")
    )
    assert where is not None
    assert "d.supply_channel = ?" in where.sql
    assert "d.sku = ?" in where.sql


@pytest.mark.parametrize(
    ("predicate", "message"),
    [
        ("", "Empty predicate"),
        ('orderState = "Open', "Unterminated string"),
        ("orderState = 'Open'", "Unexpected character"),
        ('orderState "Open"', "Expected an operator"),
        ('orderState = "Open" and', "Expected a field name"),
        ('orderState = "Open")', "Unexpected ')'"),
        ("geoLocation within circle(1, 2, 3)", "not supported"),
        ('tags contains "vip"', "contains any"),
        ("shipmentState is known", "'defined' or 'empty'"),
        ("orderNumber in ()", "Expected a literal"),
        ("orderNumber = orderState", "Expected a literal"),
        ("custom(fields(giftWrap > true))", "cannot be used with a boolean"),
        ("orderNumber = :missing", "var.missing"),
        ("version = :v", "Expected an integer"),
        ('createdAt > "2026-13-45T00:00:00Z"', "Invalid datetime"),
        ("orderNumber in (true)", "Boolean"),
    ],
)
def test_unsupported_or_malformed_predicates_are_rejected(predicate: str, message: str) -> None:
    with pytest.raises(PredicateError, match=re.escape(message)):
        compile_where([predicate], {"v": "abc"}, mapping_for("orders"))


def test_deep_nesting_is_rejected() -> None:
    with pytest.raises(PredicateError, match="too deeply"):
        parse("(" * 40 + 'a = "b"' + ")" * 40)


def test_no_predicates_compile_to_nothing() -> None:
    assert compile_where([], {}) is None


def test_field_names_are_bound_not_spliced() -> None:
    where = compile_where(['lineItems(variant(sku = "x"))'], {}, mapping_for("orders"))
    assert where is not None
    assert "lineItems" not in where.sql
    assert '$."lineItems"' in where.params


def test_normalise_datetime() -> None:
    assert normalise_datetime("2026-01-31T10:00:00Z") == "2026-01-31T10:00:00.000Z"
    assert normalise_datetime("2026-01-31T11:00:00.5+01:00") == "2026-01-31T10:00:00.500Z"
    assert normalise_datetime("2026-01-31") == "2026-01-31"


def test_sort_compiles_columns_json_paths_and_a_tie_breaker() -> None:
    sort = compile_sort(["createdAt desc", "custom.fields.points asc"], mapping_for("orders"))
    assert sort.sql == "d.created_at DESC, json_extract(d.body, ?) ASC, d.id ASC"
    assert sort.params == ['$."custom"."fields"."points"']
    assert compile_sort(["id asc"], mapping_for("orders")).sql == "d.id ASC"


@pytest.mark.parametrize("bad", ["createdAt", "createdAt up", "created At asc", "x.(y) asc"])
def test_bad_sort_is_rejected(bad: str) -> None:
    with pytest.raises(PredicateError, match="Invalid sort"):
        compile_sort([bad])


def test_projection_mapping_reads_current_or_staged_data() -> None:
    current = compile_where(
        ['masterVariant(sku = "A")', "published = true"], {}, projection_mapping(False)
    )
    staged = compile_where(['masterVariant(sku = "A")'], {}, projection_mapping(True))
    assert current is not None and staged is not None
    assert '$."masterData"."current"."masterVariant"."sku"' in current.params
    assert '$."masterData"."published"' in current.params
    assert '$."masterData"."staged"."masterVariant"."sku"' in staged.params
    sort = compile_sort(["name.en asc", "key asc"], projection_mapping(True))
    assert sort.params == ['$."masterData"."staged"."name"."en"']
    assert "d.key ASC" in sort.sql
