"""A live book for a new user: market makers' quotes and a few past trades.

Prices follow the spot curve of the exchange's seed (``spot.hourly_point``),
so the same seed and the same moment give the same book. The orders go
through the same checks and matching as any trader's (the ``place`` given).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from decimal import Decimal
from typing import Any, Callable, Dict, List, Optional, Tuple

from .._errors import OrderProblem
from . import spot
from .book import BookOrder

__all__ = ["MARKET_MAKERS", "Place", "seed_market"]

#: The traders ``seed_market`` quotes for; no personal token belongs to them.
MARKET_MAKERS = ("market-maker-1", "market-maker-2")

#: Checks an order and books it: (raw order, trader, now, stamp) -> (order or None, problems, more).
Place = Callable[[Any, str, float, Optional[float]], Tuple[Optional[BookOrder], List[OrderProblem], int]]

_UTC = dt.timezone.utc
_QUARTER_HOUR = 900


def _mid_price(seed: int, slot: float) -> Decimal:
    hour = dt.datetime.fromtimestamp(slot - slot % 3600, _UTC)
    return spot.hourly_point(seed, spot.DEFAULT_AREA, hour)[0]


def quarter_hour_order(side: str, price: Decimal, volume: Decimal, slot: float) -> Dict[str, Any]:
    """A maker's order for the quarter-hour starting at ``slot`` (seconds since the epoch), in UTC."""
    start = dt.datetime.fromtimestamp(slot, _UTC)
    end = start + dt.timedelta(minutes=15)
    return {
        "side": side,
        "price": price,
        "volume": volume,
        "date": start.strftime("%Y-%m-%d"),
        "start_time": start.strftime("%H:%M"),
        "end_time": end.strftime("%H:%M"),
        "duration": "15m",
        "tz_offset_hours": 0,
    }


def _seed_order(
    place: Place, trader: str, side: str, price: Decimal, volume: Decimal, slot: float, now: float, at: float
) -> None:
    order, problems, _ = place(quarter_hour_order(side, price, volume, slot), trader, now, at)
    if order is None:  # our own orders break no rule; if they do, say so loudly
        raise ValueError(f"seed_market made an invalid order: {'; '.join(map(str, problems))}")


def seed_market(place: Place, seed: int, moment: float, orders: int = 24) -> None:
    """``orders`` resting displayed orders, a bid and an ask per quarter hour from the next one on.

    They never cross; before them, three trades of the last half hour on the
    first contracts.
    """
    draw = random.Random(seed)
    first_slot = (math.floor(moment / _QUARTER_HOUR) + 1) * _QUARTER_HOUR
    buyer, seller = MARKET_MAKERS
    for past in range(3):
        slot = first_slot + _QUARTER_HOUR * past
        price = _mid_price(seed, slot) + Decimal(past - 1) / 4  # within the quotes' spread: nothing crosses
        volume, at = Decimal(past + 1), moment - 1800 + 600 * past
        _seed_order(place, seller, "sell", price, volume, slot, moment, at)
        _seed_order(place, buyer, "buy", price, volume, slot, moment, at)
    for index in range(orders):
        quarter, side = divmod(index, 2)
        slot = first_slot + _QUARTER_HOUR * quarter
        half_spread = Decimal("0.50") + Decimal(draw.randint(0, 8)) / 4
        mid = _mid_price(seed, slot)
        price = mid - half_spread if side == 0 else mid + half_spread
        volume = Decimal(draw.randint(2, 20)) / 2
        maker = MARKET_MAKERS[(quarter + side) % 2]
        _seed_order(place, maker, "buy" if side == 0 else "sell", price, volume, slot, moment, moment)
