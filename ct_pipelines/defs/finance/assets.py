"""Finance: each shop day's money from commercetools, one journal per day and currency in the
ERP, and a reconciliation of the two that finance can close the month on.

Every asset is partitioned by shop day (``order_days``) and backfills a range in one run; each
day is read, rebuilt and stored on its own, so re-running any day is safe. Journals are posted
once per batch id (``fin-<day>-<currency>``): a day already in the ERP is never posted again.
"""

import csv
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import ValidationError

from ct_pipelines.commercetools.models import Order, Payment
from ct_pipelines.defs import systems
from ct_pipelines.defs.finance.logic.checks import reconciliation_metadata
from ct_pipelines.defs.finance.logic.days import (
    days_between,
    erp_order_dates,
    month_start,
)
from ct_pipelines.defs.finance.logic.facts import (
    order_fact,
    orders_frame,
    orders_from_frame,
    sums_by,
    transaction_facts,
    transactions_frame,
    transactions_from_frame,
)
from ct_pipelines.defs.finance.logic.journal import JournalAccounts
from ct_pipelines.defs.finance.logic.lookups import (
    order_source_days,
    orders_by_payment,
    window_variables,
    with_refund_taxes,
)
from ct_pipelines.defs.finance.logic.posting import JOURNAL_COLUMNS, journal_rows
from ct_pipelines.defs.finance.logic.reconcile import (
    attribute_erp_orders,
    erp_order_fact,
    rates_by_tax_code,
    reconcile_day,
    totals_frame,
    unmatched_sources,
    variances_frame,
)
from ct_pipelines.defs.finance.logic.rollup import PERIOD_COLUMNS
from ct_pipelines.defs.finance.logic.settlement import (
    STATUSES,
    BadRow,
    SettlementFileError,
    SettlementReconciliation,
    SettlementRow,
    bad_rows_frame,
    items_frame,
    parse_settlement_csv,
    payouts_frame,
    reconcile_settlement,
    settlement_totals_frame,
    unique_rows,
)
from ct_pipelines.defs.finance.logic.snapshots import (
    FLOW,
    JOURNALS,
    ORDER_TOTALS,
    PERIOD_CLOSE,
    RECONCILIATION,
    SETTLEMENT,
    SETTLEMENT_TOTALS,
    TRANSACTIONS,
    VARIANCES,
    VAT_SUMMARY,
    period_closes,
    read_frame,
)
from ct_pipelines.defs.finance.logic.vat import VAT_COLUMNS, day_vat, month_to_date_vat
from ct_pipelines.defs.finance.resources import SettlementFilesResource
from ct_pipelines.defs.freshness import FINANCE_NIGHTLY
from ct_pipelines.defs.metadata import (
    frame_metadata,
    markdown_table,
    money_text,
    report_partitions,
    results_metadata,
    with_money_text,
    with_tables,
)
from ct_pipelines.defs.order_rules import OrderRulesConfig
from ct_pipelines.defs.order_to_cash.logic.orders import created_window_predicate
from ct_pipelines.defs.partitions import order_days
from ct_pipelines.defs.resources import CommercetoolsResource, ErpResource, IntegrationStoreResource
from ct_pipelines.defs.step_log import event_log_for_step
from ct_pipelines.kernel.money import display_money
from ct_pipelines.kernel.shop import SHOP


class FinanceConfig(OrderRulesConfig):
    """The order rules order-to-cash uses (``OrderRulesConfig``), and the ledger accounts.

    Keep the eligibility and tax code settings equal to order-to-cash's, or orders the ERP was
    never meant to hold show up as missing. Give every finance asset the same accounts.
    """

    payment_clearing_account: str = "1250"
    psp_receivable_account: str = "1210"
    psp_accounts_by_provider: dict[str, str] = {}
    sales_accounts_by_tax_code: dict[str, str] = {"S": "4000", "R": "4010", "Z": "4020"}
    sales_default_account: str = "4090"
    shipping_account: str = "4100"
    vat_accounts_by_rate: dict[str, str] = {"0.2": "2200", "0.05": "2205", "0": "2210"}
    vat_default_account: str = "2290"
    refunds_account: str = "4900"
    chargebacks_account: str = "4910"
    rounding_account: str = "7990"
    post_journals: bool = True

    def accounts(self) -> JournalAccounts:
        return JournalAccounts(
            payment_clearing=self.payment_clearing_account,
            psp_receivable=self.psp_receivable_account,
            psp_by_provider=dict(self.psp_accounts_by_provider),
            sales_by_tax_code=dict(self.sales_accounts_by_tax_code),
            sales_default=self.sales_default_account,
            shipping=self.shipping_account,
            vat_by_rate=dict(self.vat_accounts_by_rate),
            vat_default=self.vat_default_account,
            refunds=self.refunds_account,
            chargebacks=self.chargebacks_account,
            rounding=self.rounding_account,
        )


