"""The trading loop end to end: the request budget, the exchange's clock and live events.

Each scenario is written once (``tests/support/harness.py``) and runs on the
blocking client and on the async client under asyncio and trio. Nothing here
asserts a duration: the budget is judged by the requests the exchange
counted and the order of their arrivals, the clock by the offset the exchange
was started with, the events by the volumes and trades the exchange holds.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
import time
from decimal import Decimal
from typing import Any, Callable, Dict, Iterator, List, Tuple

import anyio
import pytest

import gameproto
from gameproto._flow import Attempt
from gameproto._retry import RetryPolicy
from gameproto.simulator import Fault
from gameproto.simulator.exchange import Exchange
from gameproto_async import AuthenticationError, OrderValidationError, RateLimitError
from tests.support.common import OTHER_TOKEN, TOKEN, future_order
from tests.support.harness import DRIVERS, FaultProxy, GameServe, Harness, Scenario, collect, every_driver, run_on

FAST_RETRY = RetryPolicy(max_retries=1, backoff_initial=0.01, backoff_max=0.02)


def two_traders(**options: Any) -> Callable[[], Exchange]:
    return lambda: Exchange(tokens={TOKEN: "alice", OTHER_TOKEN: "bob"}, seed=7, **options)


class TimedExchange(Exchange):
    """The exchange, noting when each request arrived (monotonic seconds) and what it was."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrivals: List[Tuple[float, str, str]] = []

    def react(self, request: Any) -> Any:
        self.arrivals.append((time.monotonic(), request.method, request.path))
        return super().react(request)


def requests_counted(exchange: Exchange) -> int:
    return sum(exchange.attempts.values())


def recorder() -> Tuple[List[Attempt], Callable[[Attempt], None]]:
    seen: List[Attempt] = []
    return seen, seen.append


async def status_calls(h: Harness, trader: Any, per_worker: List[int]) -> List[Any]:
    """``get_status`` from concurrent workers, ``per_worker[i]`` calls each: every outcome, flat."""

    def worker(calls: int) -> Callable[[], Any]:
        async def run() -> List[Any]:
            outcomes: List[Any] = []
            for _ in range(calls):
                try:
                    outcomes.append(await trader.get_status())
                except Exception as error:
                    outcomes.append(error)
            return outcomes

        return run

    results = await h.concurrently(*(worker(calls) for calls in per_worker))
    return [outcome for result in results for outcome in result]


def assert_refused_by_the_budget(failures: List[Any]) -> None:
    for failure in failures:
        assert isinstance(failure, RateLimitError), repr(failure)
        assert "request budget" in str(failure) and "nothing was sent" in str(failure)


# -- 1. the request budget --------------------------------------------------------------------


@every_driver(exchange=two_traders(rate_limit_per_minute=20), trust_env=False)
async def test_a_fixed_limit_is_never_passed(h: Harness) -> None:
    """Budget: a fixed limit is never passed."""
    attempts, record = recorder()
    trader = h.client(token=TOKEN, requests_per_minute=20, timeout=2, on_attempt=record)
    outcomes = await status_calls(h, trader, [7, 6, 6, 6])
    # 20 calls, and the token exchange (which takes no slot: the exchange
    # counts requests per access token); the rest get no slot before their deadline.
    assert requests_counted(h.exchange) == 21
    assert h.exchange.attempts[("GET", "/status")] == 20
    assert [attempt.status for attempt in attempts if attempt.status != 200] == []
    answered = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    assert len(answered) == 20
    assert_refused_by_the_budget([outcome for outcome in outcomes if not isinstance(outcome, dict)])


@every_driver(exchange=two_traders(rate_limit_per_minute=20), trust_env=False)
async def test_auto_learns_the_limit_from_status(h: Harness) -> None:
    """Budget: auto learns the limit from /status."""
    attempts, record = recorder()
    trader = h.client(token=TOKEN, timeout=2, on_attempt=record)  # requests_per_minute="auto": 1,000 until told
    status = await trader.get_status()
    assert status["rate_limit"]["requests_per_minute"] == 20
    outcomes = await status_calls(h, trader, [7, 6, 6, 6])
    assert requests_counted(h.exchange) == 21  # the token exchange, the first call, 19 more
    assert [attempt.status for attempt in attempts if attempt.status != 200] == []
    assert sum(1 for outcome in outcomes if isinstance(outcome, dict)) == 19
    assert_refused_by_the_budget([outcome for outcome in outcomes if not isinstance(outcome, dict)])


