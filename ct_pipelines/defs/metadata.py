"""Asset metadata the Dagster UI understands: row count, column schema, previews and tables."""

import re
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import pandas as pd

from ct_pipelines.kernel.money import CURRENCY_FRACTION_DIGITS, display_amounts, display_money

_DTYPES = {
    "i": "integer",
    "u": "integer",
    "b": "boolean",
    "f": "float",
    "M": "datetime",
    "O": "string",
}


def column_schema(
    frame: pd.DataFrame, descriptions: dict[str, str] | None = None
) -> dg.TableSchema:
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                str(name),
                _DTYPES.get(frame[name].dtype.kind, str(frame[name].dtype)),
                description=descriptions.get(str(name)),
            )
            for name in frame.columns
        ]
    )


def frame_metadata(
    frame: pd.DataFrame,
    *,
    descriptions: dict[str, str] | None = None,
    preview_rows: int = 10,
) -> dict[str, Any]:
    return {
        "dagster/row_count": len(frame),
        "dagster/column_schema": column_schema(frame, descriptions),
        "preview": dg.MetadataValue.md(frame.head(preview_rows).to_markdown(index=False)),
    }


def markdown_table(
    rows: pd.DataFrame | Sequence[Mapping[str, Any]],
    limit: int | None = None,
    *,
    columns: Sequence[str] | None = None,
    empty: str = "none",
    say_more: bool = False,
) -> dg.MetadataValue:
    """A table as markdown metadata: the first ``limit`` rows (all when None) of ``columns``
    (all when None); ``empty`` when there is nothing to show. ``say_more`` adds how many rows
    the limit left out."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if frame.empty:
        return dg.MetadataValue.md(empty)
    if columns is not None:
        frame = frame[list(columns)]
    more = ""
    if limit is not None:
        if say_more and len(frame) > limit:
            more = f"\n\n… and {len(frame) - limit} more"
        frame = frame.head(limit)
    return dg.MetadataValue.md(frame.to_markdown(index=False) + more)


def with_tables(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Plain metadata from a logic module, its data frames turned into markdown tables."""
    return {
        key: markdown_table(value) if isinstance(value, pd.DataFrame) else value
        for key, value in metadata.items()
    }


def report_partitions(
    context: dg.AssetExecutionContext,
    by_partition: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """Give each partition of a (single-run backfill) run its own metadata.

    Dagster writes one materialisation event per partition; metadata returned in the
    ``MaterializeResult`` lands on every one of them, so per-day counts there would show the
    whole run's totals on each day. Each partition's metadata is attached to its own event
    (``add_asset_metadata(partition_key=...)``) instead; what this returns is run-wide only:
    how many partitions the run covered and, for a range, the run's totals of the integer
    values (``run_totals``), so nobody reads them as one day's numbers.
    """
    for key, metadata in by_partition.items():
        context.add_asset_metadata(dict(metadata), partition_key=key)
    run: dict[str, Any] = {"partitions": len(by_partition)}
    if len(by_partition) > 1:
        totals: dict[str, int] = {}
        for metadata in by_partition.values():
            for name, value in metadata.items():
                raw = value.value if isinstance(value, dg.IntMetadataValue) else value
                if isinstance(raw, int) and not isinstance(raw, bool):
                    totals[name.removeprefix("dagster/")] = totals.get(
                        name.removeprefix("dagster/"), 0
                    ) + int(raw)
        run["run_totals"] = dg.MetadataValue.json(totals)
    return run


def results_metadata(
    frame: pd.DataFrame,
    *,
    descriptions: dict[str, str] | None = None,
    preview_rows: int = 10,
    preview_columns: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``frame_metadata`` whose preview leaves out wide columns but whose schema has them all."""
    shown = frame if preview_columns is None else frame[list(preview_columns)]
    metadata = frame_metadata(shown, descriptions=descriptions, preview_rows=preview_rows)
    metadata["dagster/column_schema"] = column_schema(frame, descriptions)
    return metadata


def money_text(amounts: Mapping[str, int]) -> str:
    """Amounts in minor units by currency, as people read them (``GBP 12,702.82``)."""
    return display_amounts(amounts)


_MINOR_KEY = re.compile(r"^(?P<name>.+)_minor_(?P<currency>[A-Z]{3})$")
RUNBOOK = "docs/runbook.md"


def with_money_text(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Beside every ``<name>_minor_<CUR>`` integer, ``<name>_<CUR>`` as people read it
    (``variance_abs_minor_GBP: 27370`` gains ``variance_abs_GBP: "GBP 273.70"``)."""
    out = dict(metadata)
    for key, value in metadata.items():
        match = _MINOR_KEY.match(key)
        raw = getattr(value, "value", value)
        if (
            match
            and isinstance(raw, int)
            and not isinstance(raw, bool)
            and match["currency"] in CURRENCY_FRACTION_DIGITS
        ):
            out.setdefault(
                f"{match['name']}_{match['currency']}", display_money(raw, match["currency"])
            )
    return out


def runbook_hint(check: str) -> str:
    """Where a failing check's operator finds what to do: a section of the runbook, named by
    the check (its heading there is ``### `<check>` ...``)."""
    return f"Runbook: {RUNBOOK}, section `{check}`."


def check_text(check: str, passed: bool, ok: str, failed: str, todo: str) -> str:
    """A check result as an operator reads it: ``ok`` when it passed; else what failed, what to
    do and the runbook section (``failed`` and ``todo`` are sentences without a final stop)."""
    if passed:
        return ok
    return f"{failed}. What to do: {todo}. {runbook_hint(check)}"
