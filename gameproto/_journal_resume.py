"""The watchers resume: what a watch reported is marked in the journal, and a restarted watch starts from it.

Each watch has its own marks, named by its kind and its filters
(``orders``, ``orders?direction=buy``, ``trades``): two watches of one
journal never share them. A mark is written before its event is handed to
the caller, so a restart never gives an event twice.

Resuming reads only what it needs: the marks of what the first listing
shows, and the marks of the orders still open (an order reported resting
that the listing no longer shows is news: ``gone``). Nothing is capped: a
mark is in the journal, not in a bounded memory.

The trackers are seeded through their public ``resume`` methods; this
module never touches their state.
"""

from __future__ import annotations

import ast
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, Hashable, List, Mapping, Sequence, Tuple

from ._events import _order_key, _trade_key
from ._journal_records import canonical
from ._types import Order, Trade
from ._watch import OrderWatch, TradeWatch, Watch

__all__ = [
    "STARTED",
    "stream_of",
    "listing_keys",
    "baseline_marks",
    "event_marks",
    "resume_watch",
]

#: The key that says a stream was watched before (so a restart resumes rather than starts).
STARTED = "*started*"


def stream_of(watch: Watch[Any]) -> str:
    """The name of a watch's marks: its kind and its filters (``orders?direction=buy``)."""
    if isinstance(watch, OrderWatch):
        request = watch.call.request
        query = request.target.partition("?")[2] if request is not None else ""
        return "orders" + (f"?{query}" if query else "")
    if isinstance(watch, TradeWatch):
        return "trades" if watch.tracker.mine else "trades?mine=false"
    raise TypeError(f"a journal does not resume {type(watch).__name__}")


def _order_mark(order: Order, *, ended: bool, placed: bool = False) -> Tuple[str, str]:
    try:
        executed = "0" if placed else canonical(order.get("executed_volume") or 0)
    except ValueError:
        executed = "0"
    return str(_order_key(order)), f"{executed}|{'1' if ended else '0'}"


def _trade_mark(trade: Trade) -> Tuple[str, str]:
    return repr(_trade_key(trade)), "1"


def listing_keys(watch: Watch[Any], listing: Sequence[Any]) -> List[str]:
    """The mark keys of what a listing shows (the marks a resume reads)."""
    if isinstance(watch, OrderWatch):
        return [str(_order_key(order)) for order in listing]
    return [repr(_trade_key(trade)) for trade in listing]


def baseline_marks(watch: Watch[Any], listing: Sequence[Any]) -> Dict[str, str]:
    """The marks of a first watch's baseline: given (or not) now, never again after a restart."""
    marks = {STARTED: "1"}
    if isinstance(watch, OrderWatch):
        marks.update(_order_mark(order, ended=False) for order in listing)
    else:
        marks.update(_trade_mark(trade) for trade in listing)
    return marks


def event_marks(watch: Watch[Any], event: Any) -> Dict[str, str]:
    """The mark one event leaves (written before the caller gets it)."""
    if isinstance(watch, OrderWatch):
        key, value = _order_mark(event.order, ended=event.kind == "gone", placed=event.kind == "placed")
    else:
        key, value = _trade_mark(event)
    return {STARTED: "1", key: value}


def resume_watch(watch: Watch[Any], marks: Mapping[str, str]) -> bool:
    """Seed ``watch`` with the marks a previous run left; False when it never ran (the listing is a baseline)."""
    if STARTED not in marks:
        return False
    if isinstance(watch, OrderWatch):
        orders: Dict[Hashable, Tuple[Decimal, bool]] = {}
        for key, value in marks.items():
            if key == STARTED:
                continue
            executed_text, _, ended = value.partition("|")
            try:
                executed = Decimal(executed_text or "0")
            except InvalidOperation:
                executed = Decimal(0)
            orders[int(key) if key.isdigit() else key] = (executed, ended == "1")
        watch.tracker.resume(orders)
    elif isinstance(watch, TradeWatch):
        keys = []
        for key in marks:
            if key == STARTED:
                continue
            try:
                keys.append(ast.literal_eval(key))
            except (ValueError, SyntaxError):
                continue
        watch.tracker.resume(keys)
    return True
