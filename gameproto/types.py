"""The shapes of the exchange's answers, as ``TypedDict``s: what the clients' methods return.

Every key is optional where the platform may leave it out; unknown keys are
kept. Annotate with them (``orders: List[Order] = api.get_orders()``).
"""

from __future__ import annotations

from ._types import (
    BestOffers,
    BulkFailed,
    BulkRequest,
    BulkResult,
    DeleteResult,
    LatestLTP,
    LTPEntry,
    MarketRow,
    Order,
    SpotData,
    SpotStatus,
    Status,
    Trade,
)

__all__ = [
    "Order",
    "BulkRequest",
    "BulkResult",
    "BulkFailed",
    "DeleteResult",
    "Trade",
    "MarketRow",
    "LTPEntry",
    "SpotData",
    "SpotStatus",
    "Status",
    "BestOffers",
    "LatestLTP",
]
