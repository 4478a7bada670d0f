"""The commands that only read: ``status``, ``orders``, ``trades``, ``market``, ``ltp``, ``spot``.

Each prints a table by default and, with ``--json``, the exchange's answer as
it came, for scripts.
"""

from __future__ import annotations

import argparse
import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from gameproto._market import best_offers
from gameproto.risk import is_resting
from gameproto.types import BestOffers, MarketRow

from .options import connection_parent, open_client, output_parent
from .tables import as_json, fields, order_name, table
from .zones import delivery_text

__all__ = ["add_parsers"]

Handler = Callable[[argparse.Namespace], int]

ORDER_COLUMNS = (
    "order_id", "direction", "price", "volume", "remaining_volume", "state", "status", "delivery", "contract",
)  # fmt: skip
TRADE_COLUMNS = ("trade_id", "contract", "direction", "price", "volume", "buyer", "seller", "timestamp")
LTP_COLUMNS = ("contract", "price", "volume", "timestamp", "latest_zone", "market_zones")
ZONE_LTP_COLUMNS = ("contract", "market_zone", "price", "volume", "timestamp")
SPOT_COLUMNS = ("contract", "price", "volume", "bid", "ask", "spread", "timestamp")
LADDER_COLUMNS = ("side", "price", "volume")


# -- argument types: a wrong value is argparse's usage error (exit 2) ----------


def direction_arg(value: str) -> str:
    if value not in ("buy", "sell"):
        raise argparse.ArgumentTypeError(f"must be buy or sell, got {value!r}")
    return value


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value!r}")
    return number


def date_arg(value: str) -> str:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date YYYY-MM-DD, got {value!r}")
    if len(value) != 10:  # fromisoformat of Python 3.11+ also takes 20261201, which the API does not
        raise argparse.ArgumentTypeError(f"must be a date YYYY-MM-DD, got {value!r}")
    return value


# -- the parsers ----------------------------------------------------------------


def _command(subparsers: Any, name: str, help_text: str, description: str, example: str, handler: Handler) -> Any:
    parser = subparsers.add_parser(
        name,
        help=help_text,
        description=description,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[output_parent(), connection_parent()],
    )
    parser.set_defaults(handler=handler)
    return parser


def add_parsers(subparsers: Any) -> None:
    _command(
        subparsers,
        "status",
        "the exchange's health and your rate limit",
        "Show the exchange's health, version, services and the rate limit left to your token.",
        "game status --token-file ~/.game-token",
        run_status,
    )
    orders = _command(
        subparsers,
        "orders",
        "your own orders",
        "List your own orders (any trader's orders are never shown: the exchange lists only yours).",
        "game orders --direction buy --json",
        run_orders,
    )
    orders.add_argument("--direction", type=direction_arg, metavar="buy|sell", help="only this side")
    trades = _command(
        subparsers,
        "trades",
        "market-wide trades",
        "List the trades of the whole market, optionally of one side or delivery duration.",
        "game trades --direction sell --duration 15m",
        run_trades,
    )
    trades.add_argument("--direction", type=direction_arg, metavar="buy|sell", help="only this side")
    trades.add_argument("--duration", metavar="15m", help="only contracts of this duration (15m, 30m, 1h, ...)")
    market = _command(
        subparsers,
        "market",
        "the order book, as a ladder per contract",
        "Show the order book of each contract as a ladder: sell offers above, buy offers below,\n"
        "the best of each side nearest the middle line, which gives the spread. --json prints the\n"
        'same book: {contract: {"buy": [best first], "sell": [best first]}}, with or without --best.',
        "game market --date 2030-01-15 --duration 15m --side sell --best 3",
        run_market,
    )
    market.add_argument("--duration", metavar="15m", help="only contracts of this duration (15m, 30m, 1h, ...)")
    market.add_argument(
        "--contract",
        metavar="ID",
        help="only this contract, e.g. 2030-01-15T14:00:00Z/PT15M; a beginning such as 2030-01-15T14 "
        "takes every contract it starts",
    )
    market.add_argument(
        "--date", type=date_arg, metavar="YYYY-MM-DD", help="only contracts delivered that day (UTC, as in their ids)"
    )
    market.add_argument("--side", type=direction_arg, metavar="buy|sell", help="only this side of the book")
    market.add_argument("--best", type=positive_int, metavar="N", help="only the N best offers of each side")
    ltp = _command(
        subparsers,
        "ltp",
        "last traded prices",
        "Show the last traded price of each contract over every zone, the most recent trade first;\n"
        "or every last traded price in one market zone with --zone, or per duration with --duration.",
        "game ltp --zone 10YCH-SWISSGRIDZ",
        run_ltp,
    )
    which = ltp.add_mutually_exclusive_group()
    which.add_argument("--zone", metavar="EIC", help="one market zone, by EIC code (10YCH-SWISSGRIDZ)")
    which.add_argument("--duration", metavar="15m", help="the latest price of each contract of this duration")
    spot = _command(
        subparsers,
        "spot",
        "spot market data (or the spot feed's state)",
        "Show spot market data for an area and a date range, or the spot feed's state with --status.",
        "game spot --area CH-SGD --from 2026-12-01 --to 2026-12-02 --limit 20",
        run_spot,
    )
    spot.add_argument("--area", metavar="NAME", help="area name (the server's default is CH-SGD)")
    spot.add_argument("--from", dest="date_from", type=date_arg, metavar="YYYY-MM-DD", help="first day")
    spot.add_argument("--to", dest="date_to", type=date_arg, metavar="YYYY-MM-DD", help="last day")
    spot.add_argument("--limit", type=positive_int, metavar="N", help="at most N entries")
    spot.add_argument("--status", action="store_true", help="show the spot feed's state instead of its data")


