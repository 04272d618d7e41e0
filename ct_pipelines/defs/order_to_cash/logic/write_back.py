"""Marking exported orders in commercetools, so the storefront side can see what the ERP has.

Two ways, by configuration: ``sync_info`` (``updateSyncInfo`` against a channel with the
OrderExport role, the commercetools-native marker) or ``custom_field`` (``setCustomField`` on a
custom type the project already has). The update is version-checked: on a 409 the order is
re-read, and if it already carries the marker nothing more is sent.

``write_back_all`` marks a batch on a bounded thread pool, at each order's snapshot version
when known (one request per order instead of a read and an update).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

WriteBackMode = Literal["sync_info", "custom_field", "none"]


def is_marked(
    order: dict[str, Any], mode: WriteBackMode, channel_id: str | None, field_name: str
) -> bool:
    if mode == "sync_info":
        return any(
            (info.get("channel") or {}).get("id") == channel_id
            for info in order.get("syncInfo") or []
        )
    if mode == "custom_field":
        return bool(((order.get("custom") or {}).get("fields") or {}).get(field_name))
    return True


def marker_actions(
    mode: WriteBackMode,
    *,
    channel_key: str,
    erp_document: str,
    synced_at: datetime,
    field_name: str,
) -> list[dict[str, Any]]:
    if mode == "sync_info":
        return [
            {
                "action": "updateSyncInfo",
                "channel": {"typeId": "channel", "key": channel_key},
                "externalId": erp_document,
                "syncedAt": synced_at.isoformat().replace("+00:00", "Z"),
            }
        ]
    if mode == "custom_field":
        return [{"action": "setCustomField", "name": field_name, "value": erp_document}]
    return []


def write_back(
    client: Any,
    order: dict[str, Any],
    *,
    mode: WriteBackMode,
    channel_key: str,
    channel_id: str | None,
    erp_document: str,
    synced_at: datetime,
    field_name: str = "erpSalesOrderNumber",
) -> bool:
    """Mark one order; returns False when it was already marked (nothing sent)."""
    if is_marked(order, mode, channel_id, field_name):
        return False
    actions = marker_actions(
        mode,
        channel_key=channel_key,
        erp_document=erp_document,
        synced_at=synced_at,
        field_name=field_name,
    )

    def rebuild(fresh: dict[str, Any]) -> list[dict[str, Any]] | None:
        # Someone else changed the order meanwhile: re-check before sending again.
        return None if is_marked(fresh, mode, channel_id, field_name) else actions

    client.update("orders", order["id"], order["version"], actions, reread=rebuild)
    return True


def export_channel_id(client: Any, key: str) -> str | None:
    return next((channel.id for channel in client.iter_channels() if channel.key == key), None)


@dataclass(frozen=True)
class WriteBackTarget:
    """One exported order to mark: ``order_version`` from the day's snapshot, None if unknown."""

    key: str
    order_id: str
    order_version: int | None
    erp_document: str


@dataclass(frozen=True)
class WriteBackResult:
    """``sent``: our marker was applied; False when the order already carried one.

    ``error`` is set when the order could not be marked; the caller queues it."""

    target: WriteBackTarget
    sent: bool = False
    error: Exception | None = None


def mark_order(
    client: Any,
    target: WriteBackTarget,
    *,
    mode: WriteBackMode,
    channel_key: str,
    channel_id: str | None,
    synced_at: datetime,
    field_name: str = "erpSalesOrderNumber",
) -> bool:
    """Mark one order, at its snapshot version when known (one request); read it first otherwise.

    A stale version answers 409 and the client re-reads; if the fresh order already carries
    the marker nothing more is sent. Returns whether our marker was applied."""
    if target.order_version is None:
        order = client.get(f"orders/{target.order_id}")
        return write_back(
            client,
            order,
            mode=mode,
            channel_key=channel_key,
            channel_id=channel_id,
            erp_document=target.erp_document,
            synced_at=synced_at,
            field_name=field_name,
        )
    actions = marker_actions(
        mode,
        channel_key=channel_key,
        erp_document=target.erp_document,
        synced_at=synced_at,
        field_name=field_name,
    )
    already = False

    def rebuild(fresh: dict[str, Any]) -> list[dict[str, Any]] | None:
        nonlocal already
        already = is_marked(fresh, mode, channel_id, field_name)
        return None if already else actions

    client.update("orders", target.order_id, target.order_version, actions, reread=rebuild)
    return not already


def write_back_all(
    client: Any,
    targets: Sequence[WriteBackTarget],
    *,
    workers: int,
    mode: WriteBackMode,
    channel_key: str,
    channel_id: str | None,
    synced_at: datetime,
    field_name: str = "erpSalesOrderNumber",
) -> list[WriteBackResult]:
    """Mark every target on at most ``workers`` threads; one result per target, in order.

    The client is shared (one thread-safe httpx.Client, token refresh under a lock). A failure
    is returned, never raised, so one bad order does not stop the rest of the batch."""
    if workers < 1:
        raise ValueError(f"write-back workers must be at least 1, got {workers}")

    def one(target: WriteBackTarget) -> WriteBackResult:
        try:
            sent = mark_order(
                client,
                target,
                mode=mode,
                channel_key=channel_key,
                channel_id=channel_id,
                synced_at=synced_at,
                field_name=field_name,
            )
        except Exception as exc:
            return WriteBackResult(target, error=exc)
        return WriteBackResult(target, sent=sent)

    if not targets:
        return []
    with ThreadPoolExecutor(
        max_workers=min(workers, len(targets)), thread_name_prefix="write-back"
    ) as pool:
        return list(pool.map(one, targets))
