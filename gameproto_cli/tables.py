"""Plain-text tables for the terminal, and the JSON that ``--json`` prints."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, Iterable, List, Mapping, Sequence, Tuple

__all__ = ["table", "cell", "fields", "flatten", "as_json", "order_name"]

LIST_SHOWN = 4
_ORDER_NUMBER = re.compile(r"(?:ord_)?([0-9]+)")


def order_name(order_id: Any) -> str:
    """An order's id in the one form every table and message shows: ``ord_1234``.

    The exchange answers ``"ord_1234"`` on creation and ``1234`` in listings;
    every command takes either back.
    """
    if type(order_id) is int and order_id >= 0:
        return f"ord_{order_id}"
    match = _ORDER_NUMBER.fullmatch(str(order_id)) if isinstance(order_id, str) else None
    return f"ord_{match.group(1)}" if match else cell(order_id)


def _number_text(value: float) -> str:
    # The shortest text that reads back as the same float: a price of 95.125
    # must not show as 95.12, and 95.0 reads better as 95.
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def cell(value: Any) -> str:
    """One value as a table shows it: numbers without noise or rounding, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, (list, tuple)):
        if len(value) > LIST_SHOWN:  # a cell is one line: the rest is for --json
            return ", ".join(cell(item) for item in value[:LIST_SHOWN]) + f", ... ({len(value)} in all)"
        return ", ".join(cell(item) for item in value) if value else "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {cell(item)}" for key, item in value.items()) if value else "-"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], headers: Sequence[str] = ()) -> str:
    """``rows`` as an aligned text table of ``columns`` (numbers right-aligned)."""
    titles = list(headers) or [column.replace("_", " ") for column in columns]
    body: List[List[str]] = []
    numeric = [True] * len(columns)
    for row in rows:
        values = [row.get(column) for column in columns]
        for position, value in enumerate(values):
            if value is not None and not _is_number(value):
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


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> List[Tuple[str, Any]]:
    """Nested mappings as ``(dotted.key, value)`` pairs, in the answer's order."""
    pairs: List[Tuple[str, Any]] = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            pairs.extend(flatten(value, name + "."))
        else:
            pairs.append((name, value))
    return pairs


def fields(mapping: Mapping[str, Any], keys: Sequence[str] = ()) -> str:
    """One object as two aligned columns, name then value (nested objects flattened).

    ``keys`` picks and orders the names shown; without it every field is shown.
    """
    pairs = flatten(mapping)
    if keys:
        known = dict(pairs)
        pairs = [(key, known[key]) for key in keys if key in known]
    if not pairs:
        return "  (nothing)"
    width = max(len(name) for name, _ in pairs)
    # Names as the JSON has them, so that what a table shows is what a script would ask for.
    return "\n".join(f"  {name.ljust(width)}  {cell(value)}".rstrip() for name, value in pairs)


def as_json(value: Any) -> str:
    """The JSON that ``--json`` prints: indented, Decimals as strings so nothing is rounded."""
    return json.dumps(value, indent=2, default=str)
