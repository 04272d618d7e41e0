"""Fault injection settings and the request log of the sandbox, per side ("commercetools" / "erp").

Contract: ``FaultConfig`` (rates are probabilities per request, 0..1), ``load_faults(db_path, side)``
and ``save_faults(db_path, side, cfg)``, persisted in the world DB so a test (or another process)
can change them between two requests. Apps read them on every request (one primary-key lookup).

Additions beyond the contract:

- ``FaultConfig.timeout_after_write``: a read timeout on a write (POST/DELETE) happens *after* the
  app applied it, modelling "the network fails at the worst moment".
- ``FaultConfig.max_faults``: stop injecting after this many faults (e.g. ``rate_503=1,
  max_faults=2``: the first two requests fail, then all succeed).
- ``FaultConfig.path_pattern``: only requests whose path matches this regular expression
  (``re.search``) get faults.
- ``FaultConfig.include_auth``: also inject faults into ``POST /oauth/token`` (off by default).
- ``draw_fault(db_path, side, cfg, choices)``: one seeded, persisted decision. With a ``seed``
  the n-th decision of a side is ``Random(f"{seed}/{side}/{n}")``, so a sequential run replays the
  same faults. ``save_faults`` restarts that sequence.
- Request log: ``log_request``, ``annotate_request``, ``request_log``, ``request_counts``,
  ``clear_request_log``; records are ``RequestRecord(seq, side, method, path, status, fault)``.
"""

from __future__ import annotations

import functools
import os
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ct_sandbox import db

SIDES = ("commercetools", "erp")

Rate = float


