"""Posting a shop day's journal batches to the ERP once: one row per batch, with its status."""

from datetime import date, datetime
from typing import Any

from ct_pipelines.defs.finance.logic.days import day_window
from ct_pipelines.defs.finance.logic.journal import JournalAccounts, build_journals
from ct_pipelines.erp.errors import ErpConflictError
from ct_pipelines.kernel.shop import SHOP

JOURNAL_COLUMNS = [
    "day",
    "batch_id",
    "currency",
    "fraction_digits",
    "status",
    "journal_no",
    "total_debit_minor",
    "line_count",
    "detail",
]


def journal_rows(
    day: date,
    facts_orders: list[Any],
    facts_transactions: list[Any],
    accounts: JournalAccounts,
    post_journals: bool,
    port: Any,
    now: datetime,
    log: Any,
) -> list[dict[str, Any]]:
    """Build the day's batches and post those the ERP does not hold yet; one row per batch."""
    eligible = [o for o in facts_orders if o.eligible]
    batches = build_journals(day, eligible, facts_transactions, accounts)
    if not batches:
        return []
    _, end = day_window(day, SHOP.tz)
    posted = {b.batch_id: b for b in port.iter_journal_batches(day)}
    rows = []
    for batch in batches:
        total = sum(line.debit_minor for line in batch.lines)
        row = {
            "day": day.isoformat(),
            "batch_id": batch.batch_id,
            "currency": batch.currency,
            "fraction_digits": batch.fraction_digits,
            "journal_no": None,
            "total_debit_minor": total,
            "line_count": len(batch.lines),
            "detail": "",
        }
        existing = posted.get(batch.batch_id)
        if existing is not None:
            row["journal_no"] = existing.journal_no
            if existing.lines == batch.lines:
                row["status"] = "already_posted"
            else:
                # Posted once and kept: the reconciliation shows what changed since.
                row["status"] = "posted_differs"
                posted_total = sum(line.debit_minor for line in existing.lines)
                row["detail"] = (
                    f"the ERP holds {len(existing.lines)} lines for {posted_total} minor units; "
                    f"commercetools now gives {len(batch.lines)} lines for {total}"
                )
        elif end > now:
            row["status"] = "day_not_over"
            row["detail"] = f"the shop day ends {end.isoformat()}; posted after that"
        elif not post_journals:
            row["status"] = "not_posted"
            row["detail"] = "posting switched off (post_journals=false)"
        else:
            try:
                posting = port.post_journal_batch(batch)
                row["status"], row["journal_no"] = "posted", posting.journal_no
            except ErpConflictError as exc:
                # Another run posted this batch id with other lines in the meantime.
                row["status"], row["detail"] = "posted_differs", str(exc)[:300]
        log.info("journal %s: %s", batch.batch_id, row["status"])
        rows.append(row)
    return rows
