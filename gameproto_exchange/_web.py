"""What the sandbox's web page shows, and the files it is made of.

``Views.view`` is the page's data: the public ladders of the contracts the
viewer chose (``first``, eight at a time, nearest delivery first), which of
how many are on screen, each shown contract's recent trade prices (drawn as a
small chart), the latest trades, the contracts closing next; with ``admin``,
every trader's live orders (at most ``ORDERS_SHOWN``), positions and recent
cancels too. Each contract is named by its local delivery day and time in
Europe/Zurich and its quarter-hour number of that day, beside its id.

Hidden orders never show in the public view, not even by their absence: a
contract whose only resting orders are hidden is not listed, not counted and
not closing next, and its key (``public_key``) moves only when the public
book or the trades do.

A render costs what it shows: the ladders come from the book's displayed
levels (never a walk over resting orders), the admin listing from each
trader's live orders (never their filled ones), the positions from the fills
since the last render. The page (``static/``) ships in the package: no build
step, nothing from another host (the answers carry a Content-Security-Policy
that forbids it).
"""

from __future__ import annotations

import datetime as dt
import functools
import heapq
import itertools
import mimetypes
from decimal import Decimal
from pathlib import Path
from typing import Any, Deque, Dict, Iterable, List, Optional, Tuple

from gameproto import Contract
from gameproto._calls import encode_json
from gameproto.simulator.answers import JSONObject, iso
from gameproto.simulator.book import BookOrder, Fill, OrderBook
from gameproto.simulator.exchange import Exchange
from gameproto.simulator.seeding import MARKET_MAKERS

__all__ = [
    "Views",
    "static_file",
    "contract_label",
    "STATIC",
    "CONTRACTS_SHOWN",
    "TRADES_SHOWN",
    "LEVELS_SHOWN",
    "PRICES_CHARTED",
]

STATIC = Path(__file__).with_name("static")
#: Open contracts shown as ladders at a time, nearest delivery first.
CONTRACTS_SHOWN = 8
#: Price levels of each side of a ladder.
LEVELS_SHOWN = 5
#: A trader's live orders listed in the admin view.
ORDERS_SHOWN = 12
#: The latest trades listed.
TRADES_SHOWN = 25
#: The latest trade prices of each shown contract, drawn as its chart.
PRICES_CHARTED = 40
#: Open contracts named in "closing next".
CLOSING_SHOWN = 5
MAKERS = frozenset(MARKET_MAKERS)
_FILES = {"index.html", "sandbox.js", "sandbox.css", "favicon.svg"}
_QUARTER = 900
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def static_file(name: str) -> Optional[bytes]:
    """The bytes of one of the page's files, or None for any other name."""
    if name not in _FILES:
        return None
    return (STATIC / name).read_bytes()


def content_type(name: str) -> str:
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return guessed + ("; charset=utf-8" if guessed.startswith("text/") or guessed.endswith("javascript") else "")


# -- contracts in local time --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def contract_label(contract: str) -> JSONObject:
    """How the page names a contract: its local delivery day, start and end (Europe/Zurich), and the
    quarter hours of that day it covers; e.g. ``Fri 1 Mar 2030 15:00-15:15, QH 61``."""
    try:
        found = Contract.parse(contract)
    except ValueError:
        return {"text": contract, "day": "", "time": "", "quarter_hours": ""}
    local = found.local_start
    local_end = local + dt.timedelta(minutes=found.minutes)  # on the clock of its start: 02:45-03:00 either time
    first = found.quarter_hour
    last = first + max(1, found.minutes // 15) - 1
    quarters = f"QH {first}" if last == first else f"QH {first}-{last}"
    day = f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}"
    times = f"{local:%H:%M}-{local_end:%H:%M}"
    return {"text": f"{day} {times}, {quarters}", "day": day, "time": times, "quarter_hours": quarters}


@functools.lru_cache(maxsize=4096)
def _start(contract: str) -> float:
    """The delivery start of a contract id, as POSIX seconds (one reading of ids: the core's ``Contract``)."""
    try:
        return Contract.parse(contract).start.timestamp()
    except ValueError:
        return 0.0


# -- the parts of a view ------------------------------------------------------------------------------------


