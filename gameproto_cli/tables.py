"""Plain-text tables for the terminal."""

from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Sequence

__all__ = ["table", "cell"]


def cell(value: Any) -> str:
    """One value as a table shows it: numbers without noise, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}" if value != int(value) or abs(value) < 1e15 else f"{value:g}"
    return str(value)


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], headers: Sequence[str] = ()) -> str:
    """``rows`` as an aligned text table of ``columns`` (numbers right-aligned)."""
    titles = list(headers) or [column.replace("_", " ") for column in columns]
    body: List[List[str]] = []
    numeric = [True] * len(columns)
    for row in rows:
        values = [row.get(column) for column in columns]
        for position, value in enumerate(values):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                numeric[position] = False
        body.append([cell(value) for value in values])
    if not body:
        return "  (none)"
    widths = [max(len(title), *(len(line[i]) for line in body)) for i, title in enumerate(titles)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))]
        return "  " + "  ".join(parts).rstrip()

    rule = "  " + "  ".join("-" * w for w in widths)
    return "\n".join([line(titles), rule] + [line(values) for values in body])
