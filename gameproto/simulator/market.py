"""The market data calls: trades, the market, last traded prices, and spot data."""

from __future__ import annotations

import datetime as dt
from typing import List, Optional

from .._arguments import InvalidArgumentError, check_area_name, check_date, check_market_zone
from .._boundary import Response
from . import spot
from .answers import Context, JSONObject, answer, direction_param, invalid, minutes_param
from .book import OrderBook
from .views import contract_rows, ltp_entries, public_book, trade_view

__all__ = ["MarketData"]

_LIMIT_DIGITS = 7


def _spot_date(context: Context, name: str) -> Optional[dt.date]:
    value = context.param(name)
    if value is None:
        return None
    try:
        checked = check_date(value, name)
    except InvalidArgumentError:
        raise invalid(["query", name], "must be a date YYYY-MM-DD")
    return dt.date.fromisoformat(checked) if checked is not None else None


def _spot_limit(context: Context) -> int:
    text = context.param("limit")
    if text is None:
        return 24
    if not (text.isascii() and text.isdigit() and len(text) <= _LIMIT_DIGITS) or not 1 <= int(text) <= spot.MAX_LIMIT:
        raise invalid(["query", "limit"], f"must be a whole number from 1 to {spot.MAX_LIMIT}")
    return int(text)


class MarketData:
    """Answers the market data calls from the book (and spot data from the seed)."""

    def __init__(self, book: OrderBook, *, market_zone: str, seed: int) -> None:
        self.book = book
        self.market_zone = market_zone
        self.seed = seed

    def trades(self, context: Context) -> Response:
        """``GET /trades``: every trade, oldest first, filtered by direction and duration."""
        direction, minutes = direction_param(context), minutes_param(context)
        listed = [
            trade_view(fill, self.market_zone)
            for fill in self.book.fills
            if direction in (None, fill.direction) and minutes in (None, fill.minutes)
        ]
        return answer(200, listed)

    def market_rows(
        self, now: float, direction: Optional[str] = None, minutes: Optional[int] = None
    ) -> List[JSONObject]:
        """The ``/market`` answer: each contract with displayed orders, in name order."""
        rows: List[JSONObject] = []
        for contract in self.book.contracts():
            length = self.book.contract_minutes(contract)
            if minutes not in (None, length):
                continue
            bids, asks = public_book(self.book, contract)
            fills = self.book.fills_by_contract.get(contract, [])
            rows.extend(contract_rows(contract, length, bids, asks, fills, now, direction))
        return rows

    def market(self, context: Context) -> Response:
        """``GET /market``."""
        direction, minutes = direction_param(context), minutes_param(context)
        return answer(200, self.market_rows(context.now, direction, minutes))

    def market_ltp(self, context: Context) -> Response:
        """``GET /market/market-ltp``."""
        zone = context.param("market_zone")
        try:
            check_market_zone(zone)
        except InvalidArgumentError:
            raise invalid(["query", "market_zone"], "must be an EIC area code like '10YCH-SWISSGRIDZ'")
        if zone not in (None, self.market_zone):
            return answer(200, [])  # every trade of this exchange happens in its own zone
        return answer(200, ltp_entries(self.book, self.market_zone, None))

    def latest_ltp(self, context: Context) -> Response:
        """``GET /market/latest-ltp``."""
        return answer(200, ltp_entries(self.book, self.market_zone, minutes_param(context)))

    def spot(self, context: Context) -> Response:
        """``GET /spot``: hourly spot rows, a function of the seed alone."""
        area = context.param("area_name")
        try:
            check_area_name(area)
        except InvalidArgumentError:
            raise invalid(["query", "area_name"], "must be an area name like 'CH-SGD'")
        date_from, date_to = _spot_date(context, "date_from"), _spot_date(context, "date_to")
        if date_from is not None and date_to is not None and date_from > date_to:
            raise invalid(["query", "date_to"], "must not be before date_from")
        try:
            first, count = spot.spot_window(context.now, date_from, date_to, _spot_limit(context))
            rows = spot.spot_rows(self.seed, area or spot.DEFAULT_AREA, first, count)
        except ValueError:
            raise invalid(["query", "date_from"], "dates outside the calendar")
        return answer(200, rows)

    def spot_status(self, context: Context) -> Response:
        """``GET /spot/status``."""
        return answer(200, spot.spot_status(context.now))
