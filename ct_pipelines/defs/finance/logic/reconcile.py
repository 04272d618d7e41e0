"""commercetools against the ERP for one shop day, per currency, to the minor unit.

Compared per order (by external document number and currency): order count, net, tax, tax per
rate, gross and shipping gross, commercetools' eligible orders against the ERP's sales orders.
Compared per transaction (by transaction id): refunds and chargebacks, commercetools' successful
transactions of the day against the lines of the day's journal batches in the ERP.

A variance is always ERP minus commercetools: an order missing from the ERP is negative, an
order only the ERP holds is positive. Every non-zero variance names the order (and transaction)
behind it; the day's totals per metric list those orders too, and carry besides the net
variance the sum of the absolute per-order variances (``variance_abs_minor``): +100 on one
order and -100 on another net to 0 but are 200 of variances, and the day is not clean.

Every difference is reported, none hidden by a key:
- a document the ERP holds twice (``duplicate_in_erp``, the copies' figures counted in full);
- two ERP documents for one commercetools order (``second_document_in_erp``);
- an order the ERP holds in another currency (``wrong_currency_in_erp`` under the ERP's
  currency, ``missing_in_erp`` under commercetools' one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from ct_pipelines.defs.finance.logic.days import batch_belongs_to
from ct_pipelines.defs.finance.logic.facts import OrderFact, TransactionFact, rate_key
from ct_pipelines.defs.finance.logic.journal import JournalAccounts

BASE_METRICS = ("orders", "net", "tax", "gross", "shipping")
PAYMENT_METRICS = ("refunds", "chargebacks")
TAX_RATE_PREFIX = "tax@"
DEFAULT_ACCOUNTS = JournalAccounts()


def tax_metric(rate: str) -> str:
    return f"{TAX_RATE_PREFIX}{rate}"


@dataclass(frozen=True)
class ErpOrderFact:
    """An ERP sales order's figures, in the same terms as ``OrderFact``."""

    document: str
    sales_order_no: str
    currency: str
    fraction_digits: int
    order_date: date
    source_order_id: str
    status: str
    net_minor: int
    tax_minor: int
    gross_minor: int
    shipping_minor: int
    tax_by_rate: dict[str, int] = field(default_factory=dict)


def erp_order_fact(order: Any, rates_by_tax_code: Mapping[str, str]) -> ErpOrderFact:
    """From an ``ErpSalesOrder``; tax per rate through the ERP tax code (S -> 0.2)."""
    tax_by_rate: dict[str, int] = {}
    shipping = 0
    for line in order.lines:
        rate = rates_by_tax_code.get(line.tax_code, f"code-{line.tax_code}")
        tax_by_rate[rate] = tax_by_rate.get(rate, 0) + line.tax_minor
        if line.kind == "shipping":
            shipping += line.gross_minor
    return ErpOrderFact(
        document=order.external_document_number,
        sales_order_no=order.sales_order_no,
        currency=order.currency,
        fraction_digits=int(order.fraction_digits),
        order_date=order.order_date,
        source_order_id=order.source_order_id,
        status=order.status,
        net_minor=order.totals.net_minor,
        tax_minor=order.totals.tax_minor,
        gross_minor=order.totals.gross_minor,
        shipping_minor=shipping,
        tax_by_rate=tax_by_rate,
    )


def rates_by_tax_code(tax_codes_by_rate: Mapping[str, str]) -> dict[str, str]:
    """Invert the order-to-cash tax table ({"0.2": "S"} -> {"S": "0.2"})."""
    inverse: dict[str, str] = {}
    for rate, code in tax_codes_by_rate.items():
        if code in inverse and inverse[code] != rate_key(rate):
            raise ValueError(f"tax code {code} stands for two rates: {inverse[code]} and {rate}")
        inverse[code] = rate_key(rate)
    return inverse


def unmatched_sources(
    day: date, ct_documents: set[str], erp_orders: Iterable[ErpOrderFact]
) -> list[str]:
    """Source order ids of ERP orders dated ``day`` that match none of the day's orders.

    Their commercetools creation time decides which shop day they belong to (an order placed
    just after local midnight can carry the previous UTC date, or the next one).
    """
    return sorted(
        {
            o.source_order_id
            for o in erp_orders
            if o.document not in ct_documents and o.order_date == day
        }
    )