# -- the handlers ---------------------------------------------------------------


def _print(args: argparse.Namespace, answer: Any, render: Callable[[Any], str]) -> int:
    print(as_json(answer) if args.json else render(answer))
    return 0


def _delivery(order: Mapping[str, Any]) -> Optional[str]:
    """``2030-01-15 14:00-14:15 UTC+1 (13:00-13:15 UTC)``: the delivery window of an order in one cell."""
    if not order.get("date"):
        return None
    return delivery_text(
        order.get("date"), order.get("start_time", "?"), order.get("end_time", "?"), order.get("tz_offset_hours")
    )


def _status(order: Mapping[str, Any]) -> Any:
    """The exchange's ``status`` (active, filled, expired, ...); from a server without one, the core's reading."""
    status = order.get("status")
    if status is not None:
        return status
    return "active" if is_resting(order) else "ended"


def order_rows(orders: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    # One id form in every table: ord_1234, what order delete takes back. The
    # state (displayed, hidden) is how the order was placed, the status what
    # became of it: a filled order is still "displayed".
    return [
        dict(order, delivery=_delivery(order), order_id=order_name(order.get("order_id")), status=_status(order))
        for order in orders
    ]


def run_status(args: argparse.Namespace) -> int:
    with open_client(args) as api:
        return _print(args, api.get_status(), fields)


def run_orders(args: argparse.Namespace) -> int:
    with open_client(args) as api:
        answer = api.get_orders(args.direction)
    return _print(args, answer, lambda orders: table(order_rows(orders), ORDER_COLUMNS))


def run_trades(args: argparse.Namespace) -> int:
    with open_client(args) as api:
        answer = api.get_trades(args.direction, args.duration)
    return _print(args, answer, lambda trades: table(trades, TRADE_COLUMNS))


def run_market(args: argparse.Namespace) -> int:
    with open_client(args) as api:
        rows = api.get_market_data(duration=args.duration)
    # Grouped here rather than by api.get_market_best_offers, which would also turn each
    # contract's summary row into a bid and an ask level beside the real ones (see book_rows).
    grouped = best_offers(book_rows([row for row in rows if _wanted(row, args)]), args.best)
    if args.side is not None:
        grouped = one_side(grouped, args.side)
    return _print(args, grouped, lambda _: ladders(grouped, _filters(args), args.side))


def one_side(grouped: Mapping[str, BestOffers], side: str) -> Dict[str, BestOffers]:
    """The book with only ``side``'s offers (the other side empty), without contracts that have none."""
    kept: Dict[str, BestOffers] = {}
    for contract, sides in grouped.items():
        buys = sides["buy"] if side == "buy" else []
        sells = sides["sell"] if side == "sell" else []
        if buys or sells:
            kept[contract] = {"buy": buys, "sell": sells}
    return kept


def _wanted(row: Mapping[str, Any], args: argparse.Namespace) -> bool:
    contract = str(row.get("contract") or "")
    if args.contract is not None and not contract.startswith(args.contract):
        return False
    return args.date is None or contract.startswith(args.date)


def _filters(args: argparse.Namespace) -> str:
    names = ("contract", "date", "side", "duration")
    return " ".join(f"--{name} {getattr(args, name)}" for name in names if getattr(args, name))


def book_rows(rows: Sequence[MarketRow]) -> List[MarketRow]:
    """The order-book levels of ``rows``: a contract's summary row only when it has no levels.

    Servers of 0.1.2's time answer, per contract, a summary row (``bid``/``ask``, no
    ``direction``) and one row per level; older servers only the summary row.
    """
    with_levels = {row.get("contract") for row in rows if row.get("direction") in ("buy", "sell")}
    return [row for row in rows if row.get("direction") in ("buy", "sell") or row.get("contract") not in with_levels]


def run_ltp(args: argparse.Namespace) -> int:
    with open_client(args) as api:
        if args.zone is not None:
            entries = api.get_market_ltp(args.zone)
            return _print(args, entries, lambda rows: table(newest_first(rows), ZONE_LTP_COLUMNS))
        if args.duration is not None:
            entries = api.get_latest_available_ltp(args.duration)
            return _print(args, entries, lambda rows: table(newest_first(rows), ZONE_LTP_COLUMNS))
        latest = api.get_latest_ltp()
    return _print(args, latest, lambda by_contract: table(newest_first(_keyed_rows(by_contract)), LTP_COLUMNS))


def newest_first(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The rows, the most recent trade first (ISO timestamps sort as text); stable among equals."""
    return sorted(rows, key=lambda row: str(row.get("timestamp") or ""), reverse=True)


def run_spot(args: argparse.Namespace) -> int:
    with open_client(args) as api:
        if args.status:
            return _print(args, api.get_spot_status(), fields)
        answer = api.get_spot_data(args.area, args.date_from, args.date_to, args.limit)
    return _print(args, answer, lambda rows: table(rows, SPOT_COLUMNS))


def _keyed_rows(by_contract: Mapping[str, Mapping[str, Any]]) -> List[Dict[str, Any]]:
    return [dict(entry, contract=contract) for contract, entry in by_contract.items()]


# -- the order book as ladders --------------------------------------------------


def _exact(value: Any) -> Optional[Decimal]:
    # Through str so that a float price of 110.1 gives Decimal("110.1"), and the
    # spread of 110.1 - 100.0 shows as 10.1, not 10.099999999999994.
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _middle(sells: Sequence[Mapping[str, Any]], buys: Sequence[Mapping[str, Any]], side: Optional[str] = None) -> str:
    if side is not None:
        other = "buy" if side == "sell" else "sell"
        return f"{side} offers only (--side {side}); {other} offers not shown"
    if not sells:
        return "no sell offers"
    if not buys:
        return "no buy offers"
    ask, bid = _exact(sells[0].get("price")), _exact(buys[0].get("price"))
    if ask is None or bid is None:
        return "spread unknown"
    # "f" keeps 10 as 10 where normalize() alone would write 1E+1.
    return f"spread {format((ask - bid).normalize(), 'f')}"


def ladder(
    contract: str, sells: Sequence[Mapping[str, Any]], buys: Sequence[Mapping[str, Any]], side: Optional[str] = None
) -> str:
    """One contract's book: sells from the highest down, the middle line, buys from the highest down.

    ``sells`` and ``buys`` come best first (as ``best_offers`` gives them), so
    the sells are reversed to put the best ask next to the best bid. ``side``:
    only that side was asked for, and the middle line says so.
    """
    rows = [dict(row, side="sell") for row in reversed(sells)] + [dict(row, side="buy") for row in buys]
    lines = table(rows, LADDER_COLUMNS).split("\n")
    width = max(len(line) for line in lines) - 2
    label = f" {_middle(sells, buys, side)} "
    middle = "  " + label.center(max(width, len(label) + 4), "-")
    lines.insert(2 + len(sells), middle)  # after the title, the rule and the sells
    return "\n".join([contract or "(no contract)", *lines])


def ladders(grouped: Mapping[str, BestOffers], filters: str = "", side: Optional[str] = None) -> str:
    books = [ladder(contract, sides["sell"], sides["buy"], side) for contract, sides in grouped.items()]
    books = [book for book, sides in zip(books, grouped.values()) if sides["sell"] or sides["buy"]]
    if books:
        return "\n\n".join(books)
    return f"  (no offer matches {filters})" if filters else "  (the order book is empty)"
