"""Tabular snapshots that assets persist with the time they were taken.

A partitioned snapshot (one shop day of orders) is replaced when its partition is re-run, so
re-materialising is idempotent. An unpartitioned snapshot (stock levels, the product master) keeps
every `taken_at`, so drift between the systems can be followed over time; `prune` bounds it.

Rows are stored one JSON document each (queryable in SQL on both backends) and the column types
are recorded per snapshot, so a frame reads back with the dtypes that matter: integers stay
integers, Decimals travel as strings and come back as Decimals, datetimes as ISO 8601.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ct_pipelines.store.engine import Database, require_aware
from ct_pipelines.store.schema import snapshot_rows, snapshot_runs

# Rows per INSERT batch: large enough for executemany to be fast, small enough to bound memory.
INSERT_CHUNK_ROWS = 10_000
_POSITIVE_INFINITY = "Infinity"
_NEGATIVE_INFINITY = "-Infinity"


class SnapshotNotFound(LookupError):
    """No snapshot matches the name, partition and time asked for."""


@dataclass(frozen=True)
class SnapshotInfo:
    id: int
    name: str
    partition_key: str | None
    taken_at: datetime
    row_count: int
    columns: tuple[str, ...]
    dtypes: dict[str, str]
    written_at: datetime


# --- encoding: DataFrame columns <-> JSON-safe values ------------------------------------------


def _json_value(value: Any, column: str) -> Any:
    """One value of an object column as JSON; refuses what it could not give back faithfully."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return _POSITIVE_INFINITY if value > 0 else _NEGATIVE_INFINITY
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json_value(v, column) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v, column) for v in value]
    raise TypeError(
        f"snapshot column {column!r} holds a {type(value).__name__}, which cannot be stored as JSON"
    )


def _object_codec(series: pd.Series) -> str:
    """Pick a faithful round trip for an object column from the types it actually holds."""
    kinds = {type(value) for value in series.dropna()}
    if not kinds:
        return "object"
    if all(issubclass(kind, Decimal) for kind in kinds):
        return "decimal"
    if all(issubclass(kind, datetime) for kind in kinds):
        return "pydatetime"
    if all(issubclass(kind, date) and not issubclass(kind, datetime) for kind in kinds):
        return "pydate"
    return "object"


def _tz_spec(tz: Any) -> Any:
    if isinstance(tz, timezone):
        offset = tz.utcoffset(None)
        return {"offset_seconds": int(offset.total_seconds())}
    return getattr(tz, "key", None) or getattr(tz, "zone", None) or str(tz)


def _tz_from_spec(spec: Any) -> Any:
    if isinstance(spec, dict):
        return timezone(timedelta(seconds=spec["offset_seconds"]))
    return ZoneInfo(spec)


_NULL = "null"
_BOOLEAN = {True: "true", False: "false"}.__getitem__


def _float_json(value: float) -> str:
    if math.isinf(value):
        # JSON (and jsonb) has no infinity; numpy's float() reads these strings back.
        return f'"{_POSITIVE_INFINITY if value > 0 else _NEGATIVE_INFINITY}"'
    return repr(value)


def _quoted(text: str) -> str:
    # Only for texts that never contain quotes or backslashes (numbers, ISO dates).
    return f'"{text}"'


def _render(values: list[Any], mask: np.ndarray, render: Callable[[Any], str]) -> list[str]:
    if mask.any():
        return [
            _NULL if missing else render(value) for value, missing in zip(values, mask, strict=True)
        ]
    return list(map(render, values))