def attribute_erp_orders(
    day: date,
    ct_documents: set[str],
    erp_orders: Iterable[ErpOrderFact],
    source_days: Mapping[str, date | None],
) -> list[ErpOrderFact]:
    """The ERP orders that belong to the shop day ``day`` (each ERP order to exactly one day).

    Matched to a commercetools order of the day: that day. Otherwise an ERP order dated ``day``
    stays unless its source order was created on another shop day (``source_days``); one whose
    source order does not exist at all stays, as an order only the ERP holds.
    """
    kept: dict[str, ErpOrderFact] = {}
    for order in erp_orders:
        if order.status == "cancelled":
            continue
        same_day = order.order_date == day and source_days.get(order.source_order_id) in (
            None,
            day,
        )
        if order.document in ct_documents or same_day:
            kept[order.sales_order_no] = order
    return sorted(kept.values(), key=lambda o: (o.currency, o.document))


@dataclass(frozen=True)
class PostedLine:
    """A journal line as the ERP holds it; ``amount_minor`` is debit minus credit."""

    batch_id: str
    currency: str
    fraction_digits: int
    account: str
    amount_minor: int
    reference: str | None
    description: str


def posted_lines(batches: Iterable[Any]) -> list[PostedLine]:
    """Lines of posted journal batches (anything with batch_id, currency, lines)."""
    found = []
    for batch in batches:
        for line in batch.lines:
            found.append(
                PostedLine(
                    batch_id=batch.batch_id,
                    currency=batch.currency,
                    fraction_digits=int(batch.fraction_digits),
                    account=line.account,
                    amount_minor=line.debit_minor - line.credit_minor,
                    reference=line.reference,
                    description=line.description,
                )
            )
    return found


@dataclass(frozen=True)
class Variance:
    day: date
    currency: str
    fraction_digits: int
    kind: str
    metric: str
    document: str | None
    order_id: str | None
    reference: str | None  # transaction id for payment metrics
    commercetools_minor: int
    erp_minor: int
    variance_minor: int  # ERP minus commercetools
    detail: str


@dataclass(frozen=True)
class MetricTotal:
    day: date
    currency: str
    fraction_digits: int
    metric: str
    commercetools_minor: int
    erp_minor: int
    variance_minor: int
    orders: tuple[str, ...]  # documents behind the variance
    variance_abs_minor: int = 0  # sum of the absolute per-order (per-transaction) variances


@dataclass(frozen=True)
class DayReconciliation:
    day: date
    totals: list[MetricTotal]
    variances: list[Variance]

    @property
    def balanced(self) -> bool:
        return (
            all(t.variance_minor == 0 and t.variance_abs_minor == 0 for t in self.totals)
            and not self.variances
        )


def _order_figures(fact: OrderFact | ErpOrderFact | None) -> dict[str, int]:
    if fact is None:
        return {}
    figures = {
        "orders": 1,
        "net": fact.net_minor,
        "tax": fact.tax_minor,
        "gross": fact.gross_minor,
        "shipping": fact.shipping_minor,
    }
    for rate, amount in fact.tax_by_rate.items():
        figures[tax_metric(rate)] = figures.get(tax_metric(rate), 0) + amount
    return figures


def _sums_by_currency(
    facts: Iterable[OrderFact | ErpOrderFact], digits: dict[str, int]
) -> dict[str, dict[str, int]]:
    """The day's ``_order_figures`` summed per currency (one pass; notes each currency's digits)."""
    running: dict[str, list[int]] = {}
    by_rate: dict[str, dict[str, int]] = {}
    for fact in facts:
        currency = fact.currency
        sums = running.get(currency)
        if sums is None:
            sums = running[currency] = [0, 0, 0, 0, 0]
            by_rate[currency] = {}
            digits.setdefault(currency, fact.fraction_digits)
        sums[0] += 1
        sums[1] += fact.net_minor
        sums[2] += fact.tax_minor
        sums[3] += fact.gross_minor
        sums[4] += fact.shipping_minor
        if fact.tax_by_rate:
            rates = by_rate[currency]
            for rate, amount in fact.tax_by_rate.items():
                rates[rate] = rates.get(rate, 0) + amount
    totals = {}
    for currency, sums in running.items():
        total = dict(zip(BASE_METRICS, sums, strict=True))
        for rate, amount in by_rate[currency].items():
            total[tax_metric(rate)] = amount
        totals[currency] = total
    return totals


