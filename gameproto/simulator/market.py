"""The market data calls: trades, the market, last traded prices, and spot data."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Dict, List, Optional, Tuple

from .._arguments import InvalidArgumentError, check_area_name, check_date, check_market_zone
from .._boundary import Response
from .._calls import encode_json
from . import spot
from .answers import Context, JSONObject, answer, answer_bytes, direction_param, invalid, iso, minutes_param
from .book import MONEY, OrderBook
from .views import DAY, contract_rows, day_start, level_row, ltp_entries, summary_row, trade_view

__all__ = ["MarketData"]

_LIMIT_DIGITS = 7
#: Whole ``/market`` answers kept, one per filter asked for (direction, duration).
_ANSWERS_KEPT = 16


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


@dataclass(frozen=True)
class _Cached:
    """A whole ``/market`` answer: made at book ``version``, true until ``until`` (a fill ages out)."""

    version: int
    until: float
    body: bytes


@dataclass(frozen=True)
class _Piece:
    """One contract's encoded rows: made at the contract's ``version``, its 24 hours from fill ``first``."""

    version: int
    first: int
    body: bytes


class MarketData:
    """Answers the market data calls from the book (and spot data from the seed)."""

    def __init__(self, book: OrderBook, *, market_zone: str, seed: int) -> None:
        self.book = book
        self.market_zone = market_zone
        self.seed = seed
        self._answers: Dict[Tuple[Optional[str], Optional[int]], _Cached] = {}
        self._pieces: Dict[Tuple[str, Optional[str]], _Piece] = {}
        book.observer = self._level_changed  # each displayed level's row, kept with it in the book

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
        """The ``/market`` answer built afresh: each contract with displayed orders, in name order."""
        rows: List[JSONObject] = []
        for contract in self.book.contracts():
            if minutes is None or minutes == self.book.contract_minutes(contract):
                rows.extend(contract_rows(self.book, contract, day_start(self.book, contract, now), direction))
        return rows

    def market_body(self, now: float, direction: Optional[str] = None, minutes: Optional[int] = None) -> bytes:
        """The ``/market`` answer as JSON bytes, equal to ``encode_json(market_rows(...))``, from the cache.

        Each contract's rows are encoded once per change of its book (and
        per 24-hour window of its fills); the whole answer once per change of
        the book. An unchanged book answers a poll with bytes already made.
        """
        key = (direction, minutes)
        cached = self._answers.get(key)
        if cached is not None and cached.version == self.book.version and now < cached.until:
            return cached.body
        pieces: List[bytes] = []
        until = math.inf
        contracts = self.book.contracts()
        for contract in contracts:
            if minutes is not None and minutes != self.book.contract_minutes(contract):
                continue
            piece, fresh_until = self._piece(contract, direction, now)
            until = min(until, fresh_until)
            if piece:
                pieces.append(piece)
        body = b"".join([b"[", b",".join(pieces), b"]"])
        if key not in self._answers and len(self._answers) >= _ANSWERS_KEPT:
            del self._answers[next(iter(self._answers))]  # the oldest filter asked for goes
        self._answers[key] = _Cached(self.book.version, until, body)
        if len(self._pieces) > 3 * len(contracts) + 64:  # contracts that left the book: their pieces go
            live = set(contracts)
            self._pieces = {key: piece for key, piece in self._pieces.items() if key[0] in live}
        return body

    def _piece(self, contract: str, direction: Optional[str], now: float) -> Tuple[bytes, float]:
        """One contract's rows as JSON (no brackets), and until when they stand."""
        first = day_start(self.book, contract, now)
        times = self.book.fill_times.get(contract, [])
        until = times[first] + DAY if first < len(times) else math.inf  # a fill leaves the 24 hours then
        version, changed = self.book.versions[contract]
        cached = self._pieces.get((contract, direction))
        if cached is not None and cached.version == version and cached.first == first:
            return cached.body, until
        best = (self.book.best_shown(contract, "buy"), self.book.best_shown(contract, "sell"))
        shown = {"buy": best[0] is not None, "sell": best[1] is not None}
        body = b""
        if (shown["buy"] or shown["sell"]) and (direction is None or shown[direction]):
            stamp = iso(changed)
            volume = MONEY.add(self.book.shown_total(contract, "buy"), self.book.shown_total(contract, "sell"))
            parts = [encode_json(summary_row(self.book, contract, best, volume, first, stamp))]
            # Each level's row was encoded when the level changed: joining them costs no Python per row.
            prefix = b'{"timestamp":"' + stamp.encode() + b'",'
            for side, some in shown.items():
                if some and direction in (None, side):
                    parts += [b",", prefix, (b"," + prefix).join(self.book.shown_views(contract, side))]
            body = b"".join(parts)
        self._pieces[(contract, direction)] = _Piece(version, first, body)
        return body, until

    def _level_changed(self, contract: str, minutes: int, side: str, price: Decimal, volume: Decimal) -> bytes:
        """The book's observer: a level's row, encoded when first read after a change (without its timestamp)."""
        return encode_json(level_row(contract, minutes, side, price, volume))[1:] if volume > 0 else b""

    def market(self, context: Context) -> Response:
        """``GET /market``."""
        direction, minutes = direction_param(context), minutes_param(context)
        return answer_bytes(200, self.market_body(context.now, direction, minutes))

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
