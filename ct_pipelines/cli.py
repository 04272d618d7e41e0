"""`ct-pipelines`: operator commands that do not need the Dagster UI.

ct-pipelines exceptions list [--flow F] [--category C] [--sku S] [--channel CH] ...
ct-pipelines exceptions show ID
ct-pipelines exceptions retry ID... | --flow F ... [--all] [--actor NAME]
ct-pipelines exceptions resolve ID... | --flow F ... --note "what was done" [--actor NAME]
ct-pipelines exceptions patterns [--days 14]
ct-pipelines trace ORDER_NUMBER [--json]
ct-pipelines preflight [--create-missing] [--json]
ct-pipelines sandbox serve|advance|status
ct-pipelines tryton setup|serve --dir DIR [--database DB] [--port 8000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def _print(*parts: object) -> None:
    """Everything the CLI shows passes the one scrubber: stored text came from outside."""
    from ct_pipelines.kernel.scrub import scrub

    print(*(scrub(str(part)) for part in parts))


def _world(args: argparse.Namespace):
    from ct_pipelines.defs.resources import sandbox_dir
    from ct_sandbox import SandboxWorld

    return SandboxWorld.open(args.sandbox_dir or sandbox_dir())


def _sandbox_serve(args: argparse.Namespace) -> int:
    from ct_sandbox.transport import serve

    world = _world(args)
    _print(
        f"sandbox: commercetools at http://{args.host}:{args.port}/ and ERP at http://{args.host}:{args.port}/erp"
    )
    serve(world, host=args.host, port=args.port)
    return 0


def _sandbox_advance(args: argparse.Namespace) -> int:
    result = _world(args).advance(minutes=args.minutes)
    _print(json.dumps(result, default=str, indent=2) if result is not None else "advanced")
    return 0


def _sandbox_status(args: argparse.Namespace) -> int:
    _print(json.dumps(_world(args).status(), default=str, indent=2))
    return 0


def sandbox_shop() -> tuple[list[Any], dict[tuple[str, str], int]]:
    """The sandbox ERP's items and stock per (sku, location), read through its own port: the
    shop ``ct-pipelines tryton setup`` loads into Tryton."""
    import tempfile
    from decimal import Decimal
    from pathlib import Path

    from ct_pipelines.erp.rest import RestErpClient
    from ct_pipelines.erp.tryton.setup import ShopItem
    from ct_sandbox import SANDBOX_ERP_URL, SandboxWorld

    with tempfile.TemporaryDirectory() as directory:
        world = SandboxWorld.open(Path(directory))
        try:
            with RestErpClient(SANDBOX_ERP_URL, None, transport=world.erp_transport()) as port:
                items = [
                    ShopItem(
                        sku=item.sku,
                        name=item.name,
                        price=next(
                            (p.to_decimal() for p in item.prices if p.currency == "GBP"),
                            Decimal(0),
                        ),
                        tax_code=item.tax_code,
                        active=item.active,
                        description=item.description,
                        attributes=dict(item.attributes),
                        other_prices=[
                            p.model_dump(mode="json", exclude_none=True)
                            for p in item.prices
                            if p.currency != "GBP"
                        ],
                    )
                    for item in port.iter_items()
                ]
                stock = {
                    (level.sku, level.location): level.on_hand
                    for level in port.iter_stock()
                    if level.on_hand > 0
                }
        finally:
            world.close()
    return items, stock


def _wait_child(process: subprocess.Popen[bytes]) -> int:
    """Wait for a served child; Ctrl-C or SIGTERM stops it too, so no orphan keeps the port."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _tryton(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ct_pipelines.erp.tryton import setup

    directory = Path(args.dir)
    if args.action == "serve":
        config = directory / "trytond.conf"
        if not config.exists():
            print(
                f"ct-pipelines: no trytond.conf in {directory}; run `tryton setup` first",
                file=sys.stderr,
            )
            return 2
        # The port was fixed by `setup` in the config.
        listen = next(
            (
                line.split("=", 1)[1].strip()
                for line in config.read_text().splitlines()
                if line.startswith("listen")
            ),
            f"127.0.0.1:{args.port}",
        )
        process = setup.serve(config, args.database)
        print(f"trytond on http://{listen}/ database {args.database}", flush=True)
        return _wait_child(process)
    password = os.environ.get("CT_PIPELINES_TRYTON_PASSWORD")
    if not password:
        print(
            "ct-pipelines: set CT_PIPELINES_TRYTON_PASSWORD (the admin password)", file=sys.stderr
        )
        return 2
    # SQLite: the database file lives in the config's data path (DIR/files/DATABASE.sqlite).
    uri = args.postgres.rsplit("/", 1)[0] + "/" if args.postgres else "sqlite://"
    items, stock = sandbox_shop()
    result = setup.setup_shop(
        directory,
        args.database,
        password,
        database_uri=uri,
        port=args.port,
        items=items,
        stock=stock,
        postgres_admin_url=args.postgres,
    )
    print(json.dumps(result, indent=2))
    return 0