def _same_figures(ours: OrderFact, theirs: ErpOrderFact) -> bool:
    """Whether every figure of the order agrees (most orders of a day: nothing to report)."""
    return (
        ours.net_minor == theirs.net_minor
        and ours.tax_minor == theirs.tax_minor
        and ours.gross_minor == theirs.gross_minor
        and ours.shipping_minor == theirs.shipping_minor
        and ours.tax_by_rate == theirs.tax_by_rate
    )


_ORDER_KINDS = {
    (True, False): "missing_in_erp",
    (False, True): "only_in_erp",
    (True, True): "amounts_differ",
}


def _erp_figures(copies: Sequence[ErpOrderFact]) -> dict[str, int]:
    total: dict[str, int] = {}
    for copy in copies:
        for metric, value in _order_figures(copy).items():
            total[metric] = total.get(metric, 0) + value
    return total


def _order_variances(
    day: date,
    ct: Mapping[tuple[str, str], OrderFact],
    erp: Mapping[tuple[str, str], Sequence[ErpOrderFact]],
    all_ct_documents: Mapping[str, OrderFact],
) -> list[Variance]:
    # Only orders missing on one side need these; most days have few.
    indexes: dict[str, Any] = {}

    def documents_by_source() -> dict[str, set[str]]:
        if "sources" not in indexes:
            found: dict[str, set[str]] = {}
            for held in erp.values():
                for copy in held:
                    found.setdefault(copy.source_order_id, set()).add(copy.document)
            indexes["sources"] = found
        return indexes["sources"]

    def erp_currencies() -> dict[str, list[str]]:
        if "currencies" not in indexes:
            found: dict[str, list[str]] = {}
            for (held_in, held_document), held in erp.items():
                if held:
                    found.setdefault(held_document, []).append(held_in)
            indexes["currencies"] = found
        return indexes["currencies"]

    variances = []
    # Any order will do: the variances are sorted at the end.
    keys = [*ct, *(key for key in erp if key not in ct)]
    for key in keys:
        currency, document = key
        ours, held = ct.get(key), erp.get(key)
        if (
            ours is not None
            and held is not None
            and len(held) == 1
            and _same_figures(ours, held[0])
        ):
            continue  # the ERP holds the order once, as commercetools has it
        copies = list(held or ())
        theirs = copies[0] if copies else None
        kind = _ORDER_KINDS[(ours is not None, theirs is not None)]
        detail = ""
        if ours is None:
            assert theirs is not None
            other = all_ct_documents.get(document)
            others = sorted(documents_by_source().get(theirs.source_order_id, set()) - {document})
            if other is not None and other.currency != currency:
                kind = "wrong_currency_in_erp"
                detail = f"commercetools has the order in {other.currency}, the ERP in {currency}"
            elif others and any((currency, d) in ct or d in all_ct_documents for d in others):
                kind = "second_document_in_erp"
                detail = (
                    f"a second ERP document for order {theirs.source_order_id}, "
                    f"which the ERP also holds as {', '.join(others)}"
                )
            elif other is None:
                detail = "the ERP holds a sales order commercetools has no order for on this day"
            else:
                kind = "not_eligible_in_commercetools"
                detail = (
                    f"in commercetools the order is not for the ERP: {other.eligibility_reason}"
                )
        elif theirs is None:
            detail = "eligible in commercetools but no sales order in the ERP"
            elsewhere = [c for c in erp_currencies().get(document, []) if c != currency]
            if elsewhere:
                detail = f"the ERP holds it in {', '.join(sorted(elsewhere))}, not {currency}"
            if ours.problem:
                detail += f" ({ours.problem})"
        if len(copies) > 1:
            kind = "duplicate_in_erp"
            detail = f"the ERP holds document {document} {len(copies)} times: " + ", ".join(
                sorted(c.sales_order_no for c in copies)
            )
        ct_figures, erp_figures = _order_figures(ours), _erp_figures(copies)
        source: OrderFact | ErpOrderFact | None = ours or theirs
        assert source is not None
        for metric in sorted(set(ct_figures) | set(erp_figures)):
            a, b = ct_figures.get(metric, 0), erp_figures.get(metric, 0)
            if a == b:
                continue
            variances.append(
                Variance(
                    day=day,
                    currency=currency,
                    fraction_digits=source.fraction_digits,
                    kind=kind,
                    metric=metric,
                    document=document,
                    order_id=ours.order_id if ours else copies[0].source_order_id,
                    reference=", ".join(c.sales_order_no for c in copies) or None,
                    commercetools_minor=a,
                    erp_minor=b,
                    variance_minor=b - a,
                    detail=detail,
                )
            )
    return variances


