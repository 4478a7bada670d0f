"""One builder per call of the protocol, each paired with the parser of its answer.

A builder checks its arguments and returns a ``Call``: the ``Request`` to
send (without the bearer token: the call flow adds it) and the function that
turns a successful answer into plain JSON values. Unsuccessful answers never
reach a parser; the call flow turns them into errors.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Dict, Generic, List, Optional, Sequence, Tuple, TypeVar, cast

from . import _constants
from ._arguments import (
    InvalidArgumentError,
    check_area_name,
    check_date,
    check_direction,
    check_duration,
    check_limit,
    check_market_zone,
    is_number,
    order_number,
    order_number_or_none,
)
from ._boundary import Request, Response
from ._errors import GameAPIError, NotFoundError, ProtocolError, excerpt
from ._market import best_offers, latest_ltp, sort_by_price
from ._reconcile import find_matching_orders as _matching
from ._reconcile import find_order
from ._types import (
    BestOffers,
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

#: What ``gameproto.calls`` publishes: the ``Call`` and its builders. The
#: helpers of the core (``encode_json``, ``decode_json``, ``answered``,
#: ``NOTHING_SENT``, ``STATUS_PATH``) are imported by name where needed.
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

T = TypeVar("T")
U = TypeVar("U")

# No Accept header: the API answers JSON only, and each header costs every
# call a validation pass in the HTTP layer.
_READ_HEADERS: Tuple[Tuple[str, str], ...] = (("User-Agent", _constants.USER_AGENT),)
_WRITE_HEADERS = (*_READ_HEADERS, ("Content-Type", "application/json"))


@dataclass(frozen=True)
class Call(Generic[T]):
    """A request and the parser of its successful answer: one public method, written once.

    ``creates`` marks a request that places orders: it is never repeated
    once it may have reached the exchange. ``recover`` turns an error into
    an answer (``find_order_by_id``: not found is None) or raises it again.
    A call whose ``request`` is None is answered without asking the exchange:
    its ``parse`` is given ``NOTHING_SENT``.
    """

    request: Optional[Request]
    parse: Callable[[Response], T]
    creates: bool = False
    recover: Optional[Callable[[GameAPIError], T]] = None

    def then(self, transform: Callable[[T], U]) -> Call[U]:
        """The same request, its answer passed through ``transform``: a derived call."""
        parse = self.parse
        return Call(self.request, lambda response: transform(parse(response)), self.creates)


#: What ``parse`` is given by a call that sends nothing.
NOTHING_SENT = Response(204)


def answered(value: T) -> Call[T]:
    """A call whose answer is known without asking the exchange."""
    return Call(None, lambda _: value)


def _json_number(value: Decimal) -> Any:
    """The int or float that writes ``value`` exactly, or None when neither does."""
    text = str(value)
    if len(text) <= 16 and "E" not in text:
        # The usual amount: at most 15 digits, so its double holds it exactly; read from its text,
        # the same int or float as the general way below gives, at a fraction of the cost.
        if "." in text:
            text = text.rstrip("0")
            return int(text[:-1]) if text[-1] == "." else float(text)
        if text.lstrip("-").isdigit():
            return int(text)
    if not value.is_finite():
        raise ValueError(f"{value} is not a JSON number")
    if value == value.to_integral_value() and abs(value) < 2**63:
        return int(value)
    as_float = float(value)
    if math.isfinite(as_float) and Decimal(repr(as_float)) == value:
        return as_float
    return None


def _put_digits(marker: re.Pattern[str], text: str, decimals: List[str]) -> str:
    return marker.sub(lambda found: decimals[int(found.group(1))], text)


class _NeedsDigits(Exception):
    """A Decimal that neither an int nor a float writes exactly: ``encode_json`` takes its general way."""


def _plain_number(item: Any) -> Any:
    if type(item) is Decimal and not item:  # zero, the most common amount of all (nothing executed yet)
        return 0
    if isinstance(item, Decimal):
        number = _json_number(item)
        if number is not None:
            return number
        raise _NeedsDigits
    raise TypeError(f"{type(item).__name__} is not JSON")


def json_number(value: Decimal) -> Any:
    """``value`` as the JSON-ready number ``encode_json`` writes for it: an int or float when one is exact.

    Otherwise the Decimal itself, which ``encode_json`` then writes digit for
    digit. Converting a view's amounts before encoding spares the encoder a
    Python callback per Decimal.
    """
    if not value:
        return 0
    number = _json_number(value)
    return value if number is None else number


def json_number_text(value: Decimal) -> Optional[str]:
    """The text ``encode_json`` writes for ``value`` when it is a usual amount, found without a float; or None.

    A Decimal of at most 15 significant digits written without an exponent
    goes out as a float (or an int), and the shortest text of that float is
    the same digits (15 decimal digits survive a double both ways), in
    positional form from 1e-4 up: that text is the Decimal's own, trailing
    zeros dropped. Anything else (None) is left to ``json_number``.
    """
    text = str(value)
    if len(text) > 16 or "E" in text:
        return None
    if "." in text:
        text = text.rstrip("0")
        if text[-1] == ".":
            return str(int(text[:-1]))  # "-0" is 0
        return None if text.lstrip("-").startswith("0.0000") else text
    return str(int(text))


#: Made once: ``json.dumps`` with arguments builds an encoder on every call.
_PLAIN_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_plain_number, allow_nan=False)


def _made_encoder() -> Optional[Callable[[Any, int], Sequence[str]]]:
    """The C encoder of ``_PLAIN_ENCODER``'s settings, made once; None where the C accelerator is missing.

    ``JSONEncoder.encode`` makes a new one on every call (its circular-reference
    markers are per call); without markers it keeps no state between calls and
    can be reused. A cycle then ends in RecursionError, and ``encode_json``
    hands such a value to the standard encoder, which names the cycle.
    """
    import json.encoder

    make = getattr(json.encoder, "c_make_encoder", None)
    quote = getattr(json.encoder, "c_encode_basestring_ascii", None)
    if make is None or quote is None:  # pragma: no cover - CPython has both
        return None
    made: Callable[[Any, int], Sequence[str]] = make(None, _plain_number, quote, None, ":", ",", False, False, False)
    return made


_C_ENCODER = _made_encoder()


def encode_json(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON bytes; Decimals become numbers, never rounded.

    A Decimal that an int or a float writes exactly goes out as one. Any
    other (more digits than a float holds, or beyond its range) is written
    digit for digit: the json module cannot emit raw number text, so it goes
    out as a marker string that is then replaced by its digits. The marker
    is made of NULs; should a caller's own string look like one, the count
    of markers found says so and a longer marker is used.
    """
    try:
        if _C_ENCODER is not None:
            try:
                return "".join(_C_ENCODER(value, 0)).encode()
            except RecursionError:
                pass  # a cycle, or nesting too deep: the standard encoder below tells which, as it always did
        return _PLAIN_ENCODER.encode(value).encode()
    except _NeedsDigits:
        pass  # a Decimal to write digit for digit
    for width in range(1, 64):
        pad = "\x00" * width
        decimals: List[str] = []

        def default(item: Any, pad: str = pad, decimals: List[str] = decimals) -> Any:
            if isinstance(item, Decimal):
                number = _json_number(item)
                if number is not None:
                    return number
                decimals.append(str(item))  # ``1E+400``, ``0.1000000000000000055``: valid JSON numbers
                return f"{pad}{len(decimals) - 1}{pad}"
            raise TypeError(f"{type(item).__name__} is not JSON")

        text = json.dumps(value, separators=(",", ":"), default=default, allow_nan=False)
        if not decimals:
            return text.encode()
        escaped = re.escape("\\u0000" * width)
        marker = re.compile(f'"{escaped}([0-9]+){escaped}"')
        if len(marker.findall(text)) == len(decimals):
            return _put_digits(marker, text, decimals).encode()
    raise ValueError("cannot encode: strings that imitate number markers")  # pragma: no cover