def _ladder(book: OrderBook, contract: str) -> JSONObject:
    fills = book.fills_by_contract.get(contract, [])
    return {
        "contract": contract,
        "bids": [{"price": price, "volume": volume} for price, volume in book.shown(contract, "buy", LEVELS_SHOWN)],
        "asks": [{"price": price, "volume": volume} for price, volume in book.shown(contract, "sell", LEVELS_SHOWN)],
        "last_price": fills[-1].price if fills else None,
        "prices": [fill.price for fill in fills[-PRICES_CHARTED:]],
    }


def _trades(book: OrderBook, admin: bool) -> List[JSONObject]:
    listed = []
    for fill in reversed(book.fills[-TRADES_SHOWN:]):
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


def _order_row(order: BookOrder, expired: bool) -> JSONObject:
    status = "expired" if expired else "active"
    return {
        "order_id": f"ord_{order.number}",
        "direction": order.side,
        "price": order.price,
        "volume": order.volume,
        "remaining_volume": order.remaining,
        "state": "Expired" if expired else "Hidden" if order.hidden else "Displayed",
        "contract": order.contract,
        "status": status,
    }


class _Positions:
    """Each trader's net bought volume per contract, kept up to date from the fills since the last look."""

    def __init__(self) -> None:
        self._fills: Optional[List[Fill]] = None
        self._counted = 0
        self.net: Dict[str, Dict[str, Decimal]] = {}
        #: Bumped for a trader whenever its positions change (a fill, a contract delivered).
        self.versions: Dict[str, int] = {}
        self._moves = 0

    def _moved(self, trader: str) -> None:
        self._moves += 1
        self.versions[trader] = self._moves

    def update(self, book: OrderBook, now: float) -> Dict[str, Dict[str, Decimal]]:
        """Not yet delivered, flat ones left out: {trader: {contract: MW}}."""
        if book.fills is not self._fills or len(book.fills) < self._counted:  # a reset or a load: count again
            for trader in self.net:
                self._moved(trader)
            self._fills, self._counted, self.net = book.fills, 0, {}
        for fill in book.fills[self._counted :]:
            for trader, sign in ((fill.buyer, 1), (fill.seller, -1)):
                per = self.net.setdefault(trader, {})
                per[fill.contract] = per.get(fill.contract, Decimal(0)) + sign * fill.volume
                self._moved(trader)
        self._counted = len(book.fills)
        shown: Dict[str, Dict[str, Decimal]] = {}
        for trader, per in self.net.items():
            delivered = [c for c in per if _start(c) <= now]  # no fill can come any more
            for contract in delivered:
                del per[contract]
            if delivered:
                self._moved(trader)
            kept = {contract: volume for contract, volume in sorted(per.items()) if volume}
            if kept:
                shown[trader] = kept
        return shown


def _traders(exchange: Exchange, positions: Dict[str, Dict[str, Decimal]]) -> List[JSONObject]:
    """Every trader's live (and just expired) orders, at most ``ORDERS_SHOWN`` each, and positions; makers last."""
    ledger = exchange.ledger
    expired: Dict[str, List[BookOrder]] = {}
    for number in ledger.expired:
        order = ledger.book.orders[number]
        expired.setdefault(order.trader, []).append(order)
    names = sorted(set(ledger.by_trader) | set(positions), key=lambda name: (name in MAKERS, name))
    traders = []
    for name in names:
        live: Iterable[BookOrder] = itertools.islice(ledger.live.get(name, {}).values(), ORDERS_SHOWN)
        gone = expired.get(name, [])
        merged = heapq.merge(
            ((order.number, False, order) for order in live),
            ((order.number, True, order) for order in sorted(gone, key=lambda order: order.number)[:ORDERS_SHOWN]),
            key=lambda entry: entry[0],
        )
        orders = [_order_row(order, is_expired) for _, is_expired, order in itertools.islice(merged, ORDERS_SHOWN)]
        held = len(ledger.live.get(name, {})) + len(gone)
        traders.append(
            {"trader": name, "orders": orders, "more_orders": held - len(orders), "positions": positions.get(name, {})}
        )
    return traders


