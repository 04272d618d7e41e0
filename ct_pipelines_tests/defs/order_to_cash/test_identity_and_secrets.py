"""Issue 17: an order is one ERP document whatever its number; an ERP 401 fails the run loudly;
planted secrets reach no sink (stdout/stderr, compute logs, event log, store, alerts)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa
from dagster_shared.serdes import serialize_value

import ct_pipelines.defs.resources as resources_module
from ct_pipelines.defs.operations.logic.alerts import check_failure_alert
from ct_pipelines.defs.order_to_cash.assets import erp_sales_orders, order_batches
from ct_pipelines.defs.resources import build_resources
from ct_pipelines.erp.rest import RestErpClient
from ct_pipelines_tests.defs.order_to_cash.helpers import (
    FLOW,
    export_day,
    past_day,
    world_for,
)


def _erp_documents_by_order(world: Any) -> dict[str, int]:
    from ct_sandbox import db

    conn = db.connect(world.db_path)
    rows = conn.execute(
        "SELECT source_order_id, COUNT(*) FROM erp_sales_orders GROUP BY 1"
    ).fetchall()
    return {order_id: n for order_id, n in rows}


def test_an_order_that_gets_its_number_later_stays_one_erp_document(sandbox_dir: Path) -> None:
    world = world_for(sandbox_dir)
    day = past_day(world, 1)
    ids = world.bulk_orders(20, day=day, payment_kind="paid")
    numbers = {}
    for order_id in ids:
        doc = world.documents.get("orders", order_id)
        numbers[order_id] = doc.pop("orderNumber")
        world.documents.replace("orders", doc)
    first = export_day(day)
    assert first.success
    documents = _erp_documents_by_order(world)
    assert all(documents.get(order_id) == 1 for order_id in ids)

    # The shop assigns the numbers afterwards: the next run must not create second documents.
    for order_id in ids:
        doc = world.documents.get("orders", order_id)
        doc["orderNumber"] = numbers[order_id]
        doc["version"] += 1
        world.documents.replace("orders", doc)
    second = export_day(day)
    assert second.success
    documents = _erp_documents_by_order(world)
    assert {order_id: documents.get(order_id) for order_id in ids} == dict.fromkeys(ids, 1)
    store = build_resources()["store"].get_store()
    # The new numbers are known to the ledger as aliases of the same ERP documents.
    assert store.exported_keys(FLOW, list(numbers.values())) == set(numbers.values())


TOKEN = "planted-erp-token-7Hq2ZxW9"
CT_SECRET = "planted-ct-secret-Kp4Vn8Rt"


def _live_erp(monkeypatch: pytest.MonkeyPatch, world: Any, answer: Any) -> None:
    """The ERP resource in live mode (URL + token from the environment), its client talking to
    the sandbox ERP through a transport that lets ``answer`` reply first."""
    monkeypatch.setenv("CT_PIPELINES_ERP_URL", "https://erp.example.test")
    monkeypatch.setenv("CT_PIPELINES_ERP_TOKEN", TOKEN)
    # A second secret the process holds (commercetools stays the sandbox here, so no CTP_*:
    # a partial CTP_* set is refused at load).
    monkeypatch.setenv("CT_PIPELINES_SLACK_TOKEN", CT_SECRET)
    inner = world.erp_transport()

    def handler(request: httpx.Request) -> httpx.Response:
        reply = answer(request)
        return reply if reply is not None else inner.handle_request(request)

    real = RestErpClient

    def client(base_url: str, token: Any, **kwargs: Any) -> RestErpClient:
        return real(base_url, token, transport=httpx.MockTransport(handler), sleep=lambda _s: None)

    monkeypatch.setattr(resources_module, "RestErpClient", client)


def _run(instance: dg.DagsterInstance, day: Any) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [order_batches, erp_sales_orders],
        partition_key=str(day),
        resources=build_resources(),
        instance=instance,
        run_config={
            "ops": {"erp_sales_orders": {"config": {"rate_per_second": 0.0, "max_attempts": 2}}}
        },
        raise_on_error=False,
    )


def test_an_erp_401_fails_the_run_loudly_and_parks_nothing(
    sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = world_for(sandbox_dir)
    day = past_day(world, 1)
    world.bulk_orders(5, day=day, payment_kind="paid")

    def answer(request: httpx.Request) -> httpx.Response | None:
        if "/sales-orders/" in request.url.path:
            return httpx.Response(401, json={"message": f"bad token {TOKEN}"})
        return None

    _live_erp(monkeypatch, world, answer)
    with dg.instance_for_test() as instance:
        result = _run(instance, day)
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        message = str(failure.event_specific_data.error)  # type: ignore[union-attr]
        assert "erp.example.test" in message and "refused the credentials" in message
        assert TOKEN not in message
    store = build_resources()["store"].get_store()
    # Nothing parked because of the refusal (orders the mapping cannot take are parked anyway).
    from_erp = [
        e
        for e in store.list_exceptions(flow=FLOW, status="open")
        if (e.details or {}).get("stage") not in ("mapping", None)
    ]
    assert from_erp == []


def test_planted_secrets_reach_no_sink(
    sandbox_dir: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    world = world_for(sandbox_dir)
    day = past_day(world, 1)
    world.bulk_orders(6, day=day, payment_kind="paid")
    echo = (
        f"request rejected; headers were Authorization: Bearer {TOKEN}, "
        f'"authorization": "Bearer {TOKEN}", client_secret={CT_SECRET}, raw {TOKEN} {CT_SECRET}'
    )
    seen: dict[str, int] = {}

    def answer(request: httpx.Request) -> httpx.Response | None:
        if request.method != "PUT" or "/sales-orders/" not in request.url.path:
            return None
        n = seen[request.url.path] = seen.get(request.url.path, 0) + 1
        kind = len(seen) % 3
        if kind == 0:  # a gateway quoting our request in a 422
            return httpx.Response(422, json={"code": "Invalid", "message": echo, "errors": [echo]})
        if kind == 1:  # a 500 quoting it, until retries run out
            return httpx.Response(500, json={"message": echo})
        # an HTML page quoting it, once; then the real ERP
        return httpx.Response(200, html=f"<html>{echo}</html>") if n == 1 else None

    _live_erp(monkeypatch, world, answer)
    with dg.instance_for_test() as instance:
        result = _run(instance, day)
        assert result.success
        run_id = result.run_id
        sinks: dict[str, str] = {}
        sinks["event log"] = "\n".join(
            serialize_value(record.event_log_entry)
            for record in instance.get_records_for_run(run_id, limit=100_000).records
        )
        sinks["all logs"] = "\n".join(str(entry) for entry in instance.all_logs(run_id))
        compute = ""
        manager = instance.compute_log_manager
        base = getattr(manager, "_base_dir", None) or getattr(
            getattr(manager, "_local_manager", None), "_base_dir", None
        )
        if base:
            for path in Path(base).rglob("*"):
                if path.is_file():
                    compute += path.read_text(errors="replace")
        sinks["compute logs"] = compute
    out, err = capfd.readouterr()
    sinks["stdout/stderr"] = out + err
    store = build_resources()["store"].get_store()
    texts = []
    with store._db.read() as conn:
        for table in ("export_ledger", "exception_queue", "exception_events"):
            for row in conn.execute(sa.text(f"SELECT * FROM {table}")):
                texts.extend(str(value) for value in row)
    sinks["integration store"] = "\n".join(texts)
    parked = store.list_exceptions(flow=FLOW, status="open")
    assert parked, "the failure paths ran"
    # An alert about the export, built from the parked reasons as the operations flow would.
    alert = check_failure_alert(
        asset="erp_sales_orders",
        check="orders_parked",
        severity="WARN",
        description="\n".join(e.reason for e in parked),
        metadata={"parked": len(parked)},
        run_id=run_id,
        at=datetime.now(UTC),
    )
    sinks["alerts"] = repr(alert)
    counts = {sink: text.count(TOKEN) + text.count(CT_SECRET) for sink, text in sinks.items()}
    print("planted-secret occurrences per sink:", counts)
    assert counts == dict.fromkeys(sinks, 0)
