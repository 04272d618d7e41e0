"""One balanced journal per shop day and currency, built from the day's facts.

Sales (the day's orders that belong in the ERP):
  Dr payment clearing         gross
  Cr sales, per ERP tax code  line net (item and custom lines)
  Dr sales, per ERP tax code  order-level discounts' net (discountOnTotalPrice)
  Cr shipping income          shipping net
  Cr output VAT, per rate     the orders' tax portions
  Dr/Cr rounding              whatever gross leaves unexplained (tax rounded per order, not line)
Payments (the day's successful transactions):
  Charge      Dr PSP receivable (per provider)   Cr payment clearing
  Refund      Dr refunds (net of VAT) and Dr output VAT per rate, one set per refund
              (the refund's ``tax_by_rate``)     Cr PSP receivable (per provider)
  Chargeback  Dr chargebacks, one line each      Cr PSP receivable (per provider)

Refund and chargeback lines (a refund's VAT lines too) carry the transaction id as
``reference`` and the order in the description, so the reconciliation can say which refund the
ERP lacks.

Corrections: a day posted once is never posted again in full. When its journal changes (a late
refund, a cancellation, a price correction) ``correcting_batch`` builds the difference between
the journal now and everything the ERP holds for the day (the original and earlier
corrections), as its own batch ``<original>-c<n>`` referencing the original; with no
difference there is nothing to post, so a re-run posts nothing. Lines are in a fixed
order: rebuilding an unchanged day gives the identical batch, which the ERP treats as a replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from ct_pipelines.defs.finance.logic.days import batch_id
from ct_pipelines.defs.finance.logic.facts import OrderFact, TransactionFact, currency_digits
from ct_pipelines.erp.port import JournalBatch, JournalLine
from ct_pipelines.kernel.money import to_decimal


@dataclass(frozen=True)
class JournalAccounts:
    """General-ledger account codes; the defaults are a UK chart of accounts."""

    payment_clearing: str = "1250"
    psp_receivable: str = "1210"
    psp_by_provider: Mapping[str, str] = field(default_factory=dict)
    sales_by_tax_code: Mapping[str, str] = field(
        default_factory=lambda: {"S": "4000", "R": "4010", "Z": "4020"}
    )
    sales_default: str = "4090"
    shipping: str = "4100"
    vat_by_rate: Mapping[str, str] = field(
        default_factory=lambda: {"0.2": "2200", "0.05": "2205", "0": "2210"}
    )
    vat_default: str = "2290"
    refunds: str = "4900"
    chargebacks: str = "4910"
    rounding: str = "7990"

    def psp(self, provider: str) -> str:
        return self.psp_by_provider.get(provider, self.psp_receivable)


class _Lines:
    """Collects one-sided lines; zero amounts are dropped, negative ones change side."""

    def __init__(self) -> None:
        self.lines: list[JournalLine] = []

    def add(
        self,
        account: str,
        debit: int = 0,
        credit: int = 0,
        description: str = "",
        reference: str | None = None,
    ) -> None:
        amount = debit - credit
        if amount == 0:
            return
        self.lines.append(
            JournalLine(
                line_no=len(self.lines) + 1,
                account=account,
                debit_minor=max(amount, 0),
                credit_minor=max(-amount, 0),
                description=description[:200],
                reference=reference,
            )
        )


def _sum(values: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for mapping in values:
        for key, amount in mapping.items():
            total[key] = total.get(key, 0) + amount
    return dict(sorted(total.items()))


def _sales(lines: _Lines, orders: list[OrderFact], accounts: JournalAccounts, label: str) -> None:
    if not orders:
        return
    gross = sum(o.gross_minor for o in orders)
    lines.add(accounts.payment_clearing, debit=gross, description=f"{label}: {len(orders)} orders")
    for code, net in _sum(o.net_by_tax_code for o in orders).items():
        account = accounts.sales_by_tax_code.get(code, accounts.sales_default)
        lines.add(account, credit=net, description=f"{label}: sales net, tax code {code}")
    for code, discount in _sum(o.discount_by_tax_code for o in orders).items():
        account = accounts.sales_by_tax_code.get(code, accounts.sales_default)
        lines.add(account, debit=discount, description=f"{label}: order discounts, tax code {code}")
    lines.add(
        accounts.shipping,
        credit=sum(o.shipping_net_minor for o in orders),
        description=f"{label}: shipping net",
    )
    for rate, tax in _sum(o.tax_by_rate for o in orders).items():
        account = accounts.vat_by_rate.get(rate, accounts.vat_default)
        lines.add(account, credit=tax, description=f"{label}: output VAT at {rate}")
    # Positive: gross holds more than nets plus VAT, a credit; negative, a debit.
    lines.add(
        accounts.rounding,
        credit=sum(o.unexplained_minor for o in orders),
        description=f"{label}: tax rounding differences",
    )


def _per_provider(transactions: list[TransactionFact]) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = {}
    for tx in transactions:
        key = (tx.provider, tx.method)
        totals[key] = totals.get(key, 0) + tx.amount_minor
    return dict(sorted(totals.items()))


def _payments(
    lines: _Lines, transactions: list[TransactionFact], accounts: JournalAccounts, label: str
) -> None:
    done = sorted(
        (tx for tx in transactions if tx.succeeded),
        key=lambda tx: (tx.timestamp, tx.transaction_id),
    )
    charges = [tx for tx in done if tx.type == "Charge"]
    for (provider, method), amount in _per_provider(charges).items():
        lines.add(
            accounts.psp(provider),
            debit=amount,
            description=f"{label}: charges {provider}/{method}",
        )
    lines.add(
        accounts.payment_clearing,
        credit=sum(tx.amount_minor for tx in charges),
        description=f"{label}: charges captured",
    )
    for kind, account in (("Refund", accounts.refunds), ("Chargeback", accounts.chargebacks)):
        reversals = [tx for tx in done if tx.type == kind]
        for tx in reversals:
            vat = tx.tax_by_rate if kind == "Refund" else {}
            lines.add(
                account,
                debit=tx.amount_minor - sum(vat.values()),
                description=f"{kind} {tx.document or tx.payment_id} {tx.provider}/{tx.method}",
                reference=tx.transaction_id,
            )
            for rate, tax in sorted(vat.items()):
                lines.add(
                    accounts.vat_by_rate.get(rate, accounts.vat_default),
                    debit=tax,
                    description=f"Refund VAT at {rate} {tx.document or tx.payment_id}",
                    reference=tx.transaction_id,
                )
        for (provider, method), amount in _per_provider(reversals).items():
            lines.add(
                accounts.psp(provider),
                credit=amount,
                description=f"{label}: {kind.lower()}s {provider}/{method}",
            )


def build_journals(
    day: date,
    orders: Iterable[OrderFact],
    transactions: Iterable[TransactionFact],
    accounts: JournalAccounts = JournalAccounts(),
) -> list[JournalBatch]:
    """The day's journal batches, one per currency with any money moved, by currency code.

    ``orders`` are the day's orders that belong in the ERP (eligible); ``transactions`` the
    day's payment transactions (only successful ones are booked).
    """
    orders = [o for o in orders if o.day == day]
    transactions = [t for t in transactions if t.day == day]
    digits = currency_digits([*orders, *transactions])
    batches = []
    for currency in sorted(digits):
        label = f"Web shop {day.isoformat()} {currency}"
        lines = _Lines()
        day_orders = [o for o in orders if o.currency == currency]
        _sales(lines, day_orders, accounts, label)
        _payments(lines, [t for t in transactions if t.currency == currency], accounts, label)
        if not lines.lines:
            continue
        total = sum(line.debit_minor for line in lines.lines)
        amount = f"{to_decimal(total, digits[currency]):.{digits[currency]}f} {currency}"
        batches.append(
            JournalBatch(
                batch_id=batch_id(day, currency),
                posting_date=day,
                currency=currency,
                fraction_digits=digits[currency],
                description=f"{label}: {amount} debits",
                lines=lines.lines,
            )
        )
    return batches


def correction_batch_id(original: str, number: int) -> str:
    return f"{original}-c{number}"


def correcting_batch(batch: JournalBatch, held: Iterable[JournalBatch]) -> JournalBatch | None:
    """The correcting journal that brings what the ERP holds for ``batch``'s day and currency
    (``held``: the original and its corrections) to ``batch``; None when nothing differs.

    Lines are the difference per (account, reference), in ``batch``'s line order, then lines
    only the ERP holds (reversed). The batch id is the next ``-c<n>``: deterministic, so a
    crash and re-run posts the same batch (a replay) or, once posted, nothing.
    """
    held = list(held)
    original = batch.batch_id
    corrections = [b for b in held if b.batch_id.startswith(original + "-c")]
    have: dict[tuple[str, str | None], int] = {}
    for posted in held:
        for line in posted.lines:
            key = (line.account, line.reference)
            have[key] = have.get(key, 0) + line.debit_minor - line.credit_minor
    want: dict[tuple[str, str | None], int] = {}
    descriptions: dict[tuple[str, str | None], str] = {}
    for line in batch.lines:
        key = (line.account, line.reference)
        want[key] = want.get(key, 0) + line.debit_minor - line.credit_minor
        descriptions.setdefault(key, line.description)
    lines = _Lines()
    for key in [*want, *(k for k in have if k not in want)]:
        difference = want.get(key, 0) - have.get(key, 0)
        account, reference = key
        lines.add(
            account,
            debit=difference,
            description=f"Correction: {descriptions.get(key, f'reversal of {account}')}",
            reference=reference,
        )
    if not lines.lines:
        return None
    number = len(corrections) + 1
    return JournalBatch(
        batch_id=correction_batch_id(original, number),
        posting_date=batch.posting_date,
        currency=batch.currency,
        fraction_digits=batch.fraction_digits,
        description=f"Correction {number} of {original}: {batch.description}"[:200],
        lines=lines.lines,
    )