# --- exception queue -----------------------------------------------------------------------------


def _store():
    from ct_pipelines.store import IntegrationStore

    store = IntegrationStore.from_env()
    store.migrate()
    return store


def _actor(args: argparse.Namespace) -> str:
    return args.actor or os.environ.get("CT_PIPELINES_ACTOR") or getpass.getuser()


def _filter(args: argparse.Namespace):
    from ct_pipelines.defs.operations.logic.exceptions import UNRESOLVED, ExceptionFilter

    if not args.status:
        status: tuple[str, ...] = UNRESOLVED
    elif "all" in args.status:
        status = ()
    else:
        status = tuple(args.status)
    return ExceptionFilter(
        flow=args.flow,
        status=status,
        category=args.category,
        entity_key=args.entity,
        sku=args.sku,
        channel=args.channel,
        older_than_hours=args.older_than_hours,
    )


def _print_rows(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        _print(json.dumps(rows, default=str, indent=2))
        return
    if not rows:
        _print("no exceptions match")
        return
    import pandas as pd

    frame = pd.DataFrame(rows)
    if "amount_minor" in frame:  # whole minor units, blank where no amount is known
        frame["amount_minor"] = [
            "" if value is None or pd.isna(value) else str(int(value))
            for value in frame["amount_minor"]
        ]
    # The table stays narrow; every reason follows in full, one per exception.
    _print(frame.drop(columns=["reason"]).to_string(index=False))
    _print()
    for row in rows:
        _print(f"#{row['id']} {row['reason']}")


def _exceptions_list(args: argparse.Namespace) -> int:
    from ct_pipelines.defs.operations.logic.exceptions import order_amounts, records_table, select

    now = datetime.now(UTC)
    with _store() as store:
        records = select(store, ids=args.ids, where=_filter(args), now=now)
        rows = records_table(
            records[: args.limit] if args.limit else records, now, order_amounts(store, now)
        )
    _print_rows(rows, args.json)
    return 0


def _exceptions_show(args: argparse.Namespace) -> int:
    from ct_pipelines.defs.operations.logic.exceptions import channel_of
    from ct_pipelines.defs.operations.retry_targets import RETRY_TARGETS

    with _store() as store:
        record = store.get_exception(args.id)
        events = store.exception_events(args.id)
    data = {
        "id": record.id,
        "flow": record.flow,
        "entity": record.entity_key,
        "category": record.category,
        "status": record.status,
        "attempts": record.attempts,
        "sku": record.sku,
        "channel": channel_of(record),
        "payload_ref": record.payload_ref,
        "reason": record.reason,
        "created_at": record.created_at,
        "resolved_by": record.resolved_by,
        "resolution_note": record.resolution_note,
        "retry_does": RETRY_TARGETS[record.flow].behaviour
        if record.flow in RETRY_TARGETS
        else "no retry job; the flow's next run picks it up",
        "history": [
            {"at": e.at, "action": e.action, "by": e.actor, "detail": e.detail} for e in events
        ],
    }
    if args.json:
        _print(json.dumps(data, default=str, indent=2))
        return 0
    for key, value in data.items():
        if key != "history":
            _print(f"{key:>16}: {value if value is not None else ''}")
    _print("         history:")
    for event in data["history"]:
        detail = json.dumps(event["detail"], default=str) if event["detail"] else ""
        _print(
            f"    {event['at'].isoformat(timespec='seconds')}  {event['action']:<14} by {event['by']}  {detail}"
        )
    return 0


def _exceptions_retry(args: argparse.Namespace) -> int:
    from ct_pipelines.defs.operations.logic.exceptions import retry
    from ct_pipelines.defs.operations.retry_targets import RETRY_TARGETS

    with _store() as store:
        outcome = retry(
            store,
            actor=_actor(args),
            now=datetime.now(UTC),
            ids=args.ids,
            where=_filter(args),
            all_matching=args.all,
        )
    for exception_id, why in outcome.skipped:
        _print(f"#{exception_id} not retried: {why}")
    if not outcome.flagged:
        _print("nothing to retry")
        return 0
    for flow, records in sorted(outcome.by_flow().items()):
        ids = ", ".join(f"#{r.id}" for r in records)
        target = RETRY_TARGETS.get(flow)
        _print(f"{flow}: {len(records)} flagged for retry ({ids})")
        _print(
            "  next: "
            + (
                f"the exception_retries sensor {target.behaviour}"
                if target
                else "no retry job; the flow's next run picks them up"
            )
        )
    return 0


def _exceptions_resolve(args: argparse.Namespace) -> int:
    from ct_pipelines.defs.operations.logic.exceptions import resolve

    with _store() as store:
        resolved = resolve(
            store,
            actor=_actor(args),
            note=args.note,
            now=datetime.now(UTC),
            ids=args.ids,
            where=_filter(args),
            all_matching=args.all,
        )
    for record in resolved:
        _print(f"#{record.id} resolved by {record.resolved_by}: {record.resolution_note}")
    if not resolved:
        _print("nothing to resolve")
    return 0


def _exceptions_patterns(args: argparse.Namespace) -> int:
    from ct_pipelines.defs.operations.logic.patterns import failure_patterns
    from ct_pipelines.kernel.shop import SHOP

    with _store() as store:
        records = store.list_exceptions()
    report = failure_patterns(records, [], now=datetime.now(UTC), tz=SHOP.tz, window_days=args.days)
    _print(report.markdown())
    return 0


# --- order trace -------------------------------------------------------------------------------


def _trace(args: argparse.Namespace) -> int:
    from ct_pipelines.defs.operations.logic.trace import trace_order
    from ct_pipelines.defs.resources import build_resources

    resources = build_resources()
    with (
        _store() as store,
        resources["commercetools"].open_client() as client,
        resources["erp"].open_port() as port,
    ):
        trace = trace_order(
            args.order, client=client, port=port, store=store, now=datetime.now(UTC)
        )
    _print(json.dumps(trace.as_dict(), default=str, indent=2) if args.json else trace.text())
    return 0


# --- preflight ---------------------------------------------------------------------------------


def _preflight(args: argparse.Namespace) -> int:
    from ct_pipelines.defs.operations.logic.preflight import blockers, table
    from ct_pipelines.defs.operations.preflight import run_preflight
    from ct_pipelines.defs.resources import ConfigurationError, build_resources

    try:
        resources = build_resources()
    except ConfigurationError as exc:
        print(f"ct-pipelines preflight: {exc}", file=sys.stderr)
        return 2
    commercetools, erp = resources["commercetools"], resources["erp"]
    findings = run_preflight(
        commercetools,
        erp,
        resources["product_catalog"],
        create_missing=args.create_missing,
        export_channel_key=args.export_channel,
    )
    if args.json:
        print(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        print(f"preflight: {commercetools.describe()}; {erp.describe()}")
        print(table(findings))
    return 1 if blockers(findings) else 0


def _add_filters(parser: argparse.ArgumentParser, *, ids: bool = True) -> None:
    if ids:
        parser.add_argument("ids", nargs="*", type=int, help="exception ids")
    parser.add_argument("--flow", help="order_to_cash, dispatch, product_master, inventory, ...")
    parser.add_argument("--category", help="e.g. unknown_sku, transient_exhausted")
    parser.add_argument("--sku")
    parser.add_argument("--channel")
    parser.add_argument("--entity", help="the order number, shipment number or SKU concerned")
    parser.add_argument("--older-than-hours", type=float, dest="older_than_hours")
    parser.add_argument(
        "--status",
        action="append",
        choices=["open", "retrying", "resolved", "all"],
        help="repeatable; default open and retrying",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ct-pipelines",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    sandbox = commands.add_parser("sandbox", help="the local commercetools + ERP/WMS sandbox")
    sandbox.add_argument(
        "--sandbox-dir", help="defaults to $CT_PIPELINES_SANDBOX_DIR or $DAGSTER_HOME/sandbox"
    )
    actions = sandbox.add_subparsers(dest="action", required=True)
    serve = actions.add_parser("serve", help="serve the sandbox over HTTP on this machine")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8089)
    serve.set_defaults(func=_sandbox_serve)
    advance = actions.add_parser("advance", help="advance the simulated trade clock")
    advance.add_argument("--minutes", type=int, default=60)
    advance.set_defaults(func=_sandbox_advance)
    status = actions.add_parser("status", help="what the sandbox holds")
    status.set_defaults(func=_sandbox_status)

    tryton = commands.add_parser(
        "tryton", help="a local Tryton ERP: setup a shop database, serve it"
    )
    tryton.add_argument("action", choices=["setup", "serve"])
    tryton.add_argument("--dir", required=True, help="folder for trytond.conf and its data")
    tryton.add_argument("--database", default="ct_shop")
    tryton.add_argument("--port", type=int, default=8000)
    tryton.add_argument(
        "--postgres",
        help="PostgreSQL admin URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    tryton.set_defaults(func=_tryton)

    exceptions = commands.add_parser("exceptions", help="work the exception queue")
    queue = exceptions.add_subparsers(dest="action", required=True)
    listing = queue.add_parser("list", help="exceptions matching ids or filters")
    _add_filters(listing)
    listing.add_argument("--limit", type=int)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_exceptions_list)
    show = queue.add_parser("show", help="one exception with its history (who, when, what)")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_exceptions_show)
    for name, func, text in (
        ("retry", _exceptions_retry, "flag for retry; the flow re-processes them"),
        ("resolve", _exceptions_resolve, "close by hand with a note"),
    ):
        action = queue.add_parser(name, help=text)
        _add_filters(action)
        action.add_argument("--actor", help="who acts (default $CT_PIPELINES_ACTOR or login)")
        action.add_argument(
            "--all", action="store_true", help="every unresolved exception (no ids, no filter)"
        )
        if name == "resolve":
            action.add_argument("--note", required=True, help="what was done, for the audit")
        action.set_defaults(func=func)
    patterns = queue.add_parser("patterns", help="what the exceptions have in common")
    patterns.add_argument("--days", type=int, default=14)
    patterns.set_defaults(func=_exceptions_patterns)

    trace = commands.add_parser("trace", help="one order's journey across the systems")
    trace.add_argument("order", help="order number (or commercetools order id)")
    trace.add_argument("--json", action="store_true")
    trace.set_defaults(func=_trace)

    preflight = commands.add_parser(
        "preflight",
        help="check the configured project and ERP before going live (read-only)",
        description="Checks credentials and scopes, the export channel, supply channels, tax "
        "categories, product types, currencies and countries, custom line slugs and the ERP. "
        "Exits 1 on a blocker.",
    )
    preflight.add_argument(
        "--create-missing",
        action="store_true",
        help="create the export channel (role OrderExport) when it is missing",
    )
    preflight.add_argument("--export-channel", help="export channel key (default erp-order-export)")
    preflight.add_argument("--json", action="store_true")
    preflight.set_defaults(func=_preflight)
    return parser


HOME_HINT = (
    'set DAGSTER_HOME to the Dagster instance directory, e.g. export DAGSTER_HOME="$PWD/dagster_home"'
    " in the project, or CT_PIPELINES_DB_URL to the integration store's database"
)


def find_dagster_home(start: Path, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The instance directory to use when DAGSTER_HOME is unset: the project's own
    ``dagster_home/`` (holding ``dagster.yaml``) in ``start`` or one of its parents."""
    if environ.get("DAGSTER_HOME"):
        return None
    for folder in (start, *start.parents):
        candidate = folder / "dagster_home"
        if (candidate / "dagster.yaml").is_file():
            return candidate.resolve()
    return None


def main(argv: Sequence[str] | None = None) -> int:
    from ct_pipelines.defs.operations.logic.exceptions import QueueActionError
    from ct_pipelines.defs.resources import ConfigurationError
    from ct_pipelines.kernel.scrub import scrub
    from ct_pipelines.store import ExceptionNotFound, StoreConfigurationError

    args = build_parser().parse_args(argv)
    if not os.environ.get("CT_PIPELINES_DB_URL"):
        found = find_dagster_home(Path.cwd())
        if found is not None:
            os.environ["DAGSTER_HOME"] = str(found)
            print(
                f"ct-pipelines: DAGSTER_HOME not set, using {found} (export DAGSTER_HOME to "
                "choose another instance)",
                file=sys.stderr,
            )
    try:
        return int(args.func(args))
    except (QueueActionError, ExceptionNotFound) as exc:
        print(f"ct-pipelines: {scrub(str(exc))}", file=sys.stderr)
        return 2
    except (StoreConfigurationError, ConfigurationError) as exc:
        print(f"ct-pipelines: {scrub(str(exc))}", file=sys.stderr)
        if not os.environ.get("DAGSTER_HOME"):
            print(f"ct-pipelines: {HOME_HINT}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
