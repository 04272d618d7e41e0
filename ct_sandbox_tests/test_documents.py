"""DocumentStore: uniqueness the API enforces, atomic updates, threads, paging columns."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ct_sandbox import db
from ct_sandbox.documents import (
    DocumentNotFound,
    DocumentStore,
    DuplicateDocument,
    VersionConflict,
)

NOW = "2026-03-01T09:00:00.000Z"


def _doc(doc_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": doc_id, "version": 1, "createdAt": NOW, "lastModifiedAt": NOW, **fields}


def _product(doc_id: str, *skus: str) -> dict[str, Any]:
    variants = [{"id": i + 1, "sku": sku, "prices": []} for i, sku in enumerate(skus)]
    data = {"name": {"en-GB": doc_id}, "masterVariant": variants[0], "variants": variants[1:]}
    return _doc(
        doc_id,
        masterData={"published": True, "current": data, "staged": data, "hasStagedChanges": False},
    )


@pytest.fixture
def store(tmp_path: Path) -> DocumentStore:
    fixed = datetime(2026, 3, 2, 12, 30, 0, 250_000, tzinfo=UTC)
    return DocumentStore(tmp_path / "world.db", clock=lambda: fixed)


def test_insert_get_and_lookups(store: DocumentStore) -> None:
    store.insert_many("channels", [_doc("c1", key="leeds-dc", roles=["InventorySupply"])])
    store.insert_many("orders", [_doc("o1", orderNumber="UK-1"), _doc("o2")])
    store.insert_many(
        "inventory",
        [
            _doc(
                "i2",
                sku="TEA-1",
                supplyChannel={"typeId": "channel", "id": "c1"},
                quantityOnStock=3,
            ),
            _doc("i1", sku="TEA-1", quantityOnStock=5),
        ],
    )
    store.insert_many("products", [_product("p1", "TEA-1", "TEA-2")])

    assert store.get("orders", "o1") == _doc("o1", orderNumber="UK-1")
    assert store.get("orders", "missing") is None
    assert store.get_by("channels", "key", "leeds-dc")["id"] == "c1"  # type: ignore[index]
    assert store.get_by("orders", "orderNumber", "UK-1")["id"] == "o1"  # type: ignore[index]
    assert store.get_by("inventory", "sku", "TEA-1")["id"] == "i1"  # type: ignore[index]
    assert store.get_by("products", "sku", "TEA-2")["id"] == "p1"  # type: ignore[index]
    assert store.get_by("products", "sku", "NOPE") is None
    assert store.count("orders") == 2
    assert [d["id"] for d in store.iter_all("inventory", batch_size=1)] == ["i1", "i2"]
    assert set(store.get_many("orders", ["o1", "o2", "o3"])) == {"o1", "o2"}
    with pytest.raises(ValueError, match="cannot look up"):
        store.get_by("orders", "customerEmail", "x")
    with pytest.raises(ValueError, match="unknown commercetools resource"):
        store.count("carts")


def test_timestamps_are_normalised_on_write(store: DocumentStore) -> None:
    store.insert_many("orders", [{**_doc("o1"), "createdAt": "2026-03-01T10:00:00+01:00"}])
    assert store.get("orders", "o1")["createdAt"] == "2026-03-01T09:00:00.000Z"  # type: ignore[index]


@pytest.mark.parametrize(
    ("resource", "first", "second", "field"),
    [
        ("orders", _doc("o1"), _doc("o1"), "id"),
        ("orders", _doc("o1", orderNumber="N"), _doc("o2", orderNumber="N"), "orderNumber"),
        ("channels", _doc("c1", key="k"), _doc("c2", key="k"), "key"),
        (
            "inventory",
            _doc("i1", sku="S", supplyChannel={"typeId": "channel", "id": "c"}),
            _doc("i2", sku="S", supplyChannel={"typeId": "channel", "id": "c"}),
            "sku",
        ),
        ("inventory", _doc("i1", sku="S"), _doc("i2", sku="S"), "sku"),
        ("products", _product("p1", "A", "B"), _product("p2", "C", "B"), "sku"),
    ],
)
def test_uniqueness_is_enforced(
    store: DocumentStore, resource: str, first: dict[str, Any], second: dict[str, Any], field: str
) -> None:
    store.insert_many(resource, [first])
    with pytest.raises(DuplicateDocument) as caught:
        store.insert_many(
            resource, [_doc("fresh-ok"), second] if resource == "orders" else [second]
        )
    assert caught.value.field == field
    # The failed batch left nothing behind.
    assert store.count(resource) == 1


def test_same_sku_in_other_channels_is_fine(store: DocumentStore) -> None:
    store.insert_many(
        "inventory",
        [
            _doc("i1", sku="S"),
            _doc("i2", sku="S", supplyChannel={"typeId": "channel", "id": "a"}),
            _doc("i3", sku="S", supplyChannel={"typeId": "channel", "id": "b"}),
        ],
    )
    assert store.count("inventory") == 3


def test_update_with_bumps_version_and_timestamp(store: DocumentStore) -> None:
    store.insert_many("orders", [_doc("o1", orderState="Open")])
    updated = store.update_with("orders", "o1", lambda d: d.update(orderState="Confirmed"))
    assert updated["version"] == 2
    assert updated["lastModifiedAt"] == "2026-03-02T12:30:00.250Z"
    assert store.get("orders", "o1") == updated
    with pytest.raises(DocumentNotFound):
        store.update_with("orders", "nope", lambda d: None)


def test_update_checked_conflicts_and_keeps_version_without_changes(store: DocumentStore) -> None:
    store.insert_many("orders", [_doc("o1", orderState="Open")])
    with pytest.raises(VersionConflict) as caught:
        store.update_checked("orders", "o1", 7, lambda d: None)
    assert caught.value.current_version == 1
    assert str(caught.value) == (
        "Object o1 has a different version than expected. Expected: 7 - Actual: 1."
    )
    same, changed = store.update_checked("orders", "o1", 1, lambda d: d.update(orderState="Open"))
    assert (same["version"], changed) == (1, False)
    new, changed = store.update_checked(
        "orders", "o1", 1, lambda d: d.update(orderState="Complete")
    )
    assert (new["version"], changed) == (2, True)


def test_failed_update_changes_nothing(store: DocumentStore) -> None:
    store.insert_many("products", [_product("p1", "A"), _product("p2", "B")])

    def steal_sku(doc: dict[str, Any]) -> None:
        doc["masterData"]["staged"] = {
            **doc["masterData"]["staged"],
            "masterVariant": {"id": 1, "sku": "B"},
        }

    with pytest.raises(DuplicateDocument):
        store.update_with("products", "p1", steal_sku)
    assert store.get("products", "p1")["version"] == 1  # type: ignore[index]
    assert store.get_by("products", "sku", "A")["id"] == "p1"  # type: ignore[index]


def test_replace_and_delete(store: DocumentStore) -> None:
    store.insert_many("channels", [_doc("c1", key="a")])
    store.replace("channels", {**_doc("c1", key="b"), "version": 5})
    assert store.get_by("channels", "key", "b")["version"] == 5  # type: ignore[index]
    with pytest.raises(VersionConflict):
        store.delete("channels", "c1", 4)
    assert store.delete("channels", "c1", 5)["key"] == "b"
    assert store.get("channels", "c1") is None
    with pytest.raises(DocumentNotFound):
        store.replace("channels", _doc("c1"))


def test_concurrent_updates_lose_nothing(store: DocumentStore) -> None:
    store.insert_many("inventory", [_doc("i1", sku="S", quantityOnStock=0)])
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(25):
                store.update_with(
                    "inventory", "i1", lambda d: d.update(quantityOnStock=d["quantityOnStock"] + 1)
                )
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    doc = store.get("inventory", "i1")
    assert doc is not None
    assert (doc["quantityOnStock"], doc["version"]) == (200, 201)


def test_connections_are_per_thread_and_reopen_after_close_all(tmp_path: Path) -> None:
    path = tmp_path / "world.db"
    main = db.connect(path)
    assert db.connect(path) is main
    other: list[Any] = []
    thread = threading.Thread(target=lambda: other.append(db.connect(path)))
    thread.start()
    thread.join()
    assert other[0] is not main
    assert main.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close_all(path)
    reopened = db.connect(path)
    assert reopened is not main
    assert reopened.execute("SELECT 1").fetchone() == (1,)


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "world.db")
    with pytest.raises(RuntimeError), db.transaction(conn):
        conn.execute("INSERT INTO sandbox_meta (name, value) VALUES ('a', '1')")
        raise RuntimeError("boom")
    assert db.get_meta(tmp_path / "world.db", "a") is None
    db.set_meta(tmp_path / "world.db", "a", "2")
    assert db.get_meta(tmp_path / "world.db", "a") == "2"


def test_world_clock_offset(tmp_path: Path) -> None:
    path = tmp_path / "world.db"
    before = db.sandbox_now(path)
    db.set_meta(path, db.CLOCK_OFFSET_META, str(3 * 86_400))
    shifted = db.sandbox_now(path)
    assert 3 * 86_400 - 5 < (shifted - before).total_seconds() < 3 * 86_400 + 5
    assert db.format_timestamp(datetime(2026, 1, 2, 3, 4, 5, 678_901)) == "2026-01-02T03:04:05.678Z"