def _require(store: Any, name: str, key: str) -> pd.DataFrame:
    frame = read_frame(store, name, key)
    if frame is None:
        raise dg.Failure(f"{name} has no snapshot for {key}; materialise it first")
    return frame


@dg.asset(
    group_name=FLOW,
    kinds={"commercetools", "python"},
    partitions_def=order_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="Each shop day's commercetools orders with their net, tax per rate, gross and "
    "shipping, in minor units, and whether they belong in the ERP.",
    deps=[systems.COMMERCETOOLS_ORDERS],
    owners=[systems.FINANCE],
    freshness_policy=FINANCE_NIGHTLY,
)
def finance_order_totals(
    context: dg.AssetExecutionContext,
    config: FinanceConfig,
    commercetools: CommercetoolsResource,
    store: IntegrationStoreResource,
) -> dg.MaterializeResult:
    integration_store = store.get_store()
    taken_at = datetime.now(UTC)
    rule, tax_codes = config.rule(), config.tax_codes()
    by_partition: dict[str, dict[str, Any]] = {}
    with event_log_for_step(context), commercetools.open_client() as client:
        for key in context.partition_keys:
            day = date.fromisoformat(key)
            facts = []
            unreadable = 0
            for raw in client.query_all(
                "orders",
                where=[created_window_predicate()],
                variables=window_variables(day),
                expand=["paymentInfo.payments[*]"],
            ):
                try:
                    facts.append(order_fact(Order.model_validate(raw), SHOP.tz, rule, tax_codes))
                except (ValidationError, ValueError) as exc:
                    # Finance must not lose an order silently: it is queued for a person.
                    unreadable += 1
                    integration_store.record_exception(
                        flow=FLOW,
                        entity_key=str(raw.get("orderNumber") or raw.get("id")),
                        category="unreadable_order",
                        reason=f"order cannot be read for finance: {type(exc).__name__}: "
                        f"{str(exc)[:300]}",
                        payload_ref=f"order:{raw.get('id')}@v{raw.get('version')}",
                    )
            frame = orders_frame(facts)
            integration_store.write_snapshot(
                ORDER_TOTALS, frame, partition_key=key, taken_at=taken_at
            )
            context.log.info("%s %s: %d orders", ORDER_TOTALS, key, len(frame))
            by_partition[key] = _order_totals_metadata(frame, unreadable)
    return dg.MaterializeResult(metadata=report_partitions(context, by_partition))


def _order_totals_metadata(frame: pd.DataFrame, unreadable: int) -> dict[str, Any]:
    eligible = frame[frame["eligible"].astype(bool)]
    by_currency = (
        eligible.groupby("currency")[["gross_minor", "net_minor", "tax_minor", "shipping_minor"]]
        .sum()
        .astype(int)
        .reset_index()
    )
    if len(by_currency):
        by_currency["gross"] = [
            display_money(int(v), str(c))
            for c, v in zip(by_currency["currency"], by_currency["gross_minor"], strict=True)
        ]
    metadata = results_metadata(frame)
    metadata.update(
        {
            "eligible_orders": len(eligible),
            "ineligible_orders": len(frame) - len(eligible),
            "orders_with_tax_rounding_difference": int((frame["tax_rounding"] != "{}").sum()),
            "orders_without_taxes": int(frame["problem"].notna().sum()),
            "unreadable_orders": unreadable,
            "eligible_gross": money_text(
                {
                    str(c): int(v)
                    for c, v in zip(
                        by_currency["currency"], by_currency["gross_minor"], strict=True
                    )
                }
            ),
            "eligible_totals_by_currency": markdown_table(by_currency, 50),
        }
    )
    return metadata


