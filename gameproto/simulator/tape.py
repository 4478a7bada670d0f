"""A recording as the engine reads it: the book's changes and the trades, in time order (the tape).

Plain values (``LevelChange``, ``TapeTrade``) made from what a recording
holds, and the ``Tape`` that orders them and numbers the replay's own ids
above the recording's. ``replay`` plays a tape; ``gameproto_exchange`` reads
it from a file.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union

from .._arguments import duration_minutes
from .._contract import Contract

__all__ = ["RECORDED", "LevelKey", "LevelChange", "TapeTrade", "Tape", "level_volumes", "book_changes", "tape_trade"]

#: The trader the recorded book and the recorded side of a bot's queue fills belong to.
RECORDED = "recorded"
_ZERO = Decimal(0)
_SIDES = ("buy", "sell")
_NUMBERED = re.compile(r"(?:[a-z]+_)?([0-9]{1,18})")

#: (contract, side, price): one level of the public book.
LevelKey = Tuple[str, str, Decimal]


@dataclass(frozen=True)
class LevelChange:
    """A level of the recorded book now shows ``volume`` (0: gone), seen at ``time`` (exchange epoch seconds)."""

    time: float
    contract: str
    minutes: int
    side: str
    price: Decimal
    volume: Decimal


@dataclass(frozen=True)
class TapeTrade:
    """A recorded public trade, as the exchange listed it (``view``), and what the replay reads of it."""

    time: float
    trade_id: str
    contract: str
    minutes: int
    direction: str
    price: Decimal
    volume: Decimal
    view: Mapping[str, Any]


def _decimal(value: Any, what: str) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{what}: not a number: {value!r}")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{what}: not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{what}: not a finite number: {value!r}")
    return number


def _minutes(row: Mapping[str, Any]) -> int:
    """A row's window length: its ``duration`` (``15m``), else its contract id's length."""
    found = duration_minutes(str(row.get("duration"))) if row.get("duration") is not None else None
    if found is None:
        found = Contract.parse(str(row.get("contract"))).minutes
    return found


def _moment(text: Any) -> Optional[float]:
    """Epoch seconds of an ISO 8601 stamp (``...Z`` or with an offset), None when it is not one."""
    if not isinstance(text, str):
        return None
    cleaned = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = dt.datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def level_volumes(rows: Iterable[Mapping[str, Any]]) -> Dict[LevelKey, Tuple[int, Decimal, Optional[float]]]:
    """The levels a ``/market`` answer shows: (contract, side, price) -> (minutes, volume, row time).

    Only the order-book rows (those with a ``direction``) are levels; the
    summary rows are a function of the levels and the trades, and a replay
    makes them again. A row that cannot be read raises ``ValueError`` naming it.
    """
    found: Dict[LevelKey, Tuple[int, Decimal, Optional[float]]] = {}
    for number, row in enumerate(rows):
        side = row.get("direction")
        if side not in _SIDES:
            continue
        where = f"market row {number}"
        contract = row.get("contract")
        if not isinstance(contract, str):
            raise ValueError(f"{where}: no contract")
        price = _decimal(row.get("price"), f"{where}.price")
        volume = _decimal(row.get("volume"), f"{where}.volume")
        key = (contract, str(side), price)
        held = found.get(key)
        total = volume if held is None else held[1] + volume
        found[key] = (_minutes(row), total, _moment(row.get("timestamp")))
    return found


def book_changes(
    previous: Mapping[LevelKey, Tuple[int, Decimal, Optional[float]]],
    current: Mapping[LevelKey, Tuple[int, Decimal, Optional[float]]],
    polled: float,
    since: Optional[float] = None,
) -> List[LevelChange]:
    """The changes from one poll's levels to the next's, in key order: new or changed volumes, 0 for gone.

    A change is dated by its contract's row ``timestamp`` (when the
    exchange says the contract's book last changed) when that is at or
    before the poll's exchange time ``polled`` and after the previous poll's
    (``since``); otherwise (a level gone, a stamp out of that span) at ``polled``.
    """
    changes: List[LevelChange] = []
    for key in sorted(set(previous) | set(current), key=lambda key: (key[0], key[1], key[2])):
        before, now = previous.get(key), current.get(key)
        if now is not None and before is not None and now[1] == before[1]:
            continue
        if now is None:
            assert before is not None
            changes.append(LevelChange(polled, key[0], before[0], key[1], key[2], _ZERO))
            continue
        stamp = now[2]
        fits = stamp is not None and stamp <= polled and (since is None or stamp > since)
        when = stamp if fits and stamp is not None else polled
        changes.append(LevelChange(when, key[0], now[0], key[1], key[2], now[1]))
    return changes


def tape_trade(view: Mapping[str, Any]) -> TapeTrade:
    """A recorded trade from its listing (``GET /trades``); ``ValueError`` naming what cannot be read."""
    trade_id = view.get("trade_id")
    where = f"trade {trade_id!r}"
    if not isinstance(trade_id, (str, int)) or isinstance(trade_id, bool) or str(trade_id) == "":
        raise ValueError(f"{where}: no trade_id")
    moment = _moment(view.get("timestamp")) or _moment(view.get("execution_time"))
    if moment is None:
        raise ValueError(f"{where}: no timestamp")
    contract = view.get("contract")
    if not isinstance(contract, str):
        raise ValueError(f"{where}: no contract")
    return TapeTrade(
        time=moment,
        trade_id=str(trade_id),
        contract=contract,
        minutes=_minutes(view),
        direction=str(view.get("direction")),
        price=_decimal(view.get("price"), f"{where}.price"),
        volume=_decimal(view.get("volume"), f"{where}.volume"),
        view=dict(view),
    )


def _above(number: int) -> int:
    """A round number above ``number`` (the next million): the replay's own ids start after it.

    An order that never traded shows no id in a recording; starting the
    replay's numbers a round million above every id seen keeps them apart
    from the recording's, and tells them apart at a glance.
    """
    return (number // 1_000_000 + 1) * 1_000_000


def _id_number(value: Any) -> Optional[int]:
    """The number in an id such as ``trd_12``, ``ord_12`` or ``12``; None for any other form."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    found = _NUMBERED.fullmatch(str(value))
    return int(found.group(1)) if found else None


