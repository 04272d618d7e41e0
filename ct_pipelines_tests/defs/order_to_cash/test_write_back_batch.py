"""The export's write-back step with a real store: a failing order is queued, the rest marked."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import httpx
import pandas as pd

from ct_pipelines.defs.order_to_cash.assets import ErpExportConfig, _write_back
from ct_pipelines.defs.order_to_cash.logic.engine import FLOW
from ct_pipelines.store import IntegrationStore
from ct_pipelines_tests.commercetools.fakes import FakeApi, body, error, project_path


class _Commercetools:
    """Hands out the scripted client; the export channel is looked up by key as in production."""

    def __init__(self, api: FakeApi) -> None:
        self.api = api

    @contextmanager
    def open_client(self) -> Iterator[Any]:
        with self.api.client() as client:
            yield SimpleNamespace(
                get=client.get,
                update=client.update,
                iter_channels=lambda: [SimpleNamespace(id="channel-erp", key="erp-order-export")],
            )


def test_a_failing_order_yields_an_exception_record_and_the_rest_are_marked(
    store: IntegrationStore,
) -> None:
    lock = threading.Lock()
    posted: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        order = project_path(request).removeprefix("orders/")
        with lock:
            posted.append(order)
        if order == "order-2":
            return error(400, "InvalidOperation", "order is locked")
        return ok_order(order, body(request)["version"] + 1)

    keys = [f"SO-{i}" for i in range(6)]
    batch = pd.DataFrame(
        {
            "external_document_number": keys,
            "order_id": [f"order-{i}" for i in range(6)],
            "order_version": [3] * 6,
            "exported_marker": [False] * 6,
        }
    )
    report = SimpleNamespace(
        results=[SimpleNamespace(key=k, outcome="exported", erp_document=f"ERP-{k}") for k in keys]
    )
    marked, failed = _write_back(
        SimpleNamespace(log=logging.getLogger(__name__)),  # type: ignore[arg-type]
        ErpExportConfig(workers=3),
        _Commercetools(FakeApi(handler=handler)),  # type: ignore[arg-type]
        store,
        batch,
        report,
    )
    assert sorted(posted) == sorted(batch["order_id"])
    assert failed == {"SO-2"}
    assert marked == set(keys) - {"SO-2"}
    (record,) = store.list_exceptions(flow=FLOW, category="write_back")
    assert record.entity_key == "SO-2"
    assert "ERP-SO-2" in record.reason
    assert record.payload_ref == "order:order-2@v3"


def ok_order(order: str, version: int) -> httpx.Response:
    return httpx.Response(200, json={"id": order, "version": version})