_DECODE = json.JSONDecoder().decode


def decode_json(response: Response, method: str, path: str) -> Any:
    """The JSON value of a successful answer, or ProtocolError with an excerpt."""
    body = response.body
    try:
        if body[:1] in (b"{", b"[") and body[1:2] != b"\x00":
            # What json.loads does for the answers we get (UTF-8, an object or a list), without
            # its guessing of UTF-16 and UTF-32, which start otherwise.
            return _DECODE(body.decode("utf-8", "surrogatepass"))
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ProtocolError(
            "answer is not JSON",
            excerpt=excerpt(response.body),
            method=method,
            path=path,
            status_code=response.status,
        ) from None


def _wrong_shape(response: Response, method: str, path: str, expected: str) -> ProtocolError:
    return ProtocolError(
        f"answer is not {expected}",
        excerpt=excerpt(response.body),
        method=method,
        path=path,
        status_code=response.status,
    )


def _object_parser(method: str, path: str) -> Callable[[Response], Any]:
    def parse(response: Response) -> Any:
        value = decode_json(response, method, path)
        if type(value) is not dict:
            raise _wrong_shape(response, method, path, "a JSON object")
        return value

    return parse


def _list_parser(method: str, path: str) -> Callable[[Response], Any]:
    def parse(response: Response) -> Any:
        value = decode_json(response, method, path)
        if type(value) is not list:
            raise _wrong_shape(response, method, path, "a JSON list")
        for item in value:
            if type(item) is not dict:
                raise _wrong_shape(response, method, path, "a JSON list of objects")
        return value

    return parse


