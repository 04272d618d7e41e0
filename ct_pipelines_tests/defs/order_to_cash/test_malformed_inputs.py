"""Malformed orders and ERP answers crash nothing, on SQLite and on PostgreSQL (issue 17).

Each case is one bad input in a day of good orders, taken through what the two assets do: the
batch (rejects parked), the snapshot written to and read back from the store, and the export
through the real REST client against the sandbox ERP. A bad ERP answer comes from an httpx
transport in front of the sandbox that answers one order's write (or lookup) itself.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from ct_pipelines.defs.order_to_cash.logic.batch import (
    batch_frame,
    build_batch,
    export_items,
    park_rejects,
)
from ct_pipelines.defs.order_to_cash.logic.engine import FLOW, ExportOptions, OrderExporter
from ct_pipelines.defs.order_to_cash.logic.orders import EligibilityRule
from ct_pipelines.defs.order_to_cash.logic.sales_orders import SalesOrderMapping
from ct_pipelines.defs.resources import sandbox_world
from ct_pipelines.erp.rest import RestErpClient
from ct_pipelines.kernel.shop import SHOP
from ct_pipelines.store import IntegrationStore
from ct_sandbox import SANDBOX_ERP_URL

Doc = dict[str, Any]
Answer = Callable[[httpx.Request], httpx.Response]


def _set(*path: Any, value: Any) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        target: Any = doc
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return apply


def _drop(*path: Any) -> Callable[[Doc], None]:
    def apply(doc: Doc) -> None:
        target: Any = doc
        for part in path[:-1]:
            target = target[part]
        target.pop(path[-1], None)

    return apply


def _sku(value: str) -> Callable[[Doc], None]:
    return _set("lineItems", 0, "variant", "sku", value=value)


def _html(status: int = 200) -> Answer:
    body = "<html><body><form action='/login'>Sign in</form></body></html>"
    return lambda _r: httpx.Response(status, text=body, headers={"content-type": "text/html"})


def _json_text(text: str, status: int = 200, content_type: str = "application/json") -> Answer:
    return lambda _r: httpx.Response(
        status, content=text.encode(), headers={"content-type": content_type}
    )


def _json(body: Any, status: int = 200) -> Answer:
    return _json_text(json.dumps(body), status)


@dataclass(frozen=True)
class Case:
    name: str
    order: Callable[[Doc], None] | None = None
    put: Answer | None = None  # the ERP's answer to this order's write
    get: Answer | None = None  # the ERP's answer to this order's lookup
    # "parked": an open exception with a reason; "exported": one ERP document; "handled":
    # either (the input is odd but not necessarily wrong); "ineligible": not for the ERP.
    expect: str = "parked"


LONG = "X" * 300
CASES = [
    # -- orders ------------------------------------------------------------------------------
    Case("orderNumber of 300 characters", _set("orderNumber", value="ON-" + LONG)),
    Case("orderNumber of 256 characters", _set("orderNumber", value="N" * 256)),
    Case("orderNumber of 36 characters", _set("orderNumber", value="N" * 36)),
    Case("NUL in orderNumber", _set("orderNumber", value="ON-\x00-1")),
    Case("control characters in orderNumber", _set("orderNumber", value="ON-\x07\x1b-2")),
    Case("lone surrogate in orderNumber", _set("orderNumber", value="ON-\ud800")),
    Case(
        "non-ASCII orderNumber", _set("orderNumber", value="Bestellung-Ä-東京"), expect="exported"
    ),
    Case(
        "orderNumber with / # and spaces", _set("orderNumber", value="A/B #1 x"), expect="exported"
    ),
    Case("blank orderNumber", _set("orderNumber", value="   "), expect="handled"),
    Case("SKU of 300 characters", _sku("SKU-" + LONG)),
    Case("NUL in SKU", _sku("SKU-\x00")),
    Case("non-ASCII SKU", _sku("ŠKU-ü")),
    Case("lone surrogate in SKU", _sku("SKU-\udfff")),
    Case("no SKU", _drop("lineItems", 0, "variant", "sku")),
    Case("unknown SKU", _sku("NOT-IN-THE-ERP")),
    Case("no totalPrice", _drop("totalPrice")),
    Case("no lineItems", _drop("lineItems")),
    Case("lineItems not a list", _set("lineItems", value="oops")),
    Case("empty lineItems", _set("lineItems", value=[])),
    Case("no createdAt", _drop("createdAt")),
    Case("createdAt not a date", _set("createdAt", value="yesterday")),
    Case("no orderState", _drop("orderState")),
    Case("no version", _drop("version")),
    Case("null version", _set("version", value=None)),
    Case("float centAmount", _set("totalPrice", "centAmount", value=12.5)),
    Case("string centAmount", _set("taxedPrice", "totalNet", "centAmount", value="1299")),
    Case("unknown currency", _set("totalPrice", "currencyCode", value="XXX")),
    Case("currency of 300 characters", _set("totalPrice", "currencyCode", value=LONG)),
    Case("fractionDigits 30", _set("totalPrice", "fractionDigits", value=30)),
    Case("no taxedPrice", _drop("taxedPrice")),
    Case("negative quantity", _set("lineItems", 0, "quantity", value=-2)),
    Case("zero quantity", _set("lineItems", 0, "quantity", value=0), expect="handled"),
    Case("unknown tax rate", _set("lineItems", 0, "taxRate", "amount", value=0.175)),
    Case("no line price", _drop("lineItems", 0, "price")),
    Case(
        "gross off by one",
        lambda d: d["taxedPrice"]["totalGross"].__setitem__(
            "centAmount", d["taxedPrice"]["totalGross"]["centAmount"] + 1
        ),
    ),
    Case(
        "customerId of 300 characters with NUL",
        _set("customerId", value="c\x00" + LONG),
        expect="handled",
    ),
    Case(
        "NUL in line name",
        _set("lineItems", 0, "name", value={"en-GB": "a\x00b"}),
        expect="handled",
    ),
    Case("id of 300 characters", _set("id", value="id-" + LONG), expect="handled"),
    Case("cancelled", _set("orderState", value="Cancelled"), expect="ineligible"),
    # -- ERP answers to this order's write or lookup ----------------------------------------
    Case("ERP: HTML login page with 200", put=_html()),
    Case("ERP: HTML login page on the lookup", get=_html()),
    Case("ERP: truncated JSON", put=_json_text('{"sales_order_no": "SO-1", "sta')),
    Case("ERP: empty body with 200", put=_json_text("")),
    Case("ERP: empty body with 201 and no content type", put=_json_text("", 201, "")),
    Case("ERP: JSON list instead of an object", put=_json([1, 2, 3])),
    Case("ERP: JSON null", put=_json(None)),
    Case("ERP: object without the sales order fields", put=_json({"ok": True})),
    Case("ERP: text/plain 200", put=_json_text("OK", 200, "text/plain")),
    Case(
        "ERP: 302 to a login page",
        put=lambda _r: httpx.Response(302, headers={"location": "https://sso.example/login"}),
    ),
    Case("ERP: 500 every time", put=_json({"message": "boom"}, 500)),
    Case("ERP: 502 HTML from a proxy", put=_html(502)),
    Case("ERP: 422 validation", put=_json({"code": "Invalid", "message": "customer blocked"}, 422)),
    Case("ERP: 422 with an HTML body", put=_html(422)),
    Case("ERP: 409 conflict", put=_json({"message": "conflict"}, 409)),
    Case("ERP: 418 unknown status", put=_json({"message": "teapot"}, 418)),
    Case("ERP: lookup answers wrong shape", get=_json({"items": []})),
]


class _FaultyErp(httpx.BaseTransport):
    """The sandbox ERP, except for the documents a case answers itself."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.put: dict[str, Answer] = {}
        self.get: dict[str, Answer] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if "/sales-orders/" in path:
            document = path.rsplit("/", 1)[-1]
            table = self.put if request.method == "PUT" else self.get
            if document in table:
                return table[document](request)
        if path.endswith("/sales-orders") and request.method == "GET":
            # The bulk lookup of a batch holding the order gets the order's lookup answer too.
            for document in request.url.params.get_list("external_document_number"):
                if document in self.get:
                    return self.get[document](request)
        return self.inner.handle_request(request)


