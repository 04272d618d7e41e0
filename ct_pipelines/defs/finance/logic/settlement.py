"""The payment provider's settlement file against commercetools' payment transactions.

The file is Stripe's itemized balance report ("Balance change from activity", report type
``balance_change_from_activity.itemized.*``, CSV, one row per balance transaction), downloaded
from the Dashboard (Reports > Balance) or through the Reports API. Columns read:

- required: ``balance_transaction_id``, ``created_utc`` (``YYYY-MM-DD HH:MM:SS``, UTC),
  ``currency`` (ISO code, Stripe writes it in lower case), ``gross``, ``fee``, ``net`` (decimal
  amounts in major units, at most the currency's fraction digits; ``net = gross - fee``),
  ``reporting_category`` (``charge``, ``refund``, ``dispute``, ``fee``, ``payout``, ...);
- optional: ``source_id`` (the charge, refund or dispute the row moved money for),
  ``payment_intent_id``, ``automatic_payout_id`` (the payout that carries the row),
  ``description``, and ``payment_metadata[<key>]`` with the commercetools payment id
  (``<key>`` is ``commercetools_payment_id`` unless configured).

Amounts become integer minor units by the currency's fraction digits (``decimal_text_to_minor``:
``12.34`` GBP is 1234, ``1980`` JPY is 1980, ``12.345`` KWD is 12345), never rounded. A row that
cannot be read (unknown currency, an amount with too many digits, ``net`` not ``gross - fee``, no
id, the same id twice with other figures) is a ``BadRow`` with the reason; the rest is read.

Matching, per shop day: each successful commercetools ``Charge``, ``Refund`` and ``Chargeback``
of the provider's payments is paired with the settlement rows of the same kind (``charge`` and
``partial_capture_reversal`` settle a Charge, ``refund`` a Refund, ``dispute`` a Chargeback)

1. whose ``source_id`` is the transaction's ``interactionId`` (all such rows, summed: a partial
   capture reversal belongs to its charge), else
2. one row of the transaction's payment (``payment_intent_id`` is the payment's ``interfaceId``,
   or the metadata names the payment's id), preferring the one with the same amount.

The settled amount is the row's gross as commercetools records the transaction: positive for a
charge, and Stripe's negative refunds and disputes turned positive. Each transaction is then
``matched``, ``amount_differs`` (settled minus commercetools, in its currency, or another
currency), or ``missing_in_settlement``; each row of the day left over is
``not_in_commercetools``. Transactions belong to the shop day of their timestamp, rows to the
shop day of ``created_utc``; a pair is reported on the transaction's day, so rows and
transactions of the neighbouring days may be passed in to pair across midnight. Fees and nets
are totalled per currency over the day's rows (every category), and per payout.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pandas as pd

from ct_pipelines.defs.finance.logic.facts import TransactionFact
from ct_pipelines.kernel.money import (
    MoneyError,
    currency_fraction_digits,
    decimal_text_to_minor,
    display_money,
)

REQUIRED_COLUMNS = (
    "balance_transaction_id",
    "created_utc",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
)
DEFAULT_METADATA_KEY = "commercetools_payment_id"
# Stripe's reporting categories that settle a commercetools transaction type.
SETTLES: dict[str, str] = {
    "charge": "Charge",
    "partial_capture_reversal": "Charge",
    "refund": "Refund",
    "dispute": "Chargeback",
}
# commercetools records a refund or chargeback as a positive amount; Stripe as a negative one.
_SIGN = {"Charge": 1, "Refund": -1, "Chargeback": -1}
STATUSES = ("matched", "amount_differs", "missing_in_settlement", "not_in_commercetools")


class SettlementFileError(ValueError):
    """A settlement file that cannot be read at all (not CSV, required columns missing)."""


@dataclass(frozen=True)
class SettlementRow:
    """One balance transaction of the settlement file, amounts in minor units."""

    balance_transaction_id: str
    created: datetime  # UTC
    day: date  # the shop day of ``created``
    currency: str
    fraction_digits: int
    gross_minor: int
    fee_minor: int
    net_minor: int
    reporting_category: str
    source_id: str | None
    payment_intent_id: str | None
    payment_reference: str | None  # the commercetools payment id from the metadata
    payout_id: str | None
    file: str
    line: int

    @property
    def settles(self) -> str | None:
        """The commercetools transaction type this row settles, or None (fees, payouts...)."""
        return SETTLES.get(self.reporting_category)

    @property
    def settled_minor(self) -> int:
        """The gross as commercetools records the transaction (refunds positive)."""
        return _SIGN.get(self.settles or "", 1) * self.gross_minor


@dataclass(frozen=True)
class BadRow:
    file: str
    line: int
    balance_transaction_id: str | None
    reason: str


def _text(record: Mapping[str, str | None], name: str) -> str | None:
    value = record.get(name)
    value = value.strip() if isinstance(value, str) else None
    return value or None


def _created(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_settlement_csv(
    text: str,
    *,
    file: str,
    tz: ZoneInfo,
    metadata_key: str = DEFAULT_METADATA_KEY,
) -> tuple[list[SettlementRow], list[BadRow]]:
    """The rows of one settlement file, and the rows that cannot be read with the reason why.

    Raises ``SettlementFileError`` when the file has no header or lacks a required column.
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise SettlementFileError(
            f"{file}: not a Stripe itemized balance report, columns missing: {', '.join(missing)}"
        )
    reader.fieldnames = header
    metadata_column = f"payment_metadata[{metadata_key}]"
    rows: list[SettlementRow] = []
    bad: list[BadRow] = []
    for line, record in enumerate(reader, start=2):
        row_id = _text(record, "balance_transaction_id")
        try:
            if row_id is None:
                raise ValueError("no balance_transaction_id")
            if None in record:
                raise ValueError(f"{len(record[None])} more fields than the header has")
            currency = (_text(record, "currency") or "").upper()
            if not currency:
                raise ValueError("no currency")
            digits = currency_fraction_digits(currency)
            amounts = {}
            for name in ("gross", "fee", "net"):
                try:
                    amounts[name] = decimal_text_to_minor(_text(record, name) or "", digits)
                except MoneyError as exc:
                    raise ValueError(f"{name}: {exc}") from None
            if amounts["net"] != amounts["gross"] - amounts["fee"]:
                raise ValueError(
                    f"net {record['net']} is not gross {record['gross']} minus fee "
                    f"{record['fee']} ({currency})"
                )
            created_text = _text(record, "created_utc")
            if created_text is None:
                raise ValueError("no created_utc")
            try:
                created = _created(created_text)
            except ValueError:
                raise ValueError(f"created_utc {created_text!r} is not a time") from None
            category = (_text(record, "reporting_category") or "").lower()
            if not category:
                raise ValueError("no reporting_category")
        except (ValueError, MoneyError) as exc:
            bad.append(BadRow(file, line, row_id, str(exc)))
            continue
        rows.append(
            SettlementRow(
                balance_transaction_id=row_id,
                created=created,
                day=created.astimezone(tz).date(),
                currency=currency,
                fraction_digits=digits,
                gross_minor=amounts["gross"],
                fee_minor=amounts["fee"],
                net_minor=amounts["net"],
                reporting_category=category,
                source_id=_text(record, "source_id"),
                payment_intent_id=_text(record, "payment_intent_id"),
                payment_reference=_text(record, metadata_column),
                payout_id=_text(record, "automatic_payout_id"),
                file=file,
                line=line,
            )
        )
    return rows, bad


