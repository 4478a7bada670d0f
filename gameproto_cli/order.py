"""``game order create`` and ``game order delete``: one order at a time.

Prices and volumes are read as ``Decimal``, so ``--price 95.125`` is sent as
written. The order is checked by the client's own rules before anything is
sent; a wrong field exits 2 with one line naming it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from gameproto import OrderProblem, OrderValidationError, validate_order

from .options import connection_parent, open_client, output_parent
from .tables import as_json, cell, fields, order_name
from .zones import default_tz, delivery_text

__all__ = ["add_parsers", "build_order", "end_time", "parse_decimal", "too_large"]

CREATE_EXAMPLE = """example:
  game order create --side buy --price 95.5 --volume 1 --start 14:00 --date 2030-01-15 --tz 1
  game order create --side sell --price 120 --volume 0.5 --start 14:00 --duration 1h --hidden --tz 0
"""
DELETE_EXAMPLE = """example:
  game order delete ord_1234        # the id as game orders shows it (1234 works too)
"""
ORDER_EXAMPLES = """examples:
  game order create --side buy --price 95.5 --volume 1 --start 14:00 --date 2030-01-15 --tz 1
  game order delete ord_1234
"""

#: What a created order shows in the table, in this order (the answer may have more).
CREATED_FIELDS = (
    "order_id", "direction", "price", "volume", "state", "contract", "date", "start_time", "end_time",
    "duration", "tz_offset_hours", "remaining_volume", "executed_volume", "created_at",
)  # fmt: skip

_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_DURATION = re.compile(r"([1-9][0-9]{0,5})([mh])")


def _refuse(field: str, reason: str) -> OrderValidationError:
    return OrderValidationError([OrderProblem(None, field, reason)])


def too_large(value: Any) -> bool:
    """Whether a finite Decimal is beyond what a JSON number can carry to the exchange (1e400)."""
    return isinstance(value, Decimal) and value.is_finite() and abs(float(value)) == float("inf")


def parse_decimal(text: str, field: str) -> Decimal:
    """``text`` as an exact number; the client's rules then judge its value (> 0, finite)."""
    try:
        number = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        raise _refuse(field, f"must be a number, got {text!r}")
    if too_large(number):
        # The rules let it through (it is finite), but it would go out as Infinity: refuse it here.
        raise _refuse(field, f"is too large, got {text!r}")
    return number


def _minutes(clock: str, field: str) -> int:
    match = _CLOCK.fullmatch(clock)
    if not match:
        raise _refuse(field, f"must be HH:MM (00:00 to 23:59), got {clock!r}")
    return int(match.group(1)) * 60 + int(match.group(2))


def end_time(start: str, duration: str) -> str:
    """The end of a window of ``duration`` from ``start``; ``00:00`` is midnight at the end of the day."""
    match = _DURATION.fullmatch(duration)
    if not match:
        raise _refuse("duration", f"must be like 15m or 1h, got {duration!r}")
    length = int(match.group(1)) * (60 if match.group(2) == "h" else 1)
    end = _minutes(start, "start_time") + length
    if end > 24 * 60:
        # A window cannot run into the next day: the API's times are of one date.
        raise _refuse("end_time", f"{start} + {duration} runs past midnight; the window must end by 00:00")
    end %= 24 * 60
    return f"{end // 60:02d}:{end % 60:02d}"


def _today_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def build_order(args: argparse.Namespace) -> Dict[str, Any]:
    """The order that ``order create`` sends, from its flags (checked later by the client).

    A flag that does not read is refused with every other problem of the
    order named too, as the library names every problem.
    """
    problems: List[OrderProblem] = []
    named: Set[str] = set()

    def read(fields: Tuple[str, ...], make: Callable[[], Any]) -> Any:
        try:
            return make()
        except OrderValidationError as refused:
            problems.extend(refused.errors)
            named.update(fields)  # the fields this value stands for are judged here, not again below
            return None

    order: Dict[str, Any] = {
        "side": args.side,
        "price": read(("price",), lambda: parse_decimal(args.price, "price")),
        "volume": read(("volume",), lambda: parse_decimal(args.volume, "volume")),
        "date": args.date or _today_utc(),
        "start_time": args.start,
        "end_time": args.end or read(("start_time", "end_time"), lambda: end_time(args.start, args.duration)),
        "duration": args.duration,
    }
    # Without --tz, the local offset at the delivery start, said out loud in the confirmation;
    # refused when the exchange cannot take it (New York, Tokyo), never clamped in silence.
    tz = args.tz if args.tz is not None else default_tz(order["date"], order["start_time"])
    if tz is not None:
        order["tz_offset_hours"] = tz
    if args.hidden:
        order["state"] = "hidden"
    if args.suffix is not None:
        order["options"] = {"trader_suffixe": args.suffix}
    if problems:
        try:
            validate_order(order, allow_non_positive_price=args.allow_non_positive_price)
        except OrderValidationError as refused:
            problems.extend(problem for problem in refused.errors if problem.field not in named)
        raise OrderValidationError(problems)
    return order