def _query(**params: Any) -> Tuple[Tuple[str, str], ...]:
    return tuple((name, str(value)) for name, value in params.items() if value is not None)


def _get(path: str, parse: Callable[[Response], T], **params: Any) -> Call[T]:
    return Call(Request("GET", path, _query(**params), _READ_HEADERS), parse)


_parse_status = _object_parser("GET", "/status")
_parse_trades = _list_parser("GET", "/trades")
_parse_orders = _list_parser("GET", "/orders")
_parse_market = _list_parser("GET", "/market")
_parse_market_ltp = _list_parser("GET", "/market/market-ltp")
_parse_latest_ltp = _list_parser("GET", "/market/latest-ltp")
_parse_spot_status = _object_parser("GET", "/spot/status")
_parse_created = _object_parser("POST", "/orders")
STATUS_PATH = "/status"
_STATUS_CALL: Call[Status] = _get(STATUS_PATH, _parse_status)
_SPOT_STATUS_CALL: Call[SpotStatus] = _get("/spot/status", _parse_spot_status)


def get_status() -> Call[Status]:
    """``GET /status``: the exchange's health and the caller's rate limit."""
    return _STATUS_CALL


def get_trades(direction: Optional[str] = None, duration: Optional[str] = None) -> Call[List[Trade]]:
    """``GET /trades``: market-wide trades, optionally of one side or duration."""
    return _get("/trades", _parse_trades, direction=check_direction(direction), duration=check_duration(duration))


def get_orders(direction: Optional[str] = None) -> Call[List[Order]]:
    """``GET /orders``: the caller's own orders, with numeric ids."""
    return _get("/orders", _parse_orders, direction=check_direction(direction))


def create_order(order: Dict[str, Any]) -> Call[Order]:
    """``POST /orders`` for one order already checked by ``validate_order``."""
    request = Request("POST", "/orders", (), _WRITE_HEADERS, encode_json(order))
    return Call(request, _parse_created_order, creates=True)


def _parse_created_order(response: Response) -> Order:
    value = _parse_created(response)
    if "order_id" not in value:
        raise _wrong_shape(response, "POST", "/orders", "a created order (no order_id)")
    return cast(Order, value)


def create_orders_bulk(orders: Sequence[Dict[str, Any]]) -> Call[BulkResult]:
    """``POST /orders/create-bulk`` for at most ``BULK_LIMIT`` checked orders."""
    if not 0 < len(orders) <= _constants.BULK_LIMIT:
        raise ValueError(f"a bulk request carries 1 to {_constants.BULK_LIMIT} orders, got {len(orders)}")
    request = Request("POST", "/orders/create-bulk", (), _WRITE_HEADERS, encode_json({"orders": list(orders)}))
    count = len(orders)
    return Call(request, lambda response: parse_bulk_result(response, count), creates=True)


def parse_bulk_result(response: Response, requested: int) -> BulkResult:
    """The bulk answer, checked: every index within the request, each once."""
    path = "/orders/create-bulk"
    value = decode_json(response, "POST", path)
    if type(value) is not dict:
        raise _wrong_shape(response, "POST", path, "a bulk result object")
    created = value.setdefault("created", [])
    failed = value.setdefault("failed", [])
    if type(created) is not list or type(failed) is not list:
        raise _wrong_shape(response, "POST", path, "a bulk result with created and failed lists")
    for entry in created:
        if type(entry) is not dict or type(entry.get("index")) is not int or type(entry.get("result")) is not dict:
            raise _wrong_shape(response, "POST", path, "a bulk result ({index, result} entries)")
    for entry in failed:
        if type(entry) is not dict or type(entry.get("index")) is not int:
            raise _wrong_shape(response, "POST", path, "a bulk result ({index, error} entries)")
        if "error" not in entry:
            entry["error"] = "failed (no reason given)"
        elif not isinstance(entry["error"], str):
            entry["error"] = json.dumps(entry["error"], default=str)
    indices = [entry["index"] for entry in created] + [entry["index"] for entry in failed]
    # Every order must be accounted for, once: an order the answer leaves out
    # may or may not exist, and must not vanish from the caller's view.
    if len(indices) != requested or set(indices) != set(range(requested)):
        raise _wrong_shape(response, "POST", path, f"a bulk result with indices 0 to {requested - 1}, each once")
    value.setdefault("requested", requested)
    return cast(BulkResult, value)


