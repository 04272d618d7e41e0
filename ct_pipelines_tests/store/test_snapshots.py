"""Snapshots: typed round trips, partitions replaced, unpartitioned history kept."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from ct_pipelines.store import IntegrationStore, SnapshotNotFound

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _stock(quantity: int, skus: tuple[str, ...] = ("TEE-RED-S", "TEE-RED-M")) -> pd.DataFrame:
    return pd.DataFrame({"sku": list(skus), "available": [quantity] * len(skus)})


def test_dtypes_that_matter_survive_the_round_trip(store: IntegrationStore) -> None:
    london = ZoneInfo("Europe/London")
    frame = pd.DataFrame(
        {
            "sku": pd.Series(["TEE-RED-S", None, 'MUG-ÉTÉ "quoted" \\ 100%'], dtype="str"),
            "quantity": np.array([1, -2, 2**53 + 1], dtype="int64"),
            "reserved": pd.array([0, None, 3], dtype="Int64"),
            "small": np.array([1, 2, 3], dtype="uint8"),
            "weight": [0.1, float("nan"), float("inf")],
            "active": [True, False, True],
            "maybe": pd.array([True, None, False], dtype="boolean"),
            "price": [Decimal("12.50"), None, Decimal("0.005")],
            "created_utc": pd.to_datetime(
                ["2026-03-29T00:30:00.123456Z", None, "2026-10-25T01:30:00Z"],
                utc=True,
                format="ISO8601",
            ),
            "created_london": pd.to_datetime(
                ["2026-03-29T00:30:00Z", "2026-06-01T12:00:00Z", None], utc=True
            ).tz_convert(london),
            "fixed_offset": pd.Series(
                [datetime(2026, 1, 1, 10, tzinfo=timezone(timedelta(hours=1)))] * 3
            ),
            "local_naive": pd.to_datetime(["2026-01-01 10:00", "2026-01-02 10:00", None]),
            "nanos": pd.to_datetime(["2026-01-01T00:00:00.000000001"] * 3).as_unit("ns"),
            "wait": pd.to_timedelta(["1 day 2h", None, "3ms"]),
            "order_date": [date(2026, 11, 26), date(2026, 11, 27), None],
            "paid_at": [
                datetime(2026, 11, 26, 9, tzinfo=UTC),
                None,
                datetime(2026, 11, 26, tzinfo=UTC),
            ],
            "channel": pd.Categorical(
                ["store", "web", None], categories=["web", "store"], ordered=True
            ),
            "attributes": [{"colour": "red", "sizes": [1, 2]}, None, {"net": Decimal("1.5")}],
            "mixed": ["a", 1, None],
        }
    )
    store.write_snapshot("typed", frame, taken_at=T0)
    back = store.read_snapshot("typed")

    expected = frame.copy()
    # Decimals nested inside JSON objects come back as their string (documented).
    expected["attributes"] = pd.Series(
        [{"colour": "red", "sizes": [1, 2]}, None, {"net": "1.5"}], dtype=object
    )
    pd.testing.assert_frame_equal(back, expected)
    assert isinstance(back.loc[0, "price"], Decimal)
    assert type(back.loc[0, "quantity"]) is np.int64
    assert back["quantity"].iloc[2] == 2**53 + 1
    assert back["created_london"].dt.tz == london
    assert isinstance(back.loc[0, "order_date"], date)
    assert back.loc[0, "paid_at"] == datetime(2026, 11, 26, 9, tzinfo=UTC)


def test_snapshot_info_describes_what_was_stored(store: IntegrationStore) -> None:
    info = store.write_snapshot("inventory_snapshots", _stock(5), taken_at=T0)
    assert info.id > 0
    assert (info.name, info.partition_key, info.taken_at, info.row_count) == (
        "inventory_snapshots",
        None,
        T0,
        2,
    )
    assert info.columns == ("sku", "available")
    assert info.dtypes == {"sku": "str", "available": "int64"}
    assert info.written_at.tzinfo is not None


def test_rewriting_a_partition_replaces_it(store: IntegrationStore) -> None:
    store.write_snapshot("order_batches", _stock(1), partition_key="2026-11-25", taken_at=T0)
    store.write_snapshot("order_batches", _stock(2), partition_key="2026-11-26", taken_at=T0)
    rerun = store.write_snapshot(
        "order_batches",
        _stock(3, ("ONE",)),
        partition_key="2026-11-26",
        taken_at=T0 + timedelta(hours=1),
    )
    listed = store.list_snapshots("order_batches")
    assert sorted((s.partition_key, s.row_count) for s in listed) == [
        ("2026-11-25", 2),
        ("2026-11-26", 1),
    ]
    assert rerun.id in {s.id for s in listed}
    pd.testing.assert_frame_equal(
        store.read_snapshot("order_batches", partition_key="2026-11-26"), _stock(3, ("ONE",))
    )
    pd.testing.assert_frame_equal(
        store.read_snapshot("order_batches", partition_key="2026-11-25"), _stock(1)
    )
    with pytest.raises(SnapshotNotFound, match="partition '2026-11-27'"):
        store.read_snapshot("order_batches", partition_key="2026-11-27")
    # Partitioned data is not mistaken for an unpartitioned snapshot of the same name.
    with pytest.raises(SnapshotNotFound):
        store.read_snapshot("order_batches")


def test_unpartitioned_snapshots_keep_their_history(store: IntegrationStore) -> None:
    for hour in range(3):
        store.write_snapshot(
            "inventory_snapshots", _stock(10 - hour), taken_at=T0 + timedelta(hours=hour)
        )
    history = store.list_snapshots("inventory_snapshots")
    assert [s.taken_at for s in history] == [T0 + timedelta(hours=h) for h in (2, 1, 0)]

    pd.testing.assert_frame_equal(store.read_snapshot("inventory_snapshots"), _stock(8))
    # As of a moment: the latest taken at or before it.
    as_of = store.read_snapshot("inventory_snapshots", taken_at=T0 + timedelta(hours=1, minutes=59))
    pd.testing.assert_frame_equal(as_of, _stock(9))
    exact = store.read_snapshot("inventory_snapshots", taken_at=T0)
    pd.testing.assert_frame_equal(exact, _stock(10))
    with pytest.raises(SnapshotNotFound, match="at or before"):
        store.read_snapshot("inventory_snapshots", taken_at=T0 - timedelta(seconds=1))


def test_rewriting_the_same_moment_does_not_duplicate_history(store: IntegrationStore) -> None:
    store.write_snapshot("product_master", _stock(1), taken_at=T0)
    store.write_snapshot("product_master", _stock(2), taken_at=T0)
    [only] = store.list_snapshots("product_master")
    assert only.taken_at == T0
    pd.testing.assert_frame_equal(store.read_snapshot("product_master"), _stock(2))


def test_prune_keeps_the_newest_history_and_leaves_partitions(store: IntegrationStore) -> None:
    for hour in range(5):
        store.write_snapshot(
            "inventory_snapshots", _stock(hour), taken_at=T0 + timedelta(hours=hour)
        )
    store.write_snapshot("inventory_snapshots", _stock(99), partition_key="p", taken_at=T0)
    assert store.prune_snapshots("inventory_snapshots", keep=2) == 3
    remaining = store.list_snapshots("inventory_snapshots")
    assert sorted((s.partition_key or "", s.taken_at) for s in remaining) == [
        ("", T0 + timedelta(hours=3)),
        ("", T0 + timedelta(hours=4)),
        ("p", T0),
    ]
    pd.testing.assert_frame_equal(store.read_snapshot("inventory_snapshots"), _stock(4))
    assert store.prune_snapshots("inventory_snapshots", keep=2) == 0
    with pytest.raises(ValueError, match="at least 1"):
        store.prune_snapshots("inventory_snapshots", keep=0)


def test_empty_frames_keep_their_columns_and_dtypes(store: IntegrationStore) -> None:
    empty = pd.DataFrame(
        {"order_id": pd.Series([], dtype="str"), "gross_minor": pd.Series([], dtype="int64")}
    )
    info = store.write_snapshot("order_batches", empty, partition_key="2026-01-01", taken_at=T0)
    assert info.row_count == 0
    pd.testing.assert_frame_equal(
        store.read_snapshot("order_batches", partition_key="2026-01-01"), empty
    )
    store.write_snapshot("nothing", pd.DataFrame(), taken_at=T0)
    assert store.read_snapshot("nothing").shape == (0, 0)


def test_bad_input_is_refused_with_a_reason(store: IntegrationStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.write_snapshot("x", _stock(1), taken_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="duplicated"):
        store.write_snapshot("x", pd.DataFrame([[1, 2]], columns=["a", "a"]), taken_at=T0)
    with pytest.raises(TypeError, match="column names"):
        store.write_snapshot("x", pd.DataFrame({0: [1]}), taken_at=T0)
    with pytest.raises(TypeError, match="bytes"):
        store.write_snapshot("x", pd.DataFrame({"blob": [b"\x00"]}), taken_at=T0)
    with pytest.raises(TypeError, match="DataFrame"):
        store.write_snapshot("x", [{"a": 1}], taken_at=T0)  # type: ignore[arg-type]
    assert store.list_snapshots("x") == []


@pytest.mark.slow
def test_a_200k_row_snapshot_round_trips(store: IntegrationStore) -> None:
    rows = 200_000
    frame = pd.DataFrame(
        {
            "system": pd.Series(np.where(np.arange(rows) % 2, "erp", "commercetools"), dtype="str"),
            "sku": pd.Series([f"SKU-{n:06d}" for n in range(rows)], dtype="str"),
            "location": pd.Series(np.where(np.arange(rows) % 2, "WH-LON", None), dtype="str"),
            "quantity_on_stock": np.arange(rows, dtype="int64"),
            "reserved": pd.array(np.where(np.arange(rows) % 7, 1, 0), dtype="Int64"),
            "version": pd.array([None if n % 2 else n for n in range(rows)], dtype="Int64"),
            "unit_cost": [Decimal(n) / 100 for n in range(rows)],
            "updated_at": pd.date_range("2026-11-26", periods=rows, freq="s", tz="UTC"),
        }
    )
    info = store.write_snapshot("inventory_snapshots", frame, taken_at=T0)
    assert info.row_count == rows
    back = store.read_snapshot("inventory_snapshots")
    pd.testing.assert_frame_equal(back, frame)
    # A second snapshot of the same size on top (history), then pruning the first away.
    store.write_snapshot("inventory_snapshots", frame.head(10), taken_at=T0 + timedelta(hours=1))
    assert store.prune_snapshots("inventory_snapshots", keep=1) == 1
    assert len(store.read_snapshot("inventory_snapshots")) == 10


def test_cursors_remember_the_last_value(store: IntegrationStore) -> None:
    assert store.get_cursor("erp_stock_movements") is None
    store.set_cursor("erp_stock_movements", "mv-000100")
    store.set_cursor("erp_shipments", "2026-11-26T09:00:00Z")
    store.set_cursor("erp_stock_movements", "mv-000250")
    assert store.get_cursor("erp_stock_movements") == "mv-000250"
    assert store.get_cursor("erp_shipments") == "2026-11-26T09:00:00Z"


def test_rows_are_json_objects_operators_can_query_in_sql(store: IntegrationStore) -> None:
    info = store.write_snapshot("inventory_snapshots", _stock(7), taken_at=T0)
    extract = "data ->> 'sku'" if store.dialect == "postgresql" else "json_extract(data, '$.sku')"
    with store._db.read() as conn:
        skus = conn.execute(
            sa.text(f"SELECT {extract} FROM snapshot_rows WHERE run_id = :run ORDER BY row_no"),
            {"run": info.id},
        ).scalars()
        assert list(skus) == ["TEE-RED-S", "TEE-RED-M"]


def _orders(ids: list[str], version: int, note: str | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": ids,
            "order_version": np.array([version] * len(ids), dtype="int64"),
            "note": [note] * len(ids),
            "eligible": [True] * len(ids),
        }
    )


def test_upsert_updates_a_partition_in_place_for_those_rows_only(
    store: IntegrationStore,
) -> None:
    day = "2026-11-26"
    store.write_snapshot(
        "order_batches", _orders(["a", "b", "c"], 1, "x"), partition_key=day, taken_at=T0
    )
    store.write_snapshot(
        "order_batches", _orders(["z"], 1, "x"), partition_key="2026-11-25", taken_at=T0
    )
    info = store.upsert_snapshot(
        "order_batches",
        _orders(["b", "d"], 2, "y"),
        partition_key=day,
        key="order_id",
        taken_at=T0 + timedelta(minutes=1),
    )
    assert info.row_count == 4
    frame = store.read_snapshot("order_batches", partition_key=day)
    by_id = frame.set_index("order_id")
    assert sorted(by_id.index) == ["a", "b", "c", "d"]
    assert by_id.loc["b", "order_version"] == 2 and by_id.loc["b", "note"] == "y"
    assert by_id.loc["a", "order_version"] == 1 and by_id.loc["c", "note"] == "x"
    assert frame["order_version"].dtype == "int64"
    # Other days are untouched; only the asked-for rows come back from read_snapshot_rows.
    assert list(store.read_snapshot("order_batches", partition_key="2026-11-25")["order_id"]) == [
        "z"
    ]
    rows = store.read_snapshot_rows("order_batches", day, key="order_id", values=["d", "a", "q"])
    assert sorted(rows["order_id"]) == ["a", "d"]
    assert rows["order_version"].dtype == "int64"


def test_upsert_with_other_column_types_rewrites_the_partition_once(
    store: IntegrationStore,
) -> None:
    day = "2026-11-26"
    store.write_snapshot("order_batches", _orders(["a", "b"], 1), partition_key=day, taken_at=T0)
    changed = _orders(["b"], 3, "now text")
    changed["extra"] = [1.5]
    store.upsert_snapshot("order_batches", changed, partition_key=day, key="order_id", taken_at=T0)
    frame = store.read_snapshot("order_batches", partition_key=day).set_index("order_id")
    assert sorted(frame.index) == ["a", "b"]
    assert frame.loc["b", "note"] == "now text" and frame.loc["b", "extra"] == 1.5
    assert frame.loc["a", "order_version"] == 1


def test_upsert_creates_a_missing_partition_and_refuses_duplicate_keys(
    store: IntegrationStore,
) -> None:
    store.upsert_snapshot(
        "order_batches", _orders(["a"], 1), partition_key="2026-11-27", key="order_id", taken_at=T0
    )
    assert list(store.read_snapshot("order_batches", partition_key="2026-11-27")["order_id"]) == [
        "a"
    ]
    with pytest.raises(ValueError, match="unique"):
        store.upsert_snapshot(
            "order_batches",
            _orders(["a", "a"], 1),
            partition_key="2026-11-27",
            key="order_id",
            taken_at=T0,
        )
