"""The call builders: one ``Call`` per method of the protocol.

A driver runs what these return (``Session.run(calls.get_orders())``); each
checks its arguments, builds the ``Request`` and carries the parser of its
answer. The clients' methods are one-line runs of them.
"""

from __future__ import annotations

from ._calls import (
    Call,
    create_order,
    create_orders_bulk,
    delete_order,
    find_matching_orders,
    find_order_by_id,
    get_latest_available_ltp,
    get_latest_ltp,
    get_market_best_offers,
    get_market_data,
    get_market_ltp,
    get_orders,
    get_spot_data,
    get_spot_status,
    get_status,
    get_trades,
    test_connection,
)

__all__ = [
    "Call",
    "get_status",
    "get_trades",
    "get_orders",
    "create_order",
    "create_orders_bulk",
    "delete_order",
    "get_market_data",
    "get_market_ltp",
    "get_latest_available_ltp",
    "get_spot_data",
    "get_spot_status",
    "test_connection",
    "find_order_by_id",
    "find_matching_orders",
    "get_market_best_offers",
    "get_latest_ltp",
]
