"""What the exchange shows: orders, trades, the public book and its summaries, as JSON-ready values.

Pure functions of the book: a server's web page can show the same public
book and trades (``public_book``, ``trade_view``) that ``/market`` and
``/trades`` answer. Hidden orders never show in the public views.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable, List, Optional, Tuple

from .answers import JSONObject, iso
from .book import MONEY, BookOrder, Fill, OrderBook, canonical_duration

__all__ = [
    "Level",
    "order_view",
    "trade_view",
    "levels",
    "public_book",
    "contract_rows",
    "ltp_entries",
    "PLACES",
]

#: Twenty decimal places: the finest amount the exchange keeps.
PLACES = Decimal("1e-20")
_DAY = 86400.0

Level = Tuple[Decimal, Decimal]


def trade_view(fill: Fill, market_zone: str) -> JSONObject:
    stamp = iso(fill.time)
    return {
        "trade_id": f"trd_{fill.number}",
        "contract": fill.contract,
        "direction": fill.direction,
        "volume": fill.volume,
        "price": fill.price,
        "timestamp": stamp,
        "buyer": fill.buyer,
        "seller": fill.seller,
        "fees": fill.fee,
        "duration": canonical_duration(fill.minutes),
        "execution_time": stamp,
        "buy_order_id": fill.buy_order,
        "sell_order_id": fill.sell_order,
        "market_zone": market_zone,
    }


def _rounded(value: Optional[Decimal]) -> Optional[Decimal]:
    # A quotient has no exact form; twenty places are finer than any price this exchange takes.
    return None if value is None else value.quantize(PLACES, context=MONEY)


def order_view(order: BookOrder, *, created: bool = False, expired: bool = False) -> JSONObject:
    """An order as its trader sees it: in the creation answer (``ord_`` id) or in the listing."""
    details = order.details
    state = "Expired" if expired else "Hidden" if order.hidden else "Displayed"
    return {
        "order_id": f"ord_{order.number}" if created else order.number,
        "direction": order.side,
        "volume": order.volume,
        "price": order.price,
        "state": state,
        "contract": order.contract,
        "trader": order.trader,
        "date": details["date"],
        "start_time": details["start_time"],
        "end_time": details["end_time"],
        "duration": details["duration"],
        "tz_offset_hours": details["tz_offset_hours"],
        "created_at": iso(order.created),
        "updated_at": iso(order.updated),
        "executed_volume": order.executed,
        "remaining_volume": order.remaining,
        "average_price": _rounded(order.average_price),
        "execution_count": order.execution_count,
        "total_value": order.total_value,
        "fees": order.fees,
        "metadata": {"options": details["options"]} if "options" in details else {},
        "status": "expired" if expired else "filled" if order.filled else "active",
    }


def levels(orders: Iterable[BookOrder]) -> List[Level]:
    """Displayed resting volume per price, in book order; hidden orders never show."""
    found: List[Level] = []
    for order in orders:
        if order.hidden:
            continue
        if found and found[-1][0] == order.price:
            found[-1] = (order.price, found[-1][1] + order.remaining)
        else:
            found.append((order.price, order.remaining))
    return found


def public_book(book: OrderBook, contract: str) -> Tuple[List[Level], List[Level]]:
    """The ladder of one contract as any participant sees it: (bids, asks), best first."""
    return levels(book.resting(contract, "buy")), levels(book.resting(contract, "sell"))


def _day_figures(fills: List[Fill], now: float) -> JSONObject:
    day = [fill for fill in fills if fill.time > now - _DAY]
    if not day:
        return {"high_24h": None, "low_24h": None, "volume_24h": 0, "change_24h": None, "change_percent_24h": None}
    first, last = day[0].price, day[-1].price
    change = last - first
    return {
        "high_24h": max(fill.price for fill in day),
        "low_24h": min(fill.price for fill in day),
        "volume_24h": sum((fill.volume for fill in day), Decimal(0)),
        "change_24h": change,
        "change_percent_24h": None if first == 0 else (change * 100 / first).quantize(Decimal("0.01")),
    }


def _summary(common: JSONObject, bids: List[Level], asks: List[Level], fills: List[Fill], now: float) -> JSONObject:
    """A contract's summary row: no ``direction``, so readers take its bid and ask."""
    bid = bids[0][0] if bids else None
    ask = asks[0][0] if asks else None
    price: Optional[Decimal]
    if fills:
        price = fills[-1].price
    elif bid is not None and ask is not None:
        price = (bid + ask) / 2
    else:
        price = bid if bid is not None else ask
    row: JSONObject = {"timestamp": iso(now), **common}
    row.update(
        price=price,
        volume=sum((volume for _, volume in bids + asks), Decimal(0)),
        bid=bid,
        ask=ask,
        spread=None if bid is None or ask is None else ask - bid,
    )
    row.update(_day_figures(fills, now))
    return row


def contract_rows(
    contract: str,
    minutes: int,
    bids: List[Level],
    asks: List[Level],
    fills: List[Fill],
    now: float,
    direction: Optional[str] = None,
) -> List[JSONObject]:
    """The ``/market`` rows of one contract: its summary, then a row per displayed level of each side shown."""
    shown = {"buy": bids, "sell": asks}
    if not (bids or asks) or (direction is not None and not shown[direction]):
        return []
    stamp = iso(now)
    common = {"contract": contract, "duration": canonical_duration(minutes)}
    rows = [_summary(common, bids, asks, fills, now)]
    for side, found in shown.items():
        if direction in (None, side):
            rows.extend(
                dict(common, direction=side, price=price, volume=volume, timestamp=stamp) for price, volume in found
            )
    return rows


def ltp_entries(book: OrderBook, market_zone: str, minutes: Optional[int]) -> List[JSONObject]:
    """The last traded price of each contract that traded, in name order; one duration if given."""
    return [
        {
            "market_zone": market_zone,
            "contract": contract,
            "price": fills[-1].price,
            "volume": fills[-1].volume,
            "timestamp": iso(fills[-1].time),
        }
        for contract, fills in sorted(book.fills_by_contract.items())
        if minutes in (None, fills[-1].minutes)
    ]
