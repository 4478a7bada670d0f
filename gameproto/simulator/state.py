"""The trading state as plain data, to save and load.

``dump`` gives the ledger as JSON-ready values: dicts, lists, str, int,
float (times, epoch seconds), bool and None, amounts as decimal strings (so
money stays exact); only an order's ``options`` hold what its trader sent,
numbers as ``Decimal`` when the exchange read them from JSON. ``encode_json`` writes it;
``json.loads(text, parse_float=Decimal)`` reads it back. ``restore`` rebuilds
the book, its queues and the ledger's indexes from that data, so that every
listing, market answer and trade is what it was.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, Mapping

from .answers import JSONObject
from .book import BookOrder, Fill
from .ledger import Ledger

__all__ = ["dump", "dump_order", "dump_fill", "restore", "FORMAT"]

#: The version of the saved form; ``restore`` refuses any other.
FORMAT = 1

_AMOUNTS = ("price", "volume", "executed", "total_value", "fees")
_FILL_AMOUNTS = ("volume", "price", "fee")


def _order(order: BookOrder) -> JSONObject:
    saved: JSONObject = {
        "number": order.number,
        "trader": order.trader,
        "side": order.side,
        "contract": order.contract,
        "minutes": order.minutes,
        "hidden": order.hidden,
        "created": order.created,
        "updated": order.updated,
        "execution_count": order.execution_count,
        "deleted": order.deleted,
        "expired": order.expired,
        "details": {key: value for key, value in order.details.items() if key not in ("price", "volume")},
    }
    saved.update({name: str(getattr(order, name)) for name in _AMOUNTS})
    return saved


def _fill(fill: Fill) -> JSONObject:
    saved: JSONObject = {
        "number": fill.number,
        "contract": fill.contract,
        "minutes": fill.minutes,
        "direction": fill.direction,
        "time": fill.time,
        "buy_order": fill.buy_order,
        "sell_order": fill.sell_order,
        "buyer": fill.buyer,
        "seller": fill.seller,
    }
    saved.update({name: str(getattr(fill, name)) for name in _FILL_AMOUNTS})
    return saved


def dump_order(order: BookOrder) -> JSONObject:
    """One order as ``dump`` writes it (a store that saves orders one by one uses it)."""
    return _order(order)


def dump_fill(fill: Fill) -> JSONObject:
    """One fill as ``dump`` writes it."""
    return _fill(fill)


def dump(ledger: Ledger) -> JSONObject:
    """The ledger as plain data: every order, every fill, the expiries still listed."""
    book = ledger.book
    return {
        "format": FORMAT,
        "last_number": book.last_number,
        "orders": [_order(order) for order in book.orders.values()],
        "fills": [_fill(fill) for fill in book.fills],
        "expired": [[number, at] for number, at in ledger.expired.items()],
        # When each contract's book last changed (the market rows' timestamp); optional in ``restore``.
        "changed": {contract: at for contract, (_, at) in book.versions.items()},
    }


def _load_order(saved: Mapping[str, Any]) -> BookOrder:
    fields: Dict[str, Any] = {key: value for key, value in saved.items() if key not in _AMOUNTS}
    fields.update({name: Decimal(saved[name]) for name in _AMOUNTS})
    fields.update(created=float(saved["created"]), updated=float(saved["updated"]))
    order = BookOrder(**fields)
    order.details = dict(order.details, price=order.price, volume=order.volume)
    return order


def _load_fill(saved: Mapping[str, Any]) -> Fill:
    fields: Dict[str, Any] = {key: value for key, value in saved.items() if key not in _FILL_AMOUNTS}
    fields.update({name: Decimal(saved[name]) for name in _FILL_AMOUNTS})
    fields["time"] = float(saved["time"])
    return Fill(**fields)


def restore(ledger: Ledger, saved: Mapping[str, Any]) -> None:
    """Replace the ledger's contents with ``saved`` (what ``dump`` gave)."""
    if saved.get("format") != FORMAT:
        raise ValueError(f"not a saved exchange state of format {FORMAT}: {saved.get('format')!r}")
    expired = {int(number): float(at) for number, at in saved["expired"]}
    orders = [_load_order(order) for order in saved["orders"]]
    fills = [_load_fill(fill) for fill in saved["fills"]]
    if "changed" in saved:
        changed = {str(contract): float(at) for contract, at in saved["changed"].items()}
    else:  # saved without it (order by order, say): each contract as of its orders' and fills' last change
        changed = {}
        for moment, contract in [(o.updated, o.contract) for o in orders] + [(f.time, f.contract) for f in fills]:
            changed[contract] = max(moment, changed.get(contract, moment))
    ledger.reset(orders, fills, int(saved["last_number"]), expired, changed)