def _encode_column(name: str, series: pd.Series) -> tuple[dict[str, Any], list[str]]:
    """(column spec, one JSON text per row) for one column.

    JSON is written column by column with the C string encoder rather than json.dumps per row:
    a 200,000-row snapshot must be stored in a few seconds.
    """
    dtype = series.dtype
    spec: dict[str, Any] = {"name": name, "dtype": str(dtype)}
    mask = series.isna().to_numpy()

    def generic(value: Any) -> str:
        return json.dumps(_json_value(value, name), ensure_ascii=False)

    if isinstance(dtype, pd.CategoricalDtype):
        spec["codec"] = "category"
        spec["categories"] = [_json_value(c, name) for c in dtype.categories.tolist()]
        spec["ordered"] = bool(dtype.ordered)
        return spec, _render(series.astype(object).tolist(), mask, generic)
    if isinstance(dtype, pd.DatetimeTZDtype) or (dtype.kind == "M" and isinstance(dtype, np.dtype)):
        spec["codec"] = "datetime64"
        spec["unit"] = series.dt.unit
        tz = series.dt.tz
        spec["tz"] = _tz_spec(tz) if tz is not None else None
        # Aware values are written in UTC ("...Z") and converted back to their zone on read.
        naive = series.dt.tz_convert("UTC").dt.tz_localize(None) if tz is not None else series
        texts = np.datetime_as_string(
            naive.to_numpy(), unit=spec["unit"], timezone="UTC" if tz is not None else "naive"
        ).tolist()
        return spec, _render(texts, mask, _quoted)
    if dtype.kind == "m":
        spec["codec"] = "timedelta64"
        spec["unit"] = series.dt.unit
        # Integer nanoseconds: exact, and pandas reads them back without parsing.
        nanoseconds = series.dt.as_unit("ns").to_numpy().view("int64").tolist()
        return spec, _render(nanoseconds, mask, str)
    spec["codec"] = "native"
    if dtype.kind == "b":
        return spec, _render(series.tolist(), mask, _BOOLEAN)
    if dtype.kind in "iu":
        return spec, _render(series.tolist(), mask, str)
    if dtype.kind == "f":
        return spec, _render(series.tolist(), mask, _float_json)
    if isinstance(dtype, pd.StringDtype):
        return spec, _render(series.tolist(), mask, encode_basestring)
    if pd.api.types.is_object_dtype(dtype):
        codec = _object_codec(series)
        spec["codec"] = codec
        render: Callable[[Any], str] = {
            "decimal": lambda value: _quoted(str(value)),
            "pydatetime": lambda value: _quoted(value.isoformat()),
            "pydate": lambda value: _quoted(value.isoformat()),
        }.get(codec, generic)
        return spec, _render(series.tolist(), mask, render)
    raise TypeError(f"snapshot column {name!r} has dtype {dtype}, which the store does not support")


def encode_frame(frame: pd.DataFrame) -> tuple[list[dict[str, Any]], list[str]]:
    """Column specs and one JSON object text per row; the index is not kept (reset on read)."""
    names = list(frame.columns)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"snapshot column names must be strings, got {name!r}")
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"snapshot columns must be unique, duplicated: {duplicated}")
    specs: list[dict[str, Any]] = []
    fragments: list[list[str]] = []
    for position, name in enumerate(names):
        spec, texts = _encode_column(name, frame.iloc[:, position])
        specs.append(spec)
        fragments.append(texts)
    if not names:
        return specs, ["{}"] * len(frame)
    template = (
        "{"
        + ",".join(
            json.dumps(name, ensure_ascii=False).replace("%", "%%") + ":%s" for name in names
        )
        + "}"
    )
    return specs, [template % values for values in zip(*fragments, strict=True)]


def _decode_column(spec: dict[str, Any], values: Sequence[Any]) -> pd.Series:
    codec = spec["codec"]
    name = spec["name"]
    if codec == "native":
        # float columns may carry "Infinity"; numpy's float() conversion understands it.
        return pd.Series(values, dtype=spec["dtype"], name=name)
    if codec == "datetime64":
        tz = spec.get("tz")
        parsed = pd.Series(
            pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601", utc=tz is not None),
            name=name,
        )
        if tz is not None:
            parsed = parsed.dt.tz_convert(_tz_from_spec(tz))
        return parsed.dt.as_unit(spec["unit"])
    if codec == "timedelta64":
        parsed = pd.Series(pd.to_timedelta(pd.Series(values, dtype=object), unit="ns"), name=name)
        return parsed.dt.as_unit(spec["unit"])
    if codec == "category":
        categorical = pd.Categorical(values, categories=spec["categories"], ordered=spec["ordered"])
        return pd.Series(categorical, name=name)
    decoders: dict[str, Callable[[str], object]] = {
        "decimal": Decimal,
        "pydatetime": datetime.fromisoformat,
        "pydate": date.fromisoformat,
    }
    decode = decoders.get(codec)
    if decode is not None:
        values = [None if v is None else decode(v) for v in values]
    return pd.Series(values, dtype=object, name=name)


def decode_frame(specs: list[dict[str, Any]], columns: Sequence[Sequence[Any]]) -> pd.DataFrame:
    if not specs:
        return pd.DataFrame(index=pd.RangeIndex(len(columns[0]) if columns else 0))
    return pd.concat(
        [_decode_column(spec, values) for spec, values in zip(specs, columns, strict=True)],
        axis=1,
    )