@pytest.fixture
def erp_day(sandbox_dir: Path) -> Iterator[tuple[list[Doc], _FaultyErp, RestErpClient]]:
    world = sandbox_world(sandbox_dir)
    templates = [
        d
        for d in world.documents.iter_all("orders")
        if d.get("paymentState") == "Paid" and d.get("taxedPrice") and d.get("orderNumber")
    ][:5]
    faulty = _FaultyErp(world.erp_transport())
    with RestErpClient(SANDBOX_ERP_URL, None, transport=faulty, sleep=lambda _s: None) as erp:
        yield templates, faulty, erp


def _fresh(template: Doc, label: str) -> Doc:
    doc = copy.deepcopy(template)
    doc["id"] = str(uuid.uuid4())
    doc["orderNumber"] = f"MAL-{label}-{uuid.uuid4().hex[:8]}"
    doc["syncInfo"] = []
    return doc


def _run_day(store: IntegrationStore, erp: RestErpClient, docs: list[Doc], day: str) -> Any:
    """What order_batches and erp_sales_orders do with one day's orders."""
    item_numbers = {item.sku: item.item_no for item in erp.iter_items()}
    batch = build_batch(
        docs,
        tz=SHOP.tz,
        rule=EligibilityRule(),
        mapping=SalesOrderMapping(item_numbers=item_numbers),
        channel_id=None,
    )
    park_rejects(store, FLOW, batch.rejects)
    store.write_snapshot(
        "order_batches", batch_frame(batch.rows), partition_key=day, taken_at=datetime.now(UTC)
    )
    frame = store.read_snapshot("order_batches", partition_key=day)
    items = export_items(frame) if len(frame) else []
    return OrderExporter(
        erp, store, ExportOptions(workers=2, rate_per_second=None), sleep=lambda _s: None
    ).export(items)


