"""Page N sandbox orders through the real commercetools client; print orders/s and peak memory.

The baseline, measured in the same run on the same data, is a direct read of the sandbox's
order documents from its database (no HTTP, no paging, no models): the ratio says what the
client's keyset paging, HTTP handling and validation cost on top of just reading the rows.

    .venv/bin/python bench/page_orders.py --orders 25000
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
import tracemalloc
from pathlib import Path


def _measure(label: str, fn) -> tuple[int, float, int]:
    tracemalloc.start()
    started = time.perf_counter()
    count = fn()
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"  {label:<44} {count:>7} orders  {elapsed:7.2f} s  {count / elapsed:9.0f} orders/s  peak {peak / 2**20:7.1f} MiB"
    )
    return count, elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=25_000)
    parser.add_argument("--page-size", type=int, default=500)
    args = parser.parse_args()

    from ct_pipelines.commercetools import CommercetoolsClient
    from ct_pipelines.defs.resources import sandbox_settings
    from ct_pipelines.sandbox import SandboxWorld

    with tempfile.TemporaryDirectory() as tmp:
        world = SandboxWorld.open(Path(tmp))
        world.bulk_orders(args.orders)
        db_path = Path(tmp) / "world.db"
        print(
            f"bench/page_orders.py: {args.orders} bulk orders (plus the seeded shop), page size {args.page_size}"
        )

        def baseline() -> int:
            connection = sqlite3.connect(db_path)
            count = 0
            for (doc,) in connection.execute(
                "select doc from documents where resource = 'orders' order by id"
            ):
                json.loads(doc)
                count += 1
            connection.close()
            return count

        def materialised() -> int:
            with CommercetoolsClient(
                sandbox_settings(), transport=world.commercetools_transport()
            ) as client:
                return len(list(client.iter_orders(page_size=args.page_size)))

        def streamed() -> int:
            count = 0
            with CommercetoolsClient(
                sandbox_settings(), transport=world.commercetools_transport()
            ) as client:
                for _order in client.iter_orders(page_size=args.page_size):
                    count += 1
            return count

        base_n, base_s, _ = _measure("baseline: direct read of the documents", baseline)
        list_n, _, list_peak = _measure("client, all orders held in a list", materialised)
        n, seconds, peak = _measure("client, streamed page by page", streamed)
        assert n == base_n == list_n, (n, base_n, list_n)
        print()
        print(
            f"  streamed throughput        : {n / seconds:,.0f} orders/s ({(n / seconds) / (base_n / base_s):.2f} x baseline)"
        )
        print(
            f"  streamed peak memory       : {peak / 2**20:.1f} MiB ({peak / list_peak:.3f} x holding every order)"
        )
        world.close()


if __name__ == "__main__":
    main()