def add_parsers(subparsers: Any) -> None:
    order = subparsers.add_parser(
        "order",
        help="create or delete one order",
        description="Create or delete one order. (For many orders from a file: game bulk.)",
        epilog=ORDER_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = order.add_subparsers(title="actions", metavar="ACTION")
    order.set_defaults(handler=lambda args: _missing_action(order))
    _add_create(actions)
    _add_delete(actions)


def _missing_action(parser: argparse.ArgumentParser) -> int:
    print("game order: say which: create or delete (see game order --help)", file=sys.stderr)
    return 2


def _add_create(actions: Any) -> None:
    create = actions.add_parser(
        "create",
        help="place one order",
        description="Place one order for a delivery window of one day. The end of the window is the start\n"
        "plus --duration unless --end is given; prices and volumes are sent exactly as written.",
        epilog=CREATE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[output_parent(), connection_parent()],
    )
    create.add_argument("--side", required=True, choices=("buy", "sell"), help="buy or sell")
    # Strings here, made exact numbers by build_order: argparse's type=Decimal would let a
    # typo escape as a traceback (InvalidOperation is no ValueError).
    create.add_argument("--price", required=True, metavar="PRICE", help="price per MWh, e.g. 95.5 (exact)")
    create.add_argument("--volume", required=True, metavar="MW", help="volume in MW, e.g. 1 or 0.25 (exact)")
    create.add_argument("--start", required=True, metavar="HH:MM", help="delivery start, 24-hour clock")
    create.add_argument("--end", metavar="HH:MM", help="delivery end (default: start + duration; 00:00 is midnight)")
    create.add_argument("--date", metavar="YYYY-MM-DD", help="delivery day (default: today in UTC)")
    create.add_argument("--duration", default="15m", metavar="15m", help="window length: 15m, 30m, 1h ... (15m)")
    create.add_argument("--hidden", action="store_true", help="hide the order from other participants")
    create.add_argument(
        "--tz",
        type=int,
        metavar="{0,1,2}",
        help="UTC offset of --start/--end: 0 UTC, 1 CET, 2 CEST (default: this computer's offset at the "
        "delivery start, refused when it is none of those)",
    )
    create.add_argument("--suffix", metavar="TRADER_SUFFIX", help="a tag of at most 50 characters for your bot")
    create.add_argument(
        "--allow-non-positive-price", action="store_true", help="allow prices of zero or below (power markets see them)"
    )
    create.set_defaults(handler=run_create)


def _add_delete(actions: Any) -> None:
    delete = actions.add_parser(
        "delete",
        help="delete one of your orders",
        description="Delete one of your orders, given by its id as game orders shows it (ord_1234; 1234 works too).",
        epilog=DELETE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[output_parent(), connection_parent()],
    )
    delete.add_argument("order_id", metavar="ID", help="the order's id: ord_1234 (or 1234)")
    delete.set_defaults(handler=run_delete)


def run_create(args: argparse.Namespace) -> int:
    order = build_order(args)
    with open_client(args, allow_non_positive_price=args.allow_non_positive_price) as api:
        created: Dict[str, Any] = dict(api.create_order(order))  # one order in, so one order out
    if args.json:
        print(as_json(created))
    else:
        print(f"created order {order_name(created.get('order_id'))}: {confirmation(created, order)}")
        print(fields(dict(created, order_id=order_name(created.get("order_id"))), CREATED_FIELDS))
    return 0


def confirmation(created: Dict[str, Any], sent: Dict[str, Any]) -> str:
    """``buy 1 MW at 95.5, delivery 2030-01-15 14:00-14:15 UTC+1 (13:00-13:15 UTC)``."""

    def given(name: str) -> Any:
        value = created.get(name)
        return sent.get(name) if value is None else value

    window = delivery_text(given("date"), given("start_time"), given("end_time"), given("tz_offset_hours"))
    side = created.get("direction") or sent.get("side")
    return f"{side} {cell(given('volume'))} MW at {cell(given('price'))}, delivery {window}"


def run_delete(args: argparse.Namespace) -> int:
    order_id: Optional[str] = args.order_id
    with open_client(args) as api:
        answer = api.delete_order(str(order_id))
    if args.json:
        print(as_json(answer))
    else:
        print(f"{answer.get('status', 'done')} order {order_name(answer.get('order_id', order_id))}")
    return 0