@dg.asset(
    group_name=FLOW,
    kinds={"commercetools", "python"},
    partitions_def=order_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="Each shop day's payment transactions (charges, refunds, chargebacks) by "
    "currency, payment provider and method, with the order behind each.",
    deps=[systems.COMMERCETOOLS_PAYMENTS],
    owners=[systems.FINANCE],
    freshness_policy=FINANCE_NIGHTLY,
)
def finance_payment_transactions(
    context: dg.AssetExecutionContext,
    commercetools: CommercetoolsResource,
    store: IntegrationStoreResource,
) -> dg.MaterializeResult:
    integration_store = store.get_store()
    taken_at = datetime.now(UTC)
    by_partition: dict[str, dict[str, Any]] = {}
    with event_log_for_step(context), commercetools.open_client() as client:
        for key in context.partition_keys:
            day = date.fromisoformat(key)
            facts = []
            # A transaction on the day touched its payment on or after the day began, and a
            # payment created after the day cannot hold one.
            for raw in client.query_all(
                "payments",
                where=["createdAt < :windowEnd", "lastModifiedAt >= :windowStart"],
                variables=window_variables(day),
            ):
                facts.extend(transaction_facts(Payment.model_validate(raw), day, SHOP.tz))
            orders = orders_by_payment(client, sorted({f.payment_id for f in facts}))
            facts = [
                replace(f, order_id=orders[f.payment_id][0], document=orders[f.payment_id][1])
                if f.payment_id in orders
                else f
                for f in facts
            ]
            facts = with_refund_taxes(client, facts)  # the output VAT each refund gives back
            frame = transactions_frame(facts)
            integration_store.write_snapshot(
                TRANSACTIONS, frame, partition_key=key, taken_at=taken_at
            )
            context.log.info("%s %s: %d transactions", TRANSACTIONS, key, len(frame))
            by_partition[key] = _transactions_metadata(frame)
    return dg.MaterializeResult(metadata=report_partitions(context, by_partition))


def _transactions_metadata(frame: pd.DataFrame) -> dict[str, Any]:
    facts = transactions_from_frame(frame)
    sums = sums_by(facts, "currency", "type", "provider", "method")
    table = pd.DataFrame(
        [
            {
                "currency": c,
                "type": t,
                "provider": p,
                "method": m,
                "amount_minor": amount,
                "amount": display_money(amount, c),
            }
            for (c, t, p, m), amount in sorted(sums.items())
        ]
    )
    succeeded = [f for f in facts if f.succeeded]
    metadata = results_metadata(frame)
    metadata.update(
        {
            "charges": sum(1 for f in succeeded if f.type == "Charge"),
            "refunds": sum(1 for f in succeeded if f.type == "Refund"),
            "chargebacks": sum(1 for f in succeeded if f.type == "Chargeback"),
            "unsuccessful": len(facts) - len(succeeded),
            "without_order": sum(1 for f in facts if f.order_id is None),
            "amounts_by_currency_type_provider_method": markdown_table(table, 100),
        }
    )
    return metadata


@dg.asset(
    group_name=FLOW,
    kinds={"python"},
    deps=[finance_order_totals, finance_payment_transactions],
    partitions_def=order_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="erp_writes",
    description="One balanced journal per shop day and currency, posted to the ERP once "
    "(batch id fin-<day>-<currency>); days already posted are left alone.",
    owners=[systems.FINANCE],
    freshness_policy=FINANCE_NIGHTLY,
)
def finance_journal_batches(
    context: dg.AssetExecutionContext,
    config: FinanceConfig,
    erp: ErpResource,
    store: IntegrationStoreResource,
) -> dg.MaterializeResult:
    integration_store = store.get_store()
    taken_at = datetime.now(UTC)
    by_partition: dict[str, dict[str, Any]] = {}
    with event_log_for_step(context), erp.open_port() as port:
        for key in context.partition_keys:
            day = date.fromisoformat(key)
            day_rows = journal_rows(
                day,
                orders_from_frame(_require(integration_store, ORDER_TOTALS, key)),
                transactions_from_frame(_require(integration_store, TRANSACTIONS, key)),
                config.accounts(),
                config.post_journals,
                port,
                datetime.now(UTC),
                context.log,
            )
            frame = pd.DataFrame(day_rows, columns=JOURNAL_COLUMNS)
            integration_store.write_snapshot(JOURNALS, frame, partition_key=key, taken_at=taken_at)
            by_partition[key] = _journal_metadata(frame)
    return dg.MaterializeResult(metadata=report_partitions(context, by_partition))


def _journal_metadata(frame: pd.DataFrame) -> dict[str, Any]:
    counts = frame["status"].value_counts().to_dict()
    shown = [c for c in frame.columns if c != "detail"]
    metadata = results_metadata(frame, preview_columns=shown)
    metadata.update(
        {
            "batches_posted": int(counts.get("posted", 0)),
            "batches_already_posted": int(counts.get("already_posted", 0)),
            "batches_differing": int(counts.get("posted_differs", 0)),
            "batches_waiting": int(counts.get("day_not_over", 0) + counts.get("not_posted", 0)),
            "batches": markdown_table(frame[shown], 50),
        }
    )
    return metadata