def delete_order(order_id: Any) -> Call[DeleteResult]:
    """``DELETE /orders/{n}`` for an id given as ``1234``, ``"1234"`` or ``"ord_1234"``."""
    number = order_number(order_id)
    path = f"/orders/{number}"
    read_object = _object_parser("DELETE", path)

    def parse(response: Response) -> DeleteResult:
        if not response.body.strip():
            # 204 No Content (or an empty 200): the deletion succeeded and said nothing.
            return {"status": "deleted", "order_id": number}
        return cast(DeleteResult, read_object(response))

    return Call(Request("DELETE", path, (), _READ_HEADERS), parse)


def get_market_data(
    direction: Optional[str] = None, duration: Optional[str] = None, sort: bool = False
) -> Call[List[MarketRow]]:
    """``GET /market``: market rows (order-book levels), optionally filtered, sorted by contract and price."""
    call = _get("/market", _parse_market, direction=check_direction(direction), duration=check_duration(duration))
    return call.then(sort_by_price) if sort else call


def get_market_ltp(market_zone: Optional[str] = None) -> Call[List[LTPEntry]]:
    """``GET /market/market-ltp``: last traded prices in one market zone."""
    return _get("/market/market-ltp", _parse_market_ltp, market_zone=check_market_zone(market_zone))


def get_latest_available_ltp(duration: Optional[str] = None) -> Call[List[LTPEntry]]:
    """``GET /market/latest-ltp``: the latest traded price of each contract."""
    return _get("/market/latest-ltp", _parse_latest_ltp, duration=check_duration(duration))


def _parse_spot(response: Response) -> List[SpotData]:
    value = decode_json(response, "GET", "/spot")
    # Older servers answer one object rather than a list of them.
    if type(value) is dict:
        return [cast(SpotData, value)]
    if type(value) is list and all(type(item) is dict for item in value):
        return cast(List[SpotData], value)
    raise _wrong_shape(response, "GET", "/spot", "spot data (a list of objects)")


def get_spot_data(
    area_name: Optional[str] = None,
    date_from: Any = None,
    date_to: Any = None,
    limit: Optional[int] = None,
) -> Call[List[SpotData]]:
    """``GET /spot``: spot data, optionally for one area, dates and count."""
    return _get(
        "/spot",
        _parse_spot,
        area_name=check_area_name(area_name),
        date_from=check_date(date_from, "date_from"),
        date_to=check_date(date_to, "date_to"),
        limit=check_limit(limit),
    )


def get_spot_status() -> Call[SpotStatus]:
    """``GET /spot/status``: the spot feed's state."""
    return _SPOT_STATUS_CALL


# -- helpers built on those calls: derived calls, no endpoint of their own ---


def _false(error: GameAPIError) -> bool:
    return False


def test_connection() -> Call[bool]:
    """True when the exchange answers ``/status`` to our token; any GameAPIError is False."""
    return Call(_STATUS_CALL.request, lambda response: _parse_status(response) is not None, recover=_false)


def _none_when_not_found(error: GameAPIError) -> Optional[Order]:
    if isinstance(error, NotFoundError):
        return None
    raise error


def find_order_by_id(order_id: Any) -> Call[Optional[Order]]:
    """The caller's order with that id, or None; an id no order can have is None without a request."""
    number = order_number_or_none(order_id)
    if number is None:
        return answered(None)
    listing = get_orders()
    return Call(
        listing.request, lambda response: find_order(listing.parse(response), number), recover=_none_when_not_found
    )


def find_matching_orders(order: Dict[str, Any]) -> Call[List[Order]]:
    """The caller's orders that match ``order`` as it was sent (reconcile after OutcomeUnknownError)."""
    if not isinstance(order, dict):
        raise InvalidArgumentError(f"order must be the dict that was sent, got {type(order).__name__}")
    return get_orders().then(lambda orders: _matching(orders, order))


def get_market_best_offers(duration: Optional[str] = None, top_n: Optional[int] = None) -> Call[Dict[str, BestOffers]]:
    """Market rows by contract and side, best price first, at most ``top_n`` each (None: all)."""
    if top_n is not None and not is_number(top_n, whole=True, least=1):
        raise InvalidArgumentError(f"top_n must be a whole number >= 1 or None, got {top_n!r}")
    return get_market_data(duration=duration).then(lambda rows: best_offers(rows, top_n))


def get_latest_ltp() -> Call[Dict[str, LatestLTP]]:
    """The newest traded price of each contract (keyed by contract), with the zones it traded in."""
    return get_market_ltp().then(latest_ltp)
