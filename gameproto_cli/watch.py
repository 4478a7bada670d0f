"""``game watch orders|trades|market``: a line per event, until Ctrl-C.

Polls the exchange every ``--interval`` seconds and prints what changed:
your orders placed, filled (with the newly executed volume) and gone; your
trades (every trade of the market with ``--all``), each once; a contract's
best bid and ask when either moves. A network failure or a 5xx does not end
the watch: it waits longer and resumes, and prints nothing false. A refused
token ends it (exit status 1). Ctrl-C ends it with status 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import sys
import time
from typing import Any, Callable, Dict, Optional, TextIO

from gameproto._errors import GameAPIError
from gameproto._events import MarketEvent, MarketWatch, OrderEvent, OrderWatch, TradeWatch, Watch

from .options import connection_parent, open_client, output_parent
from .read import direction_arg

__all__ = ["add_parsers", "run", "event_line", "event_json"]

EXAMPLES = """examples:
  game watch orders --token-file ~/.game-token            # your orders: placed, filled, gone
  game watch trades --interval 5 --json                   # your trades, as JSON lines
  game watch trades --all                                 # every trade of the market
  game watch market --duration 15m                        # best bid and ask of each 15-minute contract
"""


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def add_parsers(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "watch",
        help="follow your orders, your trades or the market live",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[output_parent(), connection_parent()],
    )
    parser.add_argument("what", choices=("orders", "trades", "market"), help="what to follow")
    parser.add_argument("--interval", type=_interval, default=1.0, metavar="S", help="seconds between polls (1)")
    parser.add_argument("--direction", type=direction_arg, metavar="buy|sell", help="orders: only this side")
    parser.add_argument("--duration", metavar="15m", help="market: only contracts of this duration")
    parser.add_argument("--all", action="store_true", help="trades: every trade of the market, not only yours")
    parser.set_defaults(handler=run)
    return parser


def _plain(value: Any) -> Any:
    return str(value) if value is not None else "-"


def event_line(event: Any) -> str:
    """One event as a line of text."""
    if isinstance(event, OrderEvent):
        order: Dict[str, Any] = dict(event.order)
        head = f"{event.kind:<6} order {order.get('order_id')}"
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
        return f"market {event.contract} bid {_plain(event.bid)} ask {_plain(event.ask)}"
    trade: Dict[str, Any] = dict(event)
    return (
        f"trade  {trade.get('trade_id')} {trade.get('direction')} {trade.get('volume')} @ {trade.get('price')}"
        f" {trade.get('contract')} {trade.get('seller')} -> {trade.get('buyer')} {trade.get('timestamp', '')}"
    ).rstrip()


def event_json(event: Any) -> str:
    """One event as one line of JSON, carrying its ``kind``."""
    value: Dict[str, Any]
    if isinstance(event, OrderEvent):
        value = {"kind": event.kind, "order": event.order, "volume": event.volume, "complete": event.complete}
    elif isinstance(event, MarketEvent):
        value = {"kind": "market", "contract": event.contract, "bid": event.bid, "ask": event.ask}
    else:
        value = {"kind": "trade", "trade": event}
    return json.dumps(value, separators=(",", ":"), default=str)


def _watch(args: argparse.Namespace) -> Watch[Any]:
    if args.what == "orders":
        return OrderWatch(args.interval, args.direction, random=random.random)
    if args.what == "trades":
        return TradeWatch(args.interval, mine=not args.all, random=random.random)
    return MarketWatch(args.interval, args.duration, random=random.random)


def follow(
    watch: Watch[Any],
    fetch: Callable[[str], Any],
    emit: Callable[[Any], None],
    *,
    sleep: Callable[[float], None] = time.sleep,
    err: TextIO = sys.stderr,
    verbose: bool = False,
    ready: Optional[Callable[[], None]] = None,
) -> None:
    """Run ``watch`` for ever: ``fetch`` answers the path of its next call; each event goes to ``emit``.

    ``ready`` is called once, when the first round of polls has succeeded:
    from then on every change is reported.
    """
    while True:
        try:
            request = watch.call.request
            assert request is not None  # a watch always polls a listing
            value = fetch(request.path)
        except GameAPIError as error:
            wait = watch.failed(error)  # re-raises what ends the watch
            if verbose:
                stamp = dt.datetime.now().strftime("%H:%M:%S")
                print(f"{stamp} {type(error).__name__}: {error}; polling again in {wait:.1f} s", file=err, flush=True)
        else:
            events, wait = watch.succeeded(value)
            for event in events:
                emit(event)
            if ready is not None and wait > 0:
                ready()
                ready = None
        if wait > 0:
            sleep(wait)


def run(args: argparse.Namespace) -> int:
    """Print events until Ctrl-C (status 0)."""
    watch = _watch(args)
    api = open_client(args)
    # The calls a watch makes, through the client's public methods.
    fetchers: Dict[str, Callable[[], Any]] = {
        "/orders": lambda: api.get_orders(args.direction if args.what == "orders" else None),
        "/trades": api.get_trades,
        "/market": lambda: api.get_market_data(duration=args.duration),
    }
    render = event_json if args.json else event_line

    def emit(event: Any) -> None:
        print(render(event), flush=True)

    def announce() -> None:
        # On stderr, so that stdout holds the events alone.
        print(f"watching {args.what} every {args.interval:g} s; Ctrl-C to stop", file=sys.stderr, flush=True)

    try:
        follow(watch, lambda path: fetchers[path](), emit, verbose=args.verbose, ready=announce)
    except KeyboardInterrupt:
        return 0
    finally:
        api.close()
    return 0  # pragma: no cover (follow returns only by an exception)
