"""A recorded market played back: the recorded book as resting liquidity, recorded trades, a bot's orders.

Pure, like the rest of the engine: a recording reaches it as plain values
(``LevelChange`` and ``TapeTrade``, read from the file by
``gameproto_exchange``), the clock is injected, and nothing here does I/O.
The rules (docs/backtesting.md):

- **The recorded book rests.** Each recorded level (contract, side, price)
  is one resting order of the trader ``RECORDED``, placed when the level
  first showed; a bot's order matches it by price-time priority.
- **What a bot takes stays taken.** A recorded change of a level is applied
  as the change it was (new recorded volume minus the previous one) to what
  the level holds now, never below zero, not to the recorded volume.
- **A bot's resting order fills from recorded trades.** A recorded trade
  whose aggressor was on the other side, at the bot's price or better,
  first eats the volume that rested ahead of the bot at its price when it
  was placed (the queue), then fills the bot at its own price; a trade
  fills no more than its volume, and it goes to the bot's orders best price
  first, then oldest.
- **Contracts close at gate closure** (the delivery start) on the replayed
  clock, recorded levels included; recorded changes after it are dropped.
- **Ids never collide.** Recorded trades keep their ids; the replay's own
  orders and trades are numbered above every id of the recording.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .._boundary import Response
from .._contract import Contract
from .answers import Context, JSONObject, answer, iso
from .book import _COUNT, _QUEUE, MONEY, BookOrder, Fill, OrderBook, _Side
from .exchange import Exchange
from .ledger import Ledger
from .market import MarketData
from .tape import (
    RECORDED,
    LevelChange,
    LevelKey,
    Tape,
    TapeTrade,
    _decimal,
    _id_number,
    book_changes,
    level_volumes,
    tape_trade,
)
from .trading import Desk

__all__ = [
    "RECORDED",
    "LevelChange",
    "TapeTrade",
    "Tape",
    "level_volumes",
    "book_changes",
    "tape_trade",
    "ReplayBook",
    "ReplayExchange",
]

_ZERO = Decimal(0)
_SIDES = ("buy", "sell")


class ReplayBook(OrderBook):
    """The engine's book, with the recorded levels resting in it and the replay's own trade numbers."""

    def __init__(self, fee_per_mwh: Decimal, trade_floor: int) -> None:
        super().__init__(fee_per_mwh)
        self.next_trade = trade_floor
        #: Each resting bot order's queue: the recorded volume still ahead of it at its price.
        self.ahead: Dict[int, Decimal] = {}

    def _fill(self, incoming: BookOrder, resting: BookOrder, volume: Decimal, now: float) -> Fill:
        made = super()._fill(incoming, resting, volume, now)
        return self._renumber(made)

    def _renumber(self, made: Fill) -> Fill:
        """The fill just appended, numbered above every trade of the recording."""
        self.next_trade += 1
        fill = dataclasses.replace(made, number=self.next_trade)
        self.fills[-1] = fill
        self.fills_by_contract[fill.contract][-1] = fill
        return fill

    def submit(self, order: BookOrder, now: float) -> List[Fill]:
        fills = super().submit(order, now)
        if order.trader != RECORDED and not order.filled:
            self.ahead[order.number] = self.recorded_at(order.contract, order.side, order.price)
        return fills

    def recorded_at(self, contract: str, side: str, price: Decimal) -> Decimal:
        """The recorded volume resting at one price of one side now."""
        return sum(
            (
                order.remaining
                for order in self.resting(contract, side)
                if order.trader == RECORDED and order.price == price
            ),
            _ZERO,
        )

    def rest(self, order: BookOrder, now: float) -> None:
        """Put a recorded level in the book without matching it (the recording says it rested)."""
        order.updated = now
        self.orders[order.number] = order
        self._rest(order, order.remaining)
        self._touch(order.contract, now)

    def _level_of(self, order: BookOrder) -> Tuple[_Side, int, List[Any]]:
        """The side of the book a resting order is on, where its level is, and the level."""
        buys, sells = self._sides[order.contract]
        side = buys if order.side == "buy" else sells
        at = side.find(order.price)
        return side, at, side.levels[at]

    def resize(self, order: BookOrder, remaining: Decimal, now: float) -> None:
        """A resting recorded level now holds ``remaining`` (more than zero)."""
        change = MONEY.subtract(remaining, order.remaining)
        order.volume = MONEY.add(order.executed, remaining)
        order.updated = now
        side, _, level = self._level_of(order)
        self._show(order, side, level, change)
        self._touch(order.contract, now)

    def queue_fill(self, order: BookOrder, volume: Decimal, direction: str, now: float) -> Fill:
        """A bot's resting order filled by a recorded trade, at its own price."""
        side, at, level = self._level_of(order)
        self._show(order, side, level, -volume)
        fee = MONEY.multiply(self.fee_per_mwh, volume)
        order.executed = MONEY.add(order.executed, volume)
        order.total_value = MONEY.add(order.total_value, MONEY.multiply(order.price, volume))
        order.fees = MONEY.add(order.fees, fee)
        order.execution_count += 1
        order.updated = now
        if order.filled:  # it leaves its level, and the level the side when it was the last
            level[_QUEUE].remove(order)
            level[_COUNT] -= 1
            if not level[_COUNT]:
                side.remove(at)
            self.ahead.pop(order.number, None)
        mine, theirs = order.trader, RECORDED
        buyer, seller = (mine, theirs) if order.side == "buy" else (theirs, mine)
        self.next_trade += 1
        fill = Fill(
            number=self.next_trade,
            contract=order.contract,
            minutes=order.minutes,
            direction=direction,
            volume=volume,
            price=order.price,
            time=now,
            buy_order=order.number if order.side == "buy" else 0,
            sell_order=order.number if order.side == "sell" else 0,
            buyer=buyer,
            seller=seller,
            fee=fee,
        )
        self._record(fill)
        self._touch(order.contract, now)
        return fill

    def recorded_trade(self, trade: TapeTrade, number: int) -> Fill:
        """A recorded trade, as a fill between recorded traders: listed, counted in prices and 24-hour figures."""
        view = trade.view
        fee = view.get("fees")
        fill = Fill(
            number=number,
            contract=trade.contract,
            minutes=trade.minutes,
            direction=trade.direction,
            volume=trade.volume,
            price=trade.price,
            time=trade.time,
            buy_order=_id_number(view.get("buy_order_id")) or 0,
            sell_order=_id_number(view.get("sell_order_id")) or 0,
            buyer=str(view.get("buyer", RECORDED)),
            seller=str(view.get("seller", RECORDED)),
            fee=_decimal(fee, "fees") if fee is not None else _ZERO,
        )
        self._record(fill)
        self._touch(trade.contract, trade.time)
        return fill

    def _record(self, fill: Fill) -> None:
        times = self.fill_times.setdefault(fill.contract, [])
        if times and fill.time < times[-1]:  # a late-listed trade keeps each contract's times in order
            fill = dataclasses.replace(fill, time=times[-1])
        self.fills.append(fill)
        self.fills_by_contract.setdefault(fill.contract, []).append(fill)
        times.append(fill.time)