@dg.asset(
    group_name=FLOW,
    kinds={"python"},
    deps=[
        finance_journal_batches,
        systems.ERP_SALES_ORDERS,
        systems.ERP_JOURNALS,
    ],
    owners=[systems.FINANCE],
    freshness_policy=FINANCE_NIGHTLY,
    partitions_def=order_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="commercetools against the ERP per shop day and currency: order count, net, "
    "tax per rate, gross, shipping, refunds and chargebacks, to the minor unit, with the orders "
    "behind every variance.",
)
def finance_reconciliation(
    context: dg.AssetExecutionContext,
    config: FinanceConfig,
    commercetools: CommercetoolsResource,
    erp: ErpResource,
    store: IntegrationStoreResource,
) -> dg.MaterializeResult:
    integration_store = store.get_store()
    taken_at = datetime.now(UTC)
    rates = rates_by_tax_code(config.tax_codes_by_rate)
    by_partition: dict[str, dict[str, Any]] = {}
    with (
        event_log_for_step(context),
        erp.open_port() as port,
        commercetools.open_client() as client,
    ):
        for key in context.partition_keys:
            day = date.fromisoformat(key)
            orders = orders_from_frame(_require(integration_store, ORDER_TOTALS, key))
            transactions = transactions_from_frame(_require(integration_store, TRANSACTIONS, key))
            erp_orders = [
                erp_order_fact(order, rates)
                for order_date in erp_order_dates(day, SHOP.tz)
                for order in port.iter_sales_orders(order_date)
            ]
            documents = {o.document for o in orders}
            unmatched = unmatched_sources(day, documents, erp_orders)
            source_days = order_source_days(client, unmatched) if unmatched else {}
            result = reconcile_day(
                day,
                orders,
                transactions,
                attribute_erp_orders(day, documents, erp_orders, source_days),
                list(port.iter_journal_batches(day)),
                config.accounts(),
            )
            day_totals = totals_frame(result.totals)
            day_variances = variances_frame(result.variances)
            integration_store.write_snapshot(
                RECONCILIATION, day_totals, partition_key=key, taken_at=taken_at
            )
            integration_store.write_snapshot(
                VARIANCES, day_variances, partition_key=key, taken_at=taken_at
            )
            context.log.info("%s %s: %d variances", RECONCILIATION, key, len(result.variances))
            if result.variances:
                context.log.warning(_variance_warning(key, result.variances))
            by_partition[key] = {
                **results_metadata(day_totals),
                **with_tables(reconciliation_metadata(day_totals, day_variances)),
            }
    return dg.MaterializeResult(metadata=report_partitions(context, by_partition))


def _variance_warning(day: str, variances: list[Any]) -> str:
    """One line for the event log: the day's variances by currency as people read them, and
    the first orders behind them."""
    absolute: dict[str, int] = {}
    for variance in variances:
        absolute[variance.currency] = absolute.get(variance.currency, 0) + abs(
            variance.variance_minor
        )
    documents = sorted({str(v.document or v.reference or "") for v in variances} - {""})
    return (
        f"{RECONCILIATION} {day}: {len(variances)} variances between commercetools and the ERP, "
        + "; ".join(
            f"{display_money(v, c)} ({v} {c} minor units)" for c, v in sorted(absolute.items())
        )
        + f" absolute; orders {', '.join(documents[:10])}"
        + (" …" if len(documents) > 10 else "")
        + " (check finance_zero_variance)"
    )


