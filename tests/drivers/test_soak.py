"""The soak: thousands of calls through an exchange that fails one request in ten, then a reconcile.

Every order is identified by its side and price (unique per order). After the
run the faults are turned off and every order's fate is checked against what
the client said: reported created -> exists exactly once, under the id the
client was given; reported failed (an error that is not OutcomeUnknownError)
-> does not exist; OutcomeUnknownError -> zero or one order, found by
``find_matching_orders``. Nothing lost, nothing doubled, and no answer ever
belongs to another call.

The plan runs on every driver (tests/support/harness.py): the blocking client in
sequence (fully reproducible), the async client on eight concurrent tasks, on
asyncio and on trio. The soak asserts counts and outcomes only, never how long
it took: throughput is measured by ``python -m benchmarks``.
"""

from __future__ import annotations

import collections
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Awaitable, Callable, Counter, Dict, List, Optional, Tuple

import pytest

from gameproto._boundary import Request
from gameproto._errors import GameAPIError, OutcomeUnknownError
from gameproto._flow import Attempt
from gameproto._retry import RetryPolicy
from gameproto.simulator.exchange import Exchange
from gameproto.simulator.faults import FAULT_KINDS, Fault
from gameproto_async import GameAPI
from tests.support.common import TOKEN, future_order
from tests.support.harness import Harness, every_driver, transport_named

CALLS = 2100
ORDERS = 500
FAULT_RATE = 0.1
READ_TIMEOUT = 0.2
#: Every kind of fault, a little longer than the read timeout for the slow ones.
FAULTS = (
    Fault("status", status=503),
    Fault("status", status=502),
    Fault("status", status=429, headers=(("Retry-After", "0"),)),
    Fault("drop_before"),
    Fault("drop_after"),
    Fault("delay", delay=READ_TIMEOUT + 0.1),
    Fault("not_json"),
)
RETRY = RetryPolicy(max_retries=3, backoff_initial=0.002, backoff_max=0.01)
CLIENT_OPTIONS: Dict[str, Any] = {
    "timeout": 5,
    "connect_timeout": 1,
    "read_timeout": READ_TIMEOUT,
    "retry_policy": RETRY,
}

Key = Tuple[str, Decimal]


def key_of(order: Dict[str, Any]) -> Key:
    """What identifies an order of the soak: its side and its (unique) price."""
    return str(order.get("direction", order.get("side"))), Decimal(str(order["price"]))


def soak_order(number: int) -> Dict[str, Any]:
    """Order ``number``: buys at 10.00 and up, sells at 1000.00 and up, so none ever trades."""
    if number % 2 == 0:
        return future_order("buy", round(10 + number / 100, 2), 1 + number % 5)
    return future_order("sell", round(1000 + number / 100, 2), 1 + number % 5)


def call_plan(seed: int) -> List[Tuple[str, int]]:
    """``CALLS`` calls in a fixed random order: ``ORDERS`` creations (with the order's number) and reads."""
    # Listings grow to 500 orders; they are fewer than the small reads, to keep the soak quick.
    reads = ["status"] * 4 + ["spot_status", "trades"] * 2 + ["market", "orders", "orders_sell", "find"]
    plan = [("create", number) for number in range(ORDERS)]
    draw = random.Random(seed)
    plan += [(draw.choice(reads), 0) for _ in range(CALLS - ORDERS)]
    draw.shuffle(plan)
    return plan


@dataclass
class Ledger:
    """What the client reported, call by call."""

    created: Dict[int, str] = field(default_factory=dict)  # order number -> order_id
    failed: Dict[int, GameAPIError] = field(default_factory=dict)
    unknown: Dict[int, OutcomeUnknownError] = field(default_factory=dict)
    read_errors: Counter[str] = field(default_factory=collections.Counter)
    reads_ok: int = 0
    calls: int = 0
    attempts: List[Attempt] = field(default_factory=list)

    def known_id(self, salt: int) -> Optional[str]:
        if not self.created:
            return None
        ids = sorted(self.created.values())
        return ids[salt % len(ids)]


def check_read(kind: str, answer: Any, ledger: Ledger) -> None:
    """Each answer is the answer to this call: never another call's (a desynchronised connection)."""
    if kind in ("status", "spot_status"):
        assert isinstance(answer, dict) and answer.get("status"), answer
        if kind == "status":
            assert answer["status"] == "healthy" and "services" in answer
        else:
            assert "market_open" in answer
    elif kind in ("orders", "orders_sell"):
        assert isinstance(answer, list) and all(order["trader"] == "alice" for order in answer)
        if kind == "orders_sell":
            assert all(order["direction"] == "sell" for order in answer)
    elif kind == "trades":
        assert answer == []  # nothing ever crosses
    elif kind == "market":
        assert isinstance(answer, list) and all("contract" in row for row in answer)
    elif kind == "find":
        pass  # checked where the id is known
    else:  # pragma: no cover
        raise AssertionError(kind)


def check_created(number: int, answer: Any) -> str:
    sent = soak_order(number)
    assert key_of(answer) == key_of(sent), (answer, sent)
    assert Decimal(str(answer["volume"])) == Decimal(str(sent["volume"]))
    order_id = str(answer["order_id"])
    assert order_id.startswith("ord_")
    return order_id


def counting_faults(exchange: Exchange) -> Counter[str]:
    """Count the faults the plan hands out, by kind (the plan itself keeps no tally)."""
    injected: Counter[str] = collections.Counter()
    take = exchange.faults.take

    def counted(request: Request) -> Optional[Fault]:
        fault = take(request)
        if fault is not None:
            injected[fault.kind if fault.kind != "status" else f"status {fault.status}"] += 1
        return fault

    exchange.faults.take = counted  # type: ignore[method-assign]
    return injected


