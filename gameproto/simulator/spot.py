"""Deterministic hourly spot data for the embedded exchange.

Every figure is a function of (seed, area, hour) alone, so the same exchange
seed answers the same spot data whenever it is asked, and the 24 h figures of
a row agree with the rows of the day before it.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from decimal import Decimal
from functools import lru_cache
from typing import Any, Dict, List, Optional, Tuple

from .._contract import Contract

__all__ = ["DEFAULT_AREA", "MAX_LIMIT", "hourly_point", "spot_rows", "spot_window", "spot_status", "iso_time"]

DEFAULT_AREA = "CH-SGD"
MAX_LIMIT = 1000

_UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_HOUR = dt.timedelta(hours=1)
_EARLIEST = dt.datetime(1, 1, 3, tzinfo=_UTC)
_LATEST = dt.datetime(9999, 12, 30, tzinfo=_UTC)
_CENT = Decimal("0.01")
_TENTH = Decimal("0.1")


def iso_time(moment: dt.datetime) -> str:
    """An aware datetime as ISO 8601 UTC with a ``Z``, to the millisecond."""
    return moment.astimezone(_UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _hour_name(hour: dt.datetime) -> str:
    return hour.strftime("%Y-%m-%dT%H:00:00Z")


@lru_cache(maxsize=16384)
def _point(seed: int, area: str, epoch_hour: int) -> Tuple[Decimal, Decimal, Decimal]:
    # A string seed is hashed with SHA-512 by random.Random: stable across runs
    # and platforms, unlike hash().
    draw = random.Random(f"{seed}|{area}|{epoch_hour}")
    hour_of_day = epoch_hour % 24
    daily = 22.0 * math.sin(2 * math.pi * (hour_of_day - 7) / 24)  # peak in the afternoon
    price = max(5.0, 75.0 + daily + draw.uniform(-9.0, 9.0))
    volume = draw.uniform(250.0, 1200.0)
    spread = draw.uniform(0.1, 1.2)
    return (
        Decimal(repr(price)).quantize(_CENT),
        Decimal(repr(volume)).quantize(_TENTH),
        Decimal(repr(spread)).quantize(_CENT),
    )


def hourly_point(seed: int, area: str, hour: dt.datetime) -> Tuple[Decimal, Decimal, Decimal]:
    """Price, volume and bid-ask spread of one hour of an area."""
    return _point(seed, area, int((hour - _EPOCH).total_seconds()) // 3600)


def _order_book(bid: Decimal, ask: Decimal, volume: Decimal) -> Dict[str, List[Dict[str, Decimal]]]:
    step = Decimal("0.5")
    share = (volume / 10).quantize(_TENTH)
    return {
        "bids": [{"price": bid - step * level, "volume": share * (level + 1)} for level in range(3)],
        "asks": [{"price": ask + step * level, "volume": share * (level + 1)} for level in range(3)],
    }


def _row(area: str, hour: dt.datetime, day: List[Tuple[Decimal, Decimal, Decimal]], day_ago: Decimal) -> Dict[str, Any]:
    """One row; ``day`` holds the points of the 24 hours that end with ``hour``."""
    price, volume, spread = day[-1]
    change = price - day_ago
    bid = price - (spread / 2).quantize(_CENT)
    ask = bid + spread
    return {
        "contract": Contract(hour, 60).id,
        "area_name": area,
        "price": price,
        "volume": volume,
        "bid": bid,
        "ask": ask,
        "spread": spread,
        "high_24h": max(point[0] for point in day),
        "low_24h": min(point[0] for point in day),
        "volume_24h": sum((point[1] for point in day), Decimal(0)),
        "change_24h": change,
        "change_percent_24h": (change * 100 / day_ago).quantize(_CENT),
        "timestamp": _hour_name(hour),
        "order_book": _order_book(bid, ask, volume),
    }


def spot_window(
    now: float, date_from: Optional[dt.date], date_to: Optional[dt.date], limit: int
) -> Tuple[dt.datetime, int]:
    """The first hour and the number of hours a spot query asks for.

    Both dates: their days, at most ``limit`` hours from the first. One date:
    ``limit`` hours from its start, or up to its end. None: the last ``limit``
    hours up to the current one. Raises ValueError outside the calendar.
    """
    try:
        if date_from is not None:
            first = dt.datetime.combine(date_from, dt.time(), _UTC)
            if date_to is None:
                return first, limit
            end = dt.datetime.combine(date_to, dt.time(), _UTC) + dt.timedelta(days=1)
            return first, max(0, min(limit, int((end - first) / _HOUR)))
        if date_to is not None:
            end = dt.datetime.combine(date_to, dt.time(), _UTC) + dt.timedelta(days=1)
        else:
            current = dt.datetime.fromtimestamp(now - now % 3600, _UTC)
            end = current + _HOUR
        return end - _HOUR * limit, limit
    except OverflowError:
        raise ValueError("dates outside the calendar") from None


def spot_rows(seed: int, area: str, first: dt.datetime, count: int) -> List[Dict[str, Any]]:
    """``count`` hourly spot rows of ``area`` from ``first``, oldest first.

    Raises ValueError when the hours (or the day before them) leave the calendar.
    """
    # Each row looks a day back, so the day before ``first`` must be on the calendar too.
    if not (_EARLIEST <= first and count <= (_LATEST - first) / _HOUR):
        raise ValueError("dates outside the calendar")
    # Each hour's point once, a day of them before the first row included; rows slide over them.
    points = [hourly_point(seed, area, first + _HOUR * (offset - 24)) for offset in range(count + 24)]
    return [
        _row(area, first + _HOUR * offset, points[offset + 1 : offset + 25], points[offset][0])
        for offset in range(count)
    ]


def spot_status(now: float) -> Dict[str, Any]:
    """The spot feed's state: it publishes every hour, the next 24 hours are active."""
    current = dt.datetime.fromtimestamp(now - now % 3600, _UTC)
    return {
        "status": "operational",
        "timestamp": iso_time(dt.datetime.fromtimestamp(now, _UTC)),
        "active_contracts": [Contract(current + _HOUR * ahead, 60).id for ahead in range(24)],
        "market_open": True,
        "next_update": _hour_name(current + _HOUR),
        "last_update": _hour_name(current),
    }
