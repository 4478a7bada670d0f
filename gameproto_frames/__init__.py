"""gameproto_frames: every listing of the GAME API as a pandas DataFrame, in one call.

``frame(api.get_orders())``, ``frame(api.get_trades())``,
``frame(api.positions())``, ``frame(api.get_market_data())``,
``frame(api.get_spot_data())``, ``frame(api.get_latest_available_ltp())``,
``frame(api.get_market_best_offers())``:
one row per entry, indexed by the delivery start of its contract
(``delivery_start``, tz-aware UTC), with ``delivery_end``, the local
``delivery_day`` and its ``period`` (quarter-hour number) beside the
exchange's fields; prices, volumes and amounts are numbers, times are
tz-aware timestamps. Needs pandas (``pip install "pandas>=2.0"``, the
``pandas`` extra); neither client
imports this module.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from gameproto._extras import install_hint

try:
    import pandas as pd
except ImportError as missing:  # pragma: no cover - the extra is not installed
    raise ImportError(f"gameproto_frames needs pandas: {install_hint('pandas')} ({missing})") from None

from gameproto.risk import Contract, Positions

__all__ = ["frame", "NUMERIC_FIELDS", "TIME_FIELDS"]

#: Fields read as numbers wherever they appear (a missing or unreadable value is NaN).
NUMERIC_FIELDS = (
    "price", "volume", "remaining_volume", "executed_volume", "average_price", "total_value", "fees",
    "bid", "ask", "spread", "high_24h", "low_24h", "volume_24h", "change_24h", "change_percent_24h",
    "execution_count", "bought", "sold", "net", "buy_vwap", "sell_vwap", "cash", "bought_value", "sold_value",
    "trades",
)  # fmt: skip
#: Fields read as tz-aware UTC timestamps.
TIME_FIELDS = ("timestamp", "created_at", "updated_at", "execution_time", "last_update", "next_update")
_INDEX = "delivery_start"


def _contract_of(row: Mapping[str, Any]) -> Optional[Contract]:
    try:
        if isinstance(row.get("contract"), str):
            return Contract.parse(row["contract"])
        if "date" in row and "start_time" in row:
            return Contract.from_order(row, check_offset=False)
    except ValueError:
        return None
    return None


def _position_rows(held: Positions) -> List[Dict[str, Any]]:
    return [
        {
            "contract": contract.id,
            "bought": position.bought,
            "sold": position.sold,
            "net": position.net,
            "buy_vwap": position.buy_vwap,
            "sell_vwap": position.sell_vwap,
            "cash": position.cash,
            "bought_value": position.bought_value,
            "sold_value": position.sold_value,
            "fees": position.fees,
            "trades": position.trades,
        }
        for contract, position in held.contracts.items()
    ]


def _is_best_offers(listing: Mapping[Any, Any]) -> bool:
    """``get_market_best_offers()``: each contract's ``{"buy": [...], "sell": [...]}``."""
    return bool(listing) and all(
        isinstance(sides, Mapping)
        and set(sides) == {"buy", "sell"}
        and all(isinstance(rows, list) for rows in sides.values())
        for sides in listing.values()
    )


def _level_rows(offers: Mapping[str, Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """One row per level of ``get_market_best_offers()``: contract, side, rank (1 is the best), price, volume."""
    rows: List[Dict[str, Any]] = []
    for contract, sides in offers.items():
        for side in ("buy", "sell"):
            for rank, level in enumerate(sides[side], start=1):
                row = {"contract": contract, "side": side, "rank": rank, "price": level.get("price"),
                       "volume": level.get("volume")}  # fmt: skip
                if "timestamp" in level:
                    row["timestamp"] = level["timestamp"]
                rows.append(row)
    return rows


#: A ``/market`` summary row's own fields (a trade, an order or a spot entry has other ones).
_SUMMARY_FIELDS = frozenset({"bid", "ask", "spread"})
_NOT_MARKET = frozenset({"trade_id", "id", "order_id", "buyer", "seller", "side", "state", "order_book"})


def _market_kind(row: Mapping[str, Any]) -> Optional[str]:
    """``"summary"`` or ``"level"`` for a ``/market`` row, None for a row of any other listing."""
    if _NOT_MARKET & set(row):
        return None
    if row.get("direction") in ("buy", "sell"):
        return "level"
    if _SUMMARY_FIELDS & set(row):
        return "summary"
    return None


def _rows(listing: Any) -> Sequence[Mapping[str, Any]]:
    if isinstance(listing, Positions):
        return _position_rows(listing)
    if isinstance(listing, Mapping) and _is_best_offers(listing):
        return _level_rows(listing)
    if isinstance(listing, Mapping):
        # get_latest_ltp(): one entry per contract, keyed by it.
        return [dict(value, contract=key) if isinstance(value, Mapping) else {"contract": key, "value": value}
                for key, value in listing.items()]  # fmt: skip
    if isinstance(listing, Iterable) and not isinstance(listing, (str, bytes)):
        rows = list(listing)
        for number, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise TypeError(f"frame() takes a listing of objects; entry {number} is {type(row).__name__}")
        return rows
    raise TypeError(
        f"frame() takes a listing (orders, trades, market, spot, LTP) or positions, got {type(listing).__name__}"
    )


def _number(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return float("nan")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, Decimal):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return float("nan")


def frame(listing: Any) -> pd.DataFrame:
    """A DataFrame of ``listing``, indexed by delivery start (UTC), numbers as numbers, times as timestamps.

    An entry whose contract cannot be read keeps NaT as its delivery start.
    Rows are sorted by delivery start; the exchange's fields are kept. Market
    data gets a ``kind`` column: ``summary`` for a contract's summary row
    (bid, ask, 24-hour figures), ``level`` for a row of its ladder
    (``direction``, ``price``, ``volume``). Best offers
    (``get_market_best_offers()``) are one row per level: ``contract``,
    ``side``, ``rank`` (1 is the best price), ``price``, ``volume``.
    """
    rows = _rows(listing)
    contracts = [_contract_of(row) for row in rows]
    table = pd.DataFrame([dict(row) for row in rows])
    kinds = [_market_kind(row) for row in rows]
    if rows and None not in kinds and "kind" not in table.columns:
        # get_market_data(): a contract's summary and its ladder, told apart.
        table["kind"] = kinds
    starts = [contract.start if contract else None for contract in contracts]
    table[_INDEX] = pd.to_datetime(pd.Series(starts, dtype="object"), utc=True)
    table["delivery_end"] = pd.to_datetime(
        pd.Series([c.end if c else None for c in contracts], dtype="object"), utc=True
    )
    table["delivery_day"] = [c.delivery_day if c else None for c in contracts]
    table["period"] = pd.array([c.quarter_hour if c else None for c in contracts], dtype="Int64")
    table["minutes"] = pd.array([c.minutes if c else None for c in contracts], dtype="Int64")
    for name in NUMERIC_FIELDS:
        if name in table.columns:
            table[name] = pd.to_numeric(table[name].map(_number), errors="coerce")
    for name in TIME_FIELDS:
        if name in table.columns:
            table[name] = pd.to_datetime(table[name], utc=True, errors="coerce", format="ISO8601")
    table = table.set_index(_INDEX).sort_index(kind="stable")
    return table
