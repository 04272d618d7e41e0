"""Tryton's VAT on the net as the adapter predicts it (the real-server test checks the
prediction against trytond: test_tryton_port.py)."""

from __future__ import annotations

from decimal import Decimal

from ct_pipelines.erp.tryton.adapter import tryton_vat_minor

S, R = Decimal("0.20"), Decimal("0.05")


def test_document_rounding_sums_a_tax_before_rounding() -> None:
    lines = [
        ("S", S, Decimal("20.82"), 1),
        ("R", R, Decimal("12.30"), 1),
        ("S", S, Decimal("3.29"), 1),
    ]
    # 20 %: 4.164 + 0.658 = 4.822 -> 4.82; 5 %: 0.615 -> 0.62 (half even)
    assert tryton_vat_minor(lines, 2) == {"S": 482, "R": 62}


def test_line_rounding_rounds_each_line() -> None:
    lines = [("S", S, Decimal("0.0250"), 1), ("S", S, Decimal("0.0250"), 1)]
    # 0.005 each: per line half even 0.00 + 0.00; per document 0.01
    assert tryton_vat_minor(lines, 2, "line") == {"S": 0}
    assert tryton_vat_minor(lines, 2, "document") == {"S": 1}


def test_negative_bases_round_apart_from_positive_ones() -> None:
    lines = [("S", S, Decimal("0.0300"), 1), ("S", S, Decimal("-0.0200"), 1)]
    # Tryton groups by the sign of the base: 0.006 -> 0.01 and -0.004 -> -0.00 (together the
    # 0.002 would round to nothing)
    assert tryton_vat_minor(lines, 2) == {"S": 1}
    assert tryton_vat_minor([("S", S, Decimal("20.8350"), 2)], 2) == {"S": 833}
