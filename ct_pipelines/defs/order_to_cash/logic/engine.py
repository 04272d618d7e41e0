"""Exporting sales orders to the ERP exactly once, first in first out, without flooding it.

Exactly once, end to end:
1. The ledger holds one row per order (unique key: flow + external document number); an order
   the ledger already calls exported is not sent again.
   The ledger also knows an order by its commercetools id: an order exported before it had an
   ``orderNumber`` (under its id-derived document number) is not sent again once it has one;
   its new number is recorded as an alias of the same ERP document.
2. Before creating, the order is looked up in the ERP by its external document number, and by
   its id-derived document numbers: a run that crashed after the ERP write but before the
   ledger write finds it there and only records it (``recovered``), so repeating the run never
   creates a duplicate, even when the order got its number in between.
3. The create itself carries an idempotency key (the external document number), so a write whose
   answer was lost on the network replays to the same ERP order.

Several workers at once (runs of overlapping windows, a backfill next to a sensor run, on one
machine or several, SQLite or PostgreSQL): each export claims its orders in the store before any
write (``store/claims.py``: an owner and a lease, renewed on a heartbeat). An order another live
export holds is not sent here; this export waits for it to be exported there (then it is
``already_exported``) or for that claim to end (an expired lease, or an owner on this host whose
process is gone), and sends it itself then; still held after ``claim_wait_seconds``, it is
reported ``failed_transient`` (category ``claimed_elsewhere``) and not parked, as its holder is
alive and responsible for it. An export that could not renew its lease in time sends nothing
more.

Throughput: orders are claimed and looked up in the ERP in batches (one store transaction and,
where the adapter has a bulk lookup, one ERP request per ``claim_batch`` orders), by a feeder
that stays up to two batches ahead of the writers, so claims and lookups overlap the writes;
results reach the ledger in batches off the writers' path. The writes themselves run up to
``max_in_flight_writes`` at once.

Throttling: a bounded pool of workers takes orders in the order they were placed (a FIFO queue;
with W workers an order can overtake at most W-1 earlier ones, except orders another export held
when they came up, which are sent, if still needed, after the rest) and every ERP write waits for a
token from a shared rate limiter. Dagster's ``erp_writes`` pool keeps other runs out meanwhile.

Failures: transient ones (record locks, 5xx, timeouts) are retried with backoff up to
``max_attempts`` and then parked as ``transient_exhausted``; permanent ones (mapping, ERP
validation, a malformed answer, any unexpected exception) are parked with the reason at once.
Either way the rest of the batch goes on, and a later run retries what is parked once its order
is processed again. The one exception is an authentication failure (401/403): every order would
fail the same way, so the export stops, parks nothing and raises ``ExportAborted``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, get_args

import httpx

from ct_pipelines.erp.errors import ErpAuthError, ErpError, ErpTransientError, ErpValidationError
from ct_pipelines.erp.port import ErpPort, ErpSalesOrder, SalesOrderDraft, find_sales_orders
from ct_pipelines.kernel.documents import id_document_numbers
from ct_pipelines.kernel.reports import RunReport
from ct_pipelines.kernel.scrub import scrub
from ct_pipelines.store.claims import ClaimSession
from ct_pipelines.store.safe import safe_key

logger = logging.getLogger(__name__)

FLOW = "order_to_cash"
Outcome = Literal[
    "exported", "recovered", "already_exported", "failed_permanent", "failed_transient"
]


class ExportAborted(RuntimeError):
    """The export stopped before the end because every order would fail the same way."""


class RateLimiter:
    """A token bucket shared by the workers: at most ``rate`` writes a second, bursts of ``burst``."""

    def __init__(
        self,
        rate: float | None,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rate = rate
        self._burst = max(1, burst)
        self._tokens = float(self._burst)
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if not self._rate:
            return
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self._rate
            self._sleep(wait)


@dataclass(frozen=True)
class ExportOptions:
    # Workers look orders up and prepare them; at most max_in_flight_writes of them write to the
    # ERP at once, so lookups of the next orders overlap the writes and keep every slot busy.
    workers: int = 6
    max_in_flight_writes: int = 4
    rate_per_second: float | None = 50.0
    burst: int = 4
    max_attempts: int = 5
    backoff_base: float = 0.2
    backoff_max: float = 5.0
    # Orders claimed in one store transaction and looked up in one ERP request.
    claim_batch: int = 100
    # A claim's lease; renewed every quarter of it while the export runs.
    claim_lease_seconds: float = 60.0
    # How long to wait for orders another live export holds (None: twice the lease).
    claim_wait_seconds: float | None = None


@dataclass(frozen=True)
class ExportItem:
    """One order ready for the ERP: its draft, or the reason it has none."""

    key: str  # external document number
    order_id: str
    order_version: int
    created_at: str
    draft: SalesOrderDraft | None
    error_category: str | None = None
    error_reason: str | None = None
    sku: str | None = None


@dataclass(frozen=True)
class ExportResult:
    key: str
    outcome: Outcome
    erp_document: str | None = None
    attempts: int = 0
    category: str | None = None
    reason: str | None = None


@dataclass
class ExportReport(RunReport[ExportResult]):
    OUTCOMES: ClassVar[tuple[str, ...]] = get_args(Outcome)

    def by_key(self) -> dict[str, ExportResult]:
        return {r.key: r for r in self.results}


def payload_hash(draft: SalesOrderDraft) -> str:
    body = json.dumps(draft.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


class _Window:
    """At most ``limit`` orders handed to the writers and not done yet. The feeder reserves room
    for a whole batch at once, so finishing writers wake it once a batch, not once an order."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._open = 0
        self._wanted = 0
        self._cond = threading.Condition()

    def reserve(self, count: int) -> None:
        count = min(count, self._limit)
        with self._cond:
            self._wanted = count
            while self._open + count > self._limit:
                self._cond.wait()
            self._wanted = 0
            self._open += count

    def release(self) -> None:
        with self._cond:
            self._open -= 1
            if self._wanted and self._open + self._wanted <= self._limit:
                self._cond.notify()


