"""What the exchange shows: orders, trades, the public book and its summaries, as JSON-ready values.

Pure functions of the book: a server's web page can show the same public
book and trades (``public_book``, ``trade_view``) that ``/market`` and
``/trades`` answer. Hidden orders never show in the public views.
"""

from __future__ import annotations

import bisect
import functools
from decimal import Decimal
from json.encoder import encode_basestring_ascii as _quote
from typing import Dict, Iterable, List, Optional, Tuple

from .._calls import encode_json, json_number, json_number_text
from .answers import JSONObject, iso
from .book import MONEY, BookOrder, Fill, OrderBook, canonical_duration

__all__ = [
    "Level",
    "order_view",
    "created_json",
    "trade_view",
    "levels",
    "public_book",
    "contract_rows",
    "summary_row",
    "level_row",
    "day_start",
    "DAY",
    "ltp_entries",
    "PLACES",
]

#: Twenty decimal places: the finest amount the exchange keeps.
PLACES = Decimal("1e-20")
#: The span of the 24-hour figures, seconds.
DAY = 86400.0

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


def _as_is(value: Decimal) -> Decimal:
    return value


def order_view(order: BookOrder, *, created: bool = False, expired: bool = False, plain: bool = False) -> JSONObject:
    """An order as its trader sees it: in the creation answer (``ord_`` id) or in the listing.

    ``plain``: the amounts as the JSON numbers they are written as (``json_number``),
    for a view about to be encoded: the encoder then makes no callback per Decimal.
    """
    details = order.details
    state = "Expired" if expired else "Hidden" if order.hidden else "Displayed"
    amount = json_number if plain else _as_is
    average = _rounded(order.average_price)
    return {
        "order_id": f"ord_{order.number}" if created else order.number,
        "direction": order.side,
        "volume": amount(order.volume),
        "price": amount(order.price),
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
        "executed_volume": amount(order.executed),
        "remaining_volume": amount(order.remaining),
        "average_price": None if average is None else amount(average),
        "execution_count": order.execution_count,
        "total_value": amount(order.total_value),
        "fees": amount(order.fees),
        "metadata": {"options": details["options"]} if "options" in details else {},
        "status": "expired" if expired else "filled" if order.filled else "active",
    }


#: The creation answer of an order that nothing has touched yet (no fill, no options), with its
#: values in: what ``encode_json(order_view(order, created=True))`` writes for it, byte for byte
#: (tests/exchange/test_views.py holds the two together), without building the view.
_UNTOUCHED = (
    '{"order_id":"ord_%d","direction":%s,"volume":%s,"price":%s,"state":"%s","contract":%s,"trader":%s,'
    '"date":%s,"start_time":%s,"end_time":%s,"duration":%s,"tz_offset_hours":%d,"created_at":"%s",'
    '"updated_at":"%s","executed_volume":0,"remaining_volume":%s,"average_price":null,"execution_count":0,'
    '"total_value":0,"fees":0,"metadata":{},"status":"active"}'
)


def created_json(order: BookOrder) -> str:
    """The creation answer of ``order`` as JSON text: what ``order_view(order, created=True)`` encodes to.

    An order that nothing has touched yet (the usual resting order) is written
    straight from a template, its amounts as ``json_number_text`` writes them;
    any other goes through ``order_view`` and the encoder.
    """
    details = order.details
    if not (order.execution_count or order.executed or order.total_value or order.fees or "options" in details):
        volume, price, tz = order.volume, order.price, details["tz_offset_hours"]
        if volume > 0 and type(tz) is int:
            volume_text, price_text = json_number_text(volume), json_number_text(price)
            if volume_text is not None and price_text is not None:
                quote = _quote
                return _UNTOUCHED % (
                    order.number,
                    quote(order.side),
                    volume_text,
                    price_text,
                    "Hidden" if order.hidden else "Displayed",
                    quote(order.contract),
                    quote(order.trader),
                    quote(details["date"]),
                    quote(details["start_time"]),
                    quote(details["end_time"]),
                    quote(details["duration"]),
                    tz,
                    iso(order.created),
                    iso(order.updated),
                    volume_text,
                )
    return encode_json(order_view(order, created=True, plain=True)).decode()


def levels(orders: Iterable[BookOrder]) -> List[Level]:
    """Displayed resting volume per price, in book order; hidden orders never show."""
    found: List[Level] = []
    for order in orders:
        if order.hidden:
            continue
        if found and found[-1][0] == order.price:
            found[-1] = (order.price, MONEY.add(found[-1][1], order.remaining))
        else:
            found.append((order.price, order.remaining))
    return found


