"""One claiming worker in a process of its own, for the multi-process claim tests.

    python -m ct_pipelines_tests.store.claim_worker <store url> <keys> <start file> <out file>

Waits for ``start file`` (so that all workers start together), then walks the keys from an
offset of its own in batches: claims a batch, "writes" what it got (a line per key in ``out
file``, flushed before the ledger hears of it, as an ERP write precedes its record), records it
exported with this owner as the ERP document and ends the claims; keys another worker holds are
tried again until someone has exported them.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ct_pipelines.store import IntegrationStore
from ct_pipelines.store.claims import ClaimSession

FLOW = "order_to_cash"
BATCH = 25


def main(url: str, count: int, start: Path, out: Path, offset: int) -> int:
    keys = [f"UK-{n:05d}" for n in range(count)]
    keys = keys[offset:] + keys[:offset]
    store = IntegrationStore(url)
    session = ClaimSession(store.claims, FLOW)
    Path(f"{out}.ready").touch()
    while not start.exists():
        time.sleep(0.005)
    pending = list(keys)
    with out.open("w") as log:
        while pending:
            retry: list[str] = []
            for begin in range(0, len(pending), BATCH):
                batch = pending[begin : begin + BATCH]
                result = session.claim([(key, f"id-{key}", 1, None) for key in batch])
                for key in result.claimed:
                    log.write(f"{key}\n")
                log.flush()
                os.fsync(log.fileno())
                if result.claimed:
                    store.ledger.mark_exported_many(
                        FLOW, [(key, session.owner) for key in result.claimed], owner=session.owner
                    )
                    session.done(result.claimed)
                retry.extend(result.held)
            pending = retry
            if pending:
                time.sleep(0.01)
    session.close()
    store.close()
    return 0


if __name__ == "__main__":
    url, count, start, out, offset = sys.argv[1:6]
    sys.exit(main(url, int(count), Path(start), Path(out), int(offset)))