class FaultConfig(BaseModel):
    """Injected faults for one side of the sandbox. All rates default to 0 (no faults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_429: Rate = Field(default=0.0, ge=0.0, le=1.0)
    rate_502: Rate = Field(default=0.0, ge=0.0, le=1.0)
    rate_503: Rate = Field(default=0.0, ge=0.0, le=1.0)
    rate_504: Rate = Field(default=0.0, ge=0.0, le=1.0)
    rate_read_timeout: Rate = Field(default=0.0, ge=0.0, le=1.0)
    rate_connect_timeout: Rate = Field(default=0.0, ge=0.0, le=1.0)
    rate_409: Rate = Field(default=0.0, ge=0.0, le=1.0)  # writes with a version only
    latency_ms: int = Field(default=0, ge=0, le=60_000)
    retry_after_seconds: int = Field(default=1, ge=0)
    seed: int | None = None
    timeout_after_write: bool = False
    max_faults: int | None = Field(default=None, ge=0)
    path_pattern: str | None = None
    include_auth: bool = False

    @model_validator(mode="after")
    def _check(self) -> FaultConfig:
        if self.rate_429 + self.rate_502 + self.rate_503 + self.rate_504 > 1.0 + 1e-9:
            raise ValueError("rate_429 + rate_502 + rate_503 + rate_504 must not exceed 1")
        if self.rate_read_timeout + self.rate_connect_timeout > 1.0 + 1e-9:
            raise ValueError("rate_read_timeout + rate_connect_timeout must not exceed 1")
        if self.path_pattern is not None:
            try:
                re.compile(self.path_pattern)
            except re.error as error:
                raise ValueError(f"path_pattern is not a regular expression: {error}") from None
        return self

    @property
    def any_status_faults(self) -> bool:
        return self.rate_429 + self.rate_502 + self.rate_503 + self.rate_504 > 0

    @property
    def any_timeouts(self) -> bool:
        return self.rate_read_timeout + self.rate_connect_timeout > 0

    def applies_to(self, path: str) -> bool:
        return self.path_pattern is None or re.search(self.path_pattern, path) is not None


def _check_side(side: str) -> None:
    if side not in SIDES:
        raise ValueError(f"unknown sandbox side {side!r}; expected one of {SIDES}")


def load_faults(db_path: str | os.PathLike[str], side: str) -> FaultConfig:
    """The faults configured for ``side`` (no faults when none were saved)."""
    _check_side(side)
    row = (
        db.connect(db_path)
        .execute("SELECT config FROM sandbox_faults WHERE side = ?", (side,))
        .fetchone()
    )
    return _NO_FAULTS if row is None else _parse_faults(str(row[0]))


_NO_FAULTS = FaultConfig()


@functools.lru_cache(maxsize=64)
def _parse_faults(raw: str) -> FaultConfig:
    # Every request reads the stored config (another process may have changed it); the same
    # text gives the same frozen config, so it is parsed once, not once a request.
    return FaultConfig.model_validate_json(raw)


def save_faults(db_path: str | os.PathLike[str], side: str, cfg: FaultConfig) -> None:
    """Store ``cfg`` for ``side`` and restart its seeded decision sequence and fault budget."""
    _check_side(side)
    conn = db.connect(db_path)
    with db.transaction(conn):
        conn.execute(
            "INSERT INTO sandbox_faults (side, config) VALUES (?, ?) "
            "ON CONFLICT (side) DO UPDATE SET config = excluded.config",
            (side, cfg.model_dump_json()),
        )
        conn.execute("DELETE FROM sandbox_fault_state WHERE side = ?", (side,))


def draw_fault(
    db_path: str | os.PathLike[str],
    side: str,
    cfg: FaultConfig,
    choices: Sequence[tuple[str, float]],
) -> str | None:
    """Pick at most one fault from ``choices`` (name, probability), honouring seed and max_faults.

    The probabilities are laid end to end on [0, 1): one uniform draw selects a band or none.
    """
    if sum(rate for _, rate in choices) <= 0:
        return None
    conn = db.connect(db_path)
    with db.transaction(conn):
        row = conn.execute(
            "SELECT draws, injected FROM sandbox_fault_state WHERE side = ?", (side,)
        ).fetchone()
        draws, injected = (0, 0) if row is None else (int(row[0]), int(row[1]))
        if cfg.max_faults is not None and injected >= cfg.max_faults:
            return None
        if cfg.seed is None:
            value = random.random()
        else:
            value = random.Random(f"{cfg.seed}/{side}/{draws}").random()
        chosen: str | None = None
        edge = 0.0
        for name, rate in choices:
            edge += rate
            if value < edge:
                chosen = name
                break
        conn.execute(
            "INSERT INTO sandbox_fault_state (side, draws, injected) VALUES (?, ?, ?) "
            "ON CONFLICT (side) DO UPDATE SET draws = excluded.draws, injected = excluded.injected",
            (side, draws + 1, injected + (chosen is not None)),
        )
    return chosen


@dataclass(frozen=True)
class RequestRecord:
    seq: int
    side: str
    method: str
    path: str
    status: int | None  # None: the client never got a response (injected timeout)
    fault: str | None


def log_request(
    db_path: str | os.PathLike[str],
    side: str,
    method: str,
    path: str,
    status: int | None,
    fault: str | None = None,
) -> int:
    """Record one request (path without query string: no secrets, no personal data); its seq."""
    # One statement: in autocommit mode it is a transaction of its own (no BEGIN/COMMIT round).
    cursor = db.connect(db_path).execute(
        "INSERT INTO sandbox_request_log (side, method, path, status, fault, at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (side, method, path, status, fault, datetime.now(UTC).isoformat()),
    )
    return int(cursor.lastrowid or 0)


def annotate_request(db_path: str | os.PathLike[str], seq: int, fault: str) -> None:
    """Mark an already logged request with a fault that happened after the app answered."""
    conn = db.connect(db_path)
    with db.transaction(conn):
        conn.execute("UPDATE sandbox_request_log SET fault = ? WHERE seq = ?", (fault, seq))


def request_log(db_path: str | os.PathLike[str], side: str | None = None) -> list[RequestRecord]:
    """Logged requests in arrival order, for one side or both."""
    sql = "SELECT seq, side, method, path, status, fault FROM sandbox_request_log"
    params: tuple[str, ...] = ()
    if side is not None:
        sql += " WHERE side = ?"
        params = (side,)
    rows = db.connect(db_path).execute(sql + " ORDER BY seq", params).fetchall()
    return [RequestRecord(*row) for row in rows]


def request_counts(
    db_path: str | os.PathLike[str], side: str | None = None
) -> Counter[tuple[str, str, int | None]]:
    """How often each (method, path, status) was seen."""
    return Counter((r.method, r.path, r.status) for r in request_log(db_path, side))


def clear_request_log(db_path: str | os.PathLike[str], side: str | None = None) -> None:
    conn = db.connect(db_path)
    with db.transaction(conn):
        if side is None:
            conn.execute("DELETE FROM sandbox_request_log")
        else:
            conn.execute("DELETE FROM sandbox_request_log WHERE side = ?", (side,))
