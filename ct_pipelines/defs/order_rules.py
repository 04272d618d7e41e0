"""The order rules order-to-cash and finance share: which orders belong in the ERP, and the
tax-code table. Declared once, so the two flows cannot drift apart; the run-config field names
are the same in both flows' config."""

from decimal import Decimal

import dagster as dg

from ct_pipelines.kernel.eligibility import EligibilityRule
from ct_pipelines.kernel.tax import TaxCodeTable


class OrderRulesConfig(dg.Config):
    """Eligibility (paid or authorised, not cancelled) and commercetools tax -> ERP tax code."""

    eligible_payment_states: list[str] = ["Paid"]
    eligible_transaction_types: list[str] = ["Authorization", "Charge"]
    tax_codes_by_rate: dict[str, str] = {"0.2": "S", "0.05": "R", "0": "Z"}
    tax_codes_by_category: dict[str, str] = {}

    def rule(self) -> EligibilityRule:
        return EligibilityRule(
            payment_states=frozenset(self.eligible_payment_states),
            transaction_types=frozenset(self.eligible_transaction_types),
        )

    def tax_codes(self) -> TaxCodeTable:
        return TaxCodeTable(
            by_rate={Decimal(rate): code for rate, code in self.tax_codes_by_rate.items()},
            by_category=dict(self.tax_codes_by_category),
        )
