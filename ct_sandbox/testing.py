"""Test and bench helpers for the sandbox: a request-counting transport and stock at scale.

:class:`CountingTransport` wraps any httpx transport (the sandbox's in-process ones) and
remembers the (method, path) of every request, so a test or bench can count what a client sent.

:func:`add_scale_inventory` adds ``skus`` SKUs at four extra ERP locations, each feeding its own new supply channel, with the
commercetools entries in step with the ERP (``quantityOnStock`` = available). The seeded shop's
locations and channels are ignored by :func:`scale_rules_data`, so a sync touches only this
stock. Bulk inserts go straight to the sandbox's tables: 200,000 entries load in seconds, where
the API would need 200,000 requests.

Everything here is plain data: ``ScaleInventory.rules_data`` is the inventory rules mapping
(the shape of the pipelines' rules file), which the caller parses into its own rules object.
"""

from __future__ import annotations

import random
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from ct_sandbox import SandboxWorld

SCALE_LOCATIONS: dict[str, str] = {
    "SCALE-NORTH": "scale-north",
    "SCALE-SOUTH": "scale-south",
    "SCALE-EAST": "scale-east",
    "SCALE-WEST": "scale-west",
}


class CountingTransport(httpx.BaseTransport):
    """Passes requests through to ``inner`` and remembers (method, path) of each, in order."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()  # clients write from several threads at once

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append((request.method, request.url.path))
        return self.inner.handle_request(request)

    def count(self, method: str, part: str = "") -> int:
        """Requests with ``method`` whose path contains ``part``."""
        return sum(1 for m, path in self.requests if m == method and part in path)

    def product_writes(self) -> list[tuple[str, str]]:
        """POSTs to /products (create) and /products/{id} (update); DELETEs of products."""
        return [
            (method, path)
            for method, path in self.requests
            if method in ("POST", "DELETE") and "/products" in path
        ]

    def product_updates(self) -> list[str]:
        return [
            path
            for method, path in self.product_writes()
            if method == "POST" and not path.endswith("/products")
        ]


@dataclass(frozen=True)
class ScaleInventory:
    skus: list[str]
    channel_ids: dict[str, str]  # channel key -> id
    rules_data: dict[str, Any]  # the inventory rules mapping for these channels, unparsed

    @property
    def entries(self) -> int:
        return len(self.skus) * len(SCALE_LOCATIONS)


def _ids(rng: random.Random, count: int) -> list[str]:
    """Ascending UUIDs: inserted in index order, 200,000 rows load several times faster."""
    base = str(uuid.UUID(int=rng.getrandbits(128), version=4))[:24]
    return [f"{base}{i:012x}" for i in range(count)]


def scale_rules_data(world: SandboxWorld) -> dict[str, Any]:
    """One-to-one rules for the scale channels; every other location and channel is ignored."""
    from ct_sandbox import db

    conn = db.connect(world.db_path)
    locations = {row[0] for row in conn.execute("SELECT DISTINCT location FROM erp_stock")}
    channels = {doc["key"] for doc in world.documents.iter_all("channels")}
    return {
        "channels": {channel: {"sources": [loc]} for loc, channel in SCALE_LOCATIONS.items()},
        "ignored_locations": sorted(locations - set(SCALE_LOCATIONS)),
        "ignored_channels": sorted(channels - set(SCALE_LOCATIONS.values())),
    }


def add_scale_inventory(world: SandboxWorld, skus: int, *, seed: int = 11) -> ScaleInventory:
    """``skus`` x 4 ERP stock rows and commercetools entries, in step."""
    from ct_sandbox import db

    rng = random.Random(seed)
    at = db.format_timestamp(world.now())
    # Keys, channel ids and entry ids all ascend together, so every index is appended to.
    channel_keys = sorted(SCALE_LOCATIONS.values())
    channel_ids = dict(zip(channel_keys, _ids(rng, len(channel_keys)), strict=True))
    location_of = {key: loc for loc, key in SCALE_LOCATIONS.items()}
    names = [f"SCALE-{i:06d}" for i in range(skus)]
    entry_ids = iter(_ids(rng, skus * len(channel_keys)))
    stock: list[tuple[str, str, int, int, str]] = []
    entries: list[dict[str, Any]] = []
    for sku in names:
        for key in channel_keys:
            location = location_of[key]
            on_hand = int(rng.random() * 200)
            reserved = int(rng.random() * 4) if on_hand > 5 and rng.random() < 0.15 else 0
            available = on_hand - reserved
            stock.append((sku, location, on_hand, reserved, at))
            entries.append(
                {
                    "id": next(entry_ids),
                    "version": 1,
                    "key": f"{sku}_{key}",
                    "sku": sku,
                    "supplyChannel": {"typeId": "channel", "id": channel_ids[key]},
                    "quantityOnStock": available,
                    "availableQuantity": available,
                    "createdAt": at,
                    "lastModifiedAt": at,
                }
            )
    conn = db.connect(world.db_path)
    # A bigger page cache for this connection only: index updates of 200,000 rows stay in memory.
    conn.execute("PRAGMA cache_size = -262144")
    try:
        _insert(world, conn, channel_ids, stock, entries, at)
    finally:
        conn.execute("PRAGMA cache_size = -2000")  # SQLite's default again
    return ScaleInventory(names, channel_ids, scale_rules_data(world))


def _insert(
    world: SandboxWorld,
    conn: Any,
    channel_ids: dict[str, str],
    stock: list[tuple[str, str, int, int, str]],
    entries: list[dict[str, Any]],
    at: str,
) -> None:
    from ct_sandbox import db

    world.documents.insert_many(
        "channels",
        [
            {
                "id": channel_ids[key],
                "version": 1,
                "key": key,
                "roles": ["InventorySupply"],
                "name": {"en-GB": f"Scale test warehouse {location}"},
                "createdAt": at,
                "lastModifiedAt": at,
            }
            for location, key in SCALE_LOCATIONS.items()
        ],
    )
    with db.transaction(conn):
        conn.executemany(
            "INSERT INTO erp_locations (code, name, channel_key) VALUES (?, ?, ?)",
            [(loc, f"Scale test {loc}", key) for loc, key in SCALE_LOCATIONS.items()],
        )
        conn.executemany(
            "INSERT INTO erp_stock (sku, location, on_hand, reserved, updated_at) "
            "VALUES (?, ?, ?, ?, ?)",
            sorted(stock),
        )
    world.documents.insert_many("inventory", entries)


def change_scale_stock(
    world: SandboxWorld, inventory: ScaleInventory, fraction: float, *, seed: int = 12
) -> dict[tuple[str, str], int]:
    """Move stock at ``fraction`` of the (SKU, location) rows, as WMS movements.

    Returns (SKU, channel key) -> the new ERP available of every row that changed.
    """
    from ct_sandbox import db
    from ct_sandbox.erp_app import record_movement

    rng = random.Random(seed)
    locations = list(SCALE_LOCATIONS)
    total = len(inventory.skus) * len(locations)
    picked = rng.sample(range(total), round(total * fraction))
    at = db.format_timestamp(world.now())
    conn = db.connect(world.db_path)
    changed: dict[tuple[str, str], int] = {}
    with db.transaction(conn):
        for index in picked:
            sku = inventory.skus[index // len(locations)]
            location = locations[index % len(locations)]
            on_hand, reserved = conn.execute(
                "SELECT on_hand, reserved FROM erp_stock WHERE sku = ? AND location = ?",
                (sku, location),
            ).fetchone()
            delta = (
                rng.choice((-3, -2, -1, 1, 2, 5, 12, 24)) if on_hand >= 3 else rng.randint(1, 24)
            )
            record_movement(conn, sku, location, delta, "adjustment", "scale test", at)
            changed[(sku, SCALE_LOCATIONS[location])] = on_hand + delta - reserved
    return changed


__all__ = [
    "SCALE_LOCATIONS",
    "CountingTransport",
    "ScaleInventory",
    "add_scale_inventory",
    "change_scale_stock",
    "scale_rules_data",
]