# --- storage --------------------------------------------------------------------------------


def _info(row: sa.Row[Any]) -> SnapshotInfo:
    specs = row.columns
    return SnapshotInfo(
        id=row.id,
        name=row.name,
        partition_key=row.partition_key,
        taken_at=row.taken_at,
        row_count=row.row_count,
        columns=tuple(spec["name"] for spec in specs),
        dtypes={spec["name"]: spec["dtype"] for spec in specs},
        written_at=row.written_at,
    )


def _partition_clause(partition_key: str | None) -> sa.ColumnElement[bool]:
    if partition_key is None:
        return snapshot_runs.c.partition_key.is_(None)
    return snapshot_runs.c.partition_key == partition_key


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _encodable(text: str) -> str:
    """A row's JSON with lone surrogates (no UTF-8 form) written as JSON escapes: same value."""
    if text.isascii() or not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _insert_rows(conn: Connection, run_id: int, texts: list[str], *, first_row_no: int = 0) -> None:
    """Bulk-insert pre-serialised rows: COPY on PostgreSQL, chunked executemany on SQLite."""
    texts = [_encodable(text) for text in texts]
    if conn.dialect.name == "postgresql":
        driver_connection = conn.connection.driver_connection
        assert driver_connection is not None
        with (
            driver_connection.cursor() as cursor,
            cursor.copy("COPY snapshot_rows (run_id, row_no, data) FROM STDIN") as copy,
        ):
            for row_no, text in enumerate(texts, start=first_row_no):
                copy.write_row((run_id, row_no, text))
        return
    statement = "INSERT INTO snapshot_rows (run_id, row_no, data) VALUES (?, ?, ?)"
    for start in range(0, len(texts), INSERT_CHUNK_ROWS):
        chunk = texts[start : start + INSERT_CHUNK_ROWS]
        base = first_row_no + start
        conn.exec_driver_sql(
            statement, [(run_id, base + offset, text) for offset, text in enumerate(chunk)]
        )


def _compatible(stored: list[dict[str, Any]], new: list[dict[str, Any]]) -> bool:
    """New rows can join a stored snapshot as they are: same columns, same types and codecs."""
    return [spec["name"] for spec in stored] == [spec["name"] for spec in new] and all(
        a == b for a, b in zip(stored, new, strict=True)
    )


def _frame(specs: list[dict[str, Any]], documents: list[dict[str, Any]]) -> pd.DataFrame:
    names = [spec["name"] for spec in specs]
    if not names:
        return pd.DataFrame(index=pd.RangeIndex(len(documents)))
    # dtype=object: pandas transposes the documents in C without guessing types (a guess
    # would turn integer columns with nulls into floats); the specs decide the types below.
    raw = pd.DataFrame(documents, columns=names, dtype=object)
    columns = [raw.iloc[:, position].to_numpy() for position in range(len(names))]
    return decode_frame(specs, columns)


def _decode_run(conn: Connection, run: sa.Row[Any]) -> pd.DataFrame:
    specs: list[dict[str, Any]] = run.columns
    if not specs:
        return pd.DataFrame(index=pd.RangeIndex(run.row_count))
    return _frame(specs, list(_documents(_row_texts(conn, run.id))))


def _row_texts(conn: Connection, run_id: int) -> sa.ScalarResult[str]:
    # The raw JSON text, decoded below in one pass, instead of a type processor per row.
    data = (
        sa.cast(snapshot_rows.c.data, sa.Text)
        if conn.dialect.name == "postgresql"
        else sa.type_coerce(snapshot_rows.c.data, sa.Text)
    )
    return conn.execute(
        sa.select(data).where(snapshot_rows.c.run_id == run_id).order_by(snapshot_rows.c.row_no)
    ).scalars()


def _delete_runs(conn: Connection, run_ids: list[int]) -> None:
    # Explicit, not via ON DELETE CASCADE, so it does not depend on SQLite's foreign_keys pragma.
    if run_ids:
        conn.execute(snapshot_rows.delete().where(snapshot_rows.c.run_id.in_(run_ids)))
        conn.execute(snapshot_runs.delete().where(snapshot_runs.c.id.in_(run_ids)))


def _documents(texts: sa.ScalarResult[str]) -> Iterator[dict[str, Any]]:
    # One json.loads per chunk rather than per row: the per-call overhead dominated reads.
    for chunk in texts.partitions(INSERT_CHUNK_ROWS):
        yield from json.loads("[" + ",".join(chunk) + "]")


