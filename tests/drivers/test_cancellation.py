"""Calls of the async client cancelled mid-flight, on asyncio and trio.

A cancelled call must leave the client usable (the next call succeeds), its
connection pool without leaked or half-used connections, and the token lock
free: a cancelled token exchange must not block every later call.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, List

import anyio
import pytest

from gameproto.simulator.exchange import Exchange
from gameproto.simulator.faults import Fault
from gameproto_async import GameAPI
from gameproto_exchange import RunningServer
from tests.support.common import TOKEN, future_order

pytestmark = pytest.mark.anyio

#: How long the exchange sits on a delayed answer (a call is cancelled once the exchange holds it, not after a wait).
DELAY = 2.0
#: A bound on a hang while waiting for the exchange to take its delays.
LIMIT = 30.0


def delay(exchange: Exchange, method: str, path: str, times: int = 1) -> None:
    exchange.faults.add(Fault("delay", delay=DELAY), method=method, path=path, times=times)


def pool_state(api: GameAPI) -> List[Any]:
    """The pool's connections, checked: none closed, none busy, no request waiting."""
    connections = list(api._transport._pool.connections)
    assert all(not connection.is_closed() for connection in connections)
    assert all(connection.is_idle() or connection.is_available() for connection in connections)
    return connections


async def assert_usable(api: GameAPI, server: RunningServer[Exchange], calls: int = 5) -> None:
    with anyio.fail_after(5):
        for _ in range(calls):
            assert (await api.get_status())["status"] == "healthy"
    assert len(pool_state(api)) == 1  # the normal calls share one kept-alive connection


def delays_left(exchange: Exchange) -> int:
    """How many delayed answers the exchange has still to give: each delay taken is a request that reached it."""
    return sum(rule.times for rule in exchange.faults.rules if rule.fault.kind == "delay")


async def until_held(exchange: Exchange, left: int = 0) -> None:
    """Until the exchange holds the delayed requests (``left`` delays not taken yet): then a cancel is mid-flight."""
    with anyio.fail_after(LIMIT):
        while delays_left(exchange) > left:
            await anyio.sleep(0.01)


async def cancelled_once_held(exchange: Exchange, call: Callable[[], Awaitable[Any]], left: int = 0) -> None:
    """``call``, cancelled by its scope once the exchange holds its delayed requests; it must not have ended."""
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(call)
            await until_held(exchange, left)
            scope.cancel()
    assert scope.cancelled_caught, "the delayed call ended before it was cancelled"


async def cancelled_by_move_on_after(api: GameAPI, exchange: Exchange) -> None:
    """A call cancelled by ``move_on_after`` while the server holds its answer back.

    The deadline is brought to now once the server has taken the delay fault
    (the request was carried out): a fixed patience could, on a busy machine,
    cancel the call before its request was even sent.
    """
    with anyio.move_on_after(DELAY * 5) as scope:
        async with anyio.create_task_group() as group:
            group.start_soon(api.get_status)
            while any(rule.fault.kind == "delay" for rule in exchange.faults.rules):
                await anyio.sleep(0.01)
            scope.deadline = anyio.current_time()
            await anyio.sleep(DELAY * 5)
    assert scope.cancelled_caught, "the delayed call was not cancelled"


# --- asyncio: Task.cancel() -------------------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_task_cancel_mid_flight_leaves_the_client_usable(aserver: RunningServer[Exchange]) -> None:
    import asyncio

    exchange = aserver.exchange
    async with GameAPI(TOKEN, aserver.base_url, timeout=10) as api:
        await api.get_status()  # token and connection in place
        for _ in range(4):
            delay(exchange, "GET", "/status")
            task = asyncio.ensure_future(api.get_status())
            await until_held(exchange)
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert len(pool_state(api)) <= 1
        await assert_usable(api, aserver)
        # One connection for the first call and one per cancelled call (its connection is dropped), no more.
        assert aserver.connections_accepted <= 1 + 4 + 1
    assert exchange.exchanges == 1


# --- trio: a cancel scope ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_cancel_scope_mid_flight_leaves_the_client_usable(aserver: RunningServer[Exchange]) -> None:
    import trio

    exchange = aserver.exchange
    async with GameAPI(TOKEN, aserver.base_url, timeout=10) as api:
        await api.get_status()
        for _ in range(4):
            delay(exchange, "GET", "/status")
            finished: List[bool] = []
            async with trio.open_nursery() as nursery:
                scope = trio.CancelScope()

                async def call(scope: trio.CancelScope = scope, finished: List[bool] = finished) -> None:
                    with scope:
                        await api.get_status()
                        finished.append(True)

                nursery.start_soon(call)
                await until_held(exchange)
                scope.cancel()
            assert finished == [] and scope.cancelled_caught
            assert len(pool_state(api)) <= 1
        await assert_usable(api, aserver)
        assert aserver.connections_accepted <= 1 + 4 + 1
    assert exchange.exchanges == 1


# --- both: anyio.move_on_after -------------------------------------------------------------------------------------