class _LedgerWriter:
    """Records successful exports in the ledger in batches, off the ERP workers' path.

    Safe because the ERP write never depends on it: an order the ERP holds but the ledger does
    not yet (a crash before the batch commits) is found by the lookup on the next run.
    """

    def __init__(
        self,
        store: Any,
        flow: str,
        batch_size: int = 200,
        interval: float = 0.25,
        *,
        session: ClaimSession | None = None,
    ) -> None:
        self._store = store
        self._flow = flow
        self._session = session
        self._batch_size = batch_size
        self._interval = interval
        # Results wait in a list; the writer thread is woken only when a batch is full or the
        # export ends, and otherwise looks every ``interval``: one wake-up per batch, not one per
        # order (at high C/W a wake-up per order costs the writers GIL hand-offs).
        self._pending: list[tuple[str, str]] = []
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._error: BaseException | None = None
        self._thread.start()

    def put(self, key: str, document: str) -> None:
        if self._error is not None:
            raise RuntimeError("the ledger writer failed") from self._error
        with self._cond:
            self._pending.append((key, document))
            if len(self._pending) == self._batch_size:
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        if self._error is not None:
            raise RuntimeError("the ledger writer failed") from self._error

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._closed and len(self._pending) < self._batch_size:
                    self._cond.wait(self._interval)
                batch, self._pending = self._pending, []
                done = self._closed and not batch
            if done:
                return
            for start in range(0, len(batch), self._batch_size):
                try:
                    self._record(batch[start : start + self._batch_size])
                except BaseException as exc:  # surfaced to the workers and at close()
                    self._error = exc
                    return

    def _record(self, batch: list[tuple[str, str]]) -> None:
        if self._session is not None:
            # Recorded and the claims ended in one transaction.
            self._store.ledger.mark_exported_many(self._flow, batch, owner=self._session.owner)
            self._session.done(key for key, _ in batch)
        else:
            mark_exported_many(self._store, self._flow, batch)


def mark_exported_many(store: Any, flow: str, entries: Sequence[tuple[str, str]]) -> None:
    bulk = getattr(getattr(store, "ledger", None), "mark_exported_many", None)
    if bulk is not None:
        bulk(flow, entries)
    else:
        for key, document in entries:
            store.mark_exported(flow, key, document)


def exported_by_order(
    store: Any, flow: str, order_ids: Sequence[str]
) -> dict[str, tuple[str, str | None]]:
    """Order id -> (ledger key, ERP document) of orders exported under any document number."""
    lookup = getattr(getattr(store, "ledger", None), "exported_by_entity_id", None)
    return lookup(flow, order_ids) if lookup is not None and order_ids else {}


def claim_many(
    store: Any, flow: str, claims: Sequence[tuple[str, str | None, int | None, str | None]]
) -> None:
    bulk = getattr(getattr(store, "ledger", None), "claim_many", None)
    if bulk is not None:
        bulk(flow, claims)
    else:
        for key, order_id, version, digest in claims:
            store.claim(flow, key, order_id, version, digest)