def _frozen_clock() -> Callable[[], float]:
    frozen = time.time()
    return lambda: frozen


# The exchange's clock stands still, so that its one-minute window cannot turn over during the case.
@every_driver(
    exchange=lambda: Exchange(tokens={TOKEN: "alice"}, rate_limit_per_minute=20, clock=_frozen_clock()),
    trust_env=False,
)
async def test_none_turns_pacing_off_and_the_exchange_refuses(h: Harness) -> None:
    """Budget: None turns pacing off, and the exchange refuses."""
    attempts, record = recorder()
    no_retry = RetryPolicy(max_retries=0)
    trader = h.client(token=TOKEN, requests_per_minute=None, timeout=2, retry_policy=no_retry, on_attempt=record)
    outcomes = await status_calls(h, trader, [7, 6, 6, 6])
    # Without the budget, the calls past the exchange's limit reach it and are answered 429.
    assert sum(1 for outcome in outcomes if isinstance(outcome, dict)) == 20
    assert [attempt.status for attempt in attempts].count(429) == 5
    assert h.exchange.attempts[("GET", "/status")] == 25
    assert all(isinstance(outcome, RateLimitError) for outcome in outcomes if not isinstance(outcome, dict))


@every_driver(exchange=lambda: TimedExchange(tokens={TOKEN: "alice"}), trust_env=False)
async def test_a_retry_after_pauses_every_caller(h: Harness) -> None:
    """Budget: a 429's Retry-After pauses every caller."""
    exchange = h.exchange
    assert isinstance(exchange, TimedExchange)
    exchange.faults.add(Fault("status", 429, headers=(("Retry-After", "1"),)), method="GET", path="/status")
    attempts, record = recorder()
    trader = h.client(token=TOKEN, timeout=20, on_attempt=record)

    async def first() -> Any:
        return await trader.get_status()

    async def the_others() -> Any:
        # Once the first caller has met the 429, three more callers come.
        await h.wait_until(lambda: any(attempt.status == 429 for attempt in attempts), "the 429")
        return await status_calls(h, trader, [1, 1, 1])

    first_answer, others = await h.concurrently(first, the_others)
    assert isinstance(first_answer, dict) and all(isinstance(answer, dict) for answer in others), (first_answer, others)
    statuses = [arrival for arrival in exchange.arrivals if arrival[2] == "/status"]
    assert len(statuses) == 5  # the refused one, its repeat, three more
    refused_at = statuses[0][0]
    # Not one request of any caller reached the exchange during the second it asked for.
    assert all(at >= refused_at + 1.0 for at, _, _ in statuses[1:]), [at - refused_at for at, _, _ in statuses]


# -- 3. live events ------------------------------------------------------------------------------

#: Bob's buys, each crossing one of Alice's resting sells: (price, volume).
CROSSINGS = [(100.0, 1.0), (100.0, 2.0), (100.0, 2.0), (101.0, 1.0), (101.0, 2.0)]
#: Faults injected into Alice's polls while Bob trades, one set before each crossing. Each
#: rule hits twice in a row: Alice's client retries once, so each reaches the watch.
WATCH_FAULTS = [
    (Fault("drop_before"), "/orders"),
    (Fault("status", 503), "/trades"),
    (Fault("drop_after"), "/orders"),
    (Fault("status", 503), "/orders"),
    (Fault("drop_before"), "/trades"),
]


def _filled(events: List[Any]) -> Dict[Any, Decimal]:
    totals: Dict[Any, Decimal] = collections.defaultdict(Decimal)
    for event in events:
        if event.kind == "filled":
            totals[event.order["order_id"]] += Decimal(str(event.volume))
    return totals


