"""Asset metadata the Dagster UI understands: row count, column schema and a preview."""

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
