"""Bulk ledger writes: a day's batch claimed and recorded in one transaction each."""

from __future__ import annotations

import pytest

from ct_pipelines.store import IntegrationStore, LedgerConflict, LedgerEntryNotFound

FLOW = "order_to_cash"


def test_claim_many_then_mark_exported_many(store: IntegrationStore) -> None:
    claims = [(f"UK-{n}", f"id-{n}", 1, f"h{n}") for n in range(2_500)]  # more than one chunk
    assert store.ledger.claim_many(FLOW, claims) == 2_500
    assert store.ledger.get(FLOW, "UK-7").status == "pending"
    # A repeat refreshes pending rows and creates none.
    store.ledger.claim_many(FLOW, [("UK-7", "id-7", 2, "h7b")])
    assert store.ledger.get(FLOW, "UK-7").entity_version == 2
    assert len(store.ledger.list(FLOW)) == 2_500

    assert (
        store.ledger.mark_exported_many(FLOW, [(f"UK-{n}", f"SO-{n}") for n in range(2_000)])
        == 2_000
    )
    assert store.exported_keys(FLOW, [f"UK-{n}" for n in range(2_500)]) == {
        f"UK-{n}" for n in range(2_000)
    }
    entry = store.ledger.get(FLOW, "UK-7")
    assert (entry.status, entry.external_ref, entry.attempts) == ("exported", "SO-7", 1)
    # Recording the same document again is harmless; an exported row is never re-claimed.
    assert store.ledger.mark_exported_many(FLOW, [("UK-7", "SO-7")]) == 0
    store.ledger.claim_many(FLOW, [("UK-7", "id-7", 9, "other")])
    assert store.ledger.get(FLOW, "UK-7").entity_version == 2


def test_bulk_mark_refuses_a_second_document_and_unclaimed_keys(store: IntegrationStore) -> None:
    store.ledger.claim_many(FLOW, [("UK-1", "id-1", 1, "h"), ("UK-2", "id-2", 1, "h")])
    store.ledger.mark_exported_many(FLOW, [("UK-1", "SO-1")])
    with pytest.raises(LedgerConflict, match="refusing to record a second ERP document"):
        store.ledger.mark_exported_many(FLOW, [("UK-2", "SO-2"), ("UK-1", "SO-99")])
    # The whole batch was refused: UK-2 is still pending.
    assert store.ledger.get(FLOW, "UK-2").status == "pending"
    with pytest.raises(LedgerEntryNotFound, match="claim them first"):
        store.ledger.mark_exported_many(FLOW, [("UK-404", "SO-404")])
    with pytest.raises(ValueError, match="entity_key"):
        store.ledger.claim_many(FLOW, [("", "id", 1, "h")])