def _figures(row: SettlementRow) -> tuple[object, ...]:
    skip = {"file", "line"}
    return tuple(getattr(row, f.name) for f in fields(row) if f.name not in skip)


def unique_rows(rows: Iterable[SettlementRow]) -> tuple[list[SettlementRow], list[BadRow]]:
    """Rows once each: overlapping reports repeat a row (dropped); the same id with other
    figures is a bad row (both kept out)."""
    first: dict[str, SettlementRow] = {}
    conflicting: set[str] = set()
    bad: list[BadRow] = []
    for row in rows:
        seen = first.setdefault(row.balance_transaction_id, row)
        if seen is not row and _figures(seen) != _figures(row):
            conflicting.add(row.balance_transaction_id)
            bad.append(
                BadRow(
                    row.file,
                    row.line,
                    row.balance_transaction_id,
                    f"balance transaction {row.balance_transaction_id} appears again with other "
                    f"figures (first in {seen.file} line {seen.line})",
                )
            )
    return [r for r in first.values() if r.balance_transaction_id not in conflicting], bad


@dataclass(frozen=True)
class SettlementItem:
    """One commercetools transaction of the day with its settlement, or a row left over."""

    day: date
    status: str
    type: str
    currency: str
    fraction_digits: int
    transaction_id: str | None
    payment_id: str | None
    order_id: str | None
    document: str | None
    interaction_id: str | None
    balance_transaction_ids: tuple[str, ...]
    commercetools_minor: int
    settled_minor: int
    difference_minor: int  # settled minus commercetools
    fee_minor: int
    detail: str