async def fills_through_faults(
    h: Harness,
    alice: Any,
    bob: Any,
    attempts: List[Attempt],
    inject: Callable[[int], None],
    polls: Callable[[str], int],
) -> None:
    """Bob crosses Alice's two resting sells in five partial fills while Alice watches, faults injected.

    ``inject(i)`` sets the faults before Bob's ``i``-th crossing; ``polls(path)``
    counts Alice's GETs of ``path`` that reached the exchange.
    """
    first = await alice.create_order(future_order("sell", 100.0, 5.0))
    second = await alice.create_order(future_order("sell", 101.0, 3.0))
    ids = [int(str(first["order_id"])[len("ord_") :]), int(str(second["order_id"])[len("ord_") :])]
    expected = {ids[0]: Decimal(5), ids[1]: Decimal(3)}

    async def watch_orders() -> List[Any]:
        events = alice.watch_orders(interval=0.05, existing=True)
        return await collect(events, lambda seen: all(_filled(seen)[key] >= want for key, want in expected.items()))

    async def watch_trades() -> List[Any]:
        events = alice.watch_trades(interval=0.05, mine=True)
        return await collect(events, lambda seen: len(seen) >= len(CROSSINGS))

    async def cross() -> None:
        # The trade watch's first listing is history: Bob trades once it has been read.
        await h.wait_until(lambda: polls("/trades") >= 1, "the trade watch's first listing")
        # The order watch's first listing is its baseline too (the trade watch lists the orders once).
        await h.wait_until(lambda: polls("/orders") >= 2, "the order watch's first listing")
        for index, (price, volume) in enumerate(CROSSINGS):
            inject(index)
            await bob.create_order(future_order("buy", price, volume))
            await h.sleep(0.1)

    order_events, trades, crossed = await h.concurrently(watch_orders, watch_trades, cross)
    assert crossed is None, crossed
    assert not isinstance(order_events, BaseException), order_events
    assert not isinstance(trades, BaseException), trades

    # Breaking out left the client usable; the exchange's own record is the truth.
    listed = {order["order_id"]: order for order in await alice.get_orders()}
    assert _filled(order_events) == {key: Decimal(str(listed[key]["executed_volume"])) for key in ids} == expected
    assert [event.order_id for event in order_events if event.kind == "existing"] == [
        first["order_id"],
        second["order_id"],
    ]
    assert not [event for event in order_events if event.kind == "placed"]
    assert any(event.complete for event in order_events if event.kind == "filled")
    name = listed[ids[0]]["trader"]
    sold = sorted(trade["trade_id"] for trade in await bob.get_trades() if trade["seller"] == name)
    assert len(sold) == len(CROSSINGS)
    assert sorted(trade["trade_id"] for trade in trades) == sold  # each once
    # The faults did reach the watches (a 503 or a lost connection), and were waited out.
    assert any(attempt.status == 503 for attempt in attempts)
    assert any(attempt.failure is not None for attempt in attempts)


@every_driver(exchange=two_traders(), trust_env=False)
async def test_partial_fills_through_faults_each_counted_once(h: Harness) -> None:
    """Events: partial fills through faults, each counted once."""
    attempts, record = recorder()
    alice = h.client(token=TOKEN, timeout=5, retry_policy=FAST_RETRY, on_attempt=record)
    bob = h.client(token=OTHER_TOKEN, timeout=5)

    def inject(index: int) -> None:
        fault, path = WATCH_FAULTS[index % len(WATCH_FAULTS)]
        h.exchange.faults.add(fault, method="GET", path=path, times=2)

    await fills_through_faults(h, alice, bob, attempts, inject, lambda path: h.exchange.attempts[("GET", path)])


@every_driver(exchange=two_traders(), trust_env=False)
async def test_an_authentication_error_ends_the_watch(h: Harness) -> None:
    """Events: an authentication error ends the watch."""
    alice = h.client(token=TOKEN, timeout=5, retry_policy=FAST_RETRY)
    await alice.create_order(future_order("sell", 100.0, 1.0))
    events = alice.watch_orders(interval=0.05, existing=True)
    try:
        placed = await events.__anext__()
        assert placed.kind == "existing"
        h.exchange.revoke(TOKEN)
        with pytest.raises(AuthenticationError):
            await events.__anext__()
    finally:
        await events.aclose()


@every_driver(exchange=two_traders(), trust_env=False)
async def test_breaking_out_of_a_watch_leaves_the_client_usable(h: Harness) -> None:
    """Events: breaking out of a watch leaves the client usable."""
    alice = h.client(token=TOKEN, timeout=5)
    bob = h.client(token=OTHER_TOKEN, timeout=5)
    await bob.create_order(future_order("buy", 90.0, 1.0))
    market = await collect(alice.watch_market(interval=0.05, existing=True), lambda seen: len(seen) >= 1)
    assert market[0].bid == 90.0 and market[0].ask is None and market[0].existing
    trades = alice.watch_trades(interval=0.05, mine=False)
    await trades.aclose()  # closed before it ever ran
    created = await alice.create_order(future_order("sell", 95.0, 1.0))
    assert created["order_id"].startswith("ord_")
    assert await alice.test_connection() is True


