"""Export claims: which worker may send an entity to the ERP right now, with a lease.

Several run workers (processes, possibly on several machines) may export overlapping entities at
once: two runs of overlapping windows, a backfill next to a sensor run. The ledger alone makes
that safe in the end (the ERP lookup and idempotency key catch a repeat), but it lets two
workers send the same order. A claim makes it one:

- ``claim`` takes a batch in one transaction: new entities by ``INSERT ... ON CONFLICT DO
  NOTHING RETURNING`` (the database, not a prior read, decides who inserts), the others by
  ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL (rows another claimer is taking at this
  moment are skipped, never waited for) and under SQLite's single writer (BEGIN IMMEDIATE).
- A claim has an owner and a lease. It is taken over only when the lease has expired, or when
  the owner is on this host and its process is provably gone (pid absent or recycled: its start
  time differs), never while the owner is alive and renewing (``renew``, a heartbeat).
- It ends when the entity is recorded (``ExportLedger.mark_exported_many(..., owner=)``) or
  released (``release``); an exported entity is never claimed again.

An owner that cannot renew in time must stop sending (``ClaimSession.valid``): past its lease
another worker may have taken the entity over. Should both still send in that window (an owner
frozen between its check and its write), the ERP lookup and idempotency key (same document
number, same key) keep it one document; the claim is what keeps it to one write in practice.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ct_pipelines.store.engine import Database
from ct_pipelines.store.safe import safe_key
from ct_pipelines.store.schema import export_claims, export_ledger

# Well below SQLite's and PostgreSQL's bound-parameter limits (5 parameters a row).
_CHUNK = 500
DEFAULT_LEASE = timedelta(seconds=60)
_DEADLOCK_ATTEMPTS = 3
BUSY = "(being claimed by another transaction)"


def _process_start(pid: int) -> tuple[str, str]:
    """(state, start time in clock ticks) from /proc/<pid>/stat; ("", "") off Linux or if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "", ""
    # The command name (field 2) may hold spaces and parentheses; fields follow the last ")".
    fields = stat.rsplit(")", 1)[-1].split()
    return (fields[0] if fields else ""), (fields[19] if len(fields) > 19 else "")


def new_owner(label: str = "export") -> str:
    """A claim owner for this process: host, pid, process start time and a nonce.

    The nonce tells two exports in one process apart; host, pid and start time let a worker on
    the same host see that the owner's process is gone (a killed run) without waiting for its
    lease to run out.
    """
    pid = os.getpid()
    host = socket.gethostname().replace("|", "_")
    started = _process_start(pid)[1]
    owner = f"{label}|{host}|{pid}|{started}|{uuid.uuid4().hex[:12]}"
    return owner[:255]


def owner_is_gone(owner: str, this_host: str | None = None) -> bool:
    """True only when ``owner`` is provably dead: on this host and its process is gone.

    A pid that now belongs to another process (a different start time) or a zombie counts as
    gone; an owner on another host, or one whose identity cannot be read, is never called gone
    (its lease decides).
    """
    parts = owner.split("|")
    if len(parts) != 5 or not parts[2].isdigit():
        return False
    _, host, pid_text, started, _ = parts
    if host != (this_host or socket.gethostname().replace("|", "_")):
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # this process is alive by definition (another export in it)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # exists, owned by another user
    state, now_started = _process_start(pid)
    if state == "Z":
        return True
    return bool(started and now_started and now_started != started)


@dataclass(frozen=True)
class ClaimResult:
    """What one ``claim`` call got, by the keys as given."""

    claimed: list[str] = field(default_factory=list)  # this owner holds them now
    exported: list[str] = field(default_factory=list)  # already exported: nothing to send
    held: dict[str, str] = field(default_factory=dict)  # key -> the owner holding it
    taken_over: list[str] = field(default_factory=list)  # claimed from an expired/gone owner


def _insert(db: Database, table: sa.Table) -> Any:
    return postgresql.insert(table) if db.is_postgresql else sqlite.insert(table)