@dataclass(frozen=True)
class CurrencyTotals:
    day: date
    currency: str
    fraction_digits: int
    transactions: int
    matched: int
    amount_differs: int
    missing_in_settlement: int
    not_in_commercetools: int
    commercetools_minor: int  # the day's transactions, as commercetools signs them
    settled_minor: int  # the day's rows that settle a transaction, signed the same way
    difference_abs_minor: int  # sum of |settled - commercetools| over the items not matched
    gross_minor: int  # every row of the day, as the PSP signs them
    fee_minor: int
    net_minor: int


NOT_PAID_OUT = "(not paid out yet)"


@dataclass(frozen=True)
class Payout:
    """What one payout carries of the day's rows (the day's share of it)."""

    payout_id: str
    currency: str
    fraction_digits: int
    rows: int
    gross_minor: int
    fee_minor: int
    net_minor: int


@dataclass(frozen=True)
class SettlementReconciliation:
    day: date
    items: list[SettlementItem]
    totals: list[CurrencyTotals]
    payouts: list[Payout] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return all(item.status == "matched" for item in self.items)


def reconcile_settlement(
    day: date,
    transactions: Iterable[TransactionFact],
    rows: Iterable[SettlementRow],
    provider: str = "stripe",
) -> SettlementReconciliation:
    """Pair the day's transactions of ``provider`` with the settlement rows (module docstring).

    ``transactions`` and ``rows`` may hold the neighbouring days too; only the day's results
    are returned.
    """
    wanted = provider.lower()
    ours = sorted(
        (
            t
            for t in transactions
            if t.succeeded and t.provider.lower() == wanted and t.type in _SIGN
        ),
        key=lambda t: (t.timestamp, t.transaction_id),
    )
    settling = sorted(
        (r for r in rows if r.settles is not None),
        key=lambda r: (r.created, r.balance_transaction_id),
    )
    by_source: dict[tuple[str, str], list[SettlementRow]] = {}
    by_payment: dict[tuple[str, str], list[SettlementRow]] = {}
    for row in settling:
        kind = str(row.settles)
        if row.source_id:
            by_source.setdefault((kind, row.source_id), []).append(row)
        for reference in (row.payment_intent_id, row.payment_reference):
            if reference:
                by_payment.setdefault((kind, reference), []).append(row)
    claimed: set[str] = set()
    pairs: list[tuple[TransactionFact, list[SettlementRow]]] = []
    waiting: list[TransactionFact] = []
    for tx in ours:
        found = [
            r
            for r in by_source.get((tx.type, tx.interaction_id or ""), [])
            if r.balance_transaction_id not in claimed
        ]
        if found:
            claimed.update(r.balance_transaction_id for r in found)
            pairs.append((tx, found))
        else:
            waiting.append(tx)
    for tx in waiting:
        candidates = [
            r
            for reference in dict.fromkeys((tx.payment_interface_id, tx.payment_id))
            if reference
            for r in by_payment.get((tx.type, reference), [])
            if r.balance_transaction_id not in claimed
        ]
        candidates = list(dict.fromkeys(candidates))
        same = [
            r
            for r in candidates
            if r.currency == tx.currency and r.settled_minor == tx.amount_minor
        ]
        pick = (same or candidates)[:1]
        claimed.update(r.balance_transaction_id for r in pick)
        pairs.append((tx, pick))

    items: list[SettlementItem] = []
    for tx, found in pairs:
        if tx.day != day:
            continue
        # Only what was settled in the transaction's own currency counts against it.
        settled = sum(r.settled_minor for r in found if r.currency == tx.currency)
        elsewhere = [r for r in found if r.currency != tx.currency]
        if not found:
            status = "missing_in_settlement"
            detail = (
                f"{tx.type} of {tx.timestamp.isoformat()} via {tx.provider} has no row in the "
                "settlement file"
            )
        elif elsewhere:
            status = "amount_differs"
            detail = (
                "settled in "
                + ", ".join(display_money(r.settled_minor, r.currency) for r in elsewhere)
                + f", commercetools has {display_money(tx.amount_minor, tx.currency)}"
            )
        elif settled != tx.amount_minor:
            status = "amount_differs"
            detail = (
                f"settled {display_money(settled, tx.currency)}, commercetools has "
                f"{display_money(tx.amount_minor, tx.currency)}"
            )
        else:
            status, detail = "matched", ""
        items.append(
            SettlementItem(
                day=day,
                status=status,
                type=tx.type,
                currency=tx.currency,
                fraction_digits=tx.fraction_digits,
                transaction_id=tx.transaction_id,
                payment_id=tx.payment_id,
                order_id=tx.order_id,
                document=tx.document,
                interaction_id=tx.interaction_id,
                balance_transaction_ids=tuple(r.balance_transaction_id for r in found),
                commercetools_minor=tx.amount_minor,
                settled_minor=settled,
                difference_minor=settled - tx.amount_minor,
                fee_minor=sum(r.fee_minor for r in found),
                detail=detail,
            )
        )
    day_rows = [r for r in rows if r.day == day]
    for row in settling:
        if row.day != day or row.balance_transaction_id in claimed:
            continue
        items.append(
            SettlementItem(
                day=day,
                status="not_in_commercetools",
                type=str(row.settles),
                currency=row.currency,
                fraction_digits=row.fraction_digits,
                transaction_id=None,
                payment_id=row.payment_reference,
                order_id=None,
                document=None,
                interaction_id=row.source_id,
                balance_transaction_ids=(row.balance_transaction_id,),
                commercetools_minor=0,
                settled_minor=row.settled_minor,
                difference_minor=row.settled_minor,
                fee_minor=row.fee_minor,
                detail=f"{row.reporting_category} {row.source_id or '(no source)'} of "
                f"{row.created.isoformat()} is in the settlement file "
                f"({row.file} line {row.line}); commercetools has no such {row.settles}",
            )
        )
    items.sort(key=lambda i: (i.currency, STATUSES.index(i.status), i.document or "", i.type))
    return SettlementReconciliation(
        day=day,
        items=items,
        totals=_totals(day, items, day_rows),
        payouts=_payouts(day_rows),
    )


