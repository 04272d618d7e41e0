"""Page N sandbox orders over HTTP: the client with typed models against a bare httpx loop.

The sandbox serves its commercetools API over real HTTP from a separate process (a threaded
wsgiref server), and both readers page every order through it in the same run:

- **bare**: plain ``httpx`` + stdlib ``json``, the same keyset requests (``sort=id asc``,
  ``where=id > :lastId``, ``withTotal=false``, the client's default ``expand``), dicts only;
- **client**: ``CommercetoolsClient.iter_orders`` (keyset paging, retries, token handling) into
  typed ``Order`` models (money included);
- **client dicts**: ``CommercetoolsClient.query_all("orders")``, the same paging without models.

Each reader runs ``--rounds`` times, alternating, and its best round counts (the machine is
shared: alternating keeps both exposed to the same load). Ratios are orders/s of the client
over the bare loop's; wall-clock is the acceptance figure. CPU seconds are shown as well, of
the reader (this process) and of the server process while that reader ran: on a loaded
machine wall-clock follows the CPU both spend, so "both" is the steadier comparison.

Flat memory: the traced peak (tracemalloc) while streaming a fifth of the orders and then half
of them; a streaming client's peak does not grow with the number of orders (one page at a
time), a client that collects everything would grow in proportion (shown by holding them).

    nice .venv/bin/python bench/page_orders.py --orders 25000 [--rounds 3] [--page-size 500]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

SERVER = """
import sys, time
from ct_sandbox import SandboxWorld
from ct_sandbox.transport import start_server
world = SandboxWorld.open(sys.argv[1])
running = start_server(world.commercetools_app())
print(running.url, flush=True)
while True:
    time.sleep(3600)
"""


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def bare_loop(url: str, settings: Any, page_size: int, expand: tuple[str, ...]) -> int:
    """The least a reader can do: one token, keyset pages, ``json.loads``, count the dicts."""
    import httpx

    with httpx.Client(timeout=65.0) as http:
        token = http.post(
            settings.token_url,
            data={"grant_type": "client_credentials", "scope": " ".join(settings.scopes)},
            auth=(settings.client_id, settings.client_secret.get_secret_value()),
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        count = 0
        last_id: str | None = None
        while True:
            params: list[tuple[str, str]] = []
            if last_id is not None:
                params += [("where", "id > :lastId"), ("var.lastId", last_id)]
            params += [("sort", "id asc"), ("limit", str(page_size))]
            params += [("expand", e) for e in expand] + [("withTotal", "false")]
            response = http.get(f"{settings.project_url}/orders", params=params, headers=headers)
            response.raise_for_status()
            results = json.loads(response.content)["results"]
            count += len(results)
            if len(results) < page_size:
                return count
            last_id = results[-1]["id"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=25_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from pydantic import SecretStr

    from ct_pipelines.commercetools import CommercetoolsClient
    from ct_pipelines.commercetools.client import DEFAULT_ORDER_EXPAND
    from ct_pipelines.commercetools.settings import CommercetoolsSettings
    from ct_pipelines.defs.resources import sandbox_settings
    from ct_sandbox import SandboxWorld

    with tempfile.TemporaryDirectory() as tmp:
        world = SandboxWorld.open(Path(tmp))
        world.bulk_orders(args.orders)
        total = world.documents.count("orders")
        world.close()
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, tmp], stdout=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            local = sandbox_settings()
            settings = CommercetoolsSettings(
                project_key=local.project_key,
                client_id=local.client_id,
                client_secret=SecretStr(local.client_secret.get_secret_value()),
                auth_url=url,
                api_url=url,
                scopes=local.scopes,
            )
            print(
                f"bench/page_orders.py: {total:,} orders ({args.orders:,} bulk plus the seeded "
                f"shop) over HTTP from {url}, page size {args.page_size}, best of {args.rounds}; "
                "every reader fetches and decodes one page after the other (no prefetch)"
            )
            load_before = os.getloadavg()
            client = CommercetoolsClient(settings)

            readers: dict[str, Callable[[], int]] = {
                "bare": lambda: bare_loop(url, settings, args.page_size, DEFAULT_ORDER_EXPAND),
                "client": lambda: sum(1 for _ in client.iter_orders(page_size=args.page_size)),
                "client dicts": lambda: sum(
                    1
                    for _ in client.query_all(
                        "orders", expand=DEFAULT_ORDER_EXPAND, page_size=args.page_size
                    )
                ),
            }
            best: dict[str, tuple[float, float, float]] = {}
            for _ in range(args.rounds):
                for name, read in readers.items():
                    server_cpu = _cpu_of(server.pid)
                    started, cpu = time.perf_counter(), time.process_time()
                    count = read()
                    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
                    server_cpu = _cpu_of(server.pid) - server_cpu
                    assert count == total, (name, count, total)
                    if name not in best or wall < best[name][0]:
                        best[name] = (wall, cpu, server_cpu)
            load_after = os.getloadavg()
            print(
                "  load average (1, 5, 15 min) before / after the rounds: "
                + " / ".join(", ".join(f"{x:.1f}" for x in la) for la in (load_before, load_after))
            )
            print()
            print(
                "  reader        wall s  orders/s  x bare  |  CPU s: reader  server  "
                "both  x bare (both)"
            )
            bare_wall, bare_cpu, bare_server = best["bare"]
            for name, (wall, cpu, server_cpu) in best.items():
                print(
                    f"  {name:<13} {wall:6.2f} {total / wall:9,.0f} {bare_wall / wall:7.2f}  |"
                    f"  {cpu:14.2f} {server_cpu:7.2f} {cpu + server_cpu:5.2f}"
                    f"  {(bare_cpu + bare_server) / (cpu + server_cpu):6.2f}"
                )

            n = total
            fifth, half = max(1, n // 5), max(1, n // 2)
            stream = lambda: client.iter_orders(page_size=args.page_size)  # noqa: E731
            stream_fifth, stream_half = _peak(stream, fifth, False), _peak(stream, half, False)
            held_fifth, held_half = _peak(stream, fifth, True), _peak(stream, half, True)
            print()
            print(
                f"  client, typed models: {total / best['client'][0]:,.0f} orders/s = "
                f"{bare_wall / best['client'][0]:.2f} x the bare loop's {total / bare_wall:,.0f}"
            )
            print(
                f"  peak memory streaming {fifth} / {half} orders: {stream_fifth:.1f} / "
                f"{stream_half:.1f} MiB (x{stream_half / stream_fifth:.2f})"
            )
            print(
                f"  peak memory holding   {fifth} / {half} orders: {held_fifth:.1f} / "
                f"{held_half:.1f} MiB (x{held_half / held_fifth:.2f})"
            )
            client.close()
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
