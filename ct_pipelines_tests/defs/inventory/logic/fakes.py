"""Shared test data for the inventory tests: rules, ERP stock rows and an in-memory commercetools."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ct_pipelines.commercetools.errors import (
    BadRequestError,
    ConcurrentModificationError,
    NotFoundError,
)
from ct_pipelines.defs.inventory.logic import InventoryRules, parse_rules


@dataclass(frozen=True)
class Row:
    """An ERP stock level (the fields ``StockLevel`` has that the computation reads)."""

    sku: str
    location: str
    on_hand: int
    reserved: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def rules(**overrides: Any) -> InventoryRules:
    data: dict[str, Any] = {
        "channels": {
            "wh-north": {"sources": ["MAN"]},
            "wh-south": {"sources": ["BRS"]},
        }
    }
    data.update(overrides)
    return parse_rules(data)


Rebuild = Callable[[dict[str, Any]], list[dict[str, Any]] | None]


@dataclass
class FakeCommercetools:
    """Channels and inventory entries in memory, with the client's update/409 contract.

    ``before_update`` runs before each update request is answered (to simulate another writer);
    ``fail`` maps (sku, channel key) to an error to raise on the write.
    """

    channels: dict[str, str] = field(default_factory=dict)  # key -> id
    roles: dict[str, list[str]] = field(default_factory=dict)  # key -> roles
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> entry JSON
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, what)
    before_update: Callable[[dict[str, Any]], None] | None = None
    fail: dict[tuple[str, str], Exception] = field(default_factory=dict)
    conflict_retries: int = 5
    #: the SKUs the shop sells (variants of products): the sync creates entries only for these
    catalogue: set[str] = field(default_factory=set)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def add_channel(self, key: str, roles: Sequence[str] = ("InventorySupply",)) -> str:
        channel_id = f"ch-{key}"
        self.channels[key] = channel_id
        self.roles[key] = list(roles)
        return channel_id

    def put(self, sku: str, channel: str | None, quantity: int, *, reserved: int = 0) -> str:
        entry_id = f"e{next(self._ids):06d}"
        entry: dict[str, Any] = {
            "id": entry_id,
            "version": 1,
            "sku": sku,
            "quantityOnStock": quantity,
            "availableQuantity": quantity - reserved,
        }
        if channel is not None:
            entry["supplyChannel"] = {"typeId": "channel", "id": self.channels[channel]}
        self.entries[entry_id] = entry
        return entry_id

    def sell(self, *skus: str) -> None:
        self.catalogue.update(skus)

    def quantity(self, sku: str, channel: str) -> int | None:
        channel_id = self.channels[channel]
        for entry in self.entries.values():
            if entry["sku"] == sku and entry.get("supplyChannel", {}).get("id") == channel_id:
                return int(entry["quantityOnStock"])
        return None

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] == "POST"]

    # --- the InventoryClient protocol ----------------------------------------------------------

    def query_all(
        self,
        resource: str,
        *,
        where: Sequence[str] | str | None = None,
        variables: Mapping[str, Any] | None = None,
        page_size: int = 500,
    ) -> Iterator[dict[str, Any]]:
        self.requests.append(("GET", resource))
        if resource == "channels":
            docs = [{"id": i, "key": k, "roles": self.roles[k]} for k, i in self.channels.items()]
            return iter(sorted(docs, key=lambda d: d["id"]))
        if resource == "products":
            return iter(
                [
                    {"id": f"p-{sku}", "masterData": {"current": {"masterVariant": {"sku": sku}}}}
                    for sku in sorted(self.catalogue)
                ]
            )
        variables = dict(variables or {})
        docs = sorted(self.entries.values(), key=lambda d: d["id"])
        if where and "sku in" in str(where):
            wanted = set(variables.values())
            docs = [d for d in docs if d["sku"] in wanted]
        elif where:
            docs = [
                d
                for d in docs
                if d["sku"] == variables["sku"]
                and d.get("supplyChannel", {}).get("id") == variables["channel"]
            ]
        return iter([dict(d) for d in docs])

    def create(self, resource: str, draft: Mapping[str, Any]) -> dict[str, Any]:
        self.requests.append(("POST", "create"))
        channel_id = draft["supplyChannel"]["id"]
        key = next(k for k, i in self.channels.items() if i == channel_id)
        if (draft["sku"], key) in self.fail:
            raise self.fail[(draft["sku"], key)]
        for entry in self.entries.values():
            if (
                entry["sku"] == draft["sku"]
                and entry.get("supplyChannel", {}).get("id") == channel_id
            ):
                raise BadRequestError(400, "duplicate", [{"code": "DuplicateField"}])
        entry_id = self.put(draft["sku"], key, int(draft["quantityOnStock"]))
        if "key" in draft:
            self.entries[entry_id]["key"] = draft["key"]
        return dict(self.entries[entry_id])

    def update(
        self,
        resource: str,
        id: str,
        version: int,
        actions: Sequence[Mapping[str, Any]],
        *,
        reread: Rebuild | None = None,
    ) -> dict[str, Any]:
        remaining = [dict(a) for a in actions]
        conflicts = 0
        while True:
            self.requests.append(("POST", id))
            entry = self.entries.get(id)
            if entry is None:
                raise NotFoundError(404, "not found", [{"code": "ResourceNotFound"}])
            key = next(k for k, i in self.channels.items() if i == entry["supplyChannel"]["id"])
            if (entry["sku"], key) in self.fail:
                raise self.fail[(entry["sku"], key)]
            if self.before_update is not None:
                self.before_update(entry)
            if entry["version"] != version:
                conflicts += 1
                if conflicts > self.conflict_retries:
                    raise ConcurrentModificationError(409, "conflict", [])
                self.requests.append(("GET", id))
                fresh = dict(entry)
                rebuilt = reread(fresh) if reread else remaining
                if not rebuilt:
                    return fresh
                remaining, version = [dict(a) for a in rebuilt], int(fresh["version"])
                continue
            for action in remaining:
                assert action["action"] == "changeQuantity"
                reserved = entry["quantityOnStock"] - entry["availableQuantity"]
                entry["quantityOnStock"] = action["quantity"]
                entry["availableQuantity"] = action["quantity"] - reserved
            entry["version"] += 1
            return dict(entry)