def _totals(
    day: date, items: Sequence[SettlementItem], day_rows: Sequence[SettlementRow]
) -> list[CurrencyTotals]:
    currencies = sorted({i.currency for i in items} | {r.currency for r in day_rows})
    digits = {r.currency: r.fraction_digits for r in day_rows}
    digits.update({i.currency: i.fraction_digits for i in items})
    totals = []
    for currency in currencies:
        mine = [i for i in items if i.currency == currency]
        rows = [r for r in day_rows if r.currency == currency]
        count = {status: sum(1 for i in mine if i.status == status) for status in STATUSES}
        totals.append(
            CurrencyTotals(
                day=day,
                currency=currency,
                fraction_digits=digits[currency],
                transactions=sum(1 for i in mine if i.transaction_id is not None),
                matched=count["matched"],
                amount_differs=count["amount_differs"],
                missing_in_settlement=count["missing_in_settlement"],
                not_in_commercetools=count["not_in_commercetools"],
                commercetools_minor=sum(_SIGN[i.type] * i.commercetools_minor for i in mine),
                settled_minor=sum(_SIGN[i.type] * i.settled_minor for i in mine),
                difference_abs_minor=sum(
                    abs(i.difference_minor) for i in mine if i.status != "matched"
                ),
                gross_minor=sum(r.gross_minor for r in rows),
                fee_minor=sum(r.fee_minor for r in rows),
                net_minor=sum(r.net_minor for r in rows),
            )
        )
    return totals


