"""Summaries of a product sync plan for its report."""

from collections import Counter

from ct_pipelines.defs.product_master.logic.planner import ProductPlan


def issue_counts(plan: ProductPlan) -> dict[str, int]:
    return dict(sorted(Counter(issue.kind for issue in plan.issues).items()))