def _payment_variances(
    day: date,
    metric: str,
    transactions: Sequence[TransactionFact],
    lines: Sequence[PostedLine],
) -> list[Variance]:
    ct = {t.transaction_id: t for t in transactions}
    erp: dict[str, list[PostedLine]] = {}
    for line in lines:
        erp.setdefault(line.reference or f"(no reference) {line.batch_id}", []).append(line)
    singular = metric[:-1]
    variances = []
    for reference in sorted(set(ct) | set(erp)):
        tx = ct.get(reference)
        posted = erp.get(reference, [])
        a = tx.amount_minor if tx else 0
        b = sum(line.amount_minor for line in posted)
        if a == b:
            continue
        if tx is None:
            kind = f"{singular}_not_in_commercetools"
            detail = "posted in the ERP, no such successful transaction on this day: " + "; ".join(
                line.description for line in posted
            )
        elif not posted:
            kind = f"{singular}_not_posted"
            detail = f"{tx.type} of {tx.timestamp.isoformat()} via {tx.provider}/{tx.method} is missing from the ERP journal"
        else:
            kind = f"{singular}_amount_differs"
            detail = f"posted in {', '.join(sorted({line.batch_id for line in posted}))}"
        source: Any = tx or posted[0]
        variances.append(
            Variance(
                day=day,
                currency=source.currency,
                fraction_digits=source.fraction_digits,
                kind=kind,
                metric=metric,
                document=tx.document if tx else None,
                order_id=tx.order_id if tx else None,
                reference=reference,
                commercetools_minor=a,
                erp_minor=b,
                variance_minor=b - a,
                detail=detail,
            )
        )
    return variances