@dg.asset(
    group_name=FLOW,
    kinds={"python"},
    deps=[finance_reconciliation],
    partitions_def=order_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="Week-to-date and month-to-date roll-up of the reconciliation as of each shop "
    "day: the month's last day is what finance closes on.",
    owners=[systems.FINANCE],
    freshness_policy=FINANCE_NIGHTLY,
)
def finance_period_close(
    context: dg.AssetExecutionContext, store: IntegrationStoreResource
) -> dg.MaterializeResult:
    integration_store = store.get_store()
    taken_at = datetime.now(UTC)
    by_partition: dict[str, dict[str, Any]] = {}
    for key in context.partition_keys:
        week, month = period_closes(integration_store, date.fromisoformat(key))
        frame = pd.concat([week.totals, month.totals], ignore_index=True)[PERIOD_COLUMNS]
        integration_store.write_snapshot(PERIOD_CLOSE, frame, partition_key=key, taken_at=taken_at)
        # Each day's close is as of that day: week- and month-to-date up to it.
        metadata = results_metadata(frame)
        metadata["as_of"] = key
        for close in (week, month):
            prefix = close.period
            metadata.update(
                {
                    f"{prefix}_first_day": close.first_day.isoformat(),
                    f"{prefix}_ready_to_close": close.ready_to_close,
                    f"{prefix}_days_reconciled": len(close.reconciled_days),
                    f"{prefix}_days_missing": len(close.missing_days),
                    f"{prefix}_days_not_posted": len(close.unposted_days),
                    f"{prefix}_days_with_variance": len(close.variance_days),
                    **{
                        f"{prefix}_variance_abs_minor_{currency}": amount
                        for currency, amount in close.variance_abs_minor.items()
                    },
                    f"{prefix}_variance_abs": money_text(close.variance_abs_minor),
                    f"{prefix}_totals": markdown_table(close.totals, 100),
                }
            )
        metadata["month_open_days"] = dg.MetadataValue.json(
            {
                "missing": [d.isoformat() for d in month.missing_days],
                "not_posted": [d.isoformat() for d in month.unposted_days],
                "with_variance": [d.isoformat() for d in month.variance_days],
            }
        )
        by_partition[key] = metadata
    run = report_partitions(context, by_partition)
    # The run's last day is its latest "as of"; the totals of a roll-up are not a sum of days.
    run.pop("run_totals", None)
    return dg.MaterializeResult(metadata=run)


@dg.asset(
    group_name=FLOW,
    owners=[systems.FINANCE],
    kinds={"python"},
    deps=[finance_order_totals, finance_payment_transactions],
    partitions_def=order_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="VAT per shop day and month to date, per currency and rate: output VAT of "
    "the day's orders, VAT given back by refunds, and the net a controller files.",
)
def finance_vat_summary(
    context: dg.AssetExecutionContext, store: IntegrationStoreResource
) -> dg.MaterializeResult:
    integration_store = store.get_store()
    taken_at = datetime.now(UTC)
    frames = []
    for key in context.partition_keys:
        day = date.fromisoformat(key)
        today = day_vat(
            day,
            orders_from_frame(_require(integration_store, ORDER_TOTALS, key)),
            transactions_from_frame(_require(integration_store, TRANSACTIONS, key)),
        )
        daily = {day: today}
        for earlier in days_between(month_start(day), day)[:-1]:
            stored = read_frame(integration_store, VAT_SUMMARY, earlier.isoformat())
            if stored is not None:
                daily[earlier] = stored
        frame = pd.concat([today, month_to_date_vat(day, daily)], ignore_index=True)
        integration_store.write_snapshot(VAT_SUMMARY, frame, partition_key=key, taken_at=taken_at)
        frames.append(frame)
    combined = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=VAT_COLUMNS)
    return dg.MaterializeResult(
        metadata={
            **frame_metadata(combined),
            "partitions": len(context.partition_keys),
            "vat": markdown_table(combined, 100),
        }
    )


def _settlement_rows(
    context: dg.AssetExecutionContext,
    location: Path,
    settlement_files: SettlementFilesResource,
    integration_store: Any,
) -> tuple[list[SettlementRow], list[BadRow], list[str]]:
    """Every row of the settlement files, the rows that cannot be read, the files read."""
    rows: list[SettlementRow] = []
    bad: list[BadRow] = []
    files = sorted(location.glob(settlement_files.pattern)) if location.is_dir() else []
    for path in files:
        try:
            found, unreadable = parse_settlement_csv(
                path.read_text(encoding="utf-8-sig"),
                file=path.name,
                tz=SHOP.tz,
                metadata_key=settlement_files.metadata_key,
            )
        except (SettlementFileError, UnicodeDecodeError, csv.Error) as exc:
            found, unreadable = [], [BadRow(path.name, 0, None, str(exc))]
        rows.extend(found)
        bad.extend(unreadable)
    rows, conflicting = unique_rows(rows)
    bad.extend(conflicting)
    for row in bad:
        # Each bad row waits for a person; the rest of the file is reconciled.
        integration_store.record_exception(
            flow=FLOW,
            entity_key=f"{row.file}:{row.line}",
            category="unreadable_settlement_row" if row.line else "unreadable_settlement_file",
            reason=f"settlement file {row.file} line {row.line}: {row.reason}"[:500],
            payload_ref=f"settlement:{row.file}:{row.line}:{row.balance_transaction_id or ''}",
        )
        context.log.warning("settlement file %s line %d: %s", row.file, row.line, row.reason)
    return rows, bad, [p.name for p in files]