class ExportClaims:
    """Claim, renew and release entities for export. Thread-safe; share one per process."""

    def __init__(self, db: Database, *, owner_is_gone: Callable[[str], bool] = owner_is_gone):
        self._db = db
        self._owner_is_gone = owner_is_gone

    def claim(
        self,
        flow: str,
        claims: Sequence[tuple[str, str | None, int | None, str | None]],
        *,
        owner: str,
        lease: timedelta = DEFAULT_LEASE,
    ) -> ClaimResult:
        """Claim (entity_key, entity_id, entity_version, payload_hash) rows for ``owner``.

        One transaction: the ledger rows are created where missing (pending), claims taken where
        free, expired or left by a gone owner, and the claimed entities' ledger rows take the
        newest id/version/hash (as ``ExportLedger.claim`` does). Already exported entities are
        reported and not claimed; ones another live owner holds are reported with that owner.
        """
        if not owner:
            raise ValueError("a claim needs an owner")
        by_stored: dict[str, tuple[str, str | None, int | None, str | None]] = {}
        for key, entity_id, version, digest in claims:
            if not isinstance(key, str) or not key.strip():
                raise ValueError("entity_key must be a non-empty string")
            by_stored.setdefault(safe_key(key), (key, entity_id, version, digest))
        if not by_stored:
            return ClaimResult()
        # Sorted, so two claimers inserting overlapping batches lock rows in the same order.
        keys = sorted(by_stored)
        now = self._db.now()
        expires = now + lease
        ledger_insert = _insert(self._db, export_ledger).on_conflict_do_nothing(
            index_elements=[export_ledger.c.flow, export_ledger.c.entity_key]
        )
        claim_insert = (
            _insert(self._db, export_claims)
            .on_conflict_do_nothing(
                index_elements=[export_claims.c.flow, export_claims.c.entity_key]
            )
            .returning(export_claims.c.entity_key)
        )
        for attempt in range(1, _DEADLOCK_ATTEMPTS + 1):
            try:
                return self._claim_once(
                    flow, keys, by_stored, owner, now, expires, ledger_insert, claim_insert
                )
            except sa.exc.DBAPIError as exc:
                # PostgreSQL breaks a rare lock cycle with a claimer taking over from a live,
                # expired owner by aborting one side; the claim is simply tried again.
                if attempt == _DEADLOCK_ATTEMPTS or not _is_retryable(exc):
                    raise
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    def _claim_once(
        self,
        flow: str,
        keys: list[str],
        by_stored: dict[str, tuple[str, str | None, int | None, str | None]],
        owner: str,
        now: datetime,
        expires: datetime,
        ledger_insert: Any,
        claim_insert: Any,
    ) -> ClaimResult:
        claimed: set[str] = set()
        taken_over: set[str] = set()
        held: dict[str, str] = {}
        exported: set[str] = set()
        with self._db.write() as conn:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                conn.execute(
                    ledger_insert,
                    [
                        {
                            "flow": flow,
                            "entity_key": key,
                            "entity_id": _optional_key(by_stored[key][1]),
                            "entity_version": by_stored[key][2],
                            "payload_hash": by_stored[key][3],
                            "status": "pending",
                            "attempts": 0,
                            "first_seen_at": now,
                            "updated_at": now,
                        }
                        for key in chunk
                    ],
                )
                rows = [
                    {
                        "flow": flow,
                        "entity_key": key,
                        "owner": owner,
                        "claimed_at": now,
                        "expires_at": expires,
                    }
                    for key in chunk
                ]
                claimed.update(conn.execute(claim_insert, rows).scalars())
                rest = [key for key in chunk if key not in claimed]
                if rest:
                    got, over, others = self._take_over(conn, flow, rest, owner, now, expires)
                    claimed.update(got)
                    taken_over.update(over)
                    held.update(others)
            # Exported entities are never claimed: drop those claims again at once.
            for start in range(0, len(keys), _CHUNK):
                chunk = [k for k in keys[start : start + _CHUNK] if k in claimed]
                if not chunk:
                    continue
                exported.update(
                    conn.execute(
                        sa.select(export_ledger.c.entity_key).where(
                            export_ledger.c.flow == flow,
                            export_ledger.c.status == "exported",
                            export_ledger.c.entity_key.in_(chunk),
                        )
                    ).scalars()
                )
            if exported:
                self._delete(conn, flow, sorted(exported), owner)
                claimed -= exported
            self._refresh_ledger(conn, flow, sorted(claimed), by_stored, now)
        return ClaimResult(
            claimed=[by_stored[k][0] for k in keys if k in claimed],
            exported=[by_stored[k][0] for k in keys if k in exported],
            held={by_stored[k][0]: held[k] for k in keys if k in held},
            taken_over=[by_stored[k][0] for k in keys if k in taken_over and k in claimed],
        )

    def _take_over(
        self,
        conn: Connection,
        flow: str,
        keys: list[str],
        owner: str,
        now: datetime,
        expires: datetime,
    ) -> tuple[set[str], set[str], dict[str, str]]:
        query = sa.select(
            export_claims.c.entity_key, export_claims.c.owner, export_claims.c.expires_at
        ).where(export_claims.c.flow == flow, export_claims.c.entity_key.in_(keys))
        if self._db.is_postgresql:
            # Rows another transaction is claiming or releasing right now are skipped, not
            # waited for: they are that worker's, and waiting could only queue the claimers.
            query = query.with_for_update(skip_locked=True)
        seen = {row.entity_key: row for row in conn.execute(query)}
        mine: set[str] = set()
        over: set[str] = set()
        held: dict[str, str] = {}
        gone: dict[str, bool] = {}
        for key in keys:
            row = seen.get(key)
            if row is None:
                # Not returned: locked by another claimer (PostgreSQL), or released between
                # our insert and this read by a transaction that has committed since.
                held[key] = BUSY
                continue
            if row.owner == owner:
                mine.add(key)
                continue
            if row.owner not in gone:
                gone[row.owner] = self._owner_is_gone(row.owner)
            if row.expires_at <= now or gone[row.owner]:
                over.add(key)
            else:
                held[key] = row.owner
        take = sorted(mine | over)
        if take:
            conn.execute(
                export_claims.update()
                .where(
                    export_claims.c.flow == flow,
                    export_claims.c.entity_key == sa.bindparam("key"),
                )
                .values(owner=owner, claimed_at=now, expires_at=expires),
                [{"key": key} for key in take],
            )
        return mine | over, over, held

    def _refresh_ledger(
        self,
        conn: Connection,
        flow: str,
        keys: list[str],
        by_stored: dict[str, tuple[str, str | None, int | None, str | None]],
        now: datetime,
    ) -> None:
        """The claimed, not yet exported entities' ledger rows take the newest id/version/hash."""
        if not keys:
            return
        conn.execute(
            export_ledger.update()
            .where(
                export_ledger.c.flow == flow,
                export_ledger.c.entity_key == sa.bindparam("key"),
                export_ledger.c.status != "exported",
            )
            .values(
                entity_id=sa.func.coalesce(sa.bindparam("eid"), export_ledger.c.entity_id),
                entity_version=sa.func.coalesce(
                    sa.bindparam("ever", type_=sa.BigInteger), export_ledger.c.entity_version
                ),
                payload_hash=sa.func.coalesce(sa.bindparam("hash"), export_ledger.c.payload_hash),
                updated_at=now,
            ),
            [
                {
                    "key": key,
                    "eid": _optional_key(by_stored[key][1]),
                    "ever": by_stored[key][2],
                    "hash": by_stored[key][3],
                }
                for key in keys
            ],
        )

    def renew(
        self, flow: str, owner: str, keys: Iterable[str], lease: timedelta = DEFAULT_LEASE
    ) -> set[str]:
        """Extend ``owner``'s lease on ``keys``; returns the keys (as given) it still holds."""
        by_stored = {safe_key(key): key for key in keys}
        if not by_stored:
            return set()
        now = self._db.now()
        wanted = sorted(by_stored)
        kept: set[str] = set()
        with self._db.write() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                kept.update(
                    conn.execute(
                        export_claims.update()
                        .where(
                            export_claims.c.flow == flow,
                            export_claims.c.owner == owner,
                            export_claims.c.entity_key.in_(chunk),
                        )
                        .values(expires_at=now + lease)
                        .returning(export_claims.c.entity_key)
                    ).scalars()
                )
        return {by_stored[key] for key in kept}

    def release(self, flow: str, owner: str, keys: Iterable[str] | None = None) -> int:
        """Give up ``owner``'s claims (on ``keys``, or all of this flow); returns how many."""
        with self._db.write() as conn:
            if keys is None:
                result = conn.execute(
                    export_claims.delete().where(
                        export_claims.c.flow == flow, export_claims.c.owner == owner
                    )
                )
                return int(result.rowcount or 0)
            return self._delete(conn, flow, sorted({safe_key(k) for k in keys}), owner)

    def _delete(self, conn: Connection, flow: str, keys: list[str], owner: str) -> int:
        removed = 0
        for start in range(0, len(keys), _CHUNK):
            result = conn.execute(
                export_claims.delete().where(
                    export_claims.c.flow == flow,
                    export_claims.c.owner == owner,
                    export_claims.c.entity_key.in_(keys[start : start + _CHUNK]),
                )
            )
            removed += int(result.rowcount or 0)
        return removed

    def holders(self, flow: str, keys: Iterable[str]) -> dict[str, tuple[str, datetime]]:
        """Key (as given) -> (owner, lease end) of the claims held on ``keys`` (for operators)."""
        by_stored = {safe_key(key): key for key in keys}
        wanted = sorted(by_stored)
        found: dict[str, tuple[str, datetime]] = {}
        with self._db.read() as conn:
            for start in range(0, len(wanted), _CHUNK):
                for row in conn.execute(
                    sa.select(export_claims).where(
                        export_claims.c.flow == flow,
                        export_claims.c.entity_key.in_(wanted[start : start + _CHUNK]),
                    )
                ):
                    found[by_stored[row.entity_key]] = (row.owner, row.expires_at)
        return found


