"""The shapes of the exchange's answers, as ``TypedDict``s.

Every key is optional (``total=False``): the platform adds fields over time
and older servers leave some out, and clients keep whatever they get.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, TypedDict, Union

__all__ = [
    "BulkRequest",
    "Order",
    "BulkCreated",
    "BulkFailed",
    "BulkResult",
    "DeleteResult",
    "Trade",
    "MarketRow",
    "LTPEntry",
    "BookLevel",
    "OrderBook",
    "SpotData",
    "RateLimitInfo",
    "Status",
    "SpotStatus",
    "BestOffers",
    "LatestLTP",
    "Number",
]

Number = Union[int, float]


class BulkRequest(TypedDict):
    """``create_order``'s bulk form: ``{"orders": [order, ...]}``."""

    orders: List[Dict[str, Any]]


class Order(TypedDict, total=False):
    order_id: Union[int, str]
    direction: str
    volume: Number
    price: Number
    state: str
    contract: str
    trader: str
    date: str
    start_time: str
    end_time: str
    duration: str
    tz_offset_hours: int
    created_at: str
    updated_at: str
    executed_volume: Number
    remaining_volume: Number
    average_price: Optional[Number]
    execution_count: int
    total_value: Number
    fees: Number
    metadata: Dict[str, Any]


class BulkCreated(TypedDict):
    index: int
    result: Order


class BulkFailed(TypedDict):
    index: int
    error: str


class BulkResult(TypedDict):
    requested: int
    created: List[BulkCreated]
    failed: List[BulkFailed]


class DeleteResult(TypedDict, total=False):
    status: str
    order_id: Union[int, str]


class Trade(TypedDict, total=False):
    trade_id: str
    contract: str
    direction: str
    volume: Number
    price: Number
    timestamp: str
    buyer: str
    seller: str
    fees: Number
    duration: str
    execution_time: str


class MarketRow(TypedDict, total=False):
    timestamp: str
    contract: str
    direction: str
    price: Number
    volume: Number
    bid: Optional[Number]
    ask: Optional[Number]
    spread: Optional[Number]
    high_24h: Optional[Number]
    low_24h: Optional[Number]
    volume_24h: Optional[Number]
    change_24h: Optional[Number]
    change_percent_24h: Optional[Number]
    duration: str


class LTPEntry(TypedDict, total=False):
    market_zone: str
    contract: str
    price: Number
    volume: Number
    timestamp: str


class BookLevel(TypedDict, total=False):
    price: Number
    volume: Number


class OrderBook(TypedDict, total=False):
    bids: List[BookLevel]
    asks: List[BookLevel]


class SpotData(TypedDict, total=False):
    contract: str
    price: Optional[Number]
    volume: Number
    bid: Optional[Number]
    ask: Optional[Number]
    spread: Optional[Number]
    high_24h: Optional[Number]
    low_24h: Optional[Number]
    volume_24h: Optional[Number]
    change_24h: Optional[Number]
    change_percent_24h: Optional[Number]
    timestamp: str
    order_book: OrderBook


class RateLimitInfo(TypedDict, total=False):
    requests_per_minute: int
    requests_remaining: int
    reset_time: str


class Status(TypedDict, total=False):
    status: str
    version: str
    timestamp: str
    services: Dict[str, str]
    uptime: Number
    response_time_ms: Number
    rate_limit: RateLimitInfo
    #: The embedded exchange only: names its state, new after a reset or a restart without --state.
    instance: str


class SpotStatus(TypedDict, total=False):
    status: str
    timestamp: str
    active_contracts: List[str]
    market_open: bool
    next_update: str
    last_update: str


class BestOffers(TypedDict):
    """One contract's best offers on each side (``get_market_best_offers``)."""

    buy: List[MarketRow]
    sell: List[MarketRow]


class LatestLTP(TypedDict):
    """The newest traded price of one contract and the zones it traded in."""

    price: Any
    volume: Any
    timestamp: Any
    market_zones: List[str]
    latest_zone: Optional[str]