@every_driver(exchange=two_traders(), trust_env=False)
async def test_a_trade_watch_of_an_account_whose_names_are_known_lists_no_orders(h: Harness) -> None:
    """The names the account learnt from its create answer serve the trade watch: it reads the trades at once."""
    alice = h.client(token=TOKEN, timeout=5)
    bob = h.client(token=OTHER_TOKEN, timeout=5)
    sold = await alice.create_order(future_order("sell", 100.0, 2.0))
    listings = h.attempts("GET", "/orders")
    events = alice.watch_trades(interval=0.05, mine=True)

    async def cross() -> None:
        await h.wait_until(lambda: h.attempts("GET", "/trades") >= 1, "the trade watch's first listing")
        await bob.create_order(future_order("buy", 100.0, 2.0))

    trades, crossed = await h.concurrently(lambda: collect(events, lambda seen: len(seen) >= 1), cross)
    assert crossed is None, crossed
    assert [trade["seller"] for trade in trades] == [sold["trader"]]
    assert h.attempts("GET", "/orders") == listings  # no listing of the orders to learn a name


class MovableClock:
    """The host's clock plus a shift the test moves."""

    def __init__(self) -> None:
        self.shift = 0.0

    def __call__(self) -> float:
        return time.time() + self.shift


CLOSING_CLOCK = MovableClock()


@every_driver(
    exchange=lambda: Exchange(tokens={TOKEN: "alice", OTHER_TOKEN: "bob"}, clock=CLOSING_CLOCK),
    trust_env=False,
)
async def test_a_contract_that_closes_makes_its_resting_orders_gone(h: Harness) -> None:
    """Events: a contract that closes makes its resting orders gone."""
    CLOSING_CLOCK.shift = 0.0
    alice = h.client(token=TOKEN, timeout=5)
    bob = h.client(token=OTHER_TOKEN, timeout=5)
    created = await alice.create_order(future_order("sell", 100.0, 4.0))
    await bob.create_order(future_order("buy", 100.0, 1.0))
    events = alice.watch_orders(interval=0.05, existing=True)
    try:
        existing = await events.__anext__()  # Bob's buy filled it before the watch: the baseline says so
        assert (existing.kind, existing.order["executed_volume"], existing.complete) == ("existing", 1.0, False)
        order = future_order("sell")
        start = dt.datetime.fromisoformat(f"{order['date']}T{order['start_time']}+00:00").timestamp()
        CLOSING_CLOCK.shift = start + 10 - time.time()  # ten seconds past the delivery start: closed
        gone = await events.__anext__()
    finally:
        await events.aclose()
    assert gone.kind == "gone" and gone.order_id == created["order_id"]  # the creation's form, as is
    assert gone.order["status"] == "expired" and gone.order["executed_volume"] == 1.0 and not gone.complete


# -- 2. the exchange's clock, with ``game serve --clock-offset`` --------------------------------

CLOCK_TOKEN = "personal-token-clock-0123456789"


@pytest.fixture(scope="module", params=[300, -300], ids=["ahead", "behind"])
def shifted_exchange(request: Any) -> Iterator[Tuple[str, int]]:
    """``game serve --clock-offset ±300`` in a child process: (its URL, the offset)."""
    offset = int(request.param)
    with GameServe("--token", CLOCK_TOKEN, "--clock-offset", str(offset)) as served:
        yield served.base_url, offset


def _one_minute_order(start: dt.datetime, side: str = "sell") -> Dict[str, Any]:
    end = start + dt.timedelta(minutes=1)
    return {
        "side": side,
        "price": 500.0,
        "volume": 1.0,
        "date": start.date().isoformat(),
        "start_time": start.strftime("%H:%M"),
        "end_time": end.strftime("%H:%M"),
        "duration": "1m",
        "tz_offset_hours": 0,
    }


def _minute(moment: float, up: bool) -> dt.datetime:
    rounded = (math.ceil if up else math.floor)(moment / 60) * 60
    return dt.datetime.fromtimestamp(rounded, dt.timezone.utc)


