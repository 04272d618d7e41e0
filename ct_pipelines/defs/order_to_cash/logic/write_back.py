"""Marking exported orders in commercetools, so the storefront side can see what the ERP has.

Two ways, by configuration: ``sync_info`` (``updateSyncInfo`` against a channel with the
OrderExport role, the commercetools-native marker) or ``custom_field`` (``setCustomField`` on a
custom type the project already has). The update is version-checked: on a 409 the order is
re-read, and if it already carries the marker nothing more is sent.
"""

from __future__ import annotations

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