class Tape:
    """A recording's events in the order they happened: level changes, then trades, at each time.

    ``start`` and ``end`` are the first and last poll's exchange times.
    ``order_floor`` and ``trade_floor`` are the largest order and trade
    numbers the recording holds: the replay numbers its own above them.
    """

    def __init__(
        self,
        changes: Sequence[LevelChange],
        trades: Sequence[TapeTrade],
        *,
        start: float,
        end: float,
        market_zone: str = "10YCH-SWISSGRIDZ",
    ) -> None:
        if not end >= start:
            raise ValueError(f"a recording ends ({end}) before it starts ({start})")
        self.start = float(start)
        self.end = float(end)
        self.market_zone = market_zone
        events: List[Tuple[float, int, int, Union[LevelChange, TapeTrade]]] = []
        for number, change in enumerate(changes):
            events.append((change.time, 0, number, change))
        seen = set()
        for number, trade in enumerate(trades):
            if trade.trade_id in seen:
                continue  # a trade listed by two polls is one trade
            seen.add(trade.trade_id)
            events.append((trade.time, 1, number, trade))
        events.sort(key=lambda event: event[:3])
        self.events: List[Union[LevelChange, TapeTrade]] = [event[3] for event in events]
        self.times: List[float] = [event[0] for event in events]
        orders = [0]
        #: Each recorded trade's number: the one in its id (``trd_12``), or one past them all.
        self.trade_numbers: Dict[str, int] = {}
        others: List[str] = []
        taken: Set[int] = set()
        for event in self.events:
            if isinstance(event, TapeTrade):
                found = _id_number(event.trade_id)
                if found is None or found in taken:
                    others.append(event.trade_id)
                else:
                    taken.add(found)
                    self.trade_numbers[event.trade_id] = found
                orders += [_id_number(event.view.get(name)) or 0 for name in ("buy_order_id", "sell_order_id")]
        last = max(self.trade_numbers.values(), default=0)
        for offset, trade_id in enumerate(others, 1):
            self.trade_numbers[trade_id] = last + offset
        self.order_floor = _above(max(orders))
        self.trade_floor = _above(max(self.trade_numbers.values(), default=0))

    def __len__(self) -> int:
        return len(self.events)
