"""The sandbox payment provider's settlement file: Stripe's itemized balance report, as CSV.

A stand-in for the report a shop downloads from Stripe (Reports > Balance > "Balance change
from activity", itemized): one row per balance transaction of the shop's Stripe payments, with
Stripe's column names, decimal amounts in major units (``12.34``), lower-case currency codes,
negative refunds and disputes, Stripe-like fees (1.5 % + 20 minor units a charge, 15.00 a
dispute) and the payout that carries each row. Each payment's metadata names its commercetools
payment (``payment_metadata[commercetools_payment_id]``) and order number.

The world rewrites the file when it is seeded and whenever trade advances, covering every shop
day that is over by the simulated clock. A world seeded with planted findings leaves one
charge out of the file and settles another for 1.00 less than commercetools recorded
(``pick_faults``), so the settlement reconciliation has something to find.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import random
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ct_sandbox.currencies import CURRENCY_DIGITS

REPORT_DIR = "settlements"
REPORT_NAME = "stripe_balance_change_from_activity_itemized.csv"
PROVIDER = "stripe"
COLUMNS = [
    "balance_transaction_id",
    "created_utc",
    "available_on_utc",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
    "source_id",
    "description",
    "payment_intent_id",
    "automatic_payout_id",
    "payment_metadata[commercetools_payment_id]",
    "payment_metadata[commercetools_order_number]",
]
CATEGORIES = {"Charge": "charge", "Refund": "refund", "Chargeback": "dispute"}
MISSING_CHARGE = "missing_charge"
AMOUNT_MISMATCH = "amount_mismatch"
SHORT_BY_MINOR = 100


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _id(prefix: str, *parts: str) -> str:
    return prefix + hashlib.sha256("/".join(parts).encode()).hexdigest()[:24]


def _decimal(minor: int, digits: int) -> str:
    return f"{Decimal(minor).scaleb(-digits):.{digits}f}"


def fee_minor(category: str, gross_minor: int, digits: int) -> int:
    """Stripe-like pricing: 1.5 % + 20 minor units a charge, 15.00 a dispute, nothing else."""
    if category == "charge":
        return int((Decimal(gross_minor) * Decimal("0.015")).quantize(0, ROUND_HALF_UP)) + 20
    if category == "dispute":
        return 15 * 10**digits
    return 0


def stripe_charges(
    payments: Iterable[Mapping[str, Any]],
) -> list[tuple[datetime, str, str]]:
    """(time, payment id, transaction id) of every successful Stripe charge."""
    found = []
    for payment in payments:
        if payment.get("paymentMethodInfo", {}).get("paymentInterface") != PROVIDER:
            continue
        for tx in payment.get("transactions", []):
            if tx.get("type") == "Charge" and tx.get("state") == "Success":
                found.append((_parse(tx["timestamp"]), payment["id"], tx["id"]))
    return sorted(found)


def pick_faults(
    payments: Iterable[Mapping[str, Any]], start: datetime, end: datetime, seed: int
) -> dict[str, str]:
    """Two Stripe charges between ``start`` and ``end``: one left out, one settled short."""
    candidates = [tx for moment, _, tx in stripe_charges(payments) if start <= moment < end]
    if len(candidates) < 2:
        return {}
    missing, short = random.Random(f"{seed}/settlement").sample(candidates, 2)
    return {MISSING_CHARGE: missing, AMOUNT_MISMATCH: short}


def report_rows(
    payments: Iterable[Mapping[str, Any]],
    order_numbers: Mapping[str, str],
    until: datetime,
    faults: Mapping[str, str],
) -> list[dict[str, str]]:
    """The report's rows: every Stripe Charge, Refund and Chargeback before ``until``."""
    rows: list[tuple[datetime, dict[str, str]]] = []
    for payment in payments:
        if payment.get("paymentMethodInfo", {}).get("paymentInterface") != PROVIDER:
            continue
        for tx in payment.get("transactions", []):
            category = CATEGORIES.get(tx.get("type", ""))
            if category is None or tx.get("state") != "Success":
                continue
            moment = _parse(tx["timestamp"])
            if moment >= until or tx["id"] == faults.get(MISSING_CHARGE):
                continue
            amount = tx["amount"]
            currency = amount["currencyCode"]
            digits = CURRENCY_DIGITS[currency]
            gross = int(amount["centAmount"])
            if tx["id"] == faults.get(AMOUNT_MISMATCH):
                gross = gross - SHORT_BY_MINOR if gross > SHORT_BY_MINOR else gross - 1
            if category != "charge":
                gross = -gross
            fee = fee_minor(category, abs(gross), digits)
            available = (moment + timedelta(days=2)).date()
            rows.append(
                (
                    moment,
                    {
                        "balance_transaction_id": _id("txn_", tx["id"]),
                        "created_utc": moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                        "available_on_utc": f"{available.isoformat()} 00:00:00",
                        "currency": currency.lower(),
                        "gross": _decimal(gross, digits),
                        "fee": _decimal(fee, digits),
                        "net": _decimal(gross - fee, digits),
                        "reporting_category": category,
                        "source_id": tx.get("interactionId") or "",
                        "description": f"{category} for {order_numbers.get(payment['id'], '')}",
                        "payment_intent_id": payment.get("interfaceId") or "",
                        "automatic_payout_id": _id("po_", currency, available.isoformat()),
                        "payment_metadata[commercetools_payment_id]": payment["id"],
                        "payment_metadata[commercetools_order_number]": order_numbers.get(
                            payment["id"], ""
                        ),
                    },
                )
            )
    return [row for _, row in sorted(rows, key=lambda r: (r[0], r[1]["balance_transaction_id"]))]


def order_numbers_by_payment(orders: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    found = {}
    for order in orders:
        for ref in order.get("paymentInfo", {}).get("payments", []):
            found[ref["id"]] = order.get("orderNumber") or order["id"]
    return found


def day_start(moment: datetime, tz: ZoneInfo) -> datetime:
    """The start of ``moment``'s shop day, in UTC."""
    local: date = moment.astimezone(tz).date()
    return datetime.combine(local, time(0), tzinfo=tz).astimezone(UTC)


def write_report(directory: Path, rows: Iterable[Mapping[str, str]]) -> Path:
    """Write the report atomically (a reader never sees half a file); its path."""
    directory.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = directory / REPORT_NAME
    partial = path.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(out.getvalue(), encoding="utf-8")
    os.replace(partial, path)
    return path