def _is_retryable(exc: sa.exc.DBAPIError) -> bool:
    """A deadlock or serialization failure (PostgreSQL 40P01 / 40001): safe to run again."""
    return getattr(exc.orig, "sqlstate", None) in ("40P01", "40001")


def _optional_key(value: str | None) -> str | None:
    return None if value is None else safe_key(str(value))


class ClaimSession:
    """One owner's claims during one export: claim in batches, renew on a heartbeat, release.

    ``valid()`` is False once a renewal is overdue (the lease may have run out, so another worker
    may take over): the owner must then send nothing more. ``holds(key)`` is False for a key a
    renewal found taken over.
    """

    def __init__(
        self,
        claims: ExportClaims,
        flow: str,
        *,
        owner: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.claims = claims
        self.flow = flow
        self.owner = owner or new_owner(flow)
        self.lease = lease
        self._clock = clock
        self._lock = threading.Lock()
        self._held: set[str] = set()
        # A renewal counts from when it was sent, not answered: the lease may start before.
        self._valid_until = clock() + lease.total_seconds()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def claim(
        self, claims: Sequence[tuple[str, str | None, int | None, str | None]]
    ) -> ClaimResult:
        sent = self._clock()
        result = self.claims.claim(self.flow, claims, owner=self.owner, lease=self.lease)
        with self._lock:
            self._held.update(result.claimed)
            self._valid_until = max(self._valid_until, sent + self.lease.total_seconds())
        return result

    def holds(self, key: str) -> bool:
        with self._lock:
            return key in self._held and self._clock() < self._margin_end()

    def valid(self) -> bool:
        with self._lock:
            return self._clock() < self._margin_end()

    def _margin_end(self) -> float:
        # Stop sending a tenth of the lease before it ends: a write takes time to land.
        return self._valid_until - self.lease.total_seconds() / 10

    def done(self, keys: Iterable[str]) -> None:
        """Forget keys whose claims the ledger has ended (recorded exported or failed)."""
        with self._lock:
            self._held.difference_update(keys)

    def renew_now(self) -> None:
        with self._lock:
            keys = list(self._held)
        sent = self._clock()
        kept = self.claims.renew(self.flow, self.owner, keys, self.lease) if keys else set()
        with self._lock:
            lost = set(keys) - kept
            self._held.difference_update(lost)
            self._valid_until = sent + self.lease.total_seconds()

    def start(self, interval: float | None = None) -> None:
        every = interval if interval is not None else self.lease.total_seconds() / 4

        def beat() -> None:
            while not self._stop.wait(every):
                try:
                    self.renew_now()
                except Exception as exc:  # the lease then runs out: valid() turns False
                    self.error = exc

        self._thread = threading.Thread(target=beat, name="claim-heartbeat", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the heartbeat and release whatever this owner still holds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.claims.release(self.flow, self.owner)
        with self._lock:
            self._held.clear()


__all__ = [
    "BUSY",
    "DEFAULT_LEASE",
    "ClaimResult",
    "ClaimSession",
    "ExportClaims",
    "new_owner",
    "owner_is_gone",
]