@dataclass
class _Level:
    """A recorded level: the volume the recording last showed, and the resting order that stands for it."""

    recorded: Decimal = _ZERO
    order: Optional[BookOrder] = None


class ReplayExchange(Exchange):
    """The exchange, with a recording played into its book as its clock passes each recorded moment.

    Every reading of the clock (``now``) first plays the tape up to that
    moment, so that an API call, the web view and a backtest's client all
    see the book as it stood then. ``speed`` is what ``/status`` reports
    (``None``: a manual or virtual clock).
    """

    def __init__(
        self,
        tape: Tape,
        tokens: Union[Iterable[str], Mapping[str, str]] = ("demo-token",),
        *,
        clock: Callable[[], float],
        speed: Optional[float] = None,
        fee_per_mwh: Decimal = Decimal("0.05"),
        allow_non_positive_price: bool = False,
        **options: Any,
    ) -> None:
        self.tape = tape
        self.speed = speed
        self._ready = False  # the engine's constructor reads the clock before the replay's book exists
        self._played = 0
        self._levels: Dict[LevelKey, _Level] = {}
        super().__init__(
            tokens,
            clock=clock,
            fee_per_mwh=fee_per_mwh,
            market_zone=tape.market_zone,
            allow_non_positive_price=allow_non_positive_price,
            **options,
        )
        self.book = ReplayBook(fee_per_mwh, tape.trade_floor)
        self.book.reset([], [], tape.order_floor, {})
        self.ledger = Ledger(self.book)
        self.desk = Desk(self.ledger, allow_non_positive_price=allow_non_positive_price, **_desk_options(options))
        self.market = MarketData(self.book, market_zone=tape.market_zone, seed=self.seed)
        self.router = self._router()
        self._ready = True

    # -- the replayed clock --------------------------------------------------------

    def now(self) -> float:
        moment = super().now()
        if self._ready:
            self.play(moment)
        return moment

    @property
    def finished(self) -> bool:
        """Whether the clock has passed the recording's end."""
        return self._clock() + self.clock_offset > self.tape.end

    def play(self, until: float, limit: Optional[int] = None) -> bool:
        """Apply the recorded events up to ``until`` (exchange time), closing contracts on the way; at most
        ``limit`` of them (None: all). Whether every event up to ``until`` is played.

        The tape is in time order and ``_played`` says where it stands, so a
        step reads only the events it applies.
        """
        times, events = self.tape.times, self.tape.events
        stop = len(events) if limit is None else min(len(events), self._played + max(0, limit))
        while self._played < stop and times[self._played] <= until:
            event = events[self._played]
            self._played += 1
            self.ledger.expire(times[self._played - 1])
            if isinstance(event, LevelChange):
                self._change(event)
            else:
                self._trade(event)
        return self._played >= len(events) or times[self._played] > until

    def play_due(self, limit: int) -> Optional[float]:
        """Apply at most ``limit`` of the events the clock has reached; the exchange time of the next one to play.

        For a player that keeps the book up with a running clock in short
        steps (``gameproto_exchange``'s replay at ``--speed``), so that no
        request ever finds much to play. None: the recording is all played.
        """
        self.play(self.clock_time(), limit)
        return self.tape.times[self._played] if self._played < len(self.tape.times) else None

    def clock_time(self) -> float:
        """The exchange's time, without playing anything."""
        return super().now()

    def _change(self, change: LevelChange) -> None:
        try:
            start = Contract.parse(change.contract).start.timestamp()
        except ValueError:
            return  # a contract id this replay cannot date never closes, so never rests
        key = (change.contract, change.side, change.price)
        level = self._levels.setdefault(key, _Level())
        delta = change.volume - level.recorded
        level.recorded = change.volume
        if change.time >= start:
            return  # the contract has closed: nothing rests in it any more
        order = level.order
        live = order is not None and not order.deleted and not order.filled
        held = order.remaining if live and order is not None else _ZERO
        left = max(_ZERO, held + delta)
        if live and order is not None:
            if left > 0:
                self.book.resize(order, left, change.time)
            else:
                self.book.cancel(order.number, change.time)
                self.ledger._leaves(order)
            return
        if left <= 0:
            return
        order = BookOrder(
            number=self.book.next_number(),
            trader=RECORDED,
            side=change.side,
            price=change.price,
            volume=left,
            contract=change.contract,
            minutes=change.minutes,
            hidden=False,
            created=change.time,
            details=_details(change.contract, change.minutes),
        )
        level.order = order
        self.book.rest(order, change.time)
        self.ledger.resting[RECORDED] = self.ledger.resting.get(RECORDED, 0) + 1
        heapq.heappush(self.ledger.closing, (start, order.number))

    def _trade(self, trade: TapeTrade) -> None:
        self.book.recorded_trade(trade, self.tape.trade_numbers[trade.trade_id])
        meeting = {"sell": "buy", "buy": "sell"}.get(trade.direction)
        if meeting is None:
            return  # a trade without an aggressor's side meets no one's queue
        left = trade.volume
        for order in list(self.book.resting(trade.contract, meeting)):
            if left <= 0:
                break
            if order.trader == RECORDED:
                continue
            better = order.price >= trade.price if meeting == "buy" else order.price <= trade.price
            if not better:
                break  # best price first: no later order is at the trade's price or better either
            ahead = self.book.ahead.get(order.number, _ZERO)
            eaten = min(ahead, left)
            self.book.ahead[order.number] = ahead - eaten
            left -= eaten
            volume = min(left, order.remaining)
            if volume > 0:
                left -= volume
                self.book.queue_fill(order, volume, trade.direction, trade.time)
                if order.filled:
                    self.ledger._leaves(order)

    # -- what the replay adds to the answers ------------------------------------------

    def _status(self, context: Context) -> Response:
        response = super()._status(context)
        status = json.loads(response.body)
        status["replay"] = self.replay_status(context.now)
        return answer(200, status)

    def replay_status(self, now: float) -> JSONObject:
        """What ``/status`` says of the replay: its speed, the recording's span, how far it has played."""
        return {
            "speed": self.speed,
            "clock": "replayed" if self.speed is not None else "manual",
            "recording_start": iso(self.tape.start),
            "recording_end": iso(self.tape.end),
            "events": len(self.tape.events),
            "played": self._played,
            "finished": now > self.tape.end,
        }


def _desk_options(options: Mapping[str, Any]) -> Dict[str, Any]:
    return {"max_resting_orders": options["max_resting_orders"]} if "max_resting_orders" in options else {}


def _details(contract: str, minutes: int) -> JSONObject:
    """The order fields of a recorded level, in UTC (its listing is never shown; expiry reads the window)."""
    start = Contract.parse(contract).start
    end = start + dt.timedelta(minutes=minutes)
    return {
        "date": start.strftime("%Y-%m-%d"),
        "start_time": start.strftime("%H:%M"),
        "end_time": end.strftime("%H:%M"),
        "duration": f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m",
        "tz_offset_hours": 0,
        "state": "displayed",
    }


# -- the fill log and the report ----------------------------------------------------------
