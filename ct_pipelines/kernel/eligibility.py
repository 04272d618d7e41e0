"""Which orders belong in the ERP: paid or authorised, and not cancelled (one rule for every flow)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_PAYMENT_STATES = frozenset({"Paid"})


DEFAULT_TRANSACTION_TYPES = frozenset({"Authorization", "Charge"})


def enum_value(enum_or_str: Any) -> str | None:
    if enum_or_str is None:
        return None
    return str(getattr(enum_or_str, "value", enum_or_str))


@dataclass(frozen=True)
class EligibilityRule:
    """When an order may go to the ERP: paid or authorised, and not cancelled.

    An order qualifies when its ``paymentState`` is one of ``payment_states`` or, failing that,
    when one of its payments carries a successful transaction of ``transaction_types``
    (an authorisation is enough for most merchants; set ``transaction_types`` to ``{"Charge"}``
    to export only captured payments).
    """

    payment_states: frozenset[str] = DEFAULT_PAYMENT_STATES
    transaction_types: frozenset[str] = DEFAULT_TRANSACTION_TYPES


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reason: str


def successful_transaction_types(order: Any) -> set[str]:
    """Types of the Success transactions on the order's expanded payments."""
    found: set[str] = set()
    info = getattr(order, "payment_info", None)
    for ref in getattr(info, "payments", None) or []:
        payment = getattr(ref, "obj", None)
        for tx in getattr(payment, "transactions", None) or []:
            if enum_value(tx.state) == "Success":
                found.add(str(enum_value(tx.type)))
    return found


def eligibility(order: Any, rule: EligibilityRule = EligibilityRule()) -> Eligibility:
    if enum_value(order.order_state) == "Cancelled":
        return Eligibility(False, "order is cancelled")
    payment_state = enum_value(order.payment_state)
    if payment_state in rule.payment_states:
        return Eligibility(True, f"paymentState {payment_state}")
    matched = successful_transaction_types(order) & rule.transaction_types
    if matched:
        return Eligibility(True, "successful " + "/".join(sorted(matched)) + " transaction")
    if payment_state:
        return Eligibility(
            False, f"paymentState {payment_state} and no successful payment transaction"
        )
    return Eligibility(False, "no paymentState and no successful payment transaction")