async def test_move_on_after_mid_flight_leaves_the_client_usable(aserver: RunningServer[Exchange]) -> None:
    exchange = aserver.exchange
    async with GameAPI(TOKEN, aserver.base_url, timeout=10) as api:
        await api.get_status()
        for _ in range(4):
            delay(exchange, "GET", "/status")
            await cancelled_by_move_on_after(api, exchange)
            assert len(pool_state(api)) <= 1
        await assert_usable(api, aserver)
        accepted = aserver.connections_accepted
        assert accepted <= 1 + 4 + 1
        # and nothing more is opened by further normal calls: the pool is back to one reused connection
        await assert_usable(api, aserver, calls=10)
        assert aserver.connections_accepted == accepted
    assert exchange.exchanges == 1


async def test_many_concurrent_calls_cancelled_at_once(aserver: RunningServer[Exchange]) -> None:
    exchange = aserver.exchange
    async with GameAPI(TOKEN, aserver.base_url, timeout=10, max_connections=4) as api:
        await api.get_status()
        delay(exchange, "GET", "/status", times=12)

        async def twelve() -> None:
            async with anyio.create_task_group() as group:
                for _ in range(12):  # more than the pool holds: some wait for a connection when cancelled
                    group.start_soon(api.get_status)

        await cancelled_once_held(exchange, twelve, left=12 - 4)  # the pool's four are at the exchange
        exchange.faults.clear()  # the calls that never reached the exchange left their delays unused
        assert len(pool_state(api)) <= 4
        assert api._transport._pool._requests == []  # no request left queued in the pool
        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                for _ in range(12):
                    group.start_soon(api.get_status)
        assert len(pool_state(api)) <= 4
        assert aserver.connections_accepted <= 1 + 4 + 4


async def test_a_cancelled_create_order_leaves_the_client_usable(aserver: RunningServer[Exchange]) -> None:
    exchange = aserver.exchange
    async with GameAPI(TOKEN, aserver.base_url, timeout=10) as api:
        await api.get_status()
        delay(exchange, "POST", "/orders")
        await cancelled_once_held(exchange, lambda: api.create_order(future_order(price=101.0)))
        assert len(pool_state(api)) <= 1
        with anyio.fail_after(5):
            created: Any = await api.create_order(future_order(price=102.0))
            assert created["order_id"].startswith("ord_")
            # The cancelled order's outcome is the exchange's: a delay fault carries it out, so it is there.
            prices = sorted(order["price"] for order in await api.get_orders())
        assert prices == [101.0, 102.0]
        await assert_usable(api, aserver)
    assert exchange.attempts[("POST", "/orders")] == 2  # the cancelled POST was never repeated


async def test_a_cancelled_split_bulk_leaves_the_client_usable(aserver: RunningServer[Exchange]) -> None:
    exchange = aserver.exchange
    orders = [future_order(price=float(number + 1)) for number in range(250)]  # three parts, sent concurrently
    async with GameAPI(TOKEN, aserver.base_url, timeout=10) as api:
        await api.get_status()
        delay(exchange, "POST", "/orders/create-bulk", times=3)
        await cancelled_once_held(exchange, lambda: api.create_order({"orders": orders}))  # all three parts held
        exchange.faults.clear()
        assert len(pool_state(api)) <= 3
        with anyio.fail_after(5):
            result: Any = await api.create_order({"orders": orders[:2]})
        assert len(result["created"]) == 2
        await assert_usable(api, aserver)
    assert exchange.attempts[("POST", "/orders/create-bulk")] == 3 + 1  # nothing cancelled was sent again


async def test_a_cancelled_token_exchange_does_not_keep_the_lock(aserver: RunningServer[Exchange]) -> None:
    exchange = aserver.exchange
    async with GameAPI(TOKEN, aserver.base_url, timeout=10) as api:
        delay(exchange, "POST", "/auth/token")
        await cancelled_by_move_on_after(api, exchange)  # cancelled while holding the token lock, mid-exchange
        with anyio.fail_after(5):
            assert (await api.get_status())["status"] == "healthy"
        await assert_usable(api, aserver)
    assert exchange.exchanges == 2  # the cancelled one (carried out late by the server) and the next


async def test_a_waiter_on_the_token_lock_goes_on_when_the_holder_is_cancelled(
    aserver: RunningServer[Exchange],
) -> None:
    exchange = aserver.exchange
    results: List[str] = []
    async with GameAPI(TOKEN, aserver.base_url, timeout=10) as api:
        delay(exchange, "POST", "/auth/token")

        async def holder() -> None:
            await cancelled_by_move_on_after(api, exchange)  # takes the lock first, then is cancelled

        async def waiter() -> None:
            await until_held(exchange)  # arrives while the holder exchanges (the lock held, its request held)
            results.append((await api.get_status())["status"])

        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                group.start_soon(holder)
                group.start_soon(waiter)
        assert results == ["healthy"]
        await assert_usable(api, aserver)
    assert exchange.exchanges == 2


async def test_a_cancelled_exchange_then_expired_tokens_still_single_flight(aserver: RunningServer[Exchange]) -> None:
    exchange = aserver.exchange
    async with GameAPI(TOKEN, aserver.base_url, timeout=10) as api:
        delay(exchange, "POST", "/auth/token")
        await cancelled_by_move_on_after(api, exchange)
        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                for _ in range(10):
                    group.start_soon(api.get_status)
        assert exchange.exchanges == 2  # one late cancelled exchange, then ONE for ten callers
        exchange.expire_access_tokens()
        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                for _ in range(10):
                    group.start_soon(api.get_status)
        assert exchange.exchanges == 3