class OrderExporter:
    """Sends a batch of sales orders to the ERP through the port, recording everything in the store."""

    def __init__(
        self,
        port: ErpPort,
        store: Any,
        settings: ExportOptions = ExportOptions(),
        *,
        sleep: Callable[[float], None] = time.sleep,
        actor: str = "order_to_cash",
        progress: Callable[[ExportResult], None] | None = None,
    ) -> None:
        # ``progress`` is called once per order as its result is known (from worker threads).
        self._progress = progress
        self._port = port
        self._store = store
        self._settings = settings
        self._sleep = sleep
        self._actor = actor
        self._limiter = RateLimiter(settings.rate_per_second, settings.burst, sleep=sleep)
        self._write_slots = threading.BoundedSemaphore(max(1, settings.max_in_flight_writes))
        self._rng = random.Random()
        self._open_exceptions: set[str] = set()
        self._ledger: _LedgerWriter | None = None
        self._abort: ErpAuthError | None = None
        self._other_keys: dict[str, list[str]] = {}
        self._session: ClaimSession | None = None
        self._holders: dict[str, str] = {}

    def export(self, items: Sequence[ExportItem]) -> ExportReport:
        """Export ``items`` (already in the order they were placed); returns one result each."""
        report = ExportReport()
        done = self._store.exported_keys(FLOW, [item.key for item in items])
        by_order = exported_by_order(
            self._store, FLOW, [item.order_id for item in items if item.key not in done]
        )
        aliases: list[tuple[ExportItem, str]] = []
        queue_: list[ExportItem] = []
        for item in items:
            if item.key in done:
                report.results.append(self._told(ExportResult(item.key, "already_exported")))
            elif item.order_id in by_order and by_order[item.order_id][1]:
                # Exported under another document number (before it had its orderNumber).
                document = str(by_order[item.order_id][1])
                aliases.append((item, document))
                report.results.append(
                    self._told(ExportResult(item.key, "already_exported", document))
                )
            elif item.draft is None:
                report.results.append(self._told(self._park_unmappable(item)))
            else:
                queue_.append(item)
        if aliases:
            # The new number becomes an alias of the same ERP document in the ledger.
            claim_many(
                self._store,
                FLOW,
                [
                    (i.key, i.order_id, i.order_version, payload_hash(i.draft) if i.draft else None)
                    for i, _ in aliases
                ],
            )
            mark_exported_many(self._store, FLOW, [(i.key, doc) for i, doc in aliases])
        if not queue_:
            return report
        # Orders the ledger knows under another document number (claimed before any write, so
        # the ERP may hold them under it): those are looked up by that number too.
        lookup = getattr(getattr(self._store, "ledger", None), "keys_by_entity_id", None)
        known = lookup(FLOW, [i.order_id for i in queue_]) if lookup is not None else {}
        self._other_keys = {
            i.order_id: sorted(known.get(i.order_id, set()) - {safe_key(i.key)}) for i in queue_
        }
        self._open_exceptions = {
            e.entity_key
            for e in self._store.list_exceptions(flow=FLOW, status=["open", "retrying"])
        }
        self._abort = None
        self._holders = {}
        lease = timedelta(seconds=self._settings.claim_lease_seconds)
        session = ClaimSession(self._store.claims, FLOW, lease=lease)
        self._session = session
        self._ledger = _LedgerWriter(self._store, FLOW, session=session)
        slots: list[ExportResult | None] = [None] * len(queue_)
        session.start()
        try:
            # The pool's queue is FIFO: first placed, first sent.
            with ThreadPoolExecutor(
                max_workers=max(1, self._settings.workers), thread_name_prefix="erp-export"
            ) as pool:
                self._feed(pool, queue_, slots)
        finally:
            try:
                self._ledger.close()
            finally:
                session.close()
        results = [
            r
            if r is not None
            else ExportResult(queue_[n].key, "failed_transient", reason="export stopped")
            for n, r in enumerate(slots)
        ]
        if self._abort is not None:
            sent = sum(1 for r in results if r.outcome in ("exported", "recovered"))
            raise ExportAborted(
                f"ERP export stopped, the ERP refused our credentials: {self._abort}. "
                f"Nothing was parked; {sent} of {len(queue_)} orders went through before the stop, "
                "the others stay pending for the next run once the credentials are fixed."
            ) from self._abort
        report.results.extend(results)
        for result in report.results:
            if (
                result.outcome in ("exported", "recovered")
                and safe_key(result.key) in self._open_exceptions
            ):
                self._store.close_on_success(FLOW, result.key, self._actor)
        return report

    def _feed(
        self,
        pool: ThreadPoolExecutor,
        queue_: Sequence[ExportItem],
        slots: list[ExportResult | None],
    ) -> None:
        """Claim and look up batch after batch, handing claimed orders to the writers in order;
        then wait for the orders other live exports held, and send those still not exported."""
        size = max(1, self._settings.claim_batch)
        # At most two batches ahead of the writers: claims stay few, lookups overlap the writes.
        ahead = _Window(max(2 * size, self._settings.workers))
        held: list[int] = []
        # The first batches are small, so the first writes start after a short claim and
        # lookup rather than a full batch's; then they grow to ``claim_batch``.
        start, step = 0, max(1, min(size, self._settings.workers))
        while start < len(queue_):
            if self._abort is not None:
                return
            held.extend(
                self._claim_and_submit(pool, queue_, range(start, start + step), slots, ahead)
            )
            start, step = start + step, min(size, step * 4)
        wait = self._settings.claim_wait_seconds
        deadline = time.monotonic() + (
            wait if wait is not None else 2 * self._settings.claim_lease_seconds
        )
        pause = threading.Event()
        while held and self._abort is None and time.monotonic() < deadline:
            pause.wait(min(1.0, max(0.05, self._settings.claim_lease_seconds / 20)))
            still: list[int] = []
            for start in range(0, len(held), size):
                still.extend(
                    self._claim_and_submit(pool, queue_, held[start : start + size], slots, ahead)
                )
            held = still
        for n in held:
            item = queue_[n]
            holder = self._holders.get(item.key, "another export")
            slots[n] = self._told(
                ExportResult(
                    item.key,
                    "failed_transient",
                    category="claimed_elsewhere",
                    reason=scrub(
                        f"another export ({holder}) still held this order after "
                        f"{wait if wait is not None else 2 * self._settings.claim_lease_seconds:g} s; "
                        "it sends it, or a later run does once that claim ends"
                    ),
                )
            )

    def _claim_and_submit(
        self,
        pool: ThreadPoolExecutor,
        queue_: Sequence[ExportItem],
        indices: Sequence[int],
        slots: list[ExportResult | None],
        ahead: _Window,
    ) -> list[int]:
        """Claim these orders in one transaction, look the claimed ones up in the ERP in one go,
        submit them to the writers; returns the indices another live export holds."""
        assert self._session is not None
        chosen = [n for n in indices if n < len(queue_)]
        if not chosen:
            return []
        by_key = {queue_[n].key: n for n in chosen}
        result = self._session.claim(
            [
                (queue_[n].key, queue_[n].order_id, queue_[n].order_version, payload_hash(d))
                for n in chosen
                if (d := queue_[n].draft) is not None
            ]
        )
        for key in result.exported:
            # Another export sent it meanwhile.
            slots[by_key[key]] = self._told(ExportResult(key, "already_exported"))
        self._holders.update(result.held)
        got = set(result.claimed)
        claimed = [key for key in by_key if key in got]
        found: dict[str, ErpSalesOrder] | None
        try:
            found = find_sales_orders(self._port, claimed) if claimed else {}
        except ErpAuthError as exc:
            self._abort = exc
            return []
        except (ErpError, httpx.TransportError) as exc:
            # Each writer then looks its order up itself, with its own retries.
            logger.info(
                "bulk ERP lookup failed (%s); looking orders up one by one", type(exc).__name__
            )
            found = None
        # Room for the whole batch at once (a batch is never larger than the window).
        ahead.reserve(len(claimed))
        for key in claimed:
            n = by_key[key]
            prefound = None if found is None else found.get(key)

            def run(
                n: int = n,
                prefound: ErpSalesOrder | None = prefound,
                looked: bool = found is not None,
            ) -> None:
                try:
                    slots[n] = self._told(self._export_one(queue_[n], prefound, looked))
                finally:
                    ahead.release()

            pool.submit(run)
        return [by_key[key] for key in by_key if key in result.held]

    def _told(self, result: ExportResult) -> ExportResult:
        if self._progress is not None:
            self._progress(result)
        return result

    def _park_unmappable(self, item: ExportItem) -> ExportResult:
        category = item.error_category or "validation"
        reason = item.error_reason or "order could not be mapped"
        self._store.record_exception(
            flow=FLOW,
            entity_key=item.key,
            category=category,
            reason=reason,
            payload_ref=f"order:{item.order_id}@v{item.order_version}",
            sku=item.sku,
            details={"order_id": item.order_id, "stage": "mapping"},
        )
        return ExportResult(item.key, "failed_permanent", category=category, reason=reason)

    def _export_one(
        self, item: ExportItem, prefound: ErpSalesOrder | None = None, looked: bool = False
    ) -> ExportResult:
        """One order, whatever happens: exported, recovered, or parked with its reason."""
        if self._abort is not None:
            return ExportResult(item.key, "failed_transient", reason="export stopped")
        try:
            return self._export_attempts(item, prefound, looked)
        except ErpAuthError as exc:
            self._abort = exc
            return ExportResult(item.key, "failed_transient", reason="export stopped")
        except Exception as exc:
            # A bug or an answer nobody foresaw in one order must not sink the batch.
            logger.warning(
                "unexpected error exporting order %s: %s",
                scrub(item.key),
                scrub(traceback.format_exc()),
            )
            return self._park(
                item,
                "unexpected_error",
                f"unexpected error while exporting: {type(exc).__name__}: {exc}",
                0,
                transient=False,
            )

    def _find_existing(self, item: ExportItem) -> ErpSalesOrder | None:
        """The ERP's document for this order: by its document number, else by the other numbers
        the ledger claimed for it (sent before it had an orderNumber, the export not recorded)."""
        existing = self._port.find_sales_order(item.key)
        if existing is not None:
            return existing
        # Only orders the ledger claimed under another number cost a second lookup; then the
        # id-derived numbers are tried as well (the one the ERP limit chose may have changed).
        others = self._other_keys.get(item.order_id, [])
        if others:
            others = list(dict.fromkeys([*others, *id_document_numbers(item.order_id)]))
        for other in others:
            if other != item.key:
                found = self._port.find_sales_order(other)
                if found is not None and found.source_order_id == item.order_id:
                    return found
        return None

    def _export_attempts(
        self, item: ExportItem, prefound: ErpSalesOrder | None, looked: bool
    ) -> ExportResult:
        assert item.draft is not None and self._ledger is not None
        attempts = 0
        while True:
            attempts += 1
            if self._abort is not None:
                return ExportResult(item.key, "failed_transient", reason="export stopped")
            try:
                # The batch's bulk lookup answers the first attempt, unless the order is known
                # under other document numbers too; a retry looks again (a lost answer may
                # have been applied).
                if attempts == 1 and looked and not self._other_keys.get(item.order_id):
                    existing = prefound
                else:
                    existing = self._find_existing(item)
                if existing is not None:
                    outcome: Outcome = "recovered"
                    document = existing.sales_order_no
                else:
                    if self._session is not None and not self._session.holds(item.key):
                        # Our lease may have run out: another export may be sending it now.
                        return ExportResult(
                            item.key,
                            "failed_transient",
                            attempts=attempts,
                            category="claim_lost",
                            reason="this export's claim on the order lapsed before the write; "
                            "the export holding it now sends it",
                        )
                    with self._write_slots:
                        self._limiter.acquire()
                        created = self._port.upsert_sales_order(
                            item.draft, idempotency_key=item.key
                        )
                    outcome, document = "exported", created.sales_order_no
                self._ledger.put(item.key, document)
                return ExportResult(item.key, outcome, document, attempts)
            except ErpValidationError as exc:
                return self._park(
                    item, "validation", f"ERP rejected the order: {exc}", attempts, transient=False
                )
            except (ErpTransientError, httpx.TransportError) as exc:
                if attempts >= self._settings.max_attempts:
                    return self._park(
                        item,
                        "transient_exhausted",
                        f"ERP unavailable after {attempts} attempts: {type(exc).__name__}: {exc}",
                        attempts,
                        transient=True,
                    )
                ceiling = min(
                    self._settings.backoff_max, self._settings.backoff_base * 2 ** (attempts - 1)
                )
                self._sleep(self._rng.uniform(0, ceiling))
            except ErpAuthError:
                raise
            except ErpError as exc:
                return self._park(item, "erp_error", f"ERP error: {exc}", attempts, transient=False)

    def _park(
        self, item: ExportItem, category: str, reason: str, attempts: int, *, transient: bool
    ) -> ExportResult:
        reason = scrub(reason)
        try:
            self._store.mark_failed(FLOW, item.key, reason)
        except Exception as exc:  # e.g. exported meanwhile: the exception row still explains it
            logger.warning(
                "order %s: ledger not marked failed (%s)", scrub(item.key), type(exc).__name__
            )
        self._store.record_exception(
            flow=FLOW,
            entity_key=item.key,
            category=category,
            reason=reason,
            payload_ref=f"order:{item.order_id}@v{item.order_version}",
            details={"order_id": item.order_id, "attempts": attempts, "stage": "export"},
        )
        logger.warning("order %s parked (%s): %s", scrub(item.key), category, reason)
        return ExportResult(
            item.key,
            "failed_transient" if transient else "failed_permanent",
            attempts=attempts,
            category=category,
            reason=reason,
        )


def now_utc() -> datetime:
    return datetime.now(UTC)
