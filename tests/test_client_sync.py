"""The blocking client against the embedded exchange over loopback."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, List

import pytest

from gameproto import Attempt
from gameproto_sync import (
    AuthenticationError,
    GameAPI,
    GameAPIError,
    NotFoundError,
    OrderValidationError,
    ServerValidationError,
)

from .conftest import TOKEN, future_order


@pytest.fixture
def api(server: Any) -> Any:
    with GameAPI(TOKEN, server.base_url, timeout=10) as client:
        yield client


def test_every_call(api: GameAPI, server: Any) -> None:
    assert api.test_connection() is True
    status = api.get_status()
    assert status["status"] == "healthy"
    created = api.create_order(future_order("sell", 50.0, 2.0))
    assert str(created["order_id"]).startswith("ord_")
    hidden = api.create_order(future_order("sell", 49.0, 1.0, state="hidden"))
    assert api.get_orders(direction="sell")
    assert api.get_trades() == [] and api.get_trades(direction="buy", duration="15m") == []
    market = api.get_market_data()
    assert all(row.get("price") != 49.0 for row in market)  # the hidden order never shows
    assert api.get_market_data(direction="sell", duration="15m")
    assert api.get_market_ltp("10YCH-SWISSGRIDZ") == []
    assert api.get_latest_available_ltp() == []
    assert isinstance(api.get_spot_data(), list)
    assert isinstance(api.get_spot_data(area_name="CH-SGD", limit=5), list)
    assert api.get_spot_status()["status"]
    best = api.get_market_best_offers(top_n=1)
    assert len(next(iter(best.values()))["sell"]) == 1
    assert api.get_latest_ltp() == {}
    found = api.find_order_by_id(created["order_id"])
    assert found is not None and found["price"] == 50.0
    assert api.delete_order(hidden["order_id"])["status"] == "deleted"
    assert api.find_order_by_id(hidden["order_id"]) is None


def test_a_crossing_pair_trades_at_the_resting_price(api: GameAPI) -> None:
    api.create_order(future_order("sell", 40.0, 2.0))
    api.create_order(future_order("buy", 45.0, 1.0))
    trades = api.get_trades()
    assert len(trades) == 1 and trades[0]["price"] == 40.0 and trades[0]["volume"] == 1.0
    assert next(iter(api.get_latest_ltp().values()))["price"] == 40.0
    resting = next(o for o in api.get_orders() if o["direction"] == "sell")
    assert resting["remaining_volume"] == 1.0 and resting["executed_volume"] == 1.0


def test_one_token_exchange_and_one_connection_for_dozens_of_calls(api: GameAPI, server: Any) -> None:
    for _ in range(40):
        api.get_status()
    assert server.exchange.exchanges == 1
    assert server.connections_accepted == 1


def test_a_bulk_of_150_goes_as_100_and_50_with_indices_kept(api: GameAPI, server: Any) -> None:
    orders = [future_order("buy", 10.0 + i % 5, 1.0) for i in range(150)]
    orders[120]["price"] = 10.5
    result = api.create_order({"orders": orders})
    assert result["requested"] == 150
    assert sorted(entry["index"] for entry in result["created"]) == list(range(150))
    assert server.exchange.attempts[("POST", "/orders/create-bulk")] == 2
    assert len(api.get_orders()) == 150


def test_a_bad_bulk_sends_nothing_and_names_every_bad_order(api: GameAPI, server: Any) -> None:
    orders = [future_order() for _ in range(150)]
    orders[3]["price"] = -10
    orders[140]["volumne"] = 1
    with pytest.raises(OrderValidationError) as caught:
        api.create_order({"orders": orders})
    assert caught.value.indices == [3, 140]
    assert "orders[3].price" in str(caught.value)
    assert server.exchange.attempts[("POST", "/orders/create-bulk")] == 0


def test_delete_by_ord_id_without_a_listing(api: GameAPI, server: Any) -> None:
    created = api.create_order(future_order())
    assert api.delete_order(created["order_id"])["status"] == "deleted"
    assert server.exchange.attempts[("GET", "/orders")] == 0
    with pytest.raises(NotFoundError):
        api.delete_order(created["order_id"])


@pytest.mark.parametrize("bad", ["../x", "12a", "", -1, True, "ord_../1"])
def test_bad_ids_are_refused_before_sending(api: GameAPI, server: Any, bad: Any) -> None:
    before = sum(server.exchange.attempts.values())
    with pytest.raises(GameAPIError):
        api.delete_order(bad)
    assert api.find_order_by_id(bad) is None  # no order can have that id
    assert sum(server.exchange.attempts.values()) == before


def test_recovery_from_a_401(api: GameAPI, server: Any) -> None:
    api.get_status()
    server.exchange.expire_access_tokens()
    assert api.get_status()["status"] == "healthy"
    assert server.exchange.exchanges == 2


def test_a_refused_personal_token(server: Any) -> None:
    with GameAPI("not-a-token", server.base_url) as api:
        with pytest.raises(AuthenticationError):
            api.get_status()
        assert api.test_connection() is False


def test_the_exchange_refusing_an_order_is_a_validation_error(server: Any) -> None:
    with GameAPI(TOKEN, server.base_url) as api:
        api._settings = dataclasses.replace(api._settings, allow_non_positive_price=True)  # let a bad price through
        with pytest.raises(ServerValidationError) as caught:
            api.create_order(future_order(price=-5))
        assert caught.value.status_code == 422 and "price" in caught.value.detail


def test_attempts_are_logged_and_observed_without_tokens(server: Any, caplog: Any) -> None:
    seen: List[Attempt] = []
    caplog.set_level(logging.DEBUG)
    with GameAPI(TOKEN, server.base_url, on_attempt=seen.append) as api:
        api.get_status()
        api.create_order(future_order())
    assert [(a.method, a.path, a.status) for a in seen][-2:] == [("GET", "/status", 200), ("POST", "/orders", 200)]
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "GET /status -> 200 (attempt 1" in text
    assert TOKEN not in text and "Bearer" not in text


def test_repr_hides_the_token(server: Any) -> None:
    with GameAPI(TOKEN, server.base_url) as api:
        api.get_status()
        assert TOKEN not in repr(api) and TOKEN not in str(api)


def test_from_env(server: Any, monkeypatch: Any, tmp_path: Any) -> None:
    env = tmp_path / ".env"
    env.write_text(f"GAME_API_TOKEN={TOKEN}\nGAME_API_URL={server.base_url}\nGAME_API_VERIFY_SSL=false\n")
    monkeypatch.delenv("GAME_API_TOKEN", raising=False)
    monkeypatch.delenv("GAME_API_URL", raising=False)
    monkeypatch.delenv("GAME_API_VERIFY_SSL", raising=False)
    with GameAPI.from_env(dotenv_path=str(env)) as api:
        assert api.get_status()["status"] == "healthy"
    monkeypatch.setenv("GAME_API_TOKEN", "")
    with pytest.raises(ValueError):
        GameAPI.from_env(dotenv_path=None)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        GameAPI(TOKEN, "ftp://example")
    with pytest.raises(ValueError):
        GameAPI("", "http://127.0.0.1:1")
    with pytest.raises(ValueError):
        GameAPI(TOKEN, "http://127.0.0.1:1", timeout=0)
    with pytest.raises(ValueError):
        GameAPI(TOKEN, "http://127.0.0.1:1", verify_ssl=None)  # type: ignore[arg-type]