def test_malformed_orders_and_erp_answers_crash_nothing(
    erp_day: tuple[list[Doc], _FaultyErp, RestErpClient], store: IntegrationStore
) -> None:
    templates, faulty, erp = erp_day
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES)
    crashed: list[str] = []
    outcomes: dict[str, str] = {}
    for index, case in enumerate(CASES):
        good = [_fresh(templates[i % len(templates)], f"good{index}-{i}") for i in range(2)]
        bad = _fresh(templates[index % len(templates)], f"bad{index}")
        if case.order is not None:
            case.order(bad)
        number = str(bad.get("orderNumber") or "")
        document = number if number.strip() else str(bad["id"]).replace("-", "")
        if case.put is not None:
            faulty.put[document] = case.put
        if case.get is not None:
            faulty.get[document] = case.get
        try:
            _run_day(store, erp, [good[0], bad, good[1]], f"case-{index}")
        except Exception as exc:  # the point of the test: count, then fail below
            crashed.append(f"{case.name}: {type(exc).__name__}: {exc}"[:300])
            continue
        # Every good order of the day reached the ERP.
        for doc in good:
            found = erp.find_sales_order(doc["orderNumber"])
            assert found is not None and found.source_order_id == doc["id"], case.name
        open_rows = [
            e
            for e in store.list_exceptions(flow=FLOW, status=["open", "retrying"])
            if (e.details or {}).get("order_id") == bad["id"]
            or (e.payload_ref or "").startswith(f"order:{str(bad['id'])[:200]}")
        ]
        parked = bool(open_rows) and all(e.reason.strip() for e in open_rows)
        exported = store.exported_keys(FLOW, [document]) == {document}
        outcomes[case.name] = "parked" if parked else "exported" if exported else "neither"
    parked_count = sum(1 for v in outcomes.values() if v == "parked")
    print(
        f"\n[{store.dialect}] malformed inputs tried {len(CASES)}, crashed {len(crashed)}, "
        f"parked {parked_count}, exported {sum(1 for v in outcomes.values() if v == 'exported')}"
    )
    assert not crashed, crashed
    mismatched = {
        case.name: outcomes[case.name]
        for case in CASES
        if not _as_expected(case.expect, outcomes[case.name])
    }
    assert not mismatched, json.dumps(mismatched)


def _as_expected(expect: str, got: str) -> bool:
    if expect == "handled":
        return got in ("parked", "exported")
    if expect == "ineligible":
        return got == "neither"
    return got == expect
