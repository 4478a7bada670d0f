"""Positions: what the caller bought and sold per contract, and per local delivery day.

Pure functions of the trades (``GET /trades`` is market-wide: a trade names
its ``buyer`` and ``seller``) and of the caller's trader names (learnt from
its own orders). Sums are exact (``Decimal``); a trade where the caller is
both buyer and seller counts on both sides.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from ._contract import Contract

__all__ = ["Position", "DayPosition", "Positions", "positions", "trader_names", "decimal_of"]

_ZERO = Decimal(0)


def decimal_of(value: Any, what: str) -> Decimal:
    """``value`` (an int, float, Decimal or numeric string) as an exact Decimal; ValueError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    try:
        number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except ArithmeticError:
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return number


@dataclass(frozen=True)
class Position:
    """The caller's trades in one contract: volumes, values (price x volume) and fees."""

    contract: Contract
    bought: Decimal = _ZERO
    sold: Decimal = _ZERO
    bought_value: Decimal = _ZERO
    sold_value: Decimal = _ZERO
    fees: Decimal = _ZERO
    trades: int = 0

    @property
    def net(self) -> Decimal:
        """Bought minus sold (MW): positive long, negative short."""
        return self.bought - self.sold

    @property
    def buy_vwap(self) -> Optional[Decimal]:
        """The volume-weighted price of what was bought, None when nothing was."""
        return self.bought_value / self.bought if self.bought else None

    @property
    def sell_vwap(self) -> Optional[Decimal]:
        """The volume-weighted price of what was sold, None when nothing was."""
        return self.sold_value / self.sold if self.sold else None

    @property
    def cash(self) -> Decimal:
        """What the trades paid in (sold value) minus what they paid out (bought value), fees apart."""
        return self.sold_value - self.bought_value

    def add(self, other: Position) -> Position:
        """The sum of two positions of the same contract."""
        return Position(
            self.contract,
            self.bought + other.bought,
            self.sold + other.sold,
            self.bought_value + other.bought_value,
            self.sold_value + other.sold_value,
            self.fees + other.fees,
            self.trades + other.trades,
        )


@dataclass(frozen=True)
class DayPosition:
    """A local delivery day's positions: the sums, and each contract's position in delivery order."""

    day: dt.date
    periods: Tuple[Position, ...] = ()

    @property
    def bought(self) -> Decimal:
        return sum((period.bought for period in self.periods), _ZERO)

    @property
    def sold(self) -> Decimal:
        return sum((period.sold for period in self.periods), _ZERO)

    @property
    def net(self) -> Decimal:
        """Bought minus sold over the day, in MW summed over its contracts."""
        return self.bought - self.sold

    @property
    def cash(self) -> Decimal:
        return sum((period.cash for period in self.periods), _ZERO)

    @property
    def fees(self) -> Decimal:
        return sum((period.fees for period in self.periods), _ZERO)

    def quarter_hours(self) -> List[Tuple[Contract, Decimal]]:
        """Every quarter-hour of the day (92, 96 or 100) with the net MW delivered in it.

        A contract longer than a quarter-hour (an hour, a block) counts in
        each quarter-hour it covers: what the trader holds for delivery then.
        """
        quarters = Contract.day(self.day)
        net: Dict[Contract, Decimal] = {quarter: _ZERO for quarter in quarters}
        for period in self.periods:
            for quarter in quarters:
                if period.contract.start <= quarter.start < period.contract.end:
                    net[quarter] += period.net
        return [(quarter, net[quarter]) for quarter in quarters]

    @property
    def energy(self) -> Decimal:
        """The net energy of the day in MWh: each contract's net times its length in hours."""
        return self.bought_energy - self.sold_energy

    @property
    def bought_energy(self) -> Decimal:
        """The energy bought for the day in MWh (MW times hours of delivery)."""
        return sum((period.bought * Decimal(period.contract.minutes) / 60 for period in self.periods), _ZERO)

    @property
    def sold_energy(self) -> Decimal:
        """The energy sold for the day in MWh."""
        return sum((period.sold * Decimal(period.contract.minutes) / 60 for period in self.periods), _ZERO)


@dataclass(frozen=True)
class Positions:
    """The caller's positions: ``contracts`` (keyed by ``Contract``, in delivery order) and ``days``."""

    contracts: Dict[Contract, Position] = field(default_factory=dict)

    @property
    def days(self) -> Dict[dt.date, DayPosition]:
        """Each local delivery day with a trade, in order, with its contracts' positions."""
        grouped: Dict[dt.date, List[Position]] = {}
        for contract in sorted(self.contracts):
            grouped.setdefault(contract.delivery_day, []).append(self.contracts[contract])
        return {day: DayPosition(day, tuple(periods)) for day, periods in grouped.items()}

    def day(self, day: dt.date) -> DayPosition:
        """The positions of one local delivery day (empty when nothing traded)."""
        return self.days.get(day, DayPosition(day))

    def net(self, contract: Any) -> Decimal:
        """The net position of a contract (a ``Contract`` or its id); 0 when none."""
        key = contract if isinstance(contract, Contract) else Contract.parse(contract)
        found = self.contracts.get(key)
        return found.net if found is not None else _ZERO


def trader_names(orders: Iterable[Mapping[str, Any]]) -> List[str]:
    """The trader names the caller's own orders carry (``trader``), each once."""
    names: List[str] = []
    for order in orders:
        name = order.get("trader")
        if isinstance(name, str) and name and name not in names:
            names.append(name)
    return names


def positions(trades: Iterable[Mapping[str, Any]], traders: Iterable[str]) -> Positions:
    """The positions of ``traders`` (the caller's names) from market-wide ``trades``.

    A trade whose ``contract``, ``price`` or ``volume`` cannot be read raises
    ``ValueError`` naming the trade.
    """
    names = {name for name in traders if isinstance(name, str)}
    contracts: Dict[Contract, Position] = {}
    for number, trade in enumerate(trades):
        buyer, seller = trade.get("buyer") in names, trade.get("seller") in names
        if not (buyer or seller):
            continue
        where = f"trades[{number}] ({trade.get('trade_id', '?')})"
        try:
            contract = Contract.parse(trade.get("contract"))  # type: ignore[arg-type]
        except ValueError as wrong:
            raise ValueError(f"{where}: {wrong}") from None
        volume = decimal_of(trade.get("volume"), f"{where}.volume")
        price = decimal_of(trade.get("price"), f"{where}.price")
        fees = decimal_of(trade.get("fees") or 0, f"{where}.fees")
        value = price * volume
        change = Position(
            contract,
            bought=volume if buyer else _ZERO,
            sold=volume if seller else _ZERO,
            bought_value=value if buyer else _ZERO,
            sold_value=value if seller else _ZERO,
            fees=fees,
            trades=1,
        )
        held = contracts.get(contract)
        contracts[contract] = change if held is None else held.add(change)
    return Positions({contract: contracts[contract] for contract in sorted(contracts)})
