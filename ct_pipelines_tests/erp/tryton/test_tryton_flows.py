"""The flows through Dagster with CT_PIPELINES_ERP=tryton and commercetools on the sandbox:
order_to_cash exports a day of orders into the session's real trytond exactly once (a re-run
sends nothing); dispatch records a Tryton shipment with its tracking number on the order."""

from __future__ import annotations

from pathlib import Path

import pytest

from ct_pipelines.defs.resources import build_resources
from ct_pipelines_tests.defs.order_to_cash.helpers import (
    export_day,
    materialization,
    past_day,
    world_for,
)
from ct_pipelines_tests.erp.tryton.shipping import ship_sale

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def on_tryton(
    tryton_server: dict[str, str], sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """commercetools = a private sandbox copy; the ERP = the session's Tryton."""
    monkeypatch.setenv("CT_PIPELINES_COMMERCETOOLS", "sandbox")
    monkeypatch.setenv("CT_PIPELINES_ERP", "tryton")
    monkeypatch.setenv("CT_PIPELINES_TRYTON_URL", tryton_server["url"])
    monkeypatch.setenv("CT_PIPELINES_TRYTON_DATABASE", tryton_server["database"])
    monkeypatch.setenv("CT_PIPELINES_TRYTON_USER", tryton_server["user"])
    monkeypatch.setenv("CT_PIPELINES_TRYTON_PASSWORD", tryton_server["password"])
    resources = build_resources()
    assert resources["commercetools"].uses_sandbox
    assert resources["erp"].describe().startswith("Tryton ")
    return sandbox_dir


def test_order_to_cash_exports_a_day_into_tryton_exactly_once(on_tryton: Path) -> None:
    day = past_day(world_for(on_tryton), 1)
    first = export_day(day, workers=2)
    assert first.success
    export = materialization(first, "erp_sales_orders")
    assert export["orders_exported"] > 0, export
    assert export["orders_failed_transient"] == 0, export["failures"]
    batch = (
        build_resources()["store"]
        .get_store()
        .read_snapshot("order_batches", partition_key=str(day))
    )
    ok = batch[batch["eligible"].astype(bool) & batch["sales_order"].notna()]
    eligible = set(ok["external_document_number"])
    exported = export["orders_exported"] + export["orders_failed_permanent"]
    assert exported == len(eligible), export["failures"]

    with build_resources()["erp"].open_port() as port:
        rpc = port.rpc  # type: ignore[attr-defined]
        rows = rpc.search_read(
            "sale.sale", [("reference", "in", sorted(eligible))], ["reference", "state"]
        )
        references = [row["reference"] for row in rows]
        assert len(references) == len(set(references)) == export["orders_exported"]
        assert {row["state"] for row in rows} <= {"confirmed", "processing"}
        for reference in references[:5]:
            found = port.find_sales_order(reference)
            assert found is not None and found.status == "released"

    again = export_day(day, workers=2)
    assert again.success
    repeat = materialization(again, "erp_sales_orders")
    # Nothing exported is sent again. The sandbox shop lives on (a pending payment may clear
    # meanwhile), so the re-run may export an order that became eligible, once.
    assert repeat["orders_already_exported"] >= len(references), repeat
    assert repeat["orders_recovered"] == 0, repeat
    batch = (
        build_resources()["store"]
        .get_store()
        .read_snapshot("order_batches", partition_key=str(day))
    )
    now_eligible = set(
        batch[batch["eligible"].astype(bool) & batch["sales_order"].notna()][
            "external_document_number"
        ]
    )
    with build_resources()["erp"].open_port() as port:
        rows = port.rpc.search_read(  # type: ignore[attr-defined]
            "sale.sale", [("reference", "in", sorted(eligible | now_eligible))], ["reference"]
        )
    after = [row["reference"] for row in rows]
    assert len(after) == len(set(after)), "a sales order was created twice"
    assert set(references) <= set(after)
    assert len(after) == len(references) + repeat["orders_exported"]


def test_dispatch_records_a_tryton_shipment_with_tracking_on_the_order(on_tryton: Path) -> None:
    import dagster as dg

    from ct_pipelines.defs.dispatch.assets import (
        SHIPMENTS_CURSOR,
        commercetools_deliveries,
        erp_shipments,
    )

    # A seeded day: every test's sandbox copy numbers new orders alike, and the session's Tryton
    # is shared, so only one test (finance) may add orders of its own.
    day = past_day(world_for(on_tryton), 2)
    assert export_day(day, workers=2).success
    store = build_resources()["store"].get_store()
    batch = store.read_snapshot("order_batches", partition_key=str(day))
    ok = batch[batch["eligible"].astype(bool) & batch["sales_order"].notna()]

    with build_resources()["erp"].open_port() as port:
        in_tryton = port.rpc.search_read(  # type: ignore[attr-defined]
            "sale.sale",
            [
                ("reference", "in", sorted(ok["external_document_number"])),
                ("state", "=", "processing"),
            ],
            ["reference"],
            order=[("reference", "ASC")],
        )
        # An order the sandbox shop has not delivered yet (its own history ships some).
        order_ids = dict(zip(ok["external_document_number"], ok["order_id"], strict=True))
        with build_resources()["commercetools"].open_client() as client:
            reference, order_id = next(
                (row["reference"], order_ids[row["reference"]])
                for row in in_tryton
                if not (
                    client.get(f"orders/{order_ids[row['reference']]}").get("shippingInfo") or {}
                ).get("deliveries")
            )
        # Start after the shipments other tests made, as a first deployment would after a cut-over.
        cursor = None
        while True:
            page = port.shipments_since(cursor)
            cursor = page.next_cursor or cursor
            if not page.has_more:
                break
        if cursor is not None:
            store.set_cursor(SHIPMENTS_CURSOR, cursor)
        ship_sale(port.rpc, reference, "RM987654321GB")  # type: ignore[attr-defined]

    resources = build_resources()
    first = dg.materialize([erp_shipments, commercetools_deliveries], resources=resources)
    assert first.success
    received = materialization(first, "erp_shipments")
    assert received["orders"] == 1 and received["without_tracking"] == 0
    applied = materialization(first, "commercetools_deliveries")
    assert applied["shipments_applied"] == 1, applied["failures"]
    with resources["commercetools"].open_client() as client:
        shipped = client.get(f"orders/{order_id}")
    assert shipped["shipmentState"] == "Shipped"
    (delivery,) = shipped["shippingInfo"]["deliveries"]
    assert [p["trackingData"]["trackingId"] for p in delivery["parcels"]] == ["RM987654321GB"]

    second = dg.materialize([erp_shipments, commercetools_deliveries], resources=resources)
    assert second.success
    assert materialization(second, "commercetools_deliveries")["dagster/row_count"] == 0


def test_finance_posts_one_journal_in_tryton_and_reconciles_it(on_tryton: Path) -> None:
    from ct_pipelines_tests.defs.finance.helpers import metadata, run_finance

    world = world_for(on_tryton)
    # Ten days back lies before the seeded history: the day holds only these orders.
    day = past_day(world, 10)
    world.bulk_orders(8, day=day, payment_kind="paid", with_payments=True, seed=11)
    export = materialization(export_day(day, workers=2), "erp_sales_orders")
    assert export["orders_exported"] == 8, export["failures"]

    first = run_finance(day)
    assert first.success
    assert metadata(first, "finance_journal_batches")["batches_posted"] == 1
    reconciliation = metadata(first, "finance_reconciliation")
    batch_id = f"fin-{day.isoformat()}-GBP"
    with build_resources()["erp"].open_port() as port:
        posted = [b for b in port.iter_journal_batches(day) if b.batch_id == batch_id]
        assert len(posted) == 1
        (batch,) = posted
        debit = sum(line.debit_minor for line in batch.lines)
        assert debit == sum(line.credit_minor for line in batch.lines) > 0
        moves = port.rpc.search_read(  # type: ignore[attr-defined]
            "account.move", [("description", "like", f"[{batch_id}]%")], ["state"]
        )
        assert [m["state"] for m in moves] == ["posted"]

    again = run_finance(day)
    assert again.success
    journals = metadata(again, "finance_journal_batches")
    assert (journals["batches_posted"], journals["batches_already_posted"]) == (0, 1)
    with build_resources()["erp"].open_port() as port:
        moves = port.rpc.search_read(  # type: ignore[attr-defined]
            "account.move", [("description", "like", f"[{batch_id}]%")], ["state"]
        )
    assert len(moves) == 1
    # Tryton recomputes VAT from each line's net, so its tax (and gross) can differ by a penny
    # from commercetools' inclusive split on an order; the reconciliation names each such
    # difference to the minor unit. Nothing is missing and the nets agree exactly.
    variances = (
        build_resources()["store"]
        .get_store()
        .read_snapshot("finance_variances", partition_key=day.isoformat())
        .to_dict("records")
    )
    named = [(v["document"], v["metric"], int(v["variance_minor"])) for v in variances]
    assert reconciliation["orders_missing_in_erp"] == 0, named
    assert all(v["kind"] == "amounts_differ" for v in variances), named
    assert all(metric != "net" and abs(minor) <= 1 for _, metric, minor in named), named
    assert reconciliation["orders_with_variance"] == len({document for document, _, _ in named})