#: The plan's seed on each driver.
SEEDS = {"sync": 20240611, "asyncio": 19700101, "trio": 19700101}
#: Concurrent callers on each driver: the blocking client in sequence, the async one on eight tasks.
WORKERS = {"sync": 1, "asyncio": 8, "trio": 8}


@pytest.fixture
def exchange(driver: str) -> Exchange:
    """The soak's exchange, in place of the usual one: one request in ten fails, at random (seeded)."""
    seed = SEEDS[transport_named(driver).backend]
    # No rate limit worth the name: thousands of calls in seconds are the point here.
    soaked = Exchange(tokens={TOKEN: "alice"}, seed=seed, rate_limit_per_minute=10**9)
    soaked.faults.randomly(FAULT_RATE, FAULTS, seed=seed)
    return soaked


@pytest.fixture
def injected(exchange: Exchange) -> Counter[str]:
    return counting_faults(exchange)


def reconcile(
    exchange: Exchange,
    ledger: Ledger,
    listing: List[Any],
    matches: Dict[int, List[Any]],
    injected: Counter[str],
) -> None:
    """Nothing lost, nothing doubled."""
    assert exchange.internal_errors == []
    assert ledger.calls == CALLS
    assert len(ledger.created) + len(ledger.failed) + len(ledger.unknown) == ORDERS
    # Every kind of fault was met, some hundreds of times in all.
    assert {kind.split()[0] for kind in injected} == set(FAULT_KINDS), injected
    assert sum(injected.values()) > CALLS * FAULT_RATE * 0.7, injected
    # The client retried what it may, and said "unknown" where it must.
    assert any(attempt.retry_in is not None for attempt in ledger.attempts)
    assert len(ledger.unknown) > 0

    truth = exchange.orders_of("alice")
    assert sorted(order["order_id"] for order in listing) == sorted(order["order_id"] for order in truth)
    by_key: Dict[Key, List[Dict[str, Any]]] = collections.defaultdict(list)
    for order in truth:
        by_key[key_of(order)].append(order)
    doubled = {key: len(orders) for key, orders in by_key.items() if len(orders) > 1}
    assert doubled == {}, f"orders placed more than once: {doubled}"

    accounted = set()
    for number, order_id in ledger.created.items():
        placed = by_key.get(key_of(soak_order(number)), [])
        assert [f"ord_{order['order_id']}" for order in placed] == [order_id], (number, order_id, placed)
        accounted.add(key_of(soak_order(number)))
    for number, error in ledger.failed.items():
        assert key_of(soak_order(number)) not in by_key, f"order {number} reported failed ({error!r}) exists"
    for number in ledger.unknown:
        found = matches[number]
        assert len(found) <= 1, found
        assert len(by_key.get(key_of(soak_order(number)), [])) == len(found)
        if found:
            accounted.add(key_of(soak_order(number)))
    stray = [order for order in truth if key_of(order) not in accounted]
    assert stray == [], f"orders nobody asked for: {stray}"


# -- the run, on every driver ----------------------------------------------------------------


def reads(api: GameAPI) -> Dict[str, Callable[[], Awaitable[Any]]]:
    return {
        "status": api.get_status,
        "spot_status": api.get_spot_status,
        "orders": api.get_orders,
        "orders_sell": lambda: api.get_orders(direction="sell"),
        "trades": api.get_trades,
        "market": api.get_market_data,
    }


async def run_plan(h: Harness, api: GameAPI, plan: List[Tuple[str, int]], ledger: Ledger, workers: int) -> None:
    """Every call of ``plan``, taken in turn by ``workers`` callers at once; what each answered, in ``ledger``."""
    queue = list(reversed(plan))
    calls = reads(api)

    async def worker() -> None:
        while queue:
            kind, number = queue.pop()
            ledger.calls += 1
            if kind == "create":
                try:
                    answer = await api.create_order(soak_order(number))
                except OutcomeUnknownError as unknown:
                    ledger.unknown[number] = unknown
                except GameAPIError as error:
                    ledger.failed[number] = error
                else:
                    ledger.created[number] = check_created(number, answer)
                continue
            try:
                if kind == "find":
                    wanted = ledger.known_id(ledger.calls)
                    if wanted is None:
                        await api.get_status()
                    else:
                        found = await api.find_order_by_id(wanted)
                        # A listing that fails raises (counted below); None here would be a lost order.
                        assert found is not None and f"ord_{found['order_id']}" == wanted, (wanted, found)
                else:
                    check_read(kind, await calls[kind](), ledger)
                ledger.reads_ok += 1
            except OutcomeUnknownError:  # pragma: no cover - a read is never "outcome unknown"
                raise
            except GameAPIError as error:
                ledger.read_errors[type(error).__name__] += 1

    for outcome in await h.concurrently(*[worker] * workers):
        if isinstance(outcome, BaseException):
            raise outcome


@every_driver(**CLIENT_OPTIONS)
async def test_soak(h: Harness, injected: Counter[str]) -> None:
    ledger = Ledger()
    api = h.client(on_attempt=ledger.attempts.append)
    await run_plan(h, api, call_plan(SEEDS[h.backend]), ledger, WORKERS[h.backend])
    h.exchange.faults.clear()
    listing = await api.get_orders()
    matches = {number: await api.find_matching_orders(soak_order(number)) for number in ledger.unknown}
    reconcile(h.exchange, ledger, listing, matches, injected)
    # A read fails only when every one of its four attempts met a fault.
    assert ledger.reads_ok > (CALLS - ORDERS) * 0.9, ledger.read_errors
