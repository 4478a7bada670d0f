"""``game watch orders|trades|market``: a line per event, until Ctrl-C.

Polls the exchange every ``--interval`` seconds (the client's own
``watch_orders``, ``watch_trades`` and ``watch_market``) and prints what
changed: your orders placed, filled (with the newly executed volume) and gone; your
trades (every trade of the market with ``--all``), each once; a contract's
best bid and ask when either moves. What exists when the watch starts is
not news: ``--existing`` prints it first, each line marked ``existing``. A network failure or a 5xx does not end
the watch: it waits longer and resumes, and prints nothing false. A refused
token ends it (exit status 1). Ctrl-C ends it with status 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, TextIO

from gameproto import Attempt, MarketEvent, OrderEvent

if TYPE_CHECKING:
    from gameproto_sync import GameAPI

from .failures import UsageError
from .options import connection_parent, open_client, output_parent, seconds_arg
from .read import direction_arg
from .tables import order_name

__all__ = ["add_parsers", "run", "event_line", "event_json"]

WHAT = ("orders", "trades", "market")

EXAMPLES = """examples:
  game watch orders --token-file ~/.game-token            # your orders: placed, filled, gone
  game watch trades --interval 5 --json                   # your trades, as JSON lines
  game watch trades --all                                 # every trade of the market
  game watch market --duration 15m --existing             # the book's best prices now, then each change
"""


def add_parsers(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "watch",
        help="follow your orders, your trades or the market live",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[output_parent(), connection_parent()],
    )
    parser.add_argument(
        "what",
        nargs="?",
        choices=WHAT,
        metavar="orders|trades|market",
        help="what to follow: your orders, your trades or the market",
    )
    parser.add_argument("--interval", type=seconds_arg, default=1.0, metavar="S", help="seconds between polls (1)")
    parser.add_argument("--direction", type=direction_arg, metavar="buy|sell", help="orders: only this side")
    parser.add_argument("--duration", metavar="15m", help="market: only contracts of this duration")
    parser.add_argument("--all", action="store_true", help="trades: every trade of the market, not only yours")
    parser.add_argument(
        "--existing", action="store_true", help="first print what exists when the watch starts, marked existing"
    )
    parser.set_defaults(handler=run)
    return parser


def _plain(value: Any) -> Any:
    return str(value) if value is not None else "-"


def event_line(event: Any) -> str:
    """One event as a line of text."""
    if isinstance(event, OrderEvent):
        order: Dict[str, Any] = dict(event.order)
        head = f"{event.kind:<6} order {order_name(event.order_id)}"
        what = f"{order.get('direction')} {order.get('volume')} @ {order.get('price')} {order.get('contract', '')}"
        if event.kind == "filled":
            done = " complete" if event.complete else ""
            executed = f"executed {order.get('executed_volume')} of {order.get('volume')}"
            return f"{head} +{event.volume} ({executed}){done}"
        if event.kind == "gone":
            state = order.get("status") or order.get("state") or ""
            return f"{head} {what.strip()} ({'complete' if event.complete else state})"
        return f"{head} {what.strip()}"
    if isinstance(event, MarketEvent):
        mark = "existing " if event.existing else ""
        return f"{mark}market {event.contract} bid {_plain(event.bid)} ask {_plain(event.ask)}"
    trade: Dict[str, Any] = dict(event)
    mark = "existing " if trade.get("existing") else ""
    return (
        f"{mark}trade  {trade.get('trade_id')} {trade.get('direction')} {trade.get('volume')} @ {trade.get('price')}"
        f" {trade.get('contract')} {trade.get('seller')} -> {trade.get('buyer')} {trade.get('timestamp', '')}"
    ).rstrip()


def event_json(event: Any) -> str:
    """One event as one line of JSON, carrying its ``kind``."""
    value: Dict[str, Any]
    if isinstance(event, OrderEvent):
        value = {
            "kind": event.kind,
            "order_id": order_name(event.order_id),
            "order": event.order,
            "volume": event.volume,
            "complete": event.complete,
        }
    elif isinstance(event, MarketEvent):
        value = {"kind": "market", "contract": event.contract, "bid": event.bid, "ask": event.ask}
        if event.existing:
            value["existing"] = True
    else:
        value = {"kind": "trade", "trade": event}
    return json.dumps(value, separators=(",", ":"), default=str)


def _events(api: GameAPI, args: argparse.Namespace) -> Iterator[Any]:
    """The client's own watch of ``args.what``: it polls, diffs and waits out failures."""
    if args.what == "orders":
        return api.watch_orders(args.interval, direction=args.direction, existing=args.existing)
    if args.what == "trades":
        return api.watch_trades(args.interval, mine=not args.all, existing=args.existing)
    return api.watch_market(args.interval, duration=args.duration, existing=args.existing)


#: The listing whose first answer completes a watch's first round (a trade watch may list orders before).
_LISTING = {"orders": "/orders", "trades": "/trades", "market": "/market"}


def _observer(args: argparse.Namespace, err: TextIO) -> Callable[[Attempt], None]:
    """The client's ``on_attempt`` hook: says "watching" once the first round is read; with ``--verbose``, failures."""
    announced = False

    def observe(attempt: Attempt) -> None:
        nonlocal announced
        if not announced and attempt.status == 200 and attempt.path == _LISTING[args.what]:
            announced = True
            # From this answer on every change is reported. On stderr, so that stdout holds the events alone.
            print(f"watching {args.what} every {args.interval:g} s; Ctrl-C to stop", file=err, flush=True)
        failed = attempt.failure is not None or (attempt.status is not None and not 200 <= attempt.status < 300)
        if args.verbose and failed and attempt.status not in (401, 403):
            stamp = dt.datetime.now().strftime("%H:%M:%S")
            outcome = attempt.failure if attempt.failure is not None else f"status {attempt.status}"
            then = "polling again" if attempt.retry_in is None else f"retrying in {attempt.retry_in:.1f} s"
            print(f"{stamp} {attempt.method} {attempt.path}: {outcome}; {then}", file=err, flush=True)

    return observe


def run(args: argparse.Namespace) -> int:
    """Print events until Ctrl-C (status 0)."""
    if args.what is None:
        raise UsageError("say what to watch: game watch orders, game watch trades or game watch market")
    api = open_client(args, on_attempt=_observer(args, sys.stderr))
    render = event_json if args.json else event_line
    events = _events(api, args)
    try:
        for event in events:
            print(render(event), flush=True)
    except KeyboardInterrupt:
        print(file=sys.stderr, flush=True)  # the prompt starts on a line of its own, not after the ^C
        return 0
    finally:
        stop = getattr(events, "close", None)  # a generator: its connection work ends here, not at collection
        if stop is not None:
            stop()
        api.close()
    return 0  # pragma: no cover (a watch ends only by an exception)