@dg.asset(
    group_name=FLOW,
    kinds={"csv", "python"},
    deps=[finance_payment_transactions],
    partitions_def=order_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    owners=[systems.FINANCE],
    output_required=False,
    description="The payment provider's settlement file (Stripe's itemized balance report, "
    "CSV) against each shop day's commercetools charges, refunds and chargebacks: matched, "
    "missing on either side, amounts that differ, and the day's fees and payouts per currency. "
    "Skipped, with the reason in the event log, when no settlement file is configured.",
)
def finance_payment_settlement(
    context: dg.AssetExecutionContext,
    settlement_files: SettlementFilesResource,
    store: IntegrationStoreResource,
) -> Iterator[dg.MaterializeResult]:
    location = settlement_files.location()
    if location.directory is None:
        context.log.warning("finance_payment_settlement skipped: %s", location.explanation)
        return
    integration_store = store.get_store()
    taken_at = datetime.now(UTC)
    with event_log_for_step(context):
        rows, bad, files = _settlement_rows(
            context, location.directory, settlement_files, integration_store
        )
        if not files:
            context.log.warning(
                "no settlement file matching %s in %s (%s): every transaction is unmatched",
                settlement_files.pattern,
                location.directory,
                location.explanation,
            )
        today = datetime.now(UTC).astimezone(SHOP.tz).date()
        by_partition: dict[str, dict[str, Any]] = {}
        for key in context.partition_keys:
            day = date.fromisoformat(key)
            if day >= today:
                # The provider reports a day once it is over; today's file is not complete.
                by_partition[key] = {
                    **results_metadata(items_frame([])),
                    "status": "day not over: not reconciled yet",
                }
                continue
            near = {day + timedelta(days=n) for n in (-1, 0, 1)}
            # The neighbouring days' transactions pair with rows across midnight.
            transactions = []
            for near_day in sorted(near):
                frame = (
                    _require(integration_store, TRANSACTIONS, key)
                    if near_day == day
                    else read_frame(integration_store, TRANSACTIONS, near_day.isoformat())
                )
                if frame is not None:
                    transactions.extend(transactions_from_frame(frame))
            result = reconcile_settlement(
                day,
                transactions,
                [r for r in rows if r.day in near],
                settlement_files.provider,
            )
            items = items_frame(result.items)
            totals = settlement_totals_frame(result.totals)
            integration_store.write_snapshot(
                SETTLEMENT, items, partition_key=key, taken_at=taken_at
            )
            integration_store.write_snapshot(
                SETTLEMENT_TOTALS, totals, partition_key=key, taken_at=taken_at
            )
            context.log.info(
                "%s %s: %d items, %d not matched",
                SETTLEMENT,
                key,
                len(items),
                int((items["status"] != "matched").sum()),
            )
            by_partition[key] = _settlement_metadata(items, totals, result)
    yield dg.MaterializeResult(
        metadata={
            **report_partitions(context, by_partition),
            "settlement_source": f"{location.directory} ({location.explanation})",
            "files_read": dg.MetadataValue.json(files),
            "rows_read": len(rows),
            "bad_rows": len(bad),
            "bad_rows_table": markdown_table(bad_rows_frame(bad), 50),
        }
    )


def _settlement_metadata(
    items: pd.DataFrame, totals: pd.DataFrame, result: SettlementReconciliation
) -> dict[str, Any]:
    shown = [c for c in items.columns if not c.endswith("_minor") and c != "fraction_digits"]
    metadata = results_metadata(items, preview_columns=shown)
    counts = items["status"].value_counts().to_dict()
    metadata.update(
        {
            "status": "reconciled",
            **{status: int(counts.get(status, 0)) for status in STATUSES},
            "not_matched": markdown_table(
                items[items["status"] != "matched"], 50, columns=shown, say_more=True
            ),
            "by_currency": markdown_table(totals),
            "payouts": markdown_table(payouts_frame(result.day, result.payouts)),
        }
    )
    for total in result.totals:
        for name in ("difference_abs", "fee", "net", "gross"):
            metadata[f"{name}_minor_{total.currency}"] = int(getattr(total, f"{name}_minor"))
    return with_money_text(metadata)
