"""Channels: drafts, roles, key, name and address actions."""

from __future__ import annotations

import copy
from typing import Any

from ct_sandbox.commercetools.common import (
    CHANNEL_ROLES,
    Json,
    _optional,
    _require,
    invalid_json,
    invalid_operation,
)
from ct_sandbox.commercetools.core import SandboxCore


class ChannelsMixin(SandboxCore):
    """Channels: drafts, roles, key, name and address actions."""

    @staticmethod
    def _roles(value: Any, where: str) -> list[str]:
        if not isinstance(value, list) or any(r not in CHANNEL_ROLES for r in value):
            raise invalid_json(
                f"{where} -> roles: expected a list of {', '.join(sorted(CHANNEL_ROLES))}"
            )
        return list(dict.fromkeys(value))

    def _channel_draft(self, draft: Json) -> Json:
        channel: Json = {"key": _require(draft, "key", str, "ChannelDraft")}
        roles = self._roles(draft.get("roles", ["InventorySupply"]), "ChannelDraft")
        if not roles:
            raise invalid_operation("A channel needs at least one role.")
        channel["roles"] = roles
        for name in ("name", "description", "address", "geoLocation"):
            if draft.get(name) is not None:
                channel[name] = copy.deepcopy(draft[name])
        if draft.get("custom") is not None:
            self._set_custom_type(channel, draft["custom"])
        return self._stamp(channel)

    def _channel_change_key(self, doc: Json, action: Json) -> None:
        doc["key"] = _require(action, "key", str, "changeKey")

    def _channel_change_name(self, doc: Json, action: Json) -> None:
        name = _optional(action, "name", dict, "changeName")
        if name is None:
            doc.pop("name", None)
        else:
            doc["name"] = copy.deepcopy(name)

    def _channel_add_roles(self, doc: Json, action: Json) -> None:
        roles = self._roles(action.get("roles"), "addRoles")
        doc["roles"] = list(dict.fromkeys([*doc.get("roles", []), *roles]))

    def _channel_remove_roles(self, doc: Json, action: Json) -> None:
        roles = self._roles(action.get("roles"), "removeRoles")
        remaining = [r for r in doc.get("roles", []) if r not in roles]
        if not remaining:
            raise invalid_operation("A channel needs at least one role.")
        doc["roles"] = remaining

    def _channel_set_roles(self, doc: Json, action: Json) -> None:
        roles = self._roles(action.get("roles"), "setRoles")
        if not roles:
            raise invalid_operation("A channel needs at least one role.")
        doc["roles"] = roles

    def _channel_set_address(self, doc: Json, action: Json) -> None:
        address = _optional(action, "address", dict, "setAddress")
        if address is None:
            doc.pop("address", None)
        else:
            doc["address"] = copy.deepcopy(address)