def clock_scenario(url: str, offset: int) -> Scenario:
    async def run(h: Harness) -> None:
        attempts, record = recorder()
        trader = h.client(url, CLOCK_TOKEN, timeout=10, on_attempt=record)
        assert trader.clock_offset is None
        await trader.get_status()
        assert trader.clock_offset is not None and abs(trader.clock_offset - offset) < 1.0, trader.clock_offset
        sent = len(attempts)
        local_now = time.time()
        if offset > 0:
            # Two to three minutes ahead of the local clock, so already started by the exchange's.
            order = _one_minute_order(_minute(local_now + 120, up=True))
            with pytest.raises(OrderValidationError) as refused:
                await trader.create_order(order)
            assert "by the exchange's clock" in str(refused.value)
            with pytest.raises(OrderValidationError) as bulk_refused:  # a bulk is judged by the same clock
                await trader.create_order({"orders": [order, order]})
            assert str(bulk_refused.value).count("by the exchange's clock") == 2
            assert len(attempts) == sent  # nothing was sent
            # An explicit now still wins: by the local clock the order is in the future.
            gameproto.validate_order(order, now=dt.datetime.now(dt.timezone.utc))
        else:
            # Two to three minutes ago by the local clock: in the future by the exchange's.
            order = _one_minute_order(_minute(local_now - 120, up=False))
            created = await trader.create_order(order)
            assert created["order_id"].startswith("ord_")
            placed = await trader.find_order_by_id(created["order_id"])
            assert placed is not None and placed["start_time"] == order["start_time"]
            with pytest.raises(gameproto.OrderValidationError):
                gameproto.validate_order(order, now=dt.datetime.now(dt.timezone.utc))

    return run


@pytest.mark.parametrize("driver", DRIVERS)
def test_the_exchanges_clock(driver: str, shifted_exchange: Tuple[str, int]) -> None:
    url, offset = shifted_exchange
    run_on(driver, clock_scenario(url, offset), client_options={"trust_env": False})


# -- 3 again, on ``game serve`` with two tokens, faults from a proxy in front of Alice ------------

ALICE_TOKEN = "personal-token-serve-alice-0123"
BOB_TOKEN = "personal-token-serve-bob-456789"
#: What the proxy does to Alice's polls before each of Bob's crossings (each twice in a row).
PROXY_FAULTS = [("drop", "/orders"), ("503", "/trades"), ("drop", "/trades"), ("503", "/orders"), ("drop", "/orders")]


@pytest.fixture
def served_pair() -> Iterator[Tuple[str, FaultProxy]]:
    """``game serve`` with two tokens in a child process, and a fault proxy in front of it for Alice."""
    with GameServe("--token", ALICE_TOKEN, "--token", BOB_TOKEN) as served, FaultProxy(served.base_url) as proxy:
        yield served.base_url, proxy


def serve_fills_scenario(url: str, proxy: FaultProxy) -> Scenario:
    async def run(h: Harness) -> None:
        attempts, record = recorder()
        alice = h.client(proxy.base_url, ALICE_TOKEN, timeout=5, retry_policy=FAST_RETRY, on_attempt=record)
        bob = h.client(url, BOB_TOKEN, timeout=5)

        def inject(index: int) -> None:
            kind, path = PROXY_FAULTS[index % len(PROXY_FAULTS)]
            proxy.fail(kind, "/api/v1" + path, times=2)

        await fills_through_faults(
            h, alice, bob, attempts, inject, lambda path: proxy.forwarded.get(("GET", "/api/v1" + path), 0)
        )
        assert proxy.injected >= 2 * len(PROXY_FAULTS) - 2  # the last faults may come after the watches ended

    return run


@pytest.mark.parametrize("driver", DRIVERS)
def test_events_on_game_serve(driver: str, served_pair: Tuple[str, FaultProxy]) -> None:
    url, proxy = served_pair
    run_on(driver, serve_fills_scenario(url, proxy), client_options={"trust_env": False})


@pytest.mark.anyio
async def test_a_cancelled_watch_leaves_the_client_usable(aserver: Any) -> None:
    from gameproto_async import GameAPI

    async with GameAPI(TOKEN, aserver.base_url, timeout=5) as api:
        await api.create_order(future_order("sell", 100.0, 1.0))
        seen: List[Any] = []
        listed = aserver.exchange.attempts[("GET", "/orders")]

        async def watch() -> None:
            async for event in api.watch_orders(interval=0.05, existing=True):
                seen.append(event)

        # Cancelled while it polls, once it has listed and polled five times more (counted, not timed):
        # nothing new after the first listing.
        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            with anyio.fail_after(30):
                while aserver.exchange.attempts[("GET", "/orders")] < listed + 6:
                    await anyio.sleep(0.01)
            group.cancel_scope.cancel()
        assert [event.kind for event in seen] == ["existing"]
        assert len(await api.get_orders()) == 1
        with anyio.move_on_after(0.3):
            async for trade in api.watch_trades(interval=0.05, mine=False):
                raise AssertionError(f"no trade happened, yet {trade!r}")
        assert (await api.get_status())["status"] == "healthy"
