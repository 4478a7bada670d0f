"""The async client against the embedded exchange over loopback, on asyncio and trio."""

from __future__ import annotations

from typing import Any, List

import anyio
import pytest

from gameproto_async import (
    AuthenticationError,
    GameAPI,
    GameAPIError,
    NotFoundError,
    OrderValidationError,
)

from .conftest import TOKEN, future_order

pytestmark = pytest.mark.anyio


async def test_every_call(aserver: Any) -> None:
    async with GameAPI(TOKEN, aserver.base_url, timeout=10) as api:
        assert await api.test_connection() is True
        assert (await api.get_status())["status"] == "healthy"
        created = await api.create_order(future_order("sell", 50.0, 2.0))
        hidden = await api.create_order(future_order("sell", 49.0, 1.0, state="hidden"))
        assert len(await api.get_orders()) == 2
        assert await api.get_orders(direction="buy") == []
        assert await api.get_trades(direction="sell", duration="15m") == []
        market = await api.get_market_data()
        assert market and all(row.get("price") != 49.0 for row in market)
        assert await api.get_market_ltp() == []
        assert await api.get_latest_available_ltp(duration="15m") == []
        assert isinstance(await api.get_spot_data(limit=3), list)
        assert (await api.get_spot_status())["status"]
        assert await api.get_market_best_offers()
        assert await api.get_latest_ltp() == {}
        assert (await api.find_order_by_id(created["order_id"])) is not None
        assert (await api.delete_order(hidden["order_id"]))["status"] == "deleted"
        assert await api.find_order_by_id(hidden["order_id"]) is None


async def test_works_without_a_context_manager_like_the_published_client(aserver: Any) -> None:
    api = GameAPI(token=TOKEN, base_url=aserver.base_url)
    assert await api.test_connection()
    await api.aclose()


async def test_a_crossing_pair_trades_with_a_partial_fill(aserver: Any) -> None:
    async with GameAPI(TOKEN, aserver.base_url) as api:
        await api.create_order(future_order("buy", 60.0, 3.0))
        await api.create_order(future_order("sell", 55.0, 1.0))
        trades = await api.get_trades()
        assert [(t["price"], t["volume"]) for t in trades] == [(60.0, 1.0)]
        buy = next(o for o in await api.get_orders() if o["direction"] == "buy")
        assert buy["remaining_volume"] == 2.0 and buy["execution_count"] == 1


async def test_one_exchange_however_many_calls_find_the_token_stale(aserver: Any) -> None:
    async with GameAPI(TOKEN, aserver.base_url) as api:
        async with anyio.create_task_group() as group:
            for _ in range(25):
                group.start_soon(api.get_status)
        assert aserver.exchange.exchanges == 1
        aserver.exchange.expire_access_tokens()
        async with anyio.create_task_group() as group:
            for _ in range(25):
                group.start_soon(api.get_status)
        assert aserver.exchange.exchanges == 2


async def test_connections_are_reused(aserver: Any) -> None:
    async with GameAPI(TOKEN, aserver.base_url) as api:
        for _ in range(30):
            await api.get_status()
    assert aserver.connections_accepted == 1


async def test_a_bulk_of_150_goes_as_100_and_50(aserver: Any) -> None:
    async with GameAPI(TOKEN, aserver.base_url) as api:
        result = await api.create_order({"orders": [future_order("buy", 10.0, 1.0) for _ in range(150)]})
        assert result["requested"] == 150
        assert sorted(entry["index"] for entry in result["created"]) == list(range(150))
        assert aserver.exchange.attempts[("POST", "/orders/create-bulk")] == 2


async def test_a_large_bulk_is_sent_concurrently_and_merged(aserver: Any) -> None:
    async with GameAPI(TOKEN, aserver.base_url) as api:
        orders = [future_order("sell", 100.0 + i, 1.0) for i in range(1000)]
        orders[999]["price"] = 0.0  # refused by the client
        with pytest.raises(OrderValidationError):
            await api.create_order({"orders": orders})
        orders[999]["price"] = 1.0
        result = await api.create_order({"orders": orders})
        assert [entry["index"] for entry in sorted(result["created"], key=lambda e: e["index"])] == list(range(1000))
        assert result["failed"] == []
        assert aserver.exchange.attempts[("POST", "/orders/create-bulk")] == 10


async def test_delete_by_ord_id_and_bad_ids(aserver: Any) -> None:
    async with GameAPI(TOKEN, aserver.base_url) as api:
        created = await api.create_order(future_order())
        await api.delete_order(created["order_id"])
        assert aserver.exchange.attempts[("GET", "/orders")] == 0
        with pytest.raises(NotFoundError):
            await api.delete_order(created["order_id"])
        seen = sum(aserver.exchange.attempts.values())
        for bad in ("../x", "12a", "", -1, True):
            with pytest.raises(GameAPIError):
                await api.delete_order(bad)
        assert sum(aserver.exchange.attempts.values()) == seen


async def test_recovery_from_a_401(aserver: Any) -> None:
    async with GameAPI(TOKEN, aserver.base_url) as api:
        await api.get_status()
        aserver.exchange.expire_access_tokens()
        await api.get_status()
        assert aserver.exchange.exchanges == 2


async def test_a_refused_personal_token(aserver: Any) -> None:
    async with GameAPI("nope", aserver.base_url) as api:
        with pytest.raises(AuthenticationError):
            await api.get_orders()
        assert await api.test_connection() is False


async def test_a_cancelled_call_leaves_the_client_usable(aserver: Any) -> None:
    from gameproto.simulator.faults import Fault

    async with GameAPI(TOKEN, aserver.base_url) as api:
        await api.get_status()
        aserver.exchange.faults.add(Fault("delay", delay=5.0), path="/status")
        with anyio.move_on_after(0.3) as scope:
            await api.get_status()
        assert scope.cancelled_caught
        assert (await api.get_status())["status"] == "healthy"
        stats: List[Any] = api._transport._pool.connections
        assert len(stats) <= 2
