"""Page N sandbox orders through the real commercetools client; print orders/s and peak memory.

Throughput is timed without memory tracing (tracemalloc slows Python several times). The
baseline, measured in the same run on the same data, is a direct read of the sandbox's order
documents from its database (no HTTP, no paging, no models): the ratio says what the client's
keyset paging, HTTP handling and validation cost on top of reading the rows.

Flat memory is shown by tracing the peak while streaming a fifth of the orders and then half
of them: a streaming client's peak does not grow with the number of orders (one page at a time),
a client that collects everything grows in proportion.

    .venv/bin/python bench/page_orders.py --orders 25000
"""

from __future__ import annotations

import argparse
import itertools
import json
import sqlite3
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path


def _timed(label: str, count_fn: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    count = count_fn()
    seconds = time.perf_counter() - started
    print(f"  {label:<46} {count:>7} orders {seconds:7.2f} s {count / seconds:9.0f} orders/s")
    return count, seconds


def _peak(items: Callable[[], Iterable[object]], n: int, keep: bool) -> float:
    tracemalloc.start()
    held = []
    for item in itertools.islice(items(), n):
        if keep:
            held.append(item)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del held
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=25_000)
    parser.add_argument("--page-size", type=int, default=500)
    args = parser.parse_args()

    from ct_pipelines.commercetools import CommercetoolsClient
    from ct_pipelines.defs.resources import sandbox_settings
    from ct_sandbox import SandboxWorld

    with tempfile.TemporaryDirectory() as tmp:
        world = SandboxWorld.open(Path(tmp))
        world.bulk_orders(args.orders)
        db_path = Path(tmp) / "world.db"
        client = CommercetoolsClient(sandbox_settings(), transport=world.commercetools_transport())
        print(
            f"bench/page_orders.py: {args.orders} bulk orders plus the seeded shop, page size {args.page_size}"
        )

        def baseline() -> int:
            connection = sqlite3.connect(db_path)
            rows = connection.execute(
                "select body from ct_documents where resource = 'orders' order by id"
            )
            count = sum(1 for (body,) in rows if json.loads(body))
            connection.close()
            return count

        def streamed() -> int:
            return sum(1 for _ in client.iter_orders(page_size=args.page_size))

        base_n, base_s = _timed("baseline: direct read of the documents", baseline)
        n, seconds = _timed("client: keyset paging, typed Order models", streamed)
        assert n == base_n, (n, base_n)

        fifth, half = max(1, n // 5), max(1, n // 2)
        stream = lambda: client.iter_orders(page_size=args.page_size)  # noqa: E731
        stream_fifth, stream_half = _peak(stream, fifth, False), _peak(stream, half, False)
        held_fifth, held_half = _peak(stream, fifth, True), _peak(stream, half, True)
        print()
        print(
            f"  throughput: {n / seconds:,.0f} orders/s = {(n / seconds) / (base_n / base_s):.2f} x the baseline's {base_n / base_s:,.0f}"
        )
        print(
            f"  peak memory streaming {fifth} / {half} orders: {stream_fifth:.1f} / {stream_half:.1f} MiB (x{stream_half / stream_fifth:.2f})"
        )
        print(
            f"  peak memory holding   {fifth} / {half} orders: {held_fifth:.1f} / {held_half:.1f} MiB (x{held_half / held_fifth:.2f})"
        )
        client.close()
        world.close()


if __name__ == "__main__":
    main()
