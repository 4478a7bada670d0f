"""``game demo``: the published client's usage examples, run for real.

With nothing configured it starts the embedded exchange on a free loopback
port and trades against it, first with the blocking client and then with the
async one. Given a server (``--url``/``--token`` or ``GAME_API_URL`` and
``GAME_API_TOKEN``) it only reads, unless ``--trade`` is given.

The embedded exchange accepts one token, the sandbox's own ``demo-token``,
which the banner prints so that the walk-through can be repeated by hand; a
token of yours (for ``--url``) is never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from gameproto import GameAPIError
from gameproto._settings import api_url, parse_verify, read_dotenv
from gameproto.risk import is_resting, order_state

from .failures import UsageError, require_backend
from .options import bad_url, read_token_file
from .tables import cell, order_name, table
from .zones import delivery_text

__all__ = ["add_parsers", "run"]

DEMO_TOKEN = "demo-token"

DESCRIPTION = """Walk through every call of the GAME API, run for real.

With nothing configured, starts the embedded exchange on a free loopback port
and trades against it, first with the blocking client, then with the async one.
The embedded exchange takes only its own demo token, demo-token, which it prints.
Given a server (--url and a token, or GAME_API_URL and GAME_API_TOKEN), it only
reads, unless --trade is given; your token is never printed."""

EXAMPLES = """examples:
  game demo                      # local exchange, blocking then asyncio client
  game demo --backend trio       # the async part on trio
  game demo --url https://game.example.com --token-file ~/.game-token   # read-only
