"""RestErpClient against the sandbox ERP, in-process: reads, idempotent writes, errors, limits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from ct_pipelines.erp.errors import (
    ErpConflictError,
    ErpRecordLockedError,
    ErpTransientError,
    ErpValidationError,
)
from ct_pipelines.erp.port import JournalBatch, SalesOrderDraft
from ct_pipelines.erp.rest import RestErpClient
from ct_pipelines.lib.retry import RetryPolicy
from ct_sandbox import SANDBOX_ERP_URL, SandboxWorld
from ct_sandbox import db as sandbox_db
from ct_sandbox.faults import FaultConfig

NO_WAIT = RetryPolicy(
    max_attempts=4,
    base_delay=0.0,
    max_delay=5.0,
    retry_statuses=frozenset({423, 429, 500, 502, 503, 504}),
)


@pytest.fixture
def world(sandbox_dir: Path) -> Iterator[SandboxWorld]:
    world = SandboxWorld.open(sandbox_dir)
    yield world
    world.close()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def erp(world: SandboxWorld, sleeps: list[float]) -> Iterator[RestErpClient]:
    client = RestErpClient(
        SANDBOX_ERP_URL, None, transport=world.erp_transport(), retry=NO_WAIT, sleep=sleeps.append
    )
    yield client
    client.close()


def _draft(erp: RestErpClient, number: str = "WEB-900001", **changes: object) -> SalesOrderDraft:
    items = [item for item in erp.iter_items() if item.active][:2]
    lines = []
    for index, item in enumerate(items, start=1):
        gross = 1200 * index
        net = gross * 5 // 6
        lines.append(
            {
                "line_no": index,
                "item_no": item.item_no,
                "description": item.name,
                "quantity": index,
                "unit_price_minor": 1200,
                "net_minor": net,
                "tax_minor": gross - net,
                "gross_minor": gross,
                "tax_code": item.tax_code,
                "kind": "item",
            }
        )
    lines.append(
        {
            "line_no": 3,
            "item_no": "SHIPPING",
            "description": "Standard Delivery",
            "quantity": 1,
            "unit_price_minor": 395,
            "net_minor": 329,
            "tax_minor": 66,
            "gross_minor": 395,
            "tax_code": "S",
            "kind": "shipping",
        }
    )
    body = {
        "external_document_number": number,
        "order_date": "2026-03-02",
        "currency": "GBP",
        "fraction_digits": 2,
        "customer": {"ref": "cust-1", "country": "GB"},
        "lines": lines,
        "totals": {
            "net_minor": sum(line["net_minor"] for line in lines),
            "tax_minor": sum(line["tax_minor"] for line in lines),
            "gross_minor": sum(line["gross_minor"] for line in lines),
        },
        "source_order_id": f"ct-{number}",
        "source_order_version": 2,
        **changes,
    }
    return SalesOrderDraft.model_validate(body)


def _sales_order_rows(world: SandboxWorld, number: str) -> int:
    return (
        sandbox_db.connect(world.db_path)
        .execute(
            "SELECT count(*) FROM erp_sales_orders WHERE external_document_number = ?", (number,)
        )
        .fetchone()[0]
    )


def test_items_and_stock_page_through_everything(world: SandboxWorld) -> None:
    with RestErpClient(SANDBOX_ERP_URL, None, transport=world.erp_transport(), page_size=37) as erp:
        items = list(erp.iter_items())
        stock = list(erp.iter_stock())
        store_stock = list(erp.iter_stock(["LDN-STORE"]))
    assert len(items) >= 200
    assert len({item.sku for item in items}) == len(items)
    assert any(p.precise_amount is not None for item in items for p in item.prices)
    assert {level.location for level in stock} == {"MAN", "MK", "LDN-STORE"}
    assert len({(level.sku, level.location) for level in stock}) == len(stock)
    assert store_stock and {level.location for level in store_stock} == {"LDN-STORE"}
    assert all(level.available == level.on_hand - level.reserved for level in stock)


def test_stock_movements_cursor_returns_each_movement_once(
    world: SandboxWorld, erp: RestErpClient
) -> None:
    seen: list[int] = []
    cursor = None
    while True:
        page = erp.stock_movements_since(cursor, limit=400)
        seen.extend(m.movement_id for m in page.movements)
        cursor = page.next_cursor
        if not page.has_more:
            break
    assert seen == sorted(set(seen))
    idle = erp.stock_movements_since(cursor)
    assert idle.movements == [] and idle.next_cursor == cursor
    happened = world.advance(240)
    fresh = erp.stock_movements_since(cursor)
    assert [m.movement_id for m in fresh.movements] == happened["stock_movement_ids"]
    assert {m.reason for m in fresh.movements} >= {"receipt", "shipment"}
    assert min(m.movement_id for m in fresh.movements) > seen[-1]


def test_shipments_since_cursor_and_lookup(erp: RestErpClient) -> None:
    first = erp.shipments_since(None, limit=5)
    assert len(first.shipments) == 5 and first.has_more
    rest = erp.shipments_since(first.next_cursor, limit=500)
    numbers = [s.shipment_number for s in first.shipments + rest.shipments]
    assert len(numbers) == len(set(numbers))
    order = erp.find_sales_order(first.shipments[0].external_document_number)
    assert order is not None and order.status == "shipped"
    assert erp.find_sales_order("NO-SUCH-ORDER") is None


def test_upsert_creates_then_replays_the_same_order(
    world: SandboxWorld, erp: RestErpClient
) -> None:
    draft = _draft(erp)
    created = erp.upsert_sales_order(draft, idempotency_key="export-1")
    replayed = erp.upsert_sales_order(draft, idempotency_key="export-1")
    again_other_key = erp.upsert_sales_order(draft, idempotency_key="export-2")
    assert created.sales_order_no == replayed.sales_order_no == again_other_key.sales_order_no
    assert created.status == "open" and created.lines_add_up()
    assert _sales_order_rows(world, draft.external_document_number) == 1
    found = erp.find_sales_order(draft.external_document_number)
    assert found is not None and found.lines == created.lines


def test_idempotency_key_reused_for_another_body_is_refused(erp: RestErpClient) -> None:
    erp.upsert_sales_order(_draft(erp), idempotency_key="key-A")
    other = _draft(erp, number="WEB-900002")
    with pytest.raises(ErpValidationError, match="different request"):
        erp.upsert_sales_order(other, idempotency_key="key-A")


def test_upsert_updates_an_open_order_in_place(erp: RestErpClient) -> None:
    first = erp.upsert_sales_order(_draft(erp), idempotency_key="v2")
    newer = _draft(erp, source_order_version=5, customer={"ref": "cust-2", "country": "GB"})
    updated = erp.upsert_sales_order(newer, idempotency_key="v5")
    assert updated.sales_order_no == first.sales_order_no
    assert updated.customer.ref == "cust-2" and updated.source_order_version == 5
    with pytest.raises(ErpConflictError, match="newer than 2"):
        erp.upsert_sales_order(
            _draft(erp, customer={"ref": "x", "country": "GB"}), idempotency_key="stale"
        )


def test_timeout_after_the_write_is_retried_without_a_duplicate(
    world: SandboxWorld, erp: RestErpClient, sleeps: list[float]
) -> None:
    world.set_faults(
        "erp",
        FaultConfig(
            rate_read_timeout=1.0,
            timeout_after_write=True,
            max_faults=1,
            path_pattern="^/erp/sales-orders/",
        ),
    )
    order = erp.upsert_sales_order(_draft(erp), idempotency_key="lost-answer")
    assert len(sleeps) == 1
    assert _sales_order_rows(world, order.external_document_number) == 1
    replays = (
        sandbox_db.connect(world.db_path)
        .execute("SELECT count(*) FROM erp_idempotency_keys WHERE key = 'lost-answer'")
        .fetchone()[0]
    )
    assert replays == 1


def test_retry_after_is_honoured_on_503(
    world: SandboxWorld, erp: RestErpClient, sleeps: list[float]
) -> None:
    world.set_faults("erp", FaultConfig(rate_503=1.0, max_faults=2, retry_after_seconds=3))
    assert erp.find_sales_order("NO-SUCH-ORDER") is None
    assert sleeps == [3.0, 3.0]


def test_exhausted_retries_raise_a_transient_error(
    world: SandboxWorld, erp: RestErpClient, sleeps: list[float]
) -> None:
    world.set_faults("erp", FaultConfig(rate_502=1.0))
    with pytest.raises(ErpTransientError) as info:
        erp.upsert_sales_order(_draft(erp), idempotency_key="k")
    assert info.value.status == 502 and info.value.retryable
    assert len(sleeps) == NO_WAIT.max_attempts - 1
    world.set_faults("erp", FaultConfig(rate_read_timeout=1.0))
    with pytest.raises(ErpTransientError, match="ReadTimeout"):
        erp.find_sales_order("X")


def test_unknown_item_is_a_permanent_error_naming_the_item(erp: RestErpClient) -> None:
    draft = _draft(erp)
    lines = [line.model_dump() for line in draft.lines]
    lines[0]["item_no"] = "99999-GONE"
    bad = SalesOrderDraft.model_validate({**draft.model_dump(), "lines": lines})
    with pytest.raises(ErpValidationError) as info:
        erp.upsert_sales_order(bad, idempotency_key="bad-item")
    assert info.value.status == 422 and not info.value.retryable
    assert "99999-GONE" in info.value.reason and "line 1" in info.value.reason
    assert erp.find_sales_order(draft.external_document_number) is None


def test_document_number_too_long_and_totals_off_are_rejected(erp: RestErpClient) -> None:
    long_number = "MARKETPLACE-AMAZON-UK-206-4837261-5519034"
    with pytest.raises(ErpValidationError, match="at most 35"):
        erp.upsert_sales_order(_draft(erp, number=long_number), idempotency_key="long")
    draft = _draft(erp)
    off = {**draft.totals.model_dump(), "tax_minor": draft.totals.tax_minor + 1}
    with pytest.raises(ErpValidationError, match="lines add up to"):
        erp.upsert_sales_order(_draft(erp, totals=off), idempotency_key="off")


def test_concurrency_limit_rejects_excess_writes_with_record_locked(world: SandboxWorld) -> None:
    world.configure_erp(write_limit=2, write_latency_ms=150)
    outcomes: list[str] = []
    lock = threading.Lock()
    reference = RestErpClient(SANDBOX_ERP_URL, None, transport=world.erp_transport())
    drafts = [_draft(reference, number=f"WEB-91000{i}") for i in range(6)]
    reference.close()
    barrier = threading.Barrier(6)

    def write(draft: SalesOrderDraft) -> None:
        client = RestErpClient(
            SANDBOX_ERP_URL,
            None,
            transport=world.erp_transport(),
            retry=RetryPolicy(max_attempts=1),
        )
        barrier.wait()
        try:
            client.upsert_sales_order(draft, idempotency_key=draft.external_document_number)
            result = "ok"
        except ErpRecordLockedError as exc:
            assert exc.retryable and exc.code == "RecordLocked"
            result = "locked"
        finally:
            client.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=write, args=(d,)) for d in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    metrics = world.erp_metrics()
    assert metrics["peak_in_flight_writes"] == 2
    assert outcomes.count("locked") == metrics["writes_rejected_locked"] > 0
    assert outcomes.count("ok") == metrics["writes_accepted"] >= 2


def test_locked_writes_succeed_after_retries(world: SandboxWorld) -> None:
    world.configure_erp(write_limit=1, write_latency_ms=40)
    reference = RestErpClient(SANDBOX_ERP_URL, None, transport=world.erp_transport())
    drafts = [_draft(reference, number=f"WEB-92000{i}") for i in range(4)]
    reference.close()
    errors: list[BaseException] = []

    def write(draft: SalesOrderDraft) -> None:
        policy = RetryPolicy(
            max_attempts=40,
            base_delay=0.0,
            max_delay=0.05,
            retry_statuses=frozenset({423}),
            honour_retry_after=False,
        )
        with RestErpClient(
            SANDBOX_ERP_URL,
            None,
            transport=world.erp_transport(),
            retry=policy,
            sleep=lambda s: threading.Event().wait(0.02),
        ) as client:
            try:
                client.upsert_sales_order(draft, idempotency_key=draft.external_document_number)
            except BaseException as exc:  # collected for the assertion below
                errors.append(exc)

    threads = [threading.Thread(target=write, args=(d,)) for d in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert world.erp_metrics()["peak_in_flight_writes"] == 1
    assert all(_sales_order_rows(world, d.external_document_number) == 1 for d in drafts)


def test_journal_batches_post_once(erp: RestErpClient) -> None:
    batch = JournalBatch.model_validate(
        {
            "batch_id": "psp-2026-03-01",
            "posting_date": "2026-03-01",
            "currency": "GBP",
            "fraction_digits": 2,
            "description": "Stripe payout",
            "lines": [
                {"line_no": 1, "account": "1200", "debit_minor": 10_000},
                {"line_no": 2, "account": "7900", "debit_minor": 150},
                {"line_no": 3, "account": "1100", "credit_minor": 10_150},
            ],
        }
    )
    assert erp.find_journal_batch(batch.batch_id) is None
    posted = erp.post_journal_batch(batch)
    again = erp.post_journal_batch(batch)
    assert posted == again and posted.total_debit_minor == 10_150 and posted.line_count == 3
    assert erp.find_journal_batch(batch.batch_id) == posted
    changed = batch.model_copy(update={"description": "Stripe payout (corrected)"})
    with pytest.raises(ErpConflictError, match="already posted"):
        erp.post_journal_batch(changed)


def test_token_is_sent_but_never_shown() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization", ""))
        seen.append(request.headers.get("Idempotency-Key", ""))
        return httpx.Response(422, json={"code": "ValidationFailed", "message": "item X unknown"})

    client = RestErpClient(
        "https://erp.example/api",
        SecretStr("tok-very-secret"),
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(ErpValidationError) as info:
        client.post_journal_batch(
            JournalBatch.model_validate(
                {
                    "batch_id": "b",
                    "posting_date": "2026-03-01",
                    "currency": "GBP",
                    "fraction_digits": 2,
                    "lines": [
                        {"line_no": 1, "account": "1", "debit_minor": 1},
                        {"line_no": 2, "account": "2", "credit_minor": 1},
                    ],
                }
            )
        )
    client.close()
    assert seen[0] == "Bearer tok-very-secret" and seen[1].startswith("journal-b-")
    text = f"{info.value} {info.value!r} {info.value.details} {client!r}"
    assert "tok-very-secret" not in text and "item X unknown" in str(info.value)


def test_bulk_lookup_finds_exactly_the_documents_that_exist(
    world: SandboxWorld, erp: RestErpClient
) -> None:
    from ct_pipelines.erp import rest as rest_module
    from ct_pipelines.erp.port import find_sales_orders

    numbers = [f"WEB-91{n:04d}" for n in range(7)]
    created = {
        n: erp.upsert_sales_order(_draft(erp, number=n), idempotency_key=n).sales_order_no
        for n in numbers[:5]
    }
    asked = ["NO-SUCH-1", *numbers, "NO/SUCH #2", numbers[0]]
    rest_module.LOOKUP_CHUNK, saved = 3, rest_module.LOOKUP_CHUNK  # several requests
    try:
        found = erp.find_sales_orders(asked)
    finally:
        rest_module.LOOKUP_CHUNK = saved
    assert {n: o.sales_order_no for n, o in found.items()} == created
    assert found[numbers[0]].lines == erp.find_sales_order(numbers[0]).lines  # type: ignore[union-attr]

    class OneByOne:  # an adapter without a bulk lookup (e.g. Tryton): the port helper falls back
        def __init__(self) -> None:
            self.calls: list[str] = []

        def find_sales_order(self, number: str) -> object:
            self.calls.append(number)
            return erp.find_sales_order(number)

    fallback = OneByOne()
    assert find_sales_orders(fallback, asked).keys() == created.keys()  # type: ignore[arg-type]
    assert sorted(fallback.calls) == sorted(set(asked))


def test_bulk_lookup_refuses_too_many_numbers(world: SandboxWorld) -> None:
    from ct_sandbox.erp_app import MAX_LOOKUP

    with httpx.Client(transport=world.erp_transport()) as http:
        too_many = [("external_document_number", f"D-{n}") for n in range(MAX_LOOKUP + 1)]
        answer = http.get(f"{SANDBOX_ERP_URL}/sales-orders", params=too_many)
        assert answer.status_code == 400 and "at most" in answer.json()["message"]
        empty = http.get(f"{SANDBOX_ERP_URL}/sales-orders", params={"external_document_number": ""})
        assert empty.status_code == 400


def test_an_unreachable_erp_is_named_with_its_host_and_the_variable_that_holds_it() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    erp = RestErpClient(
        "https://erp.example.invalid/api",
        SecretStr("t0ken"),
        transport=httpx.MockTransport(refuse),
        retry=NO_WAIT,
        sleep=lambda _s: None,
    )
    with pytest.raises(ErpTransientError) as raised:
        erp.find_sales_order("UK-1")
    message = str(raised.value)
    assert "erp.example.invalid" in message and "CT_PIPELINES_ERP_URL" in message
    assert "after 4 attempts" in message and "t0ken" not in message
