"""What a replay gave a bot: its fill log and that log's hash (the same on every run of one bot on one recording),
the recorded mids, and the report of the day (fills, slippage against the mids, positions).

Split from ``replay.py``, which plays the recording; this module only reads what was played.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .._contract import Contract, delivery_day_of
from .answers import JSONObject
from .tape import _ZERO, LevelChange, Tape, _decimal, _moment

__all__ = ["fill_log", "fill_hash", "Mids", "report"]


def _mine(trade: Mapping[str, Any], traders: Iterable[str]) -> Optional[str]:
    names = set(traders)
    if trade.get("buyer") in names:
        return "buy"
    if trade.get("seller") in names:
        return "sell"
    return None


def fill_log(trades: Iterable[Mapping[str, Any]], traders: Iterable[str]) -> bytes:
    """The bot's fills as JSON lines (time, contract, side, price, volume, fee), in the order they happened.

    Ids are left out: what the bot got is the same whichever requests it
    made to see it. Two runs of one bot on one recording give the same bytes.
    """
    names = list(traders)
    lines = []
    for trade in trades:
        side = _mine(trade, names)
        if side is None:
            continue
        entry = {
            "time": trade.get("timestamp"),
            "contract": trade.get("contract"),
            "side": side,
            "price": str(_decimal(trade.get("price"), "price").normalize()),
            "volume": str(_decimal(trade.get("volume"), "volume").normalize()),
            "fee": str(_decimal(trade.get("fees") or 0, "fees").normalize()),
        }
        lines.append(json.dumps(entry, sort_keys=True, separators=(",", ":")))
    return "".join(line + "\n" for line in lines).encode()


def fill_hash(log: bytes) -> str:
    """The SHA-256 of a fill log, hex: what a run prints so that two runs can be compared."""
    return hashlib.sha256(log).hexdigest()


class Mids:
    """The recorded mid price of each contract through time, from the tape's level changes.

    The mid is (best bid + best ask) / 2 while both sides show; when a side
    is empty, the last mid that had both stands.
    """

    def __init__(self, tape: Tape) -> None:
        book: Dict[Tuple[str, str], Dict[Decimal, Decimal]] = {}
        self._times: Dict[str, List[float]] = {}
        self._mids: Dict[str, List[Decimal]] = {}
        for event in tape.events:
            if not isinstance(event, LevelChange):
                continue
            levels = book.setdefault((event.contract, event.side), {})
            if event.volume > 0:
                levels[event.price] = event.volume
            else:
                levels.pop(event.price, None)
            bids, asks = book.get((event.contract, "buy")), book.get((event.contract, "sell"))
            if bids and asks:
                mid = (max(bids) + min(asks)) / 2
                times, mids = self._times.setdefault(event.contract, []), self._mids.setdefault(event.contract, [])
                if times and times[-1] == event.time:
                    mids[-1] = mid
                elif not mids or mids[-1] != mid:
                    times.append(event.time)
                    mids.append(mid)

    def series(self, contract: str) -> Tuple[List[float], List[Decimal]]:
        """Each change of a contract's recorded mid: its times and values, oldest first."""
        return list(self._times.get(contract, [])), list(self._mids.get(contract, []))

    def at(self, contract: str, moment: float) -> Optional[Decimal]:
        """The recorded mid of ``contract`` at ``moment``, None before both sides ever showed."""
        times = self._times.get(contract, [])
        at = bisect.bisect_right(times, moment) - 1
        return self._mids[contract][at] if at >= 0 else None


def _fills_with_slippage(
    tape: Tape, trades: Sequence[Mapping[str, Any]], traders: Sequence[str]
) -> Tuple[List[JSONObject], Decimal]:
    """The bot's fills, each with the recorded mid at its time and its slippage; the slippage times volume, summed."""
    mids = Mids(tape)
    fills: List[JSONObject] = []
    total_slippage = _ZERO
    for trade in trades:
        side = _mine(trade, traders)
        if side is None:
            continue
        moment = _moment(trade.get("timestamp")) or 0.0
        price = _decimal(trade.get("price"), "price")
        volume = _decimal(trade.get("volume"), "volume")
        mid = mids.at(str(trade.get("contract")), moment)
        slippage = None if mid is None else (price - mid if side == "buy" else mid - price)
        if slippage is not None:
            total_slippage += slippage * volume
        fills.append(
            {
                "time": trade.get("timestamp"),
                "trade_id": trade.get("trade_id"),
                "contract": trade.get("contract"),
                "side": side,
                "price": price,
                "volume": volume,
                "mid": mid,
                "slippage": slippage,
            }
        )
    return fills, total_slippage


def report(tape: Tape, trades: Sequence[Mapping[str, Any]], traders: Sequence[str]) -> JSONObject:
    """A backtest's report: each fill with its slippage, the position and cash per contract and per day.

    Slippage is what the fill cost against the recorded mid at its time, per
    MWh, positive when worse than the mid (a buy above it, a sell below it).
    Days are local delivery days of Europe/Zurich, with their 92, 96 or 100
    quarter-hours.
    """
    from .._positions import positions

    fills, total_slippage = _fills_with_slippage(tape, trades, traders)
    held = positions(trades, traders)
    contracts = [
        {
            "contract": contract.id,
            "delivery_day": delivery_day_of(contract.start).isoformat(),
            "bought": position.bought,
            "sold": position.sold,
            "net": position.net,
            "cash": position.cash,
            "fees": position.fees,
            "trades": position.trades,
        }
        for contract, position in held.contracts.items()
    ]
    days = [
        {
            "day": day.isoformat(),
            "quarter_hours": len(Contract.day(day)),
            "net_energy_mwh": position.energy,
            "cash": position.cash,
            "fees": position.fees,
            "contracts": len(position.periods),
        }
        for day, position in held.days.items()
    ]
    log = fill_log(trades, traders)
    return {
        "fills": fills,
        "contracts": contracts,
        "days": days,
        "slippage": total_slippage,
        "fill_hash": fill_hash(log),
    }