"""


def add_parsers(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="walk through every call against a local exchange (or yours)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help="a GAME server to use instead of the embedded one")
    parser.add_argument("--token", help="personal token for --url (prefer --token-file)")
    parser.add_argument("--token-file", help="read the personal token from this file")
    parser.add_argument(
        "--backend", choices=("asyncio", "trio"), default="asyncio", help="event loop of the async part"
    )
    parser.add_argument("--trade", action="store_true", help="also place (and delete) orders on a configured server")
    parser.add_argument("--insecure", action="store_true", help="do not verify the server's TLS certificate")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the full detail of an error")
    parser.set_defaults(handler=run)
    return parser


def _window(hours_ahead: int, quarter: int = 0) -> Tuple[str, str, str]:
    """A quarter-hour delivery window, in UTC, at least ``hours_ahead`` away."""
    now = dt.datetime.now(dt.timezone.utc)
    start = (now + dt.timedelta(hours=hours_ahead)).replace(minute=0, second=0, microsecond=0)
    start += dt.timedelta(minutes=15 * quarter)
    end = start + dt.timedelta(minutes=15)
    return start.strftime("%Y-%m-%d"), start.strftime("%H:%M"), end.strftime("%H:%M")


def _order(side: str, price: float, volume: float, window: Tuple[str, str, str], **extra: Any) -> Dict[str, Any]:
    day, start, end = window
    order = {
        "side": side,
        "price": price,
        "volume": volume,
        "date": day,
        "start_time": start,
        "end_time": end,
        "duration": "15m",
        "tz_offset_hours": 0,
    }
    order.update(extra)
    return order


def _say(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _trading_script(first: int) -> List[Tuple[str, Any]]:
    """The orders of the walk-through, on windows unique to this run part."""
    window = _window(3, first)
    return [
        ("single displayed order", _order("buy", 100.0, 1.0, window, state="displayed")),
        ("hidden order", _order("buy", 99.0, 1.0, window, state="hidden")),
        (
            "bulk of two, mixed states",
            {
                "orders": [
                    _order("buy", 98.0, 1.0, window),
                    _order("sell", 200.0, 0.5, window, state="hidden"),
                ]
            },
        ),
    ]


TRADES_SHOWN = 5


def _show_market(trades: List[Any], best: Dict[str, Any]) -> None:
    if len(trades) > TRADES_SHOWN:
        print(f"  the last {TRADES_SHOWN} of {len(trades)} trades (game trades lists them all):")
    print(table(trades[-TRADES_SHOWN:], ["contract", "direction", "volume", "price", "buyer", "seller"]))
    rows = []
    for contract, sides in list(best.items())[:4]:
        for side in ("sell", "buy"):
            for row in sides[side][:2]:
                rows.append(
                    {"contract": contract, "side": side, "price": row.get("price"), "volume": row.get("volume")}
                )
    _say("order book (best offers first)")
    print(table(rows, ["contract", "side", "price", "volume"]))


def what_happened(answer: Mapping[str, Any]) -> str:
    """What the exchange did with an order just placed, from its answer: traded, rests, or both."""
    executed = answer.get("executed_volume")
    if not executed:
        return "nothing traded: it rests in the book"
    count = answer.get("execution_count")
    fills = f" in {count} fill{'s' if count != 1 else ''}" if count else ""
    average: Any = answer.get("average_price")
    try:  # a quotient: 70.33, not 70.33333333333333
        average = round(float(average), 2)
    except (TypeError, ValueError):
        pass
    at = f" at {cell(average)} on average" if average is not None else ""
    remaining = answer.get("remaining_volume")
    left = f", {cell(remaining)} MW left in the book" if remaining else ", filled completely"
    return f"traded {cell(executed)} MW{fills}{at}{left}"


def placed_line(answer: Mapping[str, Any], delivery: str = "") -> str:
    """An order just placed: its id, side, volume, price (and delivery), and whether it traded on arrival."""
    side, volume, price = answer.get("direction"), cell(answer.get("volume")), cell(answer.get("price"))
    hidden = " (hidden)" if str(answer.get("state", "")).lower() == "hidden" else ""
    when = f", delivery {delivery}" if delivery else ""
    name = order_name(answer.get("order_id"))
    return f"placed {name}{hidden}, {side} {volume} MW at {price}{when}: {what_happened(answer)}"


def _number(order_id: Any) -> str:
    """The listing's form of an id (``31``) from the creation answer's (``ord_31``)."""
    text = str(order_id)
    return text[len("ord_") :] if text.startswith("ord_") else text


def _rests(order: Optional[Mapping[str, Any]]) -> bool:
    """Whether a listed order still has volume in the book (so that deleting it takes something out)."""
    return bool(order) and is_resting(order or {})


def _left(order: Mapping[str, Any]) -> str:
    """What is left of a listed order: it rests, traded completely, or ended."""
    if _rests(order):
        return f"{cell(order.get('remaining_volume'))} MW resting"
    if order_state(order) == "filled":
        return "traded completely (a filled order cannot be deleted)"
    return f"{order.get('status', 'gone')}"


def _check_connection(api: Any) -> None:
    """``test_connection()`` as the published client shows it; when False, the call that says why."""
    if not api.test_connection():
        api.get_status()  # raises the reason: refused, wrong URL, wrong token
        raise GameAPIError("the connection test failed, though the status call answered")


async def _acheck_connection(api: Any) -> None:
    if not await api.test_connection():
        await api.get_status()
        raise GameAPIError("the connection test failed, though the status call answered")


def sync_walkthrough(base_url: str, token: str, verify: Any, trade: bool, first: int) -> None:
    from gameproto_sync import GameAPI

    with GameAPI(token, base_url, verify_ssl=verify) as api:
        _say("blocking client (gameproto_sync): connection test")
        _check_connection(api)
        status = api.get_status()
        print(
            f"  status {status.get('status')}, version {status.get('version')}, "
            f"rate limit {status.get('rate_limit', {}).get('requests_remaining')} left"
        )
        if trade:
            created = []
            for title, data in _trading_script(first):
                _say(title)
                result: Any = api.create_order(data)  # an order, or a bulk result for {"orders": [...]}
                if "orders" in data:
                    print(f"  created {len(result['created'])}, failed {len(result['failed'])}")
                    created += [entry["result"] for entry in result["created"]]
                    for entry in result["created"]:
                        print(f"  {placed_line(entry['result'])}")
                else:
                    when = delivery_text(data["date"], data["start_time"], data["end_time"], data["tz_offset_hours"])
                    print(f"  {placed_line(result, when)}")
                    created.append(result)
            _say("a crossing pair: sell 2 MW at 60, then buy 1 MW at 65")
            window = _window(4, first)
            sell: Any = api.create_order(_order("sell", 60.0, 2.0, window))
            print(f"  sell {order_name(sell['order_id'])}, 2 MW at 60: {what_happened(sell)}")
            buy: Any = api.create_order(_order("buy", 65.0, 1.0, window))
            print(f"  buy {order_name(buy['order_id'])}, 1 MW at 65: {what_happened(buy)}")
            _say("trades")
            _show_market(api.get_trades(), api.get_market_best_offers(top_n=3))
            _say("lookup and deletion")
            order_id = created[0]["order_id"]
            found = api.find_order_by_id(order_id) or {}
            shown = order_name(order_id)
            volume, price = cell(found.get("volume")), cell(found.get("price"))
            print(f"  found {shown}: {found.get('direction')} {volume} MW at {price}, {_left(found)}")
            listed = {str(order.get("order_id")): order for order in api.get_orders()}
            resting = [order for order in created if _rests(listed.get(_number(order["order_id"])))]
            if not resting:
                print("  no order of the walk-through rests any more: nothing to delete")
            else:
                target = resting[0]["order_id"]
                left = cell(listed[_number(target)].get("remaining_volume"))
                deleted = api.delete_order(target)
                print(f"  {deleted['status']} {order_name(target)}: its {left} MW left the book")
        else:
            _say("market (read-only)")
            _show_market(api.get_trades(), api.get_market_best_offers(top_n=3))
            print(f"  your orders: {len(api.get_orders())}")
        spot = api.get_spot_status()
        _say("spot status")
        print(
            f"  {spot.get('status')}, market open: {spot.get('market_open')}, "
            f"{len(spot.get('active_contracts') or [])} active contracts"
        )


async def async_walkthrough(base_url: str, token: str, verify: Any, trade: bool, first: int) -> None:
    import anyio

    from gameproto_async import GameAPI

    async with GameAPI(token, base_url, verify_ssl=verify) as api:
        _say("async client (gameproto_async): connection test")
        await _acheck_connection(api)
        results: Dict[str, Any] = {}

        async def fetch(name: str, call: Any) -> None:
            results[name] = await call

        async with anyio.create_task_group() as group:  # concurrent reads share one token exchange
            group.start_soon(fetch, "status", api.get_status())
            group.start_soon(fetch, "trades", api.get_trades())
            group.start_soon(fetch, "market", api.get_market_data())
            group.start_soon(fetch, "spot", api.get_spot_status())
        print(
            f"  status {results['status'].get('status')}, {len(results['trades'])} trades, "
            f"{len(results['market'])} market rows, spot {results['spot'].get('status')}"
        )
        if trade:
            window = _window(5, first)
            bulk: Any = await api.create_order({"orders": [_order("sell", 70.0 + i, 1.0, window) for i in range(120)]})
            print(f"  bulk of 120 (sent as 100 + 20): created {len(bulk['created'])}, failed {len(bulk['failed'])}")
            crossing: Any = await api.create_order(_order("buy", 71.0, 1.5, window))
            print(f"  crossing buy {order_name(crossing['order_id'])}, 1.5 MW at 71: {what_happened(crossing)}")
            _say("trades (async)")
            _show_market(await api.get_trades(), await api.get_market_best_offers(top_n=2))
            last = bulk["created"][-1]["result"]["order_id"]
            found = await api.find_order_by_id(last)
            if _rests(found):
                left = cell((found or {}).get("remaining_volume"))
                deleted = await api.delete_order(last)
                print(f"  the last bulk order, {order_name(last)}: {deleted['status']}, its {left} MW left the book")
            else:
                print(f"  the last bulk order, {order_name(last)}: {_left(found or {})}, nothing to delete")


@contextlib.contextmanager
def _local_exchange() -> Iterator[str]:
    from gameproto.simulator.exchange import Exchange
    from gameproto_exchange import ServerThread

    exchange = Exchange(tokens=(DEMO_TOKEN,))
    seed = getattr(exchange, "seed_market", None)
    if seed is not None:
        seed()
    with ServerThread(exchange) as server:
        print(f"embedded GAME exchange on {server.base_url}/api/v1 (token {DEMO_TOKEN})", flush=True)
        yield str(server.base_url)


def _configured(args: argparse.Namespace) -> Tuple[Optional[str], Optional[str], Union[bool, str]]:
    """The server, token and TLS verification given (flags, then GAME_API_* and .env), if any."""
    env = dict(read_dotenv(".env"))
    env.update(os.environ)
    token = read_token_file(args.token_file) if args.token_file else args.token
    verify = parse_verify(env.get("GAME_API_VERIFY_SSL"))
    if isinstance(verify, str) and not os.path.exists(os.path.expanduser(verify)):
        raise UsageError(f"GAME_API_VERIFY_SSL names {verify}, which does not exist; give the path of your CA bundle")
    if args.insecure:
        verify = False
    return args.url or env.get("GAME_API_URL") or None, token or env.get("GAME_API_TOKEN") or None, verify


def run(args: argparse.Namespace) -> int:
    # Before anything runs: a missing trio must not surface after the blocking half.
    require_backend(args.backend)
    import anyio

    url, token, verify = _configured(args)
    if url and not token:
        raise UsageError("--url needs a token: --token-file PATH (or --token), or set GAME_API_TOKEN")
    if url:
        try:
            api_url(url)
        except ValueError as error:
            raise bad_url(url, "--url" if args.url else "GAME_API_URL", error) from None
    with contextlib.ExitStack() as stack:
        trade = args.trade
        if not url:
            url, token, trade = stack.enter_context(_local_exchange()), DEMO_TOKEN, True
        assert token is not None
        args.resolved_url = url  # for the error line
        sync_walkthrough(url, token, verify, trade, first=0)
        anyio.run(async_walkthrough, url, token, verify, trade, 1, backend=args.backend)
    print("\ndemo finished: every call answered.", flush=True)
    return 0
