"""The sandbox ERP's HTTP surface, spoken to directly (no client): codes, headers, limits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ct_sandbox import SandboxWorld
from ct_sandbox.erp_app import ErpSandboxApp
from ct_sandbox.faults import FaultConfig


@pytest.fixture
def world(sandbox_dir: Path) -> Iterator[SandboxWorld]:
    world = SandboxWorld.open(sandbox_dir)
    yield world
    world.close()


@pytest.fixture
def http(world: SandboxWorld) -> Iterator[httpx.Client]:
    with httpx.Client(transport=world.erp_transport(), base_url="http://erp.sandbox/erp") as client:
        yield client


def _order(item_no: str, number: str = "WEB-1") -> dict:
    return {
        "external_document_number": number,
        "order_date": "2026-03-02",
        "currency": "GBP",
        "fraction_digits": 2,
        "customer": {"ref": "guest", "country": "GB"},
        "lines": [
            {
                "line_no": 1,
                "item_no": item_no,
                "description": "x",
                "quantity": 1,
                "unit_price_minor": 1200,
                "net_minor": 1000,
                "tax_minor": 200,
                "gross_minor": 1200,
                "tax_code": "S",
                "kind": "item",
            }
        ],
        "totals": {"net_minor": 1000, "tax_minor": 200, "gross_minor": 1200},
        "source_order_id": "o1",
        "source_order_version": 1,
    }


def _first_item(http: httpx.Client) -> str:
    return http.get("/items", params={"limit": 1}).json()["items"][0]["item_no"]


def test_writes_need_an_idempotency_key(http: httpx.Client) -> None:
    response = http.put("/sales-orders/WEB-1", json=_order(_first_item(http)))
    assert response.status_code == 400
    assert response.json()["code"] == "MissingIdempotencyKey"


def test_created_then_replayed_with_the_stored_answer(http: httpx.Client) -> None:
    body = _order(_first_item(http))
    first = http.put("/sales-orders/WEB-1", json=body, headers={"Idempotency-Key": "k1"})
    second = http.put("/sales-orders/WEB-1", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201 and second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json() == second.json()


def test_the_answer_to_a_create_is_the_order_as_read_back(http: httpx.Client) -> None:
    body = _order(_first_item(http))
    body["customer"] = {"country": "GB", "ref": "c-9"}
    body["lines"].insert(0, {**body["lines"][0], "line_no": 2, "kind": "custom"})
    body["lines"][0]["net_minor"] = body["lines"][0]["tax_minor"] = 0
    body["lines"][0]["gross_minor"] = 0
    created = http.put("/sales-orders/WEB-1", json=body, headers={"Idempotency-Key": "c"})
    assert created.status_code == 201
    assert created.json() == http.get("/sales-orders/WEB-1").json()
    assert [line["line_no"] for line in created.json()["lines"]] == [1, 2]
    # An update (other content, same document) answers with the stored order as well.
    body["source_order_version"] = 2
    updated = http.put("/sales-orders/WEB-1", json=body, headers={"Idempotency-Key": "u"})
    assert updated.status_code == 200
    assert updated.json() == http.get("/sales-orders/WEB-1").json()
    assert updated.json()["sales_order_no"] == created.json()["sales_order_no"]


def test_document_numbers_with_slashes_stay_one_segment(http: httpx.Client) -> None:
    body = _order(_first_item(http), number="WEB/2026/7")
    response = http.put(
        "/sales-orders/WEB%2F2026%2F7", json=body, headers={"Idempotency-Key": "slash"}
    )
    assert response.status_code == 201
    assert (
        http.get("/sales-orders/WEB%2F2026%2F7").json()["external_document_number"] == "WEB/2026/7"
    )


def test_validation_lists_every_problem(http: httpx.Client) -> None:
    body = _order("NOPE-1")
    body["lines"][0]["tax_code"] = "X"
    body["external_document_number"] = "OTHER"
    response = http.put("/sales-orders/WEB-1", json=body, headers={"Idempotency-Key": "v"})
    assert response.status_code == 422
    codes = {e["code"] for e in response.json()["errors"]}
    assert codes == {"UnknownItem", "UnknownTaxCode", "DocumentNumberMismatch"}
    blocked = http.get("/items", params={"limit": 5000}).json()["items"]
    blocked_no = next(i["item_no"] for i in blocked if not i["active"])
    response = http.put(
        "/sales-orders/WEB-1", json=_order(blocked_no), headers={"Idempotency-Key": "b"}
    )
    assert response.status_code == 422 and "blocked" in response.json()["message"]


def test_pydantic_errors_name_fields_not_values(http: httpx.Client) -> None:
    body = _order(_first_item(http))
    body["lines"][0]["net_minor"] = 10.5
    body["customer"]["ref"] = {"email": "jane@example.co.uk"}
    response = http.put("/sales-orders/WEB-1", json=body, headers={"Idempotency-Key": "p"})
    assert response.status_code == 422
    assert "lines.0.net_minor" in response.text and "jane@example" not in response.text


def test_bad_cursor_and_limit_are_400(http: httpx.Client) -> None:
    assert http.get("/stock-movements", params={"cursor": "abc"}).status_code == 400
    assert http.get("/items", params={"limit": 0}).status_code == 400
    assert http.get("/nowhere").status_code == 404


def test_injected_429_and_write_lock_faults(world: SandboxWorld, http: httpx.Client) -> None:
    world.set_faults("erp", FaultConfig(rate_429=1.0, retry_after_seconds=7, max_faults=1))
    response = http.get("/items")
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert http.get("/items").status_code == 200
    world.set_faults("erp", FaultConfig(rate_409=1.0, max_faults=1))
    locked = http.put(
        "/sales-orders/WEB-1", json=_order(_first_item(http)), headers={"Idempotency-Key": "l"}
    )
    assert locked.status_code == 423 and locked.json()["code"] == "RecordLocked"
    assert "Retry-After" in locked.headers


def test_limit_and_metrics_over_http(world: SandboxWorld) -> None:
    release = threading.Event()
    app = ErpSandboxApp(world.db_path, write_limit=1, sleep=lambda s: release.wait(5))
    app.write_latency_ms = 1
    transport = httpx.WSGITransport(app=app)
    item = None
    with httpx.Client(transport=transport, base_url="http://erp.sandbox/erp") as client:
        item = _first_item(client)
        holder = threading.Thread(
            target=client.put,
            args=("/sales-orders/WEB-1",),
            kwargs={"json": _order(item), "headers": {"Idempotency-Key": "hold"}},
        )
        holder.start()
        while app.metrics()["in_flight_writes"] == 0:
            threading.Event().wait(0.005)
        rejected = client.put(
            "/sales-orders/WEB-2", json=_order(item, "WEB-2"), headers={"Idempotency-Key": "second"}
        )
        release.set()
        holder.join()
        metrics = client.get("/_admin/metrics").json()
        assert client.post("/_admin/metrics/reset").json()["writes_rejected_locked"] == 0
    assert rejected.status_code == 423 and rejected.headers["Retry-After"] == "1"
    assert metrics["peak_in_flight_writes"] == 1
    assert metrics["writes_rejected_locked"] == 1 and metrics["writes_accepted"] == 1


def test_limits_are_stored_for_other_processes(world: SandboxWorld) -> None:
    world.configure_erp(write_limit=3, write_latency_ms=25)
    fresh = ErpSandboxApp(world.db_path)
    assert (fresh.write_limit, fresh.write_latency_ms) == (3, 25)
    with pytest.raises(ValueError):
        fresh.configure(write_limit=0)


@pytest.mark.parametrize(("currency", "digits"), [("JPY", 0), ("KWD", 3), ("USD", 2), ("BHD", 3)])
def test_every_iso_currency_with_its_fraction_digits(
    http: httpx.Client, currency: str, digits: int
) -> None:
    body = {**_order(_first_item(http), f"WEB-{currency}"), "currency": currency}
    body["fraction_digits"] = digits
    response = http.put(
        f"/sales-orders/WEB-{currency}", json=body, headers={"Idempotency-Key": currency}
    )
    assert response.status_code in (200, 201), response.text
    journal = {
        "batch_id": f"fin-2026-03-02-{currency}",
        "posting_date": "2026-03-02",
        "currency": currency,
        "fraction_digits": digits,
        "lines": [
            {"line_no": 1, "account": "1250", "debit_minor": 1200},
            {"line_no": 2, "account": "4000", "credit_minor": 1200},
        ],
    }
    posted = http.post(
        "/journal-batches", json=journal, headers={"Idempotency-Key": f"j{currency}"}
    )
    assert posted.status_code in (200, 201), posted.text


def test_wrong_fraction_digits_and_unknown_codes_are_refused(http: httpx.Client) -> None:
    item = _first_item(http)
    wrong = {**_order(item, "WEB-J"), "currency": "JPY", "fraction_digits": 2}
    response = http.put("/sales-orders/WEB-J", json=wrong, headers={"Idempotency-Key": "j2"})
    assert response.status_code == 422 and "0 fraction digits" in response.text
    unknown = {**_order(item, "WEB-X"), "currency": "XYZ"}
    response = http.put("/sales-orders/WEB-X", json=unknown, headers={"Idempotency-Key": "x"})
    assert response.status_code == 422 and "UnknownCurrency" in response.text
