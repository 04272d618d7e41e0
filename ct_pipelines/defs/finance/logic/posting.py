"""Posting a shop day's journal batches to the ERP once: one row per batch, with its status.

A batch the ERP already holds with other lines is corrected, not posted again: the difference
goes out as a correcting journal (``journal.correcting_batch``, batch id ``<original>-c<n>``),
status ``corrected``; once the ERP holds it a re-run finds nothing to correct.
"""

from datetime import date, datetime
from typing import Any

from ct_pipelines.defs.finance.logic.days import day_window
from ct_pipelines.defs.finance.logic.journal import (
    JournalAccounts,
    build_journals,
    correcting_batch,
)
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
            held = [existing] + [
                b for bid, b in sorted(posted.items()) if bid.startswith(batch.batch_id + "-c")
            ]
            correction = correcting_batch(batch, held)
            if correction is None:
                row["status"] = "already_posted"
            elif not post_journals:
                row["status"] = "correction_not_posted"
                row["detail"] = (
                    f"{correction.batch_id} ({len(correction.lines)} lines) waits: "
                    "posting switched off (post_journals=false)"
                )
            else:
                try:
                    posting = port.post_journal_batch(correction)
                    row["status"] = "corrected"
                    row["detail"] = (
                        f"correcting journal {correction.batch_id} ({posting.journal_no}, "
                        f"{len(correction.lines)} lines) for {existing.journal_no}"
                    )
                except ErpConflictError as exc:
                    row["status"], row["detail"] = "posted_differs", str(exc)[:300]
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
