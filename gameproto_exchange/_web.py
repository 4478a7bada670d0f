"""What the sandbox's web page shows, and the files it is made of.

``view`` is the page's data: per open contract the public ladder (hidden
orders never show), the latest trades, the contracts closing next; with
``admin``, every trader's listed orders, positions and recent cancels too.
The page (``static/``) ships in the package: no build step, nothing from
another host (the answers carry a Content-Security-Policy that forbids it).
"""

from __future__ import annotations

import mimetypes
from decimal import Decimal
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional

from gameproto import Contract
from gameproto.risk import order_state
from gameproto.simulator.answers import JSONObject, iso
from gameproto.simulator.exchange import Exchange
from gameproto.simulator.seeding import MARKET_MAKERS
from gameproto.simulator.views import public_book

__all__ = ["view", "static_file", "STATIC", "CONTRACTS_SHOWN", "TRADES_SHOWN", "LEVELS_SHOWN"]

STATIC = Path(__file__).with_name("static")
#: Open contracts shown as ladders, nearest delivery first.
CONTRACTS_SHOWN = 8
#: Price levels of each side of a ladder.
LEVELS_SHOWN = 5
#: A trader's live orders listed in the admin view.
ORDERS_SHOWN = 12
#: The latest trades listed.
TRADES_SHOWN = 25
MAKERS = frozenset(MARKET_MAKERS)
_ORDER_FIELDS = ("order_id", "direction", "price", "volume", "remaining_volume", "state", "contract", "status")
_FILES = {"index.html", "sandbox.js", "sandbox.css", "favicon.svg"}


def static_file(name: str) -> Optional[bytes]:
    """The bytes of one of the page's files, or None for any other name."""
    if name not in _FILES:
        return None
    return (STATIC / name).read_bytes()


def content_type(name: str) -> str:
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return guessed + ("; charset=utf-8" if guessed.startswith("text/") or guessed.endswith("javascript") else "")


def _start(contract: str) -> float:
    """The delivery start of a contract id, as POSIX seconds (one reading of ids: the core's ``Contract``)."""
    return Contract.parse(contract).start.timestamp()


def _ladders(exchange: Exchange) -> List[JSONObject]:
    book = exchange.ledger.book
    shown = []
    for contract in book.contracts()[:CONTRACTS_SHOWN]:  # names sort by delivery start
        bids, asks = public_book(book, contract)
        fills = book.fills_by_contract.get(contract)
        shown.append(
            {
                "contract": contract,
                "bids": [{"price": price, "volume": volume} for price, volume in bids[:LEVELS_SHOWN]],
                "asks": [{"price": price, "volume": volume} for price, volume in asks[:LEVELS_SHOWN]],
                "last_price": fills[-1].price if fills else None,
            }
        )
    return shown


def _closing(exchange: Exchange, now: float) -> List[JSONObject]:
    return [
        {"contract": contract, "closes_at": iso(start), "seconds_left": round(start - now)}
        for contract, start in ((name, _start(name)) for name in exchange.ledger.book.contracts()[:5])
    ]


def _trades(exchange: Exchange, admin: bool) -> List[JSONObject]:
    listed = []
    for fill in reversed(exchange.ledger.book.fills[-TRADES_SHOWN:]):
        trade: JSONObject = {
            "trade_id": f"trd_{fill.number}",
            "time": iso(fill.time),
            "contract": fill.contract,
            "price": fill.price,
            "volume": fill.volume,
            "direction": fill.direction,
        }
        if admin:
            trade.update(buyer=fill.buyer, seller=fill.seller)
        listed.append(trade)
    return listed


def _positions(exchange: Exchange, now: float) -> Dict[str, Dict[str, Decimal]]:
    """Each trader's net bought volume (sold counts negative) per contract not yet delivered; flat ones left out."""
    net: Dict[str, Dict[str, Decimal]] = {}
    for contract, fills in exchange.ledger.book.fills_by_contract.items():
        if _start(contract) <= now:
            continue
        for fill in fills:
            for trader, sign in ((fill.buyer, 1), (fill.seller, -1)):
                per = net.setdefault(trader, {})
                per[contract] = per.get(contract, Decimal(0)) + sign * fill.volume
    return {trader: {c: v for c, v in sorted(per.items()) if v} for trader, per in net.items()}


def _traders(exchange: Exchange, now: float) -> List[JSONObject]:
    """Every trader's live (and just expired) orders, at most ``ORDERS_SHOWN`` each, and positions; makers last."""
    positions = _positions(exchange, now)
    names = sorted(set(exchange.ledger.by_trader) | set(positions), key=lambda name: (name in MAKERS, name))
    traders = []
    for name in names:
        live = [order for order in exchange.desk.orders_of(name) if order_state(order) != "filled"]
        orders = [{key: order[key] for key in _ORDER_FIELDS} for order in live[:ORDERS_SHOWN]]
        traders.append(
            {
                "trader": name,
                "orders": orders,
                "more_orders": len(live) - len(orders),
                "positions": positions.get(name, {}),
            }
        )
    return traders


def view(exchange: Exchange, now: float, key: str, *, admin: bool, cancels: Deque[JSONObject]) -> JSONObject:
    """The page's data at ``now`` (the ledger is expired to it first); ``key`` names this version."""
    exchange.ledger.expire(now)
    shown: Dict[str, Any] = {
        "key": key,
        "now": iso(now),
        "admin": admin,
        "contracts": _ladders(exchange),
        "closing": _closing(exchange, now),
        "trades": _trades(exchange, admin),
    }
    if admin:
        shown["traders"] = _traders(exchange, now)
        shown["cancels"] = list(reversed(cancels))
    return shown
