"""The trader's view and brakes: delivery periods, positions, pre-trade limits, the kill switch's answer.

``Contract`` places a contract in the exchange's local delivery day
(Europe/Zurich: 92, 96 or 100 quarter-hours); ``positions(trades, traders)``
sums a trader's trades per contract and per day; ``RiskLimits`` is what
``GameAPI(..., risk=...)`` holds every order to, before it is sent, and
``RiskLimitError`` what a breach raises; ``CancelAll`` decides which orders
the kill switch deletes, and ``CancelAllResult`` is what it answers;
``Terminated`` ends a ``cancel_all_on_exit()`` block that SIGTERM
interrupted once a framework's handler took the signal. All of it is pure
(docs/risk.md).

The one life of an order is here too: ``order_state(order)`` reads what the
exchange shows (``state``/``status`` in any case, and what remains),
``is_resting``/``is_over`` answer "is this order over?", ``ORDER_STATES``,
``LIVE_STATES``, ``ENDED_STATES`` and ``MOVES`` are its tables, and
``request_window`` the late-request window (``LATE_REQUEST_GRACE``).
"""

from __future__ import annotations

from ._cancel_all import CancelAll, CancelAllResult, Terminated
from ._contract import Contract, delivery_day_of, local_day_start, quarter_hours_in_day, zurich_offset_hours
from ._errors import RiskBreach, RiskLimitError
from ._order_life import (
    ENDED_STATES,
    LATE_REQUEST_GRACE,
    LIVE_STATES,
    MOVES,
    ORDER_STATES,
    SEND_SKEW,
    RequestWindow,
    can_move,
    is_over,
    is_resting,
    order_state,
    request_window,
)
from ._positions import DayPosition, Position, Positions, positions, trader_names
from ._risk import RiskLimits

__all__ = [
    "Contract",
    "zurich_offset_hours",
    "quarter_hours_in_day",
    "local_day_start",
    "delivery_day_of",
    "positions",
    "trader_names",
    "Positions",
    "Position",
    "DayPosition",
    "RiskLimits",
    "RiskLimitError",
    "RiskBreach",
    "is_resting",
    "is_over",
    "order_state",
    "can_move",
    "ORDER_STATES",
    "LIVE_STATES",
    "ENDED_STATES",
    "MOVES",
    "LATE_REQUEST_GRACE",
    "SEND_SKEW",
    "RequestWindow",
    "request_window",
    "CancelAll",
    "CancelAllResult",
    "Terminated",
]
