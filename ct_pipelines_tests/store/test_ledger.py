"""The export ledger: one row per (flow, entity_key), whatever the concurrency."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

import pytest
import sqlalchemy as sa

from ct_pipelines.store import (
    IntegrationStore,
    LedgerConflict,
    LedgerEntryNotFound,
    payload_hash,
)
from ct_pipelines.store import ledger as ledger_module
from ct_pipelines.store.schema import export_ledger

FLOW = "order_to_cash"
T = TypeVar("T")


def run_together(count: int, work: Callable[[int], T]) -> list[T]:
    """Run `work(i)` in `count` threads released at the same moment; re-raise any failure."""
    barrier = threading.Barrier(count)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def target(index: int) -> None:
        barrier.wait()
        try:
            value = work(index)
        except BaseException as exc:
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(value)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def _rows(store: IntegrationStore, entity_key: str) -> int:
    with store._db.read() as conn:
        return conn.execute(
            sa.select(sa.func.count()).where(
                export_ledger.c.flow == FLOW, export_ledger.c.entity_key == entity_key
            )
        ).scalar_one()


def test_claim_inserts_once_and_then_returns_the_same_entry(store: IntegrationStore) -> None:
    first = store.claim(FLOW, "UK-1001", "order-id-1", 3, "hash-a")
    assert first.status == "pending"
    assert first.attempts == 0
    assert (
        first.first_seen_at.tzinfo is not None
        and first.first_seen_at.utcoffset().total_seconds() == 0
    )

    again = store.claim(FLOW, "UK-1001", "order-id-1", 5, "hash-b")
    assert again.id == first.id
    # Not exported yet: the next attempt must send the newest version.
    assert (again.entity_version, again.payload_hash) == (5, "hash-b")
    assert again.first_seen_at == first.first_seen_at
    assert _rows(store, "UK-1001") == 1


def test_the_same_key_in_another_flow_is_another_entry(store: IntegrationStore) -> None:
    a = store.claim(FLOW, "UK-1001")
    b = store.claim("dispatch", "UK-1001")
    assert a.id != b.id


def test_concurrent_claims_produce_exactly_one_row(store: IntegrationStore) -> None:
    entries = run_together(8, lambda i: store.claim(FLOW, "UK-2001", "order-id-2", i, f"hash-{i}"))
    assert len({entry.id for entry in entries}) == 1
    assert _rows(store, "UK-2001") == 1


def test_concurrent_claims_of_many_keys_keep_one_row_each(store: IntegrationStore) -> None:
    keys = [f"UK-3{n:03d}" for n in range(10)]
    run_together(4, lambda i: [store.claim(FLOW, key) for key in keys])
    assert sorted(entry.entity_key for entry in store.ledger.list(FLOW)) == keys


def test_mark_exported_records_the_erp_document_and_is_idempotent(
    store: IntegrationStore,
) -> None:
    store.claim(FLOW, "UK-4001", "order-id-4", 1, "hash-a")
    exported = store.mark_exported(FLOW, "UK-4001", "SO-000123")
    assert exported.status == "exported"
    assert exported.is_exported
    assert exported.external_ref == "SO-000123"
    assert exported.attempts == 1
    assert exported.exported_at is not None and exported.last_attempt_at == exported.exported_at

    # A retried step reporting the same document changes nothing.
    assert store.mark_exported(FLOW, "UK-4001", "SO-000123") == exported
    # A second ERP document for the same order is a double export: refuse loudly.
    with pytest.raises(LedgerConflict, match="SO-000999"):
        store.mark_exported(FLOW, "UK-4001", "SO-000999")


def test_claim_leaves_an_exported_entry_as_the_erp_received_it(store: IntegrationStore) -> None:
    store.claim(FLOW, "UK-4002", "order-id", 1, payload_hash({"total": Decimal("10.00")}))
    store.mark_exported(FLOW, "UK-4002", "SO-1")
    later = store.claim(FLOW, "UK-4002", "order-id", 2, payload_hash({"total": Decimal("12.00")}))
    assert later.status == "exported"
    assert later.entity_version == 1
    assert later.payload_hash == payload_hash({"total": Decimal("10.00")})


def test_mark_failed_counts_attempts_and_keeps_the_entity_claimable(
    store: IntegrationStore,
) -> None:
    store.claim(FLOW, "UK-5001")
    store.mark_failed(FLOW, "UK-5001", "ERP 503 after 5 attempts")
    failed = store.mark_failed(FLOW, "UK-5001", "x" * 10_000)
    assert failed.status == "failed"
    assert failed.attempts == 2
    assert failed.last_error is not None and len(failed.last_error) == 2000

    exported = store.mark_exported(FLOW, "UK-5001", "SO-5")
    assert exported.attempts == 3
    assert exported.last_error is None
    with pytest.raises(LedgerConflict):
        store.mark_failed(FLOW, "UK-5001", "late failure")


def test_updates_need_a_claim_first(store: IntegrationStore) -> None:
    with pytest.raises(LedgerEntryNotFound):
        store.mark_exported(FLOW, "never-claimed", "SO-1")
    with pytest.raises(LedgerEntryNotFound):
        store.mark_failed(FLOW, "never-claimed", "boom")
    assert store.ledger.get(FLOW, "never-claimed") is None
    with pytest.raises(ValueError, match="entity_key"):
        store.claim(FLOW, "  ")


def test_list_filters_by_status_in_first_seen_order(store: IntegrationStore) -> None:
    for key in ("A", "B", "C"):
        store.claim(FLOW, key)
    store.mark_exported(FLOW, "B", "SO-B")
    store.mark_failed(FLOW, "C", "boom")
    assert [e.entity_key for e in store.ledger.list(FLOW)] == ["A", "B", "C"]
    assert [e.entity_key for e in store.ledger.list(FLOW, "pending")] == ["A"]
    assert [e.entity_key for e in store.ledger.list(FLOW, "exported")] == ["B"]
    assert [e.entity_key for e in store.ledger.list(FLOW, "failed")] == ["C"]
    assert store.ledger.list("other_flow") == []
    assert store.ledger.get(FLOW, "B").external_ref == "SO-B"


def test_exported_keys_checks_large_key_sets_in_chunks(
    store: IntegrationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_module, "KEY_CHUNK_SIZE", 7)
    exported = {f"UK-{n}" for n in range(0, 40, 3)}
    for n in range(40):
        store.claim(FLOW, f"UK-{n}")
    for key in exported:
        store.mark_exported(FLOW, key, f"SO-{key}")
    asked = [f"UK-{n}" for n in range(60)] + ["UK-0", "UK-3"]  # duplicates and unknown keys
    assert store.exported_keys(FLOW, asked) == exported
    assert store.exported_keys("other_flow", asked) == set()
    assert store.exported_keys(FLOW, []) == set()


def test_payload_hash_is_stable_and_sensitive_to_content() -> None:
    a = payload_hash({"lines": [{"sku": "A", "qty": 1}], "total": Decimal("9.99")})
    b = payload_hash({"total": Decimal("9.99"), "lines": [{"qty": 1, "sku": "A"}]})
    c = payload_hash({"total": Decimal("9.98"), "lines": [{"qty": 1, "sku": "A"}]})
    assert a == b != c
    with pytest.raises(TypeError):
        payload_hash({"x": object()})