def _payouts(day_rows: Sequence[SettlementRow]) -> list[Payout]:
    found: dict[tuple[str, str], list[SettlementRow]] = {}
    for row in day_rows:
        found.setdefault((row.payout_id or NOT_PAID_OUT, row.currency), []).append(row)
    return [
        Payout(
            payout_id=payout_id,
            currency=currency,
            fraction_digits=rows[0].fraction_digits,
            rows=len(rows),
            gross_minor=sum(r.gross_minor for r in rows),
            fee_minor=sum(r.fee_minor for r in rows),
            net_minor=sum(r.net_minor for r in rows),
        )
        for (payout_id, currency), rows in sorted(found.items())
    ]


# -- frames -------------------------------------------------------------------------------

ITEM_COLUMNS = [f.name for f in fields(SettlementItem)] + ["commercetools", "settled", "difference"]
TOTALS_COLUMNS = [f.name for f in fields(CurrencyTotals)] + ["difference_abs", "fees", "net"]
PAYOUT_COLUMNS = ["day", *[f.name for f in fields(Payout)], "net"]
BAD_ROW_COLUMNS = ["file", "line", "balance_transaction_id", "reason"]


def items_frame(items: Iterable[SettlementItem]) -> pd.DataFrame:
    rows = []
    for item in items:
        row = asdict(item)
        row["day"] = item.day.isoformat()
        row["balance_transaction_ids"] = ", ".join(item.balance_transaction_ids)
        row["commercetools"] = display_money(item.commercetools_minor, item.currency)
        row["settled"] = display_money(item.settled_minor, item.currency)
        row["difference"] = display_money(item.difference_minor, item.currency)
        rows.append(row)
    return pd.DataFrame(rows, columns=ITEM_COLUMNS)


def settlement_totals_frame(totals: Iterable[CurrencyTotals]) -> pd.DataFrame:
    rows = []
    for total in totals:
        row = asdict(total)
        row["day"] = total.day.isoformat()
        row["difference_abs"] = display_money(total.difference_abs_minor, total.currency)
        row["fees"] = display_money(total.fee_minor, total.currency)
        row["net"] = display_money(total.net_minor, total.currency)
        rows.append(row)
    return pd.DataFrame(rows, columns=TOTALS_COLUMNS)


def payouts_frame(day: date, payouts: Iterable[Payout]) -> pd.DataFrame:
    rows = []
    for payout in payouts:
        row = asdict(payout)
        row["day"] = day.isoformat()
        row["net"] = display_money(payout.net_minor, payout.currency)
        rows.append(row)
    return pd.DataFrame(rows, columns=PAYOUT_COLUMNS)


def bad_rows_frame(bad: Iterable[BadRow]) -> pd.DataFrame:
    return pd.DataFrame([asdict(b) for b in bad], columns=BAD_ROW_COLUMNS)
