"""Export claims: one owner per entity at a time, leases, takeover of gone owners, processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from ct_pipelines.store import IntegrationStore
from ct_pipelines.store.claims import ClaimSession, ExportClaims, new_owner, owner_is_gone
from ct_pipelines_tests.store.conftest import ManualClock
from ct_pipelines_tests.store.test_ledger import run_together

FLOW = "order_to_cash"
LEASE = timedelta(seconds=60)
PROJECT_ROOT = Path(__file__).parents[2]


def _rows(keys: list[str]) -> list[tuple[str, str | None, int | None, str | None]]:
    return [(key, f"id-{key}", 1, f"hash-{key}") for key in keys]


def test_a_claimed_entity_is_held_until_recorded_and_exported_ones_are_never_claimed(
    store: IntegrationStore,
) -> None:
    a, b = new_owner("a"), new_owner("b")
    first = store.claims.claim(FLOW, _rows(["UK-1", "UK-2"]), owner=a, lease=LEASE)
    assert first.claimed == ["UK-1", "UK-2"]
    # The ledger knows them (pending) with what is about to be sent.
    entry = store.ledger.get(FLOW, "UK-1")
    assert entry is not None and entry.status == "pending" and entry.payload_hash == "hash-UK-1"

    second = store.claims.claim(FLOW, _rows(["UK-2", "UK-3"]), owner=b, lease=LEASE)
    assert second.claimed == ["UK-3"]
    assert second.held == {"UK-2": a}
    # The owner claiming again keeps what it has.
    assert store.claims.claim(FLOW, _rows(["UK-2"]), owner=a, lease=LEASE).claimed == ["UK-2"]

    store.ledger.mark_exported_many(FLOW, [("UK-2", "SO-2")], owner=a)
    assert "UK-2" not in store.claims.holders(FLOW, ["UK-2"])
    third = store.claims.claim(FLOW, _rows(["UK-2"]), owner=b, lease=LEASE)
    assert third.claimed == [] and third.exported == ["UK-2"]
    assert store.claims.holders(FLOW, ["UK-2"]) == {}


def test_a_lease_is_taken_over_only_after_it_expires_and_renewal_keeps_it(
    store_url: str, store: IntegrationStore, clock: ManualClock
) -> None:
    with IntegrationStore(store_url, clock=clock) as clocked:
        # Owners in this process are alive: only the lease decides.
        claims = ExportClaims(clocked._db, owner_is_gone=lambda _owner: False)
        a, b = new_owner("a"), new_owner("b")
        assert claims.claim(FLOW, _rows(["UK-1", "UK-2"]), owner=a, lease=LEASE).claimed
        clock.advance(timedelta(seconds=45))
        assert claims.renew(FLOW, a, ["UK-1"], LEASE) == {"UK-1"}
        clock.advance(timedelta(seconds=30))  # UK-2's lease ran out, UK-1's was renewed
        result = claims.claim(FLOW, _rows(["UK-1", "UK-2"]), owner=b, lease=LEASE)
        assert result.claimed == ["UK-2"] and result.taken_over == ["UK-2"]
        assert result.held == {"UK-1": a}
        # The old owner's renewal now tells it that UK-2 is gone.
        assert claims.renew(FLOW, a, ["UK-1", "UK-2"], LEASE) == {"UK-1"}
        assert claims.release(FLOW, a) == 1
        assert claims.claim(FLOW, _rows(["UK-1"]), owner=b, lease=LEASE).claimed == ["UK-1"]


def test_the_claims_of_a_killed_process_are_taken_over_at_once(store: IntegrationStore) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = new_owner().split("|")[1]
        stat = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[-1].split()
        dead = f"export|{host}|{child.pid}|{stat[19]}|nonce"
        assert not owner_is_gone(dead)
        assert store.claims.claim(FLOW, _rows(["UK-9"]), owner=dead, lease=LEASE).claimed
        mine = new_owner("b")
        assert store.claims.claim(FLOW, _rows(["UK-9"]), owner=mine).held == {"UK-9": dead}
    finally:
        child.kill()
        child.wait()
    assert owner_is_gone(dead)
    taken = store.claims.claim(FLOW, _rows(["UK-9"]), owner=mine, lease=LEASE)
    assert taken.claimed == ["UK-9"] and taken.taken_over == ["UK-9"]
    # A recycled pid (another start time) is gone too; another host is never called gone.
    assert owner_is_gone(f"export|{host}|{os.getpid() + 10**6}|1|n")
    assert not owner_is_gone(f"export|elsewhere|{child.pid}|{stat[19]}|n")
    assert not owner_is_gone("garbage")


def test_concurrent_claimers_in_threads_split_the_batch(store: IntegrationStore) -> None:
    keys = [f"UK-{n:04d}" for n in range(400)]
    owners = [new_owner(f"t{i}") for i in range(8)]
    results = run_together(
        8, lambda i: (i, store.claims.claim(FLOW, _rows(keys), owner=owners[i], lease=LEASE))
    )
    got = Counter(key for _, result in results for key in result.claimed)
    assert set(got) == set(keys) and set(got.values()) == {1}


def test_a_session_stops_sending_once_its_renewal_is_overdue(store: IntegrationStore) -> None:
    now = [0.0]
    session = ClaimSession(store.claims, FLOW, lease=LEASE, clock=lambda: now[0])
    session.claim(_rows(["UK-1"]))
    assert session.valid() and session.holds("UK-1")
    now[0] = 55.0  # within the lease, but inside its last tenth
    assert not session.valid() and not session.holds("UK-1")
    session.renew_now()
    assert session.valid() and session.holds("UK-1")
    session.close()
    assert store.claims.holders(FLOW, ["UK-1"]) == {}


@pytest.mark.slow
def test_four_processes_claim_every_entity_exactly_once(
    store: IntegrationStore, store_url: str, tmp_path: Path
) -> None:
    count = 600
    start = tmp_path / "start"
    outs = [tmp_path / f"worker-{i}.txt" for i in range(4)]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ct_pipelines_tests.store.claim_worker",
                store_url,
                str(count),
                str(start),
                str(out),
                str(i * 37),  # overlapping walks: every batch is contended
            ],
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        )
        for i, out in enumerate(outs)
    ]
    # Every worker has imported and opened the store before any starts claiming.
    while not all((tmp_path / f"worker-{i}.txt.ready").exists() for i in range(4)):
        assert all(w.poll() is None for w in workers), "a worker died before the start"
        time.sleep(0.01)
    start.touch()
    for worker in workers:
        assert worker.wait(timeout=300) == 0
    claimed = [line.strip() for out in outs for line in out.read_text().splitlines()]
    keys = {f"UK-{n:05d}" for n in range(count)}
    counts = Counter(claimed)
    assert set(counts) == keys
    assert [key for key, n in counts.items() if n > 1] == []
    # Each entity is recorded once, by the worker that claimed it; no claim is left behind.
    by_worker = {key: i for i, out in enumerate(outs) for key in out.read_text().split()}
    entries = {e.entity_key: e for e in store.ledger.list(FLOW)}
    assert set(entries) == keys
    assert all(e.status == "exported" and e.attempts == 1 for e in entries.values())
    owner_of_worker = {}
    for key, entry in entries.items():
        owner_of_worker.setdefault(by_worker[key], entry.external_ref)
        assert owner_of_worker[by_worker[key]] == entry.external_ref
    assert store.claims.holders(FLOW, keys) == {}


def test_a_store_at_the_previous_version_gains_the_claims_table(store: IntegrationStore) -> None:
    from ct_pipelines.store import schema
    from ct_pipelines.store.migrations import MIGRATIONS

    claims_version = next(m.version for m in MIGRATIONS if "export claims" in m.description)
    store.ledger.claim_many(FLOW, _rows(["UK-OLD"]))
    with store._db.write() as conn:
        schema.export_claims.drop(conn)
        conn.execute(
            schema.schema_version.delete().where(schema.schema_version.c.version >= claims_version)
        )
    applied = store.migrate()
    assert applied[0] == claims_version
    # Existing ledger rows are claimable at once; nothing else changed.
    result = store.claims.claim(FLOW, _rows(["UK-OLD"]), owner=new_owner(), lease=LEASE)
    assert result.claimed == ["UK-OLD"]
