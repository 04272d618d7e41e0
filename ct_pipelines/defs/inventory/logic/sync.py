"""The delta sync: read both sides, plan the minimum writes, send them through a worker pool.

Requests: reading is one ``GET /channels`` page plus ``GET /inventory`` pages of 500 (full
reconciliation) or one query per 100 SKUs (delta). Writing is exactly one request per entry to
change: ``changeQuantity`` with the version read, or a create. A 409 costs one re-read of that
entry and, unless another writer already set the target, one more write.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ct_pipelines.commercetools.errors import (
    BadRequestError,
    CommercetoolsError,
    NotFoundError,
)
from ct_pipelines.defs.inventory.logic.diff import (
    Change,
    CtInventory,
    InventoryPlan,
    MappingReport,
    index_entries,
    mapping_report,
    plan_changes,
)
from ct_pipelines.defs.inventory.logic.guard import (
    GuardLimits,
    GuardVerdict,
    judge,
    product_skus,
)
from ct_pipelines.defs.inventory.logic.rules import InventoryRules
from ct_pipelines.defs.inventory.logic.targets import ErpStockRow, TargetSet, compute_targets

logger = logging.getLogger(__name__)

INVENTORY = "inventory"
SKU_QUERY_CHUNK = 100  # SKUs per `sku in (...)` query: keeps the URL short
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class InventoryClient(Protocol):
    """The part of ``CommercetoolsClient`` the sync uses (tests may pass a fake)."""

    def query_all(
        self,
        resource: str,
        *,
        where: Sequence[str] | str | None = None,
        variables: Mapping[str, Any] | None = None,
        page_size: int = 500,
    ) -> Iterator[dict[str, Any]]: ...

    def create(self, resource: str, draft: Mapping[str, Any]) -> dict[str, Any]: ...

    def update(
        self,
        resource: str,
        id: str,
        version: int,
        actions: Sequence[Mapping[str, Any]],
        *,
        reread: Callable[[dict[str, Any]], list[dict[str, Any]] | None] | None = None,
    ) -> dict[str, Any]: ...


class InventorySyncRefused(RuntimeError):
    """The inputs look broken (an empty ERP feed, say); writing would do damage.

    ``verdict`` holds the numbers and SKUs when the guard refused the plan.
    """

    def __init__(self, message: str, verdict: GuardVerdict | None = None) -> None:
        super().__init__(message)
        self.verdict = verdict


@dataclass(frozen=True)
class InventoryOptions:
    max_workers: int = 8
    dry_run: bool = False
    #: give created entries the key ``<sku>_<channel key>`` when it fits the API's key pattern
    key_new_entries: bool = True
    #: when a plan counts as destructive (see :mod:`~ct_pipelines.defs.inventory.logic.guard`)
    limits: GuardLimits = field(default_factory=GuardLimits)
    #: apply a plan the guard refused (an operator's override; the caller audits it)
    force: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.max_workers <= 64:
            raise ValueError(f"max_workers must be between 1 and 64, got {self.max_workers}")


@dataclass(frozen=True)
class ChannelDirectory:
    """commercetools channels: key by id, id by key, roles by key."""

    key_by_id: dict[str, str]
    id_by_key: dict[str, str]
    roles: dict[str, tuple[str, ...]]

    @classmethod
    def from_docs(cls, docs: Iterable[Mapping[str, Any]]) -> ChannelDirectory:
        key_by_id: dict[str, str] = {}
        roles: dict[str, tuple[str, ...]] = {}
        for doc in docs:
            key_by_id[doc["id"]] = doc["key"]
            roles[doc["key"]] = tuple(doc.get("roles") or ())
        return cls(key_by_id, {k: i for i, k in key_by_id.items()}, roles)


Outcome = Literal["created", "updated", "converged", "failed"]


@dataclass(frozen=True)
class Failure:
    sku: str
    channel: str
    kind: str
    status: int
    codes: tuple[str, ...]
    message: str


@dataclass
class SyncStats:
    created: int = 0
    updated: int = 0
    #: entries compared and already right, plus those another writer set right before us
    unchanged: int = 0
    failed: int = 0
    conflicts: int = 0  # 409s met (each cost a re-read)
    converged_on_reread: int = 0  # re-read after a 409 showed the target already in place
    write_requests: int = 0  # POSTs sent (creates and updates, retries after 409 included)
    read_requests: int = 0  # GETs sent by the sync itself (channels, entries, re-reads)
    failures: list[Failure] = field(default_factory=list)
    per_channel: dict[str, Counter[str]] = field(default_factory=dict)
    #: every planned change with what became of it, for the change log
    outcomes: list[tuple[Change, Outcome]] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return self.write_requests + self.read_requests

    def as_metadata(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "conflicts": self.conflicts,
            "converged_on_reread": self.converged_on_reread,
            "write_requests": self.write_requests,
            "read_requests": self.read_requests,
        }


@dataclass
class InventoryReport:
    targets: TargetSet
    current: CtInventory
    plan: InventoryPlan
    stats: SyncStats
    mapping: MappingReport | None
    channels_in_scope: list[str]
    #: mapped channels left alone because none of their locations appears in the ERP feed
    channels_skipped: list[str]
    seconds: dict[str, float]
    #: the guard's findings; ``refused`` with ``forced`` set means an operator overrode it
    guard: GuardVerdict | None = None
    forced: bool = False

    @property
    def minimum_writes(self) -> int:
        """One request per changed entry: the least any sync can send."""
        return len(self.plan.changes)


@dataclass
class _Attempt:
    """What happened to one change, filled in by a worker thread and read by the caller."""

    change: Change
    outcome: Outcome = "failed"
    conflicts: int = 0
    writes: int = 0
    reads: int = 0
    failure: Failure | None = None


def entry_key(channel: str, sku: str) -> str | None:
    """``<sku>_<channel>`` (the sandbox seed's convention) when that is a valid inventory entry
    key (2-256 of [A-Za-z0-9_-]); None otherwise, as the key is optional."""
    key = f"{sku}_{channel}"
    if len(key) <= 256 and _KEY_CHARS.issuperset(key):
        return key
    return None


class InventorySync:
    """One sync against one commercetools project, with the given rules."""

    def __init__(
        self,
        client: InventoryClient,
        rules: InventoryRules,
        options: InventoryOptions | None = None,
    ) -> None:
        self.client = client
        self.rules = rules
        self.options = options or InventoryOptions()
        self._reads = 0
        self._reads_lock = threading.Lock()

    # --- reading -----------------------------------------------------------------------------

    def _count_reads(
        self, docs: Iterator[dict[str, Any]], page_size: int
    ) -> Iterator[dict[str, Any]]:
        # query_all stops at the first short page, so n results cost n // page_size + 1 GETs.
        n = 0
        try:
            for doc in docs:
                n += 1
                yield doc
        finally:
            with self._reads_lock:
                self._reads += n // page_size + 1

    def read_channels(self) -> ChannelDirectory:
        return ChannelDirectory.from_docs(self._count_reads(self.client.query_all("channels"), 500))

    def read_entries(
        self, directory: ChannelDirectory, skus: Collection[str] | None = None
    ) -> CtInventory:
        """Every inventory entry (``skus`` None), or the entries of the given SKUs."""
        if skus is None:
            docs: Iterable[dict[str, Any]] = self._count_reads(
                self.client.query_all(INVENTORY, page_size=500), 500
            )
        else:
            docs = self._entries_of(sorted(set(skus)))
        return index_entries(docs, directory.key_by_id, self.rules)

    def read_shop_skus(self) -> set[str]:
        """Every variant SKU of every product (current or staged): what the shop sells."""
        return product_skus(self._count_reads(self.client.query_all("products"), 500))

    def _entries_of(self, skus: list[str]) -> Iterator[dict[str, Any]]:
        for start in range(0, len(skus), SKU_QUERY_CHUNK):
            chunk = skus[start : start + SKU_QUERY_CHUNK]
            names = [f"s{i}" for i in range(len(chunk))]
            where = f"sku in ({', '.join(':' + n for n in names)})"
            docs = self.client.query_all(
                INVENTORY,
                where=where,
                variables=dict(zip(names, chunk, strict=True)),
                page_size=500,
            )
            yield from self._count_reads(docs, 500)

    # --- planning ----------------------------------------------------------------------------

    def run(
        self,
        erp_rows: Iterable[ErpStockRow],
        *,
        skus: Collection[str] | None = None,
        channels: Collection[str] | None = None,
        shop_skus: Collection[str] | None = None,
    ) -> InventoryReport:
        """Plan and apply. ``skus``/``channels`` None: full reconciliation of every mapped channel.

        ``erp_rows`` must hold every source location of the channels in scope (for a delta, pass
        ``iter_stock(locations=...)`` of :func:`source_locations`); other rows are ignored.
        ``shop_skus`` (every variant SKU; read from the products when None and needed) guards
        the plan: no entry is created for a SKU the shop does not sell, and a destructive plan
        raises :class:`InventorySyncRefused` before any write unless ``options.force``.
        """
        seconds: dict[str, float] = {}
        started = time.perf_counter()
        self._reads = 0
        directory = self.read_channels()
        current = self.read_entries(directory, skus)
        seconds["read_commercetools"] = time.perf_counter() - started

        started = time.perf_counter()
        targets = compute_targets(erp_rows, self.rules, skus=skus)
        seconds["read_erp_and_targets"] = time.perf_counter() - started

        if skus is None and targets.erp_rows == 0 and current.entries:
            raise InventorySyncRefused(
                "the ERP stock feed is empty; refusing to set every inventory entry to 0"
            )
        started = time.perf_counter()
        analysis = analyse(targets, current, directory, self.rules, skus=skus, channels=channels)
        full = skus is None
        plan = analysis.plan
        if shop_skus is None and (full or plan.creates):
            shop_skus = self.read_shop_skus()
        verdict = judge(plan, current, targets, shop_skus or (), self.options.limits, full=full)
        plan = verdict.plan
        seconds["diff"] = time.perf_counter() - started
        if verdict.unknown_sku_creates:
            logger.warning(
                "inventory: %d entries not created, their SKUs are no product's variant: %s",
                verdict.unknown_sku_creates,
                ", ".join(verdict.unknown_skus),
            )
        if verdict.refused:
            if not self.options.force:
                raise InventorySyncRefused(verdict.message(), verdict)
            logger.warning("inventory: FORCED past the guard: %s", verdict.message())

        started = time.perf_counter()
        stats = SyncStats(unchanged=plan.unchanged + plan.zero_without_entry)
        if not self.options.dry_run:
            self.apply(plan.changes, directory, stats)
        stats.read_requests += self._reads
        seconds["write"] = time.perf_counter() - started
        return InventoryReport(
            targets=targets,
            current=current,
            plan=plan,
            stats=stats,
            mapping=analysis.mapping,
            channels_in_scope=analysis.channels_in_scope,
            channels_skipped=analysis.channels_skipped,
            seconds=seconds,
            guard=verdict,
            forced=verdict.refused and self.options.force,
        )

    # --- writing -----------------------------------------------------------------------------

    def apply(
        self, changes: Sequence[Change], directory: ChannelDirectory, stats: SyncStats
    ) -> SyncStats:
        """Send the changes through a bounded worker pool; one outcome per change in ``stats``."""
        if not changes:
            return stats
        workers = min(self.options.max_workers, len(changes))
        window = workers * 4  # futures in flight: memory stays flat for a big first sync
        pending: set[Future[_Attempt]] = set()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inventory-sync") as pool:
            for change in changes:
                if len(pending) >= window:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        self._record(future.result(), stats)
                pending.add(pool.submit(self._apply_one, change, directory))
            for future in pending:
                self._record(future.result(), stats)
        return stats

    @staticmethod
    def _record(attempt: _Attempt, stats: SyncStats) -> None:
        change = attempt.change
        stats.conflicts += attempt.conflicts
        stats.write_requests += attempt.writes
        stats.read_requests += attempt.reads
        counts = stats.per_channel.setdefault(change.channel, Counter())
        counts[attempt.outcome] += 1
        stats.outcomes.append((change, attempt.outcome))
        if attempt.outcome == "created":
            stats.created += 1
        elif attempt.outcome == "updated":
            stats.updated += 1
        elif attempt.outcome == "converged":
            stats.unchanged += 1
            stats.converged_on_reread += 1
        else:
            stats.failed += 1
            if attempt.failure is not None:
                stats.failures.append(attempt.failure)

    def _apply_one(self, change: Change, directory: ChannelDirectory) -> _Attempt:
        attempt = _Attempt(change)
        try:
            if change.entry_id is None:
                self._create(change, directory, attempt)
            else:
                self._update(change, change.entry_id, int(change.version or 0), directory, attempt)
        except CommercetoolsError as exc:
            attempt.outcome = "failed"
            attempt.failure = Failure(
                change.sku,
                change.channel,
                change.kind,
                exc.status_code,
                tuple(exc.codes),
                exc.message,
            )
            logger.warning(
                "inventory: %s of %s in %s failed: HTTP %s %s",
                change.kind,
                change.sku,
                change.channel,
                exc.status_code,
                ",".join(exc.codes) or exc.message,
            )
        return attempt

    def _update(
        self,
        change: Change,
        entry_id: str,
        version: int,
        directory: ChannelDirectory,
        attempt: _Attempt,
    ) -> None:
        target = change.target
        wrote_last = True

        def rebuild(fresh: dict[str, Any]) -> list[dict[str, Any]] | None:
            # Called after a 409: the client has just re-read the entry (one GET).
            nonlocal wrote_last
            attempt.conflicts += 1
            attempt.reads += 1
            if int(fresh["quantityOnStock"]) == target:
                wrote_last = False
                return None
            attempt.writes += 1
            return [{"action": "changeQuantity", "quantity": target}]

        attempt.writes += 1
        try:
            self.client.update(
                INVENTORY,
                entry_id,
                version,
                [{"action": "changeQuantity", "quantity": target}],
                reread=rebuild,
            )
        except NotFoundError:
            # Deleted since it was read: the stock still has to be published.
            if target > 0 or self.rules.create_zero_entries:
                self._create(change, directory, attempt)
                return
            attempt.outcome = "converged"
            return
        attempt.outcome = "updated" if wrote_last else "converged"

    def _create(self, change: Change, directory: ChannelDirectory, attempt: _Attempt) -> None:
        channel_id = directory.id_by_key[change.channel]
        draft: dict[str, Any] = {
            "sku": change.sku,
            "supplyChannel": {"typeId": "channel", "id": channel_id},
            "quantityOnStock": change.target,
        }
        key = entry_key(change.channel, change.sku) if self.options.key_new_entries else None
        if key is not None:
            draft["key"] = key
        attempt.writes += 1
        try:
            self.client.create(INVENTORY, draft)
        except BadRequestError as exc:
            if "DuplicateField" not in exc.codes:
                raise
            # Created meanwhile (or our own create answered late and was retried): converge on it.
            existing = self._find(change.sku, channel_id, attempt)
            if existing is None:
                raise
            if int(existing["quantityOnStock"]) == change.target:
                attempt.outcome = "converged"
                return
            self._update(change, existing["id"], int(existing["version"]), directory, attempt)
            return
        attempt.outcome = "created"

    def _find(self, sku: str, channel_id: str, attempt: _Attempt) -> dict[str, Any] | None:
        attempt.reads += 1
        docs = self.client.query_all(
            INVENTORY,
            where=["sku = :sku", "supplyChannel(id = :channel)"],
            variables={"sku": sku, "channel": channel_id},
        )
        return next(iter(docs), None)


@dataclass
class Analysis:
    plan: InventoryPlan
    mapping: MappingReport | None
    channels_in_scope: list[str]
    channels_skipped: list[str]


def analyse(
    targets: TargetSet,
    current: CtInventory,
    directory: ChannelDirectory,
    rules: InventoryRules,
    *,
    skus: Collection[str] | None = None,
    channels: Collection[str] | None = None,
) -> Analysis:
    """The plan and the mapping gaps, given both sides (shared by the sync and the snapshot).

    A mapped channel that commercetools does not have, or none of whose locations appears in
    the ERP feed, is a mapping or feed fault: zeroing its stock would take it off sale, so it is
    left out of the plan and reported in ``channels_skipped``.
    """
    scope = set(channels) if channels is not None else set(rules.channels)
    missing = {c for c in scope if c not in directory.id_by_key}
    silent = {
        c for c in scope if not any(loc in targets.locations_seen for loc in rules.sources_of(c))
    }
    skipped = sorted(missing | silent)
    scope -= set(skipped)
    if skipped:
        logger.warning("inventory: channels left alone (missing or no stock feed): %s", skipped)
    plan = plan_changes(targets, current, rules, skus=skus, channels=scope)
    mapping = None
    if skus is None:
        mapping = mapping_report(targets, current, rules, directory.roles)
    return Analysis(plan, mapping, sorted(scope), skipped)


def source_locations(rules: InventoryRules, channels: Collection[str]) -> list[str]:
    """Every location feeding the given channels: what a delta must read from the ERP."""
    return sorted({loc for channel in channels for loc in rules.sources_of(channel)})


__all__ = [
    "Analysis",
    "ChannelDirectory",
    "Failure",
    "InventoryOptions",
    "InventoryReport",
    "InventorySync",
    "InventorySyncRefused",
    "SyncStats",
    "analyse",
    "entry_key",
    "source_locations",
]
