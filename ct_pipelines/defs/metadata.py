"""Asset metadata the Dagster UI understands: row count, column schema, previews and tables."""

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import pandas as pd

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
