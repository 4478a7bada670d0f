"""Market makers that keep quoting as the clock moves: a sandbox left alone for a day still trades.

``quote(place, book, scenario, seed, now)`` tops the book up: for every
quarter hour from the next one to ``scenario.horizon_hours`` ahead, each
maker rests a bid and an ask around the price path's mid, unless it already
has one there (a quote a trader took is put back on the next call). On the
nearest contract the first two makers trade once, at the mid, so that trades
keep coming. Everything is a function of (scenario, seed, slot): calling it
often or seldom, before or after a restart, gives the same quotes.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Dict, Optional, Set, Tuple

from . import spot
from .book import OrderBook
from .contracts import contract_name
from .seeding import MARKET_MAKERS, Place, quarter_hour_order

__all__ = [
    "Maker",
    "PricePath",
    "Scenario",
    "quote",
    "catch_up",
    "mid_price",
    "MAX_LEVELS",
    "MAX_MAKERS",
    "MAX_QUOTES",
    "CATCH_UP",
]

_UTC = dt.timezone.utc
_QUARTER_HOUR = 900
_CENT = Decimal("0.01")
#: Quotes per side one maker may keep on each quarter hour, and makers one scenario may have:
#: what a scenario asks for is bounded, so that a typo cannot make a start take minutes and gigabytes.
MAX_LEVELS = 20
MAX_MAKERS = 50
#: Quotes all the makers may rest at once (levels, both sides, every quarter hour of the horizon): at the
#: bounds above alone a scenario would rest 384,000 orders, 23 s and 600 MB to start.
MAX_QUOTES = 20_000
#: Quarter hours the makers' trades are caught up for after a jump of the clock: a week.
CATCH_UP = 7 * 24 * 4
#: The lowest mid of the seed's spot curve (``spot`` keeps its prices at 5 or more).
_SPOT_FLOOR = Decimal(5)


@dataclass(frozen=True)
class Maker:
    """One market maker: its name, the distance between its bid and ask, the volume of each quote."""

    name: str
    spread: Decimal = Decimal("1.00")
    volume: Decimal = Decimal("5")
    #: Quotes per side, each ``spread / 2`` further from the mid than the one before.
    levels: int = 1


@dataclass(frozen=True)
class PricePath:
    """Where the mid price comes from: hourly prices of the day (UTC, repeated daily), a replayed
    series of (epoch seconds, price), or, when neither is given, the spot curve of the seed.

    ``noise`` adds a draw of at most that much, a function of the seed and the slot.
    """

    hourly: Tuple[Decimal, ...] = ()
    replay: Tuple[Tuple[float, Decimal], ...] = ()
    noise: Decimal = Decimal(0)
    # The replayed times, in order, for bisecting: a quote finds its price in log(rows) steps.
    _times: Tuple[float, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.replay, key=lambda row: row[0]))
        object.__setattr__(self, "replay", ordered)
        object.__setattr__(self, "_times", tuple(at for at, _ in ordered))

    def lowest(self) -> Decimal:
        """The lowest mid this path can give (noise included)."""
        if self.replay:
            base = min(price for _, price in self.replay)
        elif self.hourly:
            base = min(self.hourly)
        else:
            base = _SPOT_FLOOR
        return base - abs(self.noise)


@dataclass(frozen=True)
class Scenario:
    """What the makers do: who quotes, how far ahead, along which price path."""

    makers: Tuple[Maker, ...] = field(
        default_factory=lambda: tuple(
            Maker(name, Decimal("1.50") + Decimal(number) / 2) for number, name in enumerate(MARKET_MAKERS)
        )
    )
    horizon_hours: float = 4.0
    path: PricePath = field(default_factory=PricePath)
    #: Whether the first two makers trade once on each nearest contract.
    trades: bool = True

    def __post_init__(self) -> None:
        if not self.makers:
            raise ValueError("a scenario needs at least one maker")
        if len({maker.name for maker in self.makers}) != len(self.makers):
            raise ValueError("maker names must differ")
        if len(self.makers) > MAX_MAKERS:
            raise ValueError(f"a scenario has at most {MAX_MAKERS} makers, not {len(self.makers)}")
        for maker in self.makers:
            if maker.spread <= 0 or maker.volume <= 0:
                raise ValueError(f"maker {maker.name!r}: spread and volume must be > 0")
            if not 1 <= maker.levels <= MAX_LEVELS:
                raise ValueError(f"maker {maker.name!r}: levels must be from 1 to {MAX_LEVELS}, not {maker.levels}")
        if not 0 < self.horizon_hours <= 48:
            raise ValueError(f"horizon_hours must be more than 0 and at most 48, got {self.horizon_hours}")
        quotes = self.quotes()
        if quotes > MAX_QUOTES:
            raise ValueError(
                f"the makers would rest {quotes} quotes (their levels, times 2 sides, times "
                f"{math.floor(self.horizon_hours * 4) + 1} quarter hours of horizon_hours), at most {MAX_QUOTES}: "
                "fewer makers or levels, or a shorter horizon_hours"
            )

    def quotes(self) -> int:
        """The most quotes the makers rest at once: their levels on both sides of every quarter hour ahead."""
        return sum(maker.levels for maker in self.makers) * 2 * (math.floor(self.horizon_hours * 4) + 1)

    def lowest_price(self) -> Decimal:
        """The lowest price a maker may quote or trade at: at or below zero, the exchange must allow such prices."""
        widest = max(maker.spread / 2 * maker.levels for maker in self.makers) + 1  # a draw adds at most 1
        return self.path.lowest() - widest


def _replayed(path: PricePath, slot: float) -> Decimal:
    """The last replayed price at or before ``slot`` (the first one before the series starts)."""
    at = bisect.bisect_right(path._times, slot) - 1
    return path.replay[max(at, 0)][1]


def mid_price(scenario: Scenario, seed: int, slot: float) -> Decimal:
    """The mid price of the quarter hour starting at ``slot`` (epoch seconds), to the cent."""
    path = scenario.path
    hour = int(slot // 3600)
    if path.replay:
        base = _replayed(path, slot)
    elif path.hourly:
        base = path.hourly[hour % 24 % len(path.hourly)]
    else:
        base = spot.hourly_point(seed, spot.DEFAULT_AREA, dt.datetime.fromtimestamp(hour * 3600, _UTC))[0]
    if path.noise:
        draw = random.Random(f"{seed}|mid|{int(slot)}")
        base += path.noise * Decimal(repr(draw.uniform(-1.0, 1.0)))
    return base.quantize(_CENT)


def _resting_prices(book: OrderBook, contract: str, side: str, traders: Set[str]) -> Dict[str, Set[Decimal]]:
    """The prices each of ``traders`` rests at on one side of a contract, in one walk of it."""
    held: Dict[str, Set[Decimal]] = {trader: set() for trader in traders}
    for order in book.resting(contract, side):
        if order.trader in held:
            held[order.trader].add(order.price)
    return held


def _place(place: Place, raw: Dict[str, Any], trader: str, now: float) -> None:
    order, problems, _ = place(raw, trader, now, None)
    if order is None:  # our own orders break no rule; if they do, say so loudly
        raise ValueError(f"a market maker made an invalid order: {'; '.join(map(str, problems))}")


def catch_up(place: Place, book: OrderBook, scenario: Scenario, seed: int, quarters: range) -> None:
    """The makers' trades of the quarter hours the clock jumped over, each as if quoted at its start.

    So the trades do not depend on how the clock was moved: eight steps of 15
    minutes and one of two hours give the same ones (at most ``CATCH_UP``, the last).
    """
    if not scenario.trades:
        return
    for quarter in quarters[-CATCH_UP:]:
        start = float(quarter * _QUARTER_HOUR)
        _maker_trade(place, book, scenario, seed, start + _QUARTER_HOUR, start)


def _maker_trade(place: Place, book: OrderBook, scenario: Scenario, seed: int, slot: float, now: float) -> None:
    """The first two makers trade 1 MW at the mid of ``slot``, once per contract."""
    if len(scenario.makers) < 2:
        return
    seller, buyer = scenario.makers[0].name, scenario.makers[1].name
    contract = contract_name(dt.datetime.fromtimestamp(slot, _UTC), 15)
    if any(fill.seller == seller and fill.buyer == buyer for fill in book.fills_by_contract.get(contract, ())):
        return
    mid = mid_price(scenario, seed, slot)
    best_bid = next(book.resting(contract, "buy"), None)
    best_ask = next(book.resting(contract, "sell"), None)
    if (best_bid is not None and best_bid.price >= mid) or (best_ask is not None and best_ask.price <= mid):
        return  # a trader's order would take the makers' trade: leave the contract to them
    _place(place, quarter_hour_order("sell", mid, Decimal(1), slot), seller, now)
    _place(place, quarter_hour_order("buy", mid, Decimal(1), slot), buyer, now)


def quote(
    place: Place,
    book: OrderBook,
    scenario: Scenario,
    seed: int,
    now: float,
    full: Optional[Callable[[str], Optional[str]]] = None,
) -> int:
    """Top the book up to the scenario's quotes for the coming hours; the orders placed.

    The ledger must have expired what closed before ``now`` (the exchange does
    it on every request; ``Exchange.public_market(now)`` does it too). A maker
    for whom ``full`` says why it may place no more (the exchange's resting cap)
    quotes no more, as any trader.
    """
    first = (math.floor(now / _QUARTER_HOUR) + 1) * _QUARTER_HOUR
    last = now + scenario.horizon_hours * 3600
    placed_before = book.last_number
    if scenario.trades:
        _maker_trade(place, book, scenario, seed, first, now)
    names = {maker.name for maker in scenario.makers}
    slot = float(first)
    while slot <= last:
        contract = contract_name(dt.datetime.fromtimestamp(slot, _UTC), 15)
        mid = mid_price(scenario, seed, slot)
        held = {side: _resting_prices(book, contract, side, names) for side in ("buy", "sell")}
        for maker in scenario.makers:
            draw = random.Random(f"{seed}|{maker.name}|{int(slot)}")
            for side, sign in (("buy", -1), ("sell", 1)):
                for level in range(maker.levels):
                    offset = maker.spread / 2 * (level + 1) + Decimal(draw.randint(0, 4)) / 4
                    price = (mid + sign * offset).quantize(_CENT)
                    if price in held[side][maker.name] or (full is not None and full(maker.name) is not None):
                        continue
                    volume = maker.volume * (level + 1)
                    _place(place, quarter_hour_order(side, price, volume, slot), maker.name, now)
        slot += _QUARTER_HOUR
    return book.last_number - placed_before
