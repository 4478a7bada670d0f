"""Builders and parsers of every call, order ids, and errors from answers."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gameproto import _calls
from gameproto._arguments import InvalidArgumentError, order_number
from gameproto._boundary import Response
from gameproto._errors import (
    APIStatusError,
    AuthenticationError,
    GameAPIError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    ServerError,
    ServerValidationError,
    error_from_response,
)


def ok(value: object) -> Response:
    return Response(200, {"content-type": "application/json"}, json.dumps(value).encode())


@pytest.mark.parametrize(
    "call, method, target",
    [
        (_calls.get_status(), "GET", "/status"),
        (_calls.get_trades(), "GET", "/trades"),
        (_calls.get_trades("buy", "15m"), "GET", "/trades?direction=buy&duration=15m"),
        (_calls.get_orders("sell"), "GET", "/orders?direction=sell"),
        (_calls.delete_order("ord_1234"), "DELETE", "/orders/1234"),
        (_calls.get_market_data(None, "1h"), "GET", "/market?duration=1h"),
        (_calls.get_market_ltp("10YCH-SWISSGRIDZ"), "GET", "/market/market-ltp?market_zone=10YCH-SWISSGRIDZ"),
        (_calls.get_latest_available_ltp("15m"), "GET", "/market/latest-ltp?duration=15m"),
        (
            _calls.get_spot_data("CH-SGD", "2025-01-01", "2025-01-31", 10),
            "GET",
            "/spot?area_name=CH-SGD&date_from=2025-01-01&date_to=2025-01-31&limit=10",
        ),
        (_calls.get_spot_status(), "GET", "/spot/status"),
    ],
)
def test_requests_of_every_call(call: _calls.Call[Any], method: str, target: str) -> None:
    assert call.request is not None
    assert call.request.method == method
    assert call.request.target == target
    assert call.request.header("Authorization") is None  # the flow adds it
    assert not call.creates


def test_order_requests_create() -> None:
    call = _calls.create_order({"side": "buy", "price": 1})
    assert call.request is not None
    assert call.creates and call.request.method == "POST" and call.request.path == "/orders"
    assert json.loads(call.request.body or b"") == {"side": "buy", "price": 1}
    bulk = _calls.create_orders_bulk([{"side": "buy"}] * 100)
    assert bulk.request is not None
    assert bulk.creates and bulk.request.path == "/orders/create-bulk"
    with pytest.raises(ValueError):
        _calls.create_orders_bulk([{}] * 101)


@pytest.mark.parametrize("good, number", [(1234, 1234), ("1234", 1234), ("ord_1234", 1234), (0, 0)])
def test_order_ids(good: object, number: int) -> None:
    assert order_number(good) == number


@pytest.mark.parametrize(
    "bad", ["../x", "12a", "", -1, True, False, 1.0, None, "ord_", "ord_-1", " 12", "12 ", "1/2", "%2e%2e", "١٢", [1]]
)
def test_bad_order_ids_are_refused_before_a_url(bad: object) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        _calls.delete_order(bad)
    assert str(caught.value).startswith("order_id must be")
    assert _calls.find_order_by_id(bad).request is None  # no order has that id: None, nothing sent


@given(st.text(max_size=20))
def test_only_digits_reach_the_path(text: str) -> None:
    try:
        call = _calls.delete_order(text)
    except InvalidArgumentError:
        return
    assert call.request is not None
    assert call.request.path[len("/orders/") :].isdigit()
    assert call.request.path[len("/orders/") :].isascii()


@pytest.mark.parametrize(
    "build",
    [
        lambda: _calls.get_trades(direction="BUY"),
        lambda: _calls.get_trades(duration="15"),
        lambda: _calls.get_trades(duration="15m&x=1"),
        lambda: _calls.get_orders(direction="buy\r\n"),
        lambda: _calls.get_market_ltp("10Y/../x"),
        lambda: _calls.get_spot_data(area_name="CH SGD"),
        lambda: _calls.get_spot_data(date_from="2025-13-01"),
        lambda: _calls.get_spot_data(limit=0),
        lambda: _calls.get_spot_data(limit=True),
    ],
)
def test_bad_query_values_are_refused(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgumentError):
        build()


def test_parsers_check_shapes() -> None:
    assert _calls.get_orders().parse(ok([{"order_id": 1}])) == [{"order_id": 1}]
    with pytest.raises(ProtocolError):
        _calls.get_orders().parse(ok({"order_id": 1}))
    with pytest.raises(ProtocolError):
        _calls.get_orders().parse(ok([1, 2]))
    with pytest.raises(ProtocolError):
        _calls.get_status().parse(ok([]))
    with pytest.raises(ProtocolError):
        _calls.create_order({}).parse(ok({"status": "ok"}))
    assert _calls.get_spot_data().parse(ok({"contract": "c"})) == [{"contract": "c"}]


def test_bulk_answers_are_checked() -> None:
    call = _calls.create_orders_bulk([{}] * 2)
    good = {
        "requested": 2,
        "created": [{"index": 0, "result": {"order_id": "ord_1"}}],
        "failed": [{"index": 1, "error": "x"}],
    }
    assert call.parse(ok(good)) == good
    bad: Any
    for bad in (
        {"created": [{"index": 5, "result": {}}], "failed": []},
        {"created": [{"index": 0, "result": {}}], "failed": [{"index": 0, "error": "x"}]},
        {"created": "nope", "failed": []},
        [],
    ):
        with pytest.raises(ProtocolError):
            call.parse(ok(bad))


@pytest.mark.parametrize(
    "status, kind",
    [
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (422, ServerValidationError),
        (400, ServerValidationError),
        (409, APIStatusError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_errors_from_status(status: int, kind: type) -> None:
    error = error_from_response(Response(status, {}, b'{"detail": "nope"}'), method="GET", path="/x")
    assert type(error) is kind
    assert error.status_code == status and error.method == "GET" and error.path == "/x"
    assert "nope" in str(error)


def test_fastapi_validation_detail_is_made_readable() -> None:
    body = {"detail": [{"loc": ["body", "orders", 3, "price"], "msg": "must be > 0", "type": "value_error"}]}
    error = error_from_response(Response(422, {}, json.dumps(body).encode()), method="POST", path="/orders")
    assert isinstance(error, APIStatusError)
    assert error.detail == "orders[3].price: must be > 0"


@given(
    st.integers(min_value=0, max_value=999),
    st.binary(max_size=200),
    st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3),
)
@settings(max_examples=300)
def test_every_parser_and_error_choice_only_raise_the_family(status: int, body: bytes, headers: Dict[str, str]) -> None:
    response = Response(status, headers, body)
    assert isinstance(error_from_response(response), GameAPIError)
    calls: List[_calls.Call[Any]] = [
        _calls.get_status(),
        _calls.get_trades(),
        _calls.get_orders(),
        _calls.create_order({}),
        _calls.create_orders_bulk([{}] * 3),
        _calls.delete_order(1),
        _calls.get_market_data(),
        _calls.get_market_ltp(),
        _calls.get_latest_available_ltp(),
        _calls.get_spot_data(),
        _calls.get_spot_status(),
    ]
    for call in calls:
        try:
            call.parse(response)
        except GameAPIError:
            pass


def test_a_delete_answered_204_is_a_deletion() -> None:
    call = _calls.delete_order("ord_12")
    assert call.parse(Response(204, {}, b"")) == {"status": "deleted", "order_id": 12}
    assert call.parse(Response(200, {}, b'{"status": "deleted", "order_id": 12}'))["status"] == "deleted"


def test_a_quoted_expires_in_is_understood() -> None:
    from gameproto._auth import TokenState

    tokens = TokenState("personal")
    tokens.accept(Response(200, {}, b'{"access_token": "abc", "expires_in": "120"}'), 0.0)
    assert tokens.current(59.0) == "abc" and tokens.current(61.0) is None  # refreshed 60 s early