class Snapshots:
    """Write, read, list and prune snapshots for one store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def write(
        self,
        name: str,
        rows: pd.DataFrame,
        *,
        partition_key: str | None = None,
        taken_at: datetime,
    ) -> SnapshotInfo:
        """Persist a frame as the snapshot `name` taken at `taken_at`.

        Partitioned: replaces that partition's snapshot (a re-run is idempotent). Unpartitioned:
        adds to the history; writing the same `taken_at` again replaces only that entry (a retried
        step must not duplicate history).
        """
        if not name or not name.strip():
            raise ValueError("a snapshot needs a name")
        if not isinstance(rows, pd.DataFrame):
            raise TypeError(f"write_snapshot expects a pandas DataFrame, got {type(rows).__name__}")
        taken_at = require_aware(taken_at, "taken_at")
        # Encode before taking the write lock: it is the slow part and needs no database.
        specs, texts = encode_frame(rows)
        row_count = len(rows)
        with self._db.write() as conn:
            self._db.lock(conn, "snapshot", name, partition_key or "")
            replaced = sa.select(snapshot_runs.c.id).where(
                snapshot_runs.c.name == name, _partition_clause(partition_key)
            )
            if partition_key is None:
                replaced = replaced.where(snapshot_runs.c.taken_at == taken_at)
            _delete_runs(conn, list(conn.execute(replaced).scalars()))
            run_id = conn.execute(
                snapshot_runs.insert()
                .values(
                    name=name,
                    partition_key=partition_key,
                    taken_at=taken_at,
                    row_count=row_count,
                    columns=specs,
                    written_at=self._db.now(),
                )
                .returning(snapshot_runs.c.id)
            ).scalar_one()
            _insert_rows(conn, run_id, texts)
            row = conn.execute(sa.select(snapshot_runs).where(snapshot_runs.c.id == run_id)).one()
        return _info(row)

    def upsert(
        self,
        name: str,
        rows: pd.DataFrame,
        *,
        partition_key: str,
        key: str,
        taken_at: datetime,
    ) -> SnapshotInfo:
        """Replace, inside a partition's snapshot, the rows whose ``key`` column matches one of
        ``rows``' keys, and add the others: the partition is updated in place for those rows.

        One transaction under the partition's write lock, so two updates of the same day at once
        never lose each other's rows. When the stored column types agree with the new rows',
        only those rows are touched (the cost follows the rows, not the size of the day);
        otherwise the partition is rewritten once with the types of the new rows, in the same
        transaction. A partition never written is created with just these rows.
        """
        if key not in rows.columns:
            raise ValueError(f"upsert_snapshot: the key column {key!r} is not among the rows")
        if rows[key].isna().any() or rows[key].duplicated().any():
            raise ValueError(f"upsert_snapshot: the key column {key!r} must be unique and set")
        taken_at = require_aware(taken_at, "taken_at")
        specs, texts = encode_frame(rows)
        keys = [str(value) for value in rows[key].tolist()]
        with self._db.write() as conn:
            self._db.lock(conn, "snapshot", name, partition_key)
            run = conn.execute(
                sa.select(snapshot_runs).where(
                    snapshot_runs.c.name == name, _partition_clause(partition_key)
                )
            ).one_or_none()
            if run is None or not _compatible(run.columns, specs):
                if run is not None:
                    kept = _decode_run(conn, run)
                    kept = kept[~kept[key].astype(str).isin(keys)] if len(kept) else kept
                    frame = pd.concat([kept, rows], ignore_index=True)
                    specs, texts = encode_frame(frame)
                    _delete_runs(conn, [run.id])
                run_id = conn.execute(
                    snapshot_runs.insert()
                    .values(
                        name=name,
                        partition_key=partition_key,
                        taken_at=taken_at,
                        row_count=len(texts),
                        columns=specs,
                        written_at=self._db.now(),
                    )
                    .returning(snapshot_runs.c.id)
                ).scalar_one()
                _insert_rows(conn, run_id, texts)
            else:
                run_id = run.id
                matched = snapshot_rows.c.data[key].as_string()
                removed = 0
                for start in range(0, len(keys), 500):
                    removed += conn.execute(
                        snapshot_rows.delete().where(
                            snapshot_rows.c.run_id == run_id,
                            matched.in_(keys[start : start + 500]),
                        )
                    ).rowcount
                last = conn.execute(
                    sa.select(sa.func.max(snapshot_rows.c.row_no)).where(
                        snapshot_rows.c.run_id == run_id
                    )
                ).scalar_one()
                _insert_rows(
                    conn, run_id, texts, first_row_no=(last + 1) if last is not None else 0
                )
                conn.execute(
                    snapshot_runs.update()
                    .where(snapshot_runs.c.id == run_id)
                    .values(
                        row_count=run.row_count - removed + len(texts),
                        taken_at=max(run.taken_at, taken_at),
                        written_at=self._db.now(),
                    )
                )
            row = conn.execute(sa.select(snapshot_runs).where(snapshot_runs.c.id == run_id)).one()
        return _info(row)

    def read_rows(
        self, name: str, partition_key: str | None, *, key: str, values: Sequence[str]
    ) -> pd.DataFrame:
        """Only the rows of the latest snapshot whose ``key`` column is one of ``values``, in
        stored order: an export of a few orders need not decode the whole day."""
        wanted = list(dict.fromkeys(str(v) for v in values))
        with self._db.read() as conn:
            run = self._latest(conn, name, partition_key, None)
            specs: list[dict[str, Any]] = run.columns
            data = (
                sa.cast(snapshot_rows.c.data, sa.Text)
                if conn.dialect.name == "postgresql"
                else sa.type_coerce(snapshot_rows.c.data, sa.Text)
            )
            texts: list[tuple[int, str]] = []
            for start in range(0, len(wanted), 500):
                texts.extend(
                    conn.execute(
                        sa.select(snapshot_rows.c.row_no, data).where(
                            snapshot_rows.c.run_id == run.id,
                            snapshot_rows.c.data[key].as_string().in_(wanted[start : start + 500]),
                        )
                    ).tuples()
                )
        texts.sort()
        documents = json.loads("[" + ",".join(text for _, text in texts) + "]")
        return _frame(specs, documents)

    def _latest(
        self, conn: Connection, name: str, partition_key: str | None, taken_at: datetime | None
    ) -> sa.Row[Any]:
        query = sa.select(snapshot_runs).where(
            snapshot_runs.c.name == name, _partition_clause(partition_key)
        )
        if taken_at is not None:
            query = query.where(snapshot_runs.c.taken_at <= require_aware(taken_at, "taken_at"))
        query = query.order_by(snapshot_runs.c.taken_at.desc(), snapshot_runs.c.id.desc()).limit(1)
        run = conn.execute(query).one_or_none()
        if run is None:
            where = f" partition {partition_key!r}" if partition_key is not None else ""
            when = f" at or before {taken_at.isoformat()}" if taken_at is not None else ""
            raise SnapshotNotFound(f"no snapshot {name!r}{where}{when}")
        return run

    def read(
        self, name: str, partition_key: str | None = None, taken_at: datetime | None = None
    ) -> pd.DataFrame:
        """The snapshot as a frame: the latest, or the one in force at `taken_at`.

        "In force at" means the latest taken at or before that moment, so asking "what did stock
        look like at 10:00" works without knowing the exact snapshot times.
        """
        with self._db.read() as conn:
            return _decode_run(conn, self._latest(conn, name, partition_key, taken_at))

    def list(self, name: str) -> list[SnapshotInfo]:
        """Every stored snapshot of `name`, newest first."""
        query = (
            sa.select(snapshot_runs)
            .where(snapshot_runs.c.name == name)
            .order_by(snapshot_runs.c.taken_at.desc(), snapshot_runs.c.id.desc())
        )
        with self._db.read() as conn:
            return [_info(row) for row in conn.execute(query)]

    def prune(self, name: str, keep: int) -> int:
        """Keep the newest `keep` unpartitioned snapshots of `name`; returns how many were removed.

        Partitioned snapshots hold one entry per partition already and are left alone.
        """
        if keep < 1:
            raise ValueError("keep must be at least 1: pruning never empties a snapshot's history")
        with self._db.write() as conn:
            self._db.lock(conn, "snapshot", name, "")
            ids = list(
                conn.execute(
                    sa.select(snapshot_runs.c.id)
                    .where(snapshot_runs.c.name == name, snapshot_runs.c.partition_key.is_(None))
                    .order_by(snapshot_runs.c.taken_at.desc(), snapshot_runs.c.id.desc())
                    .offset(keep)
                ).scalars()
            )
            _delete_runs(conn, ids)
        return len(ids)
