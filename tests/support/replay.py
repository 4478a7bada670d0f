"""Small recordings made in process, whose every level and trade the tests know.

``make_recording`` plays a market on an embedded exchange (a maker and a
taker, on a manual clock) and writes a poll after each step, as ``game
record`` would, so that a test can replay it and know what each moment held.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Tuple

from gameproto.simulator.exchange import Exchange
from gameproto.simulator.replay import level_volumes
from gameproto_exchange import ManualClock, RecordingWriter

__all__ = ["DAY", "T0", "CONTRACT", "POLLS", "make_recording", "order", "Levels", "levels_of"]

#: The day of the standard recording (a Tuesday, 96 quarter-hours), and its first poll: 10:00 UTC.
DAY = "2030-01-15"
T0 = dt.datetime(2030, 1, 15, 10, 0, tzinfo=dt.timezone.utc).timestamp()
#: The one contract traded: 12:00-12:15 UTC, whose gate closes at 12:00.
CONTRACT = "2030-01-15T12:00:00Z/PT15M"

Levels = Dict[Tuple[str, str, Decimal], Decimal]


def order(side: str, price: Any, volume: Any, day: str = DAY, start: str = "12:00") -> Dict[str, Any]:
    """An order of the quarter-hour starting at ``start`` UTC of ``day``."""
    hours, minutes = (int(part) for part in start.split(":"))
    end = (dt.datetime(2000, 1, 1, hours, minutes) + dt.timedelta(minutes=15)).strftime("%H:%M")
    return {
        "side": side,
        "price": price,
        "volume": volume,
        "date": day,
        "start_time": start,
        "end_time": end,
        "duration": "15m",
        "tz_offset_hours": 0,
    }


def levels_of(rows: Any) -> Levels:
    """The levels of ``/market`` rows: (contract, side, price) -> volume."""
    return {key: value[1] for key, value in level_volumes(rows).items()}


#: Each poll: seconds after T0, and what the maker and the taker do just before it.
POLLS: List[Tuple[float, List[Tuple[str, Dict[str, Any]]]]] = [
    (0, [("maker", order("sell", 50, 5)), ("maker", order("sell", 51, 3)), ("maker", order("buy", 45, 4))]),
    (60, [("maker", order("sell", 50, 2))]),  # the offer at 50: 5 -> 7
    (120, [("taker", order("buy", 50, 3)), ("taker", order("sell", 45, 2))]),  # a trade on each side
    (180, [("maker", order("buy", 45, 3)), ("taker", order("sell", 45, 3))]),  # the bid at 45 traded again
    (2 * 3600 - 60, []),  # 11:59, the last minute before the gate closes
    (2 * 3600 + 60, []),  # 12:01: the contract has closed
]


def make_recording(
    path: Path, polls: List[Tuple[float, List[Tuple[str, Dict[str, Any]]]]] = POLLS, start: float = T0
) -> List[Levels]:
    """Write ``polls`` (played on an embedded exchange) into a recording at ``path``; each poll's levels."""
    clock = ManualClock(start)
    source = Exchange({"maker-token": "maker", "taker-token": "taker"}, clock=clock)
    seen: List[Levels] = []
    with RecordingWriter(str(path), source="memory") as writer:
        for offset, steps in polls:
            if start + offset > clock():
                clock.set(start + offset)
            for trader, raw in steps:
                placed, problems, _ = source.desk.place(raw, trader, clock())
                assert placed is not None, problems
            market = source.public_market()
            writer.write(exchange_time=clock(), local_time=clock(), market=market, trades=source.trades)
            seen.append(levels_of(market))
    return seen
