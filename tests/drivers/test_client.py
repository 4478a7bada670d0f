"""The client against the embedded exchange over loopback: every behaviour on sync, asyncio and trio.

Each test is written once, over a ``Harness`` (tests/support/harness.py), and runs
through the blocking client and through the async client on asyncio and on
trio.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List

import pytest

from gameproto import Attempt, validate_order
from gameproto._errors import (
    AuthenticationError,
    InvalidArgumentError,
    NotFoundError,
    OrderValidationError,
    ServerValidationError,
)
from gameproto.simulator.faults import Fault
from tests.support.common import TOKEN, future_order
from tests.support.harness import Harness, every_driver


@every_driver(timeout=10)
async def test_every_call(h: Harness) -> None:
    api = h.client()
    assert await api.test_connection() is True
    assert (await api.get_status())["status"] == "healthy"
    created = await api.create_order(future_order("sell", 50.0, 2.0))
    assert str(created["order_id"]).startswith("ord_")
    hidden = await api.create_order(future_order("sell", 49.0, 1.0, state="hidden"))
    assert len(await api.get_orders()) == 2
    assert len(await api.get_orders(direction="sell")) == 2
    assert await api.get_orders(direction="buy") == []
    assert await api.get_trades() == []
    assert await api.get_trades(direction="buy", duration="15m") == []
    assert await api.get_trades(direction="sell", duration="15m") == []
    market = await api.get_market_data()
    assert market and all(row.get("price") != 49.0 for row in market)  # the hidden order never shows
    assert await api.get_market_data(direction="sell", duration="15m")
    assert await api.get_market_ltp() == []
    assert await api.get_market_ltp("10YCH-SWISSGRIDZ") == []
    assert await api.get_latest_available_ltp() == []
    assert await api.get_latest_available_ltp(duration="15m") == []
    assert isinstance(await api.get_spot_data(), list)
    assert isinstance(await api.get_spot_data(limit=3), list)
    assert isinstance(await api.get_spot_data(area_name="CH-SGD", limit=5), list)
    assert (await api.get_spot_status())["status"]
    assert await api.get_market_best_offers()
    best = await api.get_market_best_offers(top_n=1)
    assert len(next(iter(best.values()))["sell"]) == 1
    assert await api.get_latest_ltp() == {}
    found = await api.find_order_by_id(created["order_id"])
    assert found is not None and found["price"] == 50.0
    assert (await api.delete_order(hidden["order_id"]))["status"] == "deleted"
    assert await api.find_order_by_id(hidden["order_id"]) is None


@every_driver()
async def test_a_crossing_pair_trades_at_the_resting_price(h: Harness) -> None:
    api = h.client()
    await api.create_order(future_order("sell", 40.0, 2.0))
    await api.create_order(future_order("buy", 45.0, 1.0))
    trades = await api.get_trades()
    assert len(trades) == 1 and trades[0]["price"] == 40.0 and trades[0]["volume"] == 1.0
    assert next(iter((await api.get_latest_ltp()).values()))["price"] == 40.0
    resting = next(o for o in await api.get_orders() if o["direction"] == "sell")
    assert resting["remaining_volume"] == 1.0 and resting["executed_volume"] == 1.0


@every_driver()
async def test_a_crossing_pair_trades_with_a_partial_fill(h: Harness) -> None:
    api = h.client()
    await api.create_order(future_order("buy", 60.0, 3.0))
    await api.create_order(future_order("sell", 55.0, 1.0))
    trades = await api.get_trades()
    assert [(t["price"], t["volume"]) for t in trades] == [(60.0, 1.0)]
    buy = next(o for o in await api.get_orders() if o["direction"] == "buy")
    assert buy["remaining_volume"] == 2.0 and buy["execution_count"] == 1


@every_driver()
async def test_one_token_exchange_and_one_connection_for_dozens_of_calls(h: Harness) -> None:
    api = h.client()
    for _ in range(40):
        await api.get_status()
    assert h.exchange.exchanges == 1
    assert h.running.connections_accepted == 1


@every_driver()
async def test_works_without_a_context_manager_like_the_published_client(h: Harness) -> None:
    api = h.client()  # made plainly, closed by aclose()/close() at the end of the case
    assert await api.test_connection()
    await api.aclose()


@every_driver()
async def test_one_exchange_however_many_calls_find_the_token_stale(h: Harness) -> None:
    api = h.client()
    outcomes = await h.concurrently(*[api.get_status] * 25)
    assert all(outcome["status"] == "healthy" for outcome in outcomes), outcomes
    assert h.exchange.exchanges == 1
    h.exchange.expire_access_tokens()
    outcomes = await h.concurrently(*[api.get_status] * 25)
    assert all(outcome["status"] == "healthy" for outcome in outcomes), outcomes
    assert h.exchange.exchanges == 2


@every_driver()
async def test_a_bulk_of_150_goes_as_100_and_50_with_indices_kept(h: Harness) -> None:
    api = h.client()
    orders = [future_order("buy", 10.0 + i % 5, 1.0) for i in range(150)]
    orders[120]["price"] = 10.5
    result = await api.create_order({"orders": orders})
    assert result["requested"] == 150
    assert sorted(entry["index"] for entry in result["created"]) == list(range(150))
    assert result["failed"] == []
    assert h.attempts("POST", "/orders/create-bulk") == 2
    assert len(await api.get_orders()) == 150


@every_driver()
async def test_a_large_bulk_is_sent_in_parts_and_merged(h: Harness) -> None:
    api = h.client()
    orders = [future_order("sell", 100.0 + i, 1.0) for i in range(1000)]
    orders[999]["price"] = 0.0  # refused by the client: nothing is sent
    with pytest.raises(OrderValidationError):
        await api.create_order({"orders": orders})
    assert h.attempts("POST", "/orders/create-bulk") == 0
    orders[999]["price"] = 1.0
    result = await api.create_order({"orders": orders})
    assert [entry["index"] for entry in sorted(result["created"], key=lambda e: e["index"])] == list(range(1000))
    assert result["failed"] == []
    assert h.attempts("POST", "/orders/create-bulk") == 10


@every_driver()
async def test_a_bad_bulk_sends_nothing_and_names_every_bad_order(h: Harness) -> None:
    api = h.client()
    orders = [future_order() for _ in range(150)]
    orders[3]["price"] = -10
    orders[140]["volumne"] = 1
    with pytest.raises(OrderValidationError) as caught:
        await api.create_order({"orders": orders})
    assert caught.value.indices == [3, 140]
    assert "orders[3].price" in str(caught.value)
    assert h.attempts("POST", "/orders/create-bulk") == 0


@every_driver()
async def test_skip_invalid_sends_the_valid_orders_and_reports_the_others_by_index(h: Harness) -> None:
    api = h.client()
    orders = [future_order("buy", 10.0 + i, 1.0) for i in range(150)]
    orders[3]["price"] = -10
    orders[140]["volumne"] = 1
    orders[149]["side"] = "BUY"
    result = await api.create_order({"orders": orders}, skip_invalid=True)
    assert result["requested"] == 150
    failed = {entry["index"]: entry["error"] for entry in result["failed"]}
    assert sorted(failed) == [3, 140, 149]
    for index, reason in failed.items():  # the client's own reason: each field it refused, and why
        with pytest.raises(OrderValidationError) as refused:
            validate_order(orders[index])
        assert all(f"{problem.field}: {problem.reason}" in reason for problem in refused.value.errors), reason
    assert "price" in failed[3] and "volumne" in failed[140] and "side" in failed[149]
    created = sorted(entry["index"] for entry in result["created"])
    assert created == [i for i in range(150) if i not in (3, 140, 149)]
    # 147 valid orders: a part of 100 and one of 47, nothing else sent.
    assert h.attempts("POST", "/orders/create-bulk") == 2
    placed = sorted(float(order["price"]) for order in h.orders())
    assert placed == [10.0 + i for i in created]


@every_driver()
async def test_skip_invalid_with_every_order_invalid_sends_nothing(h: Harness) -> None:
    api = h.client()
    orders = [future_order(price=-1), future_order(volume=0)]
    result = await api.create_order({"orders": orders}, skip_invalid=True)
    assert result["created"] == [] and [entry["index"] for entry in result["failed"]] == [0, 1]
    assert h.requests() == 0


@every_driver()
async def test_skip_invalid_is_only_for_bulks_and_only_true_or_false(h: Harness) -> None:
    api = h.client()
    with pytest.raises(OrderValidationError):
        await api.create_order(future_order(price=-1), skip_invalid=True)
    with pytest.raises(OrderValidationError) as caught:
        await api.create_order({"orders": [future_order()]}, skip_invalid="yes")  # type: ignore[call-overload]
    assert "skip_invalid" in str(caught.value)
    assert h.requests() == 0


@every_driver()
async def test_delete_by_ord_id_without_a_listing(h: Harness) -> None:
    api = h.client()
    created = await api.create_order(future_order())
    assert (await api.delete_order(created["order_id"]))["status"] == "deleted"
    assert h.attempts("GET", "/orders") == 0
    with pytest.raises(NotFoundError):
        await api.delete_order(created["order_id"])


@every_driver()
async def test_a_fully_executed_order_is_not_cancellable(h: Harness) -> None:
    api = h.client()
    sold = await api.create_order(future_order("sell", price=50.0, volume=1.0))
    await api.create_order(future_order("buy", price=60.0, volume=1.0))  # takes all of it
    with pytest.raises(NotFoundError) as caught:
        await api.delete_order(sold["order_id"])
    assert "fully executed" in str(caught.value) and "nothing is left to cancel" in str(caught.value)
    listed = await api.find_order_by_id(sold["order_id"])
    assert listed is not None and listed["status"] == "filled"  # the trade stands
    assert len(await api.get_trades()) == 1


BAD_IDS: List[Any] = ["../x", "12a", "", -1, True, "ord_../1"]


@pytest.mark.parametrize("bad", BAD_IDS)
@every_driver()
async def test_bad_ids_are_refused_before_sending(h: Harness, bad: Any) -> None:
    api = h.client()
    with pytest.raises(InvalidArgumentError) as caught:
        await api.delete_order(bad)
    assert isinstance(caught.value, ValueError) and "order_id" in str(caught.value)
    assert await api.find_order_by_id(bad) is None  # no order can have that id: no request either
    assert h.requests() == 0


@every_driver()
async def test_find_order_by_id_is_none_when_the_listing_is_not_found(h: Harness) -> None:
    api = h.client()
    created = await api.create_order(future_order())
    h.faults.add(Fault("status", status=404), method="GET", path="/orders")
    assert await api.find_order_by_id(created["order_id"]) is None
    assert await api.find_order_by_id(created["order_id"]) is not None


@pytest.mark.parametrize("fault", [Fault("status", status=503), Fault("status", status=404), Fault("not_json")])
@every_driver(max_retries=0)
async def test_test_connection_is_false_on_any_error(h: Harness, fault: Fault) -> None:
    api = h.client()
    h.faults.add(fault, method="GET", path="/status")
    assert await api.test_connection() is False
    assert await api.test_connection() is True


@every_driver()
async def test_recovery_from_a_401(h: Harness) -> None:
    api = h.client()
    await api.get_status()
    h.exchange.expire_access_tokens()
    assert (await api.get_status())["status"] == "healthy"
    assert h.exchange.exchanges == 2


@every_driver()
async def test_a_refused_personal_token(h: Harness) -> None:
    api = h.client(token="not-a-token")
    with pytest.raises(AuthenticationError):
        await api.get_status()
    with pytest.raises(AuthenticationError):
        await api.get_orders()
    assert await api.test_connection() is False
    assert h.exchange.exchanges == 0


@every_driver(allow_non_positive_price=True)  # let a bad price through the client
async def test_the_exchange_refusing_an_order_is_a_validation_error(h: Harness) -> None:
    api = h.client()
    with pytest.raises(ServerValidationError) as caught:
        await api.create_order(future_order(price=-5))
    assert caught.value.status_code == 422 and "price" in caught.value.detail
    assert h.orders() == []


@every_driver()
async def test_attempts_are_logged_and_observed_without_tokens(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    seen: List[Attempt] = []
    caplog.set_level(logging.DEBUG)
    api = h.client(on_attempt=seen.append)
    await api.get_status()
    await api.create_order(future_order())
    assert [(a.method, a.path, a.status) for a in seen][-2:] == [("GET", "/status", 200), ("POST", "/orders", 200)]
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "GET /status -> 200 (attempt 1" in text
    assert TOKEN not in text and "Bearer" not in text


@every_driver()
async def test_repr_hides_the_token(h: Harness) -> None:
    api = h.client()
    await api.get_status()
    access = list(h.exchange.access.tokens)  # the access tokens the exchange issued
    assert len(access) == 1
    for text in (repr(api), str(api)):
        assert TOKEN not in text and access[0] not in text


@every_driver()
async def test_from_env(
    h: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = tmp_path / ".env"
    env.write_text(f"GAME_API_TOKEN={TOKEN}\nGAME_API_URL={h.base_url}\nGAME_API_VERIFY_SSL=false\n")
    for name in ("GAME_API_TOKEN", "GAME_API_URL", "GAME_API_VERIFY_SSL"):
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level(logging.WARNING, logger="gameproto"):
        api = h.from_env(dotenv_path=str(env))
    # With a borrowed client, TLS is its own: GAME_API_VERIFY_SSL is not applied, and the log says so.
    skipped = [record for record in caplog.records if "GAME_API_VERIFY_SSL was not applied" in record.getMessage()]
    assert len(skipped) == (1 if h.transport.borrowed else 0)
    assert api.base_url == h.base_url and api.verify_ssl is h.transport.borrowed
    assert (await api.get_status())["status"] == "healthy"
    monkeypatch.setenv("GAME_API_TOKEN", "")
    with pytest.raises(ValueError):
        h.from_env(dotenv_path=None)


BAD_SETTINGS: List[Dict[str, Any]] = [
    {"base_url": "ftp://example"},
    {"token": ""},
    {"timeout": 0},
    {"verify_ssl": None},
    {"max_retries": -1},
    {"read_timeout": "1"},
]


@pytest.mark.parametrize("bad", BAD_SETTINGS)
@every_driver()
async def test_bad_settings_are_refused(h: Harness, bad: Dict[str, Any]) -> None:
    options = dict(bad)
    token = options.pop("token", TOKEN)
    base_url = options.pop("base_url", "http://127.0.0.1:1")
    with pytest.raises(ValueError) as caught:
        h.client(base_url, token=token, **options)
    assert (next(iter(bad)) if "token" not in bad else "token") in str(caught.value)


@every_driver(timeout=7.5)
async def test_settings_are_read_only(h: Harness) -> None:
    verify = h.transport.borrowed  # a borrowed client's TLS is its own: the client's verify_ssl stays True
    api = h.client(**({} if verify else {"verify_ssl": False}))
    assert api.base_url == h.base_url and api.verify_ssl is verify and api.timeout == 7.5
    real = h.unwrapped(api)
    for name, value in (("base_url", "http://elsewhere"), ("verify_ssl", True), ("timeout", 1.0)):
        with pytest.raises(AttributeError):
            setattr(real, name, value)
    assert (real.base_url, real.verify_ssl, real.timeout) == (h.base_url, verify, 7.5)


@every_driver()
async def test_a_closed_client_raises_runtime_error_and_sends_nothing(h: Harness) -> None:
    api = h.client()
    await api.get_status()
    await api.aclose()
    before = h.requests()
    calls: List[Any] = [
        api.get_status,
        api.get_orders,
        api.test_connection,
        lambda: api.create_order(future_order()),
        lambda: api.create_order({"orders": [future_order()] * 2}),
    ]
    for call in calls:
        with pytest.raises(RuntimeError) as caught:
            await call()
        assert "closed" in str(caught.value)
    assert h.requests() == before
