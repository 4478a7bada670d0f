"""``game positions`` and ``game cancel-all``: the trader's view of a day, and the kill switch.

``positions`` prints each delivery period of a local (Europe/Zurich) day
with what was bought and sold, the net and the cash, and with ``--plot``
draws the day's position as a PNG (matplotlib, an optional dependency).
``cancel-all`` deletes every resting order (or those of a contract and a
side), after asking, unless ``--yes``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from decimal import Decimal
from typing import Any, Dict, List

from gameproto.risk import CancelAll, Contract, DayPosition, delivery_day_of

from .failures import UsageError
from .options import connection_parent, open_client, output_parent
from .read import date_arg, direction_arg, order_rows
from .tables import as_json, table

__all__ = ["add_parsers", "period_rows", "contract_arg"]

POSITION_COLUMNS = ("period", "delivery", "contract", "bought", "sold", "net", "buy_vwap", "sell_vwap", "cash")
CANCEL_COLUMNS = ("order_id", "direction", "price", "remaining_volume", "delivery", "contract")

POSITIONS_EXAMPLE = """examples:
  game positions                              # today's delivery day (Europe/Zurich)
  game positions --date 2030-01-15 --plot day.png
"""
CANCEL_EXAMPLE = """examples:
  game cancel-all                             # every resting order, after asking
  game cancel-all --side sell --yes           # every resting sell, without asking
  game cancel-all --contract 2030-01-15T13:00:00Z/PT15M
"""


def contract_arg(value: str) -> str:
    try:
        return Contract.parse(value).id
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a contract id like 2030-01-15T13:00:00Z/PT15M, got {value!r}")


def add_parsers(subparsers: Any) -> None:
    parents = [output_parent(), connection_parent()]
    positions = subparsers.add_parser(
        "positions",
        help="the day's position per delivery period (and a plot)",
        description="Your position per delivery period of a local delivery day (Europe/Zurich), from your trades.",
        epilog=POSITIONS_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=parents,
    )
    positions.add_argument("--date", type=date_arg, help="the local delivery day YYYY-MM-DD (default: today)")
    positions.add_argument(
        "--plot", metavar="FILE.png", help="draw the day's position into this PNG (needs matplotlib)"
    )
    positions.set_defaults(handler=run_positions)

    cancel = subparsers.add_parser(
        "cancel-all",
        help="cancel every resting order (the kill switch)",
        description="Delete every resting order of the account, or those of one contract and side. "
        "Asks before acting unless --yes.",
        epilog=CANCEL_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=parents,
    )
    cancel.add_argument("--contract", type=contract_arg, help="only this contract (its id, as game orders shows it)")
    cancel.add_argument("--side", type=direction_arg, help="only buy or only sell orders")
    cancel.add_argument("-y", "--yes", action="store_true", help="do not ask: cancel at once")
    cancel.set_defaults(handler=run_cancel_all)


# -- positions ------------------------------------------------------------------

_CENT = Decimal("0.01")
#: How traders number a day's periods: Q45 (the 45th quarter-hour), HH23, H12; a block: 90m#3.
_PERIOD_NAMES = {15: "Q", 30: "HH", 60: "H"}


def _number(value: Any) -> Any:
    """An exact number as it reads: ``90``, not ``9E+1`` or ``90.000``."""
    if not isinstance(value, Decimal):
        return value
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def period_rows(day: DayPosition) -> List[Dict[str, Any]]:
    """One row per contract of the day, in delivery order, with its local window and number."""
    rows = []
    for position in day.periods:
        contract = position.contract
        local = contract.local_start
        end = contract.end.astimezone(local.tzinfo)
        rows.append(
            {
                "period": f"{_PERIOD_NAMES.get(contract.minutes, contract.duration + '#')}{contract.period}",
                "delivery": f"{local:%H:%M}-{end:%H:%M} UTC+{contract.tz_offset_hours}",
                "contract": contract.id,
                "bought": _number(position.bought),
                "sold": _number(position.sold),
                "net": _number(position.net),
                "buy_vwap": _number(position.buy_vwap.quantize(_CENT)) if position.buy_vwap is not None else None,
                "sell_vwap": _number(position.sell_vwap.quantize(_CENT)) if position.sell_vwap is not None else None,
                "cash": _number(position.cash),
            }
        )
    return rows


def run_positions(args: argparse.Namespace) -> int:
    day = dt.date.fromisoformat(args.date) if args.date else delivery_day_of(dt.datetime.now(dt.timezone.utc))
    with open_client(args) as api:
        held = api.positions()
    today = held.day(day)
    if args.plot:
        from .plot import plot_day  # matplotlib only when a plot is asked for

        plot_day(today, args.plot)
    if args.json:
        print(as_json({"day": day.isoformat(), "periods": period_rows(today), **_totals(today)}))
        return 0
    print(f"delivery day {day} (Europe/Zurich, {len(Contract.day(day))} quarter-hours)")
    print(table(period_rows(today), POSITION_COLUMNS))
    totals = _totals(today)
    print(
        f"  day: bought {totals['bought_mwh']} MWh  sold {totals['sold_mwh']} MWh  net {totals['net_mwh']} MWh"
        f"  cash {totals['cash']}"
    )
    if not today.periods and held.days:
        print("  days with trades: " + ", ".join(str(other) for other in held.days))
    if args.plot:
        print(f"  plot written to {args.plot}")
    return 0


def _totals(day: DayPosition) -> Dict[str, Any]:
    return {
        "bought_mwh": _number(day.bought_energy),
        "sold_mwh": _number(day.sold_energy),
        "net_mwh": _number(day.energy),
        "cash": _number(day.cash),
    }


# -- cancel-all -------------------------------------------------------------------


def _has_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (OSError, ValueError):  # a closed stdin
        return False


def _confirmed(count: int) -> bool:
    print(f"cancel {count} resting order{'s' if count != 1 else ''}? [y/N] ", end="", flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def run_cancel_all(args: argparse.Namespace) -> int:
    if not args.yes and not _has_terminal():
        raise UsageError("game cancel-all asks before it cancels and there is no terminal to ask: pass --yes")
    with open_client(args) as api:
        if not args.yes:
            sweep = CancelAll(args.contract, args.side)
            matching = [order for order in api.get_orders(args.side) if sweep.matches(order)]
            if not matching:
                print("no resting order to cancel")
                return 0
            if not args.json:
                print(table(order_rows(matching), CANCEL_COLUMNS))
            if not _confirmed(len(matching)):
                print("nothing cancelled")
                return 0  # the trader's own choice: nothing failed
        result = api.cancel_all_orders(args.contract, args.side)
    if args.json:
        failed = [{"order_id": number, "error": str(error)} for number, error in result.failed]
        print(as_json({"cancelled": result.cancelled, "already_gone": result.already_gone, "failed": failed}))
    else:
        print(str(result))
    return 0 if result.ok else 1