def reconcile_day(
    day: date,
    orders: Iterable[OrderFact],
    transactions: Iterable[TransactionFact],
    erp_orders: Iterable[ErpOrderFact],
    erp_journals: Iterable[Any],
    accounts: JournalAccounts = DEFAULT_ACCOUNTS,
) -> DayReconciliation:
    """Reconcile one shop day.

    ``orders``: all commercetools orders created that day (eligible or not); ``transactions``:
    the day's payment transactions; ``erp_orders``: the ERP orders attributed to the day
    (``attribute_erp_orders``); ``erp_journals``: the ERP's posted journal batches (with lines)
    of the day, any currency, adjustments included.
    """
    orders = [o for o in orders if o.day == day]
    all_ct = {o.document: o for o in orders}
    ct = {(o.currency, o.document): o for o in orders if o.eligible}
    erp: dict[tuple[str, str], list[ErpOrderFact]] = {}
    for erp_order in erp_orders:
        erp.setdefault((erp_order.currency, erp_order.document), []).append(erp_order)
    variances = _order_variances(day, ct, erp, all_ct)

    done = [t for t in transactions if t.day == day and t.succeeded]
    journals = list(erp_journals)
    lines = posted_lines(b for b in journals if batch_belongs_to(b.batch_id, day, b.currency))
    currencies = sorted(
        {c for c, _ in ct}
        | {c for c, _ in erp}
        | {t.currency for t in done}
        | {line.currency for line in lines}
    )
    digits: dict[str, int] = {}
    erp_all = [copy for copies in erp.values() for copy in copies]
    ct_sums = _sums_by_currency(ct.values(), digits)
    erp_sums = _sums_by_currency(erp_all, digits)
    payments: list[TransactionFact | PostedLine] = [*done, *lines]
    for source in payments:
        digits.setdefault(source.currency, source.fraction_digits)

    vat_accounts = {*accounts.vat_by_rate.values(), accounts.vat_default}

    def refund_line(line: PostedLine, account: str) -> bool:
        # A refund's VAT lines carry its transaction id; the day's sales VAT lines carry none.
        if line.account == account:
            return True
        return account == accounts.refunds and line.account in vat_accounts and bool(line.reference)

    totals: list[MetricTotal] = []
    for currency in currencies:
        for metric, kind, account in (
            ("refunds", "Refund", accounts.refunds),
            ("chargebacks", "Chargeback", accounts.chargebacks),
        ):
            variances.extend(
                _payment_variances(
                    day,
                    metric,
                    [t for t in done if t.currency == currency and t.type == kind],
                    [
                        line
                        for line in lines
                        if line.currency == currency and refund_line(line, account)
                    ],
                )
            )
        ct_sum = ct_sums.get(currency, {})
        erp_sum = erp_sums.get(currency, {})
        for metric, kind, account in (
            ("refunds", "Refund", accounts.refunds),
            ("chargebacks", "Chargeback", accounts.chargebacks),
        ):
            ct_sum[metric] = sum(
                t.amount_minor for t in done if t.currency == currency and t.type == kind
            )
            erp_sum[metric] = sum(
                line.amount_minor
                for line in lines
                if line.currency == currency and refund_line(line, account)
            )
        rates = sorted(m for m in set(ct_sum) | set(erp_sum) if m.startswith(TAX_RATE_PREFIX))
        by_metric: dict[str, list[Variance]] = {}
        for variance in variances:
            if variance.currency == currency:
                by_metric.setdefault(variance.metric, []).append(variance)
        for metric in [*BASE_METRICS, *rates, *PAYMENT_METRICS]:
            a, b = ct_sum.get(metric, 0), erp_sum.get(metric, 0)
            behind_variances = by_metric.get(metric, [])
            behind = sorted({v.document or v.reference or "" for v in behind_variances})
            totals.append(
                MetricTotal(
                    day=day,
                    currency=currency,
                    fraction_digits=digits[currency],
                    metric=metric,
                    commercetools_minor=a,
                    erp_minor=b,
                    variance_minor=b - a,
                    orders=tuple(behind),
                    variance_abs_minor=sum(abs(v.variance_minor) for v in behind_variances),
                )
            )
    variances.sort(key=lambda v: (v.currency, v.kind, v.document or "", v.metric))
    return DayReconciliation(day=day, totals=totals, variances=variances)


# -- frames -------------------------------------------------------------------------------

TOTAL_COLUMNS = [
    "day",
    "currency",
    "fraction_digits",
    "metric",
    "commercetools_minor",
    "erp_minor",
    "variance_minor",
    "orders",
    "variance_abs_minor",
]
VARIANCE_COLUMNS = [
    "day",
    "currency",
    "fraction_digits",
    "kind",
    "metric",
    "document",
    "order_id",
    "reference",
    "commercetools_minor",
    "erp_minor",
    "variance_minor",
    "detail",
]


def absolute_variances(totals: pd.DataFrame) -> pd.Series:
    """Per total row: the sum of its absolute per-order variances, at least |net variance|.

    Offsetting variances (+100 on one order, -100 on another) net to 0 but are still 200 of
    variances. Frames stored before the column existed fall back to the net variance.
    """
    net = totals["variance_minor"].astype("int64").abs()
    if "variance_abs_minor" not in totals.columns:
        return net
    absolute = pd.to_numeric(totals["variance_abs_minor"], errors="coerce").fillna(0)
    return pd.concat([net, absolute.astype("int64")], axis=1).max(axis=1)


def totals_frame(totals: Iterable[MetricTotal]) -> pd.DataFrame:
    rows = []
    for total in totals:
        row = asdict(total)
        row["day"] = total.day.isoformat()
        row["orders"] = ", ".join(total.orders)
        rows.append(row)
    return pd.DataFrame(rows, columns=TOTAL_COLUMNS)


def variances_frame(variances: Iterable[Variance]) -> pd.DataFrame:
    rows = []
    for variance in variances:
        row = asdict(variance)
        row["day"] = variance.day.isoformat()
        rows.append(row)
    return pd.DataFrame(rows, columns=VARIANCE_COLUMNS)
