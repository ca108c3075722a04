"""The harness's tables: statistics over repetitions and Markdown rows (``bench/harness.py``,
``bench/cluster.py``)."""

from __future__ import annotations

import statistics
from typing import Any

#: the columns of the measures table (one figure a row)
MEASURES = ["measure", "median", "min", "max", "unit", "note"]


def spread(values: list[float], digits: int = 2) -> dict[str, float]:
    """Median, min and max of ``values`` (repetitions), rounded to ``digits``."""
    return {"median": round(statistics.median(values), digits),
            "min": round(min(values), digits), "max": round(max(values), digits)}


def format_row(row: dict[str, Any], columns: list[str]) -> str:
    return "| " + " | ".join(str(row.get(c, "")) for c in columns) + " |"


def head(columns: list[str]) -> str:
    return "| " + " | ".join(columns) + " |"


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A Markdown table of ``rows`` (a missing column is empty)."""
    return (head(columns) + "\n|" + "---|" * len(columns) + "\n"
            + "\n".join(format_row(r, columns) for r in rows) + "\n")