class Views:
    """The page's views of one exchange, and what they keep between renders (the positions)."""

    def __init__(self) -> None:
        self._positions = _Positions()
        # Each trader's part of the admin view as JSON, with what it was made from: a trader whose
        # orders and positions did not move is not encoded again (most of an admin render otherwise).
        self._traders: Dict[str, Tuple[Any, bytes]] = {}

    def render(
        self,
        exchange: Exchange,
        now: float,
        key: str,
        *,
        admin: bool,
        cancels: Deque[JSONObject],
        first: int = 0,
    ) -> bytes:
        """``view`` as JSON bytes (what ``/_view`` answers), each unchanged trader's part as it was last made."""
        shown = self.view(exchange, now, key, admin=admin, cancels=cancels, first=first)
        traders = shown.pop("traders", None)
        body = encode_json(shown)
        if traders is None:
            return body
        parts, kept = [], {}
        for trader in traders:
            name = trader["trader"]
            made_of = (
                self._positions.versions.get(name),
                trader["more_orders"],
                [(o["order_id"], o["remaining_volume"], o["status"]) for o in trader["orders"]],
            )
            found = self._traders.get(name)
            part = found[1] if found is not None and found[0] == made_of else encode_json(trader)
            kept[name] = (made_of, part)
            parts.append(part)
        self._traders = kept
        return body[:-1] + b',"traders":[' + b",".join(parts) + b"]}"

    @staticmethod
    def window(exchange: Exchange, first: int) -> Tuple[int, List[str]]:
        """The first shown contract's index (``first`` kept within the contracts there are) and the contracts shown."""
        contracts = exchange.ledger.book.shown_contracts()
        first = max(0, min(first, len(contracts) - 1))
        return first, contracts[first : first + CONTRACTS_SHOWN]

    @staticmethod
    def public_key(exchange: Exchange, first: int) -> str:
        """Names what the public view at ``first`` shows: it moves only when that does (never for a hidden order)."""
        book = exchange.ledger.book
        first, shown = Views.window(exchange, first)
        closing = book.shown_contracts()[:CLOSING_SHOWN]
        latest = max((book.shown_versions.get(contract, 0) for contract in shown + closing), default=0)
        return f"p{first}.{book.shown_set_version}.{latest}.{len(book.fills)}"

    @staticmethod
    def admin_key(exchange: Exchange, first: int, now: float, cancels: int) -> str:
        """Names what the admin view shows: any change of the book, the listing, the positions or the cancels."""
        book = exchange.ledger.book
        first = Views.window(exchange, first)[0]
        quarter = int(now // _QUARTER)  # positions end at delivery starts, which fall on quarter hours
        return f"a{first}.{book.version}.{len(book.fills)}.{len(exchange.ledger.expired)}.{quarter}.{cancels}"

    def view(
        self,
        exchange: Exchange,
        now: float,
        key: str,
        *,
        admin: bool,
        cancels: Deque[JSONObject],
        first: int = 0,
    ) -> JSONObject:
        """The page's data at ``now`` (the caller has expired the ledger to it); ``key`` names this version."""
        book = exchange.ledger.book
        contracts = book.shown_contracts()
        first, window = self.window(exchange, first)
        shown: Dict[str, Any] = {
            "key": key,
            "now": iso(now),
            "admin": admin,
            "first": first,
            "total": len(contracts),
            "per_page": CONTRACTS_SHOWN,
            "choices": contracts,
            "contracts": [_ladder(book, contract) for contract in window],
            "closing": [
                {"contract": contract, "closes_at": iso(_start(contract))} for contract in contracts[:CLOSING_SHOWN]
            ],
            "trades": _trades(book, admin),
        }
        named = set(contracts) | {trade["contract"] for trade in shown["trades"]}
        if admin:
            positions = self._positions.update(book, now)
            shown["traders"] = _traders(exchange, positions)
            shown["cancels"] = [dict(cancel, order_id=f"ord_{cancel['order_id']}") for cancel in reversed(cancels)]
            for trader in shown["traders"]:
                named.update(order["contract"] for order in trader["orders"])
                named.update(trader["positions"])
            named.update(cancel["contract"] for cancel in shown["cancels"])
        shown["labels"] = {contract: contract_label(contract) for contract in sorted(named)}
        return shown