def public_book(book: OrderBook, contract: str) -> Tuple[List[Level], List[Level]]:
    """The ladder of one contract as any participant sees it: (bids, asks), best first."""
    return levels(book.resting(contract, "buy")), levels(book.resting(contract, "sell"))


def _day_figures(day: List[Fill]) -> JSONObject:
    """High, low, volume and change of the fills of the last 24 hours (``day``, oldest first)."""
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


def day_start(book: OrderBook, contract: str, now: float) -> int:
    """The index of a contract's first fill of the 24 hours before ``now`` (its count when none)."""
    return bisect.bisect_right(book.fill_times.get(contract, []), now - DAY)


def summary_row(
    book: OrderBook,
    contract: str,
    best: Tuple[Optional[Decimal], Optional[Decimal]],
    volume: Decimal,
    first_of_day: int,
    stamp: str,
) -> JSONObject:
    """A contract's summary row: no ``direction``, so readers take its bid and ask.

    ``best`` is the best (bid, ask); ``volume`` the displayed volume of both sides.
    """
    fills = book.fills_by_contract.get(contract, [])
    bid, ask = best
    price: Optional[Decimal]
    if fills:
        price = fills[-1].price
    elif bid is not None and ask is not None:
        price = (bid + ask) / 2
    else:
        price = bid if bid is not None else ask
    row: JSONObject = {
        "timestamp": stamp,
        "contract": contract,
        "duration": canonical_duration(book.contract_minutes(contract)),
        "price": price,
        "volume": volume,
        "bid": bid,
        "ask": ask,
        "spread": None if bid is None or ask is None else ask - bid,
    }
    row.update(_day_figures_of(fills, first_of_day))
    return row


# Each fill list's day figures with the (first, count) they were made from. A summary row is made
# again whenever its contract's book moves (an order placed or cancelled), while its 24 hours of
# fills move far less often: min, max and sum over thousands of fills are not walked each time.
# The list itself is kept with them (fills are only appended to it; a reset makes new lists), so
# its id cannot name another list while it is here.
_DAY_FIGURES: Dict[int, Tuple[List[Fill], int, int, JSONObject]] = {}


def _day_figures_of(fills: List[Fill], first: int) -> JSONObject:
    found = _DAY_FIGURES.get(id(fills))
    if found is not None and found[0] is fills and found[1] == first and found[2] == len(fills):
        return found[3]
    if len(_DAY_FIGURES) >= 4096:  # lists of books long gone: made again when asked for
        _DAY_FIGURES.clear()
    figures = _day_figures(fills[first:])
    _DAY_FIGURES[id(fills)] = (fills, first, len(fills), figures)
    return figures


def level_row(contract: str, minutes: int, side: str, price: Decimal, volume: Decimal) -> JSONObject:
    """One displayed level as a ``/market`` row, without its ``timestamp`` (which comes first)."""
    return {
        "contract": contract,
        "duration": canonical_duration(minutes),
        "direction": side,
        "price": price,
        "volume": volume,
    }


def contract_rows(
    book: OrderBook, contract: str, first_of_day: int, direction: Optional[str] = None
) -> List[JSONObject]:
    """The ``/market`` rows of one contract: its summary, then a row per displayed level of each side shown.

    Built afresh from the resting orders (``MarketData.market_body`` keeps
    the same answer up to date as the book changes). A row's ``timestamp``
    is when the contract's book last changed: the rows are true from then
    on. The 24-hour figures count the fills from ``first_of_day`` (see
    ``day_start``).
    """
    bids, asks = public_book(book, contract)
    shown = {"buy": bids, "sell": asks}
    if not (bids or asks) or (direction is not None and not shown[direction]):
        return []
    stamp = iso(book.versions[contract][1])
    minutes = book.contract_minutes(contract)
    best = (bids[0][0] if bids else None, asks[0][0] if asks else None)
    volume = functools.reduce(MONEY.add, (level for _, level in bids + asks), Decimal(0))
    rows = [summary_row(book, contract, best, volume, first_of_day, stamp)]
    for side, found in shown.items():
        if direction in (None, side):
            for price, volume in found:
                rows.append({"timestamp": stamp, **level_row(contract, minutes, side, price, volume)})
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
