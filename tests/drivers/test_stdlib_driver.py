"""The third driver, on http.client (examples/stdlib_client.py), against the embedded exchange.

Correct by construction: it answers the core's actions and nothing else, so a 401 mid-way
and a refused token exchange shared by every waiting thread come from the core, not from it.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from types import ModuleType
from typing import List

import pytest

from gameproto import AuthenticationError, RunLocked, _calls, validate_order
from gameproto.simulator.exchange import Exchange
from gameproto_exchange import RunningServer
from tests.support.common import TOKEN, Boom, future_order, nested_failure, recording

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "stdlib_client.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stdlib_client", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_is_a_whole_driver_in_well_under_150_lines() -> None:
    assert len(EXAMPLE.read_text(encoding="utf-8").splitlines()) < 130


def test_the_stdlib_driver_places_a_journaled_limited_order(server: RunningServer[Exchange], tmp_path: Path) -> None:
    """Limits and journal are the core's flows: the third driver offers them on public names alone."""
    from gameproto import RiskLimitError, RiskLimits

    url = f"sqlite:///{tmp_path / 'bot.db'}"
    api = _load().StdlibGameAPI(TOKEN, server.base_url, risk=RiskLimits(max_net_position=3), journal=url)
    try:
        created = api.create_order(future_order(price=42.5, volume=2))
        assert created["order_id"].startswith("ord_")
        posts = server.exchange.attempts[("POST", "/orders")]
        with pytest.raises(RiskLimitError, match="max_net_position"):
            api.create_order(future_order(price=42.5, volume=2))  # 2 resting + 2 > 3
        assert server.exchange.attempts[("POST", "/orders")] == posts  # refused before sending
        (order,) = api.drive(api.trading.journal.read_orders())
        assert order.state == "created" and order.exchange_id == int(created["order_id"][len("ord_") :])
        result = api.cancel_all_orders()
        assert len(result.cancelled) == 1 and result.ok
    finally:
        api.close()


def test_the_stdlib_driver_trades_on_the_embedded_exchange(server: RunningServer[Exchange]) -> None:
    api = _load().StdlibGameAPI(TOKEN, server.base_url)
    assert api.call(_calls.get_status())["status"] == "healthy"
    created = api.call(_calls.create_order(validate_order(future_order(price=42.5))))
    assert created["order_id"].startswith("ord_")
    listed = api.call(_calls.get_orders())
    assert [order["price"] for order in listed] == [42.5]
    assert api.call(_calls.delete_order(created["order_id"]))["status"] == "deleted"
    assert api.call(_calls.get_orders()) == []
    assert server.exchange.exchanges == 1  # one token for every call


def test_a_401_mid_way_gives_one_new_exchange_and_one_repeat(server: RunningServer[Exchange]) -> None:
    api = _load().StdlibGameAPI(TOKEN, server.base_url)
    assert api.call(_calls.get_status())["status"] == "healthy"
    server.exchange.expire_access_tokens()
    assert api.call(_calls.get_status())["status"] == "healthy"
    assert server.exchange.exchanges == 2
    assert server.exchange.attempts[("GET", "/status")] == 3  # the first call, the 401, the repeat


class WatchedLock:
    """A lock that counts the callers that came to take it (the example's ``lock`` is any such object)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.arrived = 0
        self._arrival = threading.Condition()

    def acquire(self, timeout: float = -1) -> bool:
        with self._arrival:
            self.arrived += 1
            self._arrival.notify_all()
        return self.lock.acquire(timeout=timeout)

    def release(self) -> None:
        self.lock.release()

    def wait_for_arrivals(self, count: int) -> None:
        with self._arrival:
            assert self._arrival.wait_for(lambda: self.arrived >= count, timeout=30), self.arrived


def test_a_refused_exchange_is_shared_by_every_thread_that_waited(server: RunningServer[Exchange]) -> None:
    api = _load().StdlibGameAPI("personal-token-nobody", server.base_url)
    api.lock = lock = WatchedLock()
    outcomes: List[BaseException] = []

    def call() -> None:
        try:
            api.call(_calls.get_status())
        except BaseException as error:
            outcomes.append(error)

    threads = [threading.Thread(target=call) for _ in range(8)]
    with lock.lock:  # every thread finds no token and comes to the lock before the first exchange
        for thread in threads:
            thread.start()
        lock.wait_for_arrivals(8)
    for thread in threads:
        thread.join(30)
    assert len(outcomes) == 8 and all(isinstance(error, AuthenticationError) for error in outcomes), outcomes
    assert server.exchange.attempts[("POST", "/auth/token")] == 1
    assert server.exchange.attempts[("GET", "/status")] == 0
    # A later call tries again.
    with pytest.raises(AuthenticationError):
        api.call(_calls.get_status())
    assert server.exchange.attempts[("POST", "/auth/token")] == 2


def test_the_stdlib_driver_closes_an_abandoned_flow_and_lets_the_lock_go(server: RunningServer[Exchange]) -> None:
    api = _load().StdlibGameAPI(TOKEN, server.base_url)
    log: List[str] = []
    with pytest.raises(Boom):
        api.drive(nested_failure(log))
    assert log == ["call closed"]
    assert api.drive(recording(log, "call", [RunLocked(recording(log, "again", []), 5.0)])) == "call"
