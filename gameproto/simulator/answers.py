"""How the exchange answers: JSON bodies, errors, and the request a handler gets.

A handler returns a ``Response`` or raises ``Refused`` from wherever it finds
a problem; ``Exchange.handle`` turns that into the answer.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from .._boundary import Request, Response
from .._calls import encode_json
from . import spot
from .contracts import duration_minutes

__all__ = [
    "JSONObject",
    "Context",
    "Refused",
    "answer",
    "answer_bytes",
    "error",
    "invalid",
    "json_body",
    "iso",
    "decimal",
    "more_problems",
    "direction_param",
    "minutes_param",
]

JSONObject = Dict[str, Any]
Loc = List[Union[str, int]]

_UTC = dt.timezone.utc
_JSON_HEADERS = {"content-type": "application/json"}
_DIGITS = re.compile(r"[0-9]+")


class Context:
    """One authorised request on its way to its handler.

    A plain class with slots, made once per request: a frozen dataclass's
    ``__init__`` would set each field through ``object.__setattr__``.
    """

    __slots__ = ("client", "now", "request", "trader")

    def __init__(self, request: Request, trader: str, now: float, client: Optional[str] = None) -> None:
        self.request = request
        self.trader = trader
        self.now = now
        #: The caller's address as the server saw it; None in memory.
        self.client = client

    def __repr__(self) -> str:
        return f"Context({self.request!r}, trader={self.trader!r}, now={self.now!r})"

    def param(self, name: str) -> Optional[str]:
        """The last value of a query parameter (as FastAPI reads one), or None."""
        found = None
        for key, value in self.request.query:
            if key == name:
                found = value
        return found


class Refused(Exception):
    """A request the exchange answers with an error, raised from deep in a handler."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def answer(status: int, value: Any, headers: Optional[Mapping[str, str]] = None) -> Response:
    merged = dict(_JSON_HEADERS)
    if headers:
        merged.update(headers)
    return Response(status, merged, encode_json(value))


def answer_bytes(status: int, body: bytes) -> Response:
    """An answer whose JSON body is already encoded."""
    return Response(status, dict(_JSON_HEADERS), body)


def error(status: int, detail: str, headers: Optional[Mapping[str, str]] = None) -> Response:
    return answer(status, {"detail": detail}, headers)


def invalid(loc: Loc, msg: str, kind: str = "value_error") -> Refused:
    """A 422 in FastAPI's form, to raise."""
    return Refused(answer(422, {"detail": [{"loc": loc, "msg": msg, "type": kind}]}))


def more_problems(count: int) -> str:
    return f"... and {count:,} more problem{'s' if count != 1 else ''}"


#: The last moments written: an order's answer writes its creation time twice, and many
#: answers in a row share the exchange's "now".
_ISO_MADE: Dict[float, str] = {}
_ISO_KEPT = 64


def iso(moment: float) -> str:
    made = _ISO_MADE.get(moment)
    if made is None:
        made = spot.iso_time(dt.datetime.fromtimestamp(moment, _UTC))
        if len(_ISO_MADE) >= _ISO_KEPT:
            _ISO_MADE.clear()
        _ISO_MADE[moment] = made
    return made


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


#: Made once: ``json.loads`` with arguments builds a decoder on every call.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse_constant)
#: The decoder's scanner of one value (the C one where there is one): ``decode`` is it plus whitespace scans.
_SCAN: Callable[[str, int], Tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def json_body(request: Request) -> Any:
    """The request body as JSON, floats as Decimal so money stays exact."""
    body = request.body
    if not body:
        raise invalid(["body"], "field required", "value_error.missing")
    try:
        if body[0] == 123 and len(body) > 1 and body[1]:  # "{" then not NUL: json.detect_encoding's UTF-8
            text = body.decode("utf-8", "surrogatepass")
            try:
                # The object alone, when it is the whole text: what ``decode`` gives, without its whitespace scans.
                value, end = _SCAN(text, 0)
                if end == len(text):
                    return value
            except StopIteration:
                pass
            return _DECODER.decode(text)  # anything else: the full decoder's answer, or its error
        # What json.loads does with bytes: the encoding it detects (UTF-8, -16 or -32, a BOM dropped).
        return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except (ValueError, ArithmeticError, RecursionError):  # ArithmeticError: Decimal("1e999999999999")
        raise invalid(["body", 0], "JSON decode error", "value_error.jsondecode")


def decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))  # the shortest text of the double, as JSON wrote it
    return Decimal(int(value))


def direction_param(context: Context) -> Optional[str]:
    direction = context.param("direction")
    if direction is not None and direction not in ("buy", "sell"):
        raise invalid(["query", "direction"], "must be 'buy' or 'sell'")
    return direction


def minutes_param(context: Context) -> Optional[int]:
    """The ``duration`` filter in minutes (``60m`` and ``1h`` are the same), or None."""
    duration = context.param("duration")
    if duration is None:
        return None
    minutes = duration_minutes(duration)
    if minutes is None:
        raise invalid(["query", "duration"], "must be a duration like '15m' or '1h'")
    return minutes


def order_number(text: str) -> int:
    """The order number in a path: ``31`` or the creation answer's ``ord_31``; 422 if it is none."""
    if text.startswith("ord_"):
        text = text[len("ord_") :]  # the creation answer's form: accepted, as a trader would expect
    if not _DIGITS.fullmatch(text):
        raise invalid(["path", "order_id"], "value is not a valid integer", "type_error.integer")
    return int(text) if len(text) <= 18 else -1  # longer than any id we hand out
