"""A shared budget that is slow, not Redis, or poisoned: every call keeps its deadline and its pace.

Against impostors on raw sockets (``hostile_redis.py``) and a real
``redis-server`` whose keys a test poisons, on sync, asyncio and trio. No
wall-clock time is asserted: a call ends with its answer or its deadline
error, and the impostor's lifetime (ten times the call's deadline), the
generous outer guard, was never reached.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List

import anyio
import pytest

pytest.importorskip("redis", reason="needs redis-py (the 'redis' extra)")

from gameproto import NetworkTimeoutError, RateLimitError
from gameproto.simulator.exchange import Exchange
from gameproto.simulator.faults import Fault
from gameproto_async import GameAPI as AsyncGameAPI
from gameproto_exchange import ServerThread
from gameproto_redis import default_key
from tests.support.common import TOKEN
from tests.support.harness import Harness, every_driver
from tests.support.hostile_redis import NOT_REDIS, RedisImpostor, dribble
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]


def budget_warnings(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING and "shared request budget" in record.getMessage()
    ]


async def five_status_calls(api: AsyncGameAPI) -> List[object]:
    """Five ``get_status()`` calls: each one's status, or the type of the budget's refusal."""
    outcomes: List[object] = []
    for _ in range(5):
        try:
            outcomes.append((await api.get_status())["status"])
        except RateLimitError as error:
            outcomes.append(type(error))
    return outcomes


# -- a budget_url that answers one byte every 0.15 s, for ever ------------------------------


@every_driver()
async def test_a_dribbling_budget_url_keeps_the_calls_deadline(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gameproto")
    with RedisImpostor(dribble, lifetime=20.0) as impostor:
        api = h.client(budget_url=impostor.url, requests_per_minute=5, timeout=2.0)
        for _ in range(3):
            try:
                assert (await api.get_status())["status"] == "healthy"
            except NetworkTimeoutError as error:
                assert "deadline" in str(error)
        await api.aclose()
    assert not impostor.lifetime_reached
    assert len(budget_warnings(caplog)) == 1  # paced alone, as during an outage
    assert h.attempts("GET", "/status") >= 1


@every_driver()
async def test_a_call_waiting_on_a_dribbling_budget_url_can_be_cancelled(h: Harness) -> None:
    if h.blocking:
        pytest.skip("blocking code has no cancellation: its deadline is the bound (the test above)")
    with RedisImpostor(dribble, lifetime=20.0) as impostor:
        api = h.client(budget_url=impostor.url, requests_per_minute=5, timeout=30.0)
        with anyio.move_on_after(0.3) as scope:
            await api.get_status()
        assert scope.cancelled_caught
        await api.aclose()
    assert not impostor.lifetime_reached
    assert h.attempts("GET", "/status") == 0


ABANDONING = {
    "asyncio": """
        import asyncio
        async def main():
            api = GameAPI(TOKEN, BASE_URL, budget_url=BUDGET_URL, timeout=30.0)  # never closed, as in the report
            try:
                await asyncio.wait_for(api.get_status(), 0.3)
            except asyncio.TimeoutError:
                print("abandoned")
        asyncio.run(main())
    """,
    "trio": """
        import trio
        async def main():
            api = GameAPI(TOKEN, BASE_URL, budget_url=BUDGET_URL, timeout=30.0)  # never closed, as in the report
            with trio.move_on_after(0.3) as scope:
                await api.get_status()
            if scope.cancelled_caught:
                print("abandoned")
        trio.run(main)
    """,
}


@pytest.mark.parametrize("backend", sorted(ABANDONING))
def test_the_process_exits_after_a_call_abandoned_on_a_dribbling_budget_url(backend: str, exchange: Exchange) -> None:
    with RedisImpostor(dribble, lifetime=20.0) as impostor, ServerThread(exchange) as running:
        script = f"from gameproto_async import GameAPI\nTOKEN, BASE_URL, BUDGET_URL = {TOKEN!r}, {running.base_url!r}, "
        script += f"{impostor.url!r}\n" + textwrap.dedent(ABANDONING[backend])
        environment = {**os.environ, "PYTHONPATH": str(ROOT)}
        finished = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=environment
        )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.split() == ["abandoned"]
    # The worker thread the cancellation abandoned ended by its own bound, long before the guard.
    assert not impostor.lifetime_reached


# -- something at budget_url that is not Redis ------------------------------------------------


@pytest.mark.parametrize("case", sorted(NOT_REDIS))
@every_driver()
async def test_something_that_is_not_redis_at_budget_url_leads_to_local_pacing(
    h: Harness, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gameproto")
    with RedisImpostor(NOT_REDIS[case]) as impostor:
        api = h.client(budget_url=impostor.url, requests_per_minute=3, timeout=2.0)
        outcomes = await five_status_calls(api)
        await api.aclose()
    assert outcomes == ["healthy"] * 3 + [RateLimitError] * 2
    assert h.attempts("GET", "/status") == 3
    assert len(budget_warnings(caplog)) == 1
    assert not impostor.lifetime_reached


# -- a real Redis whose keys are poisoned --------------------------------------------------------


POISONS = {
    "pause_inf": ("pause", "inf"),
    "pause_1e19": ("pause", "1e19"),
    "pause_1e300": ("pause", "1e300"),
    "grants_1e30": ("grants", "1e30"),
}


@pytest.mark.parametrize("poison", sorted(POISONS))
@every_driver()
async def test_poisoned_shared_state_never_switches_pacing_off(
    h: Harness, poison: str, redis_server: RedisServer
) -> None:
    key = default_key(h.base_url, TOKEN)
    plain = redis_server.client()
    part, value = POISONS[poison]
    if part == "pause":
        plain.set(f"{{{key}}}:pause", value)
    else:
        plain.zadd(f"{{{key}}}:grants", {f"poisoned-{index}": float(value) for index in range(3)})
    api = h.client(budget_url=redis_server.url, requests_per_minute=3, timeout=2.0)
    for _ in range(10):
        try:
            assert (await api.get_status())["status"] == "healthy"
        except RateLimitError as error:
            assert "nothing was sent" in str(error)
            assert error.retry_after is not None and 0 < error.retry_after <= 300
    assert h.attempts("GET", "/status") <= 3
    if part == "pause":  # clamped and rewritten: it ends within five minutes
        assert 0 < plain.pttl(f"{{{key}}}:pause") <= 300_001


@pytest.mark.parametrize("value", ["nan", "soon"])
@every_driver()
async def test_a_pause_redis_cannot_read_means_pacing_locally(
    h: Harness, value: str, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gameproto")
    key = default_key(h.base_url, TOKEN)
    redis_server.client().set(f"{{{key}}}:pause", value)
    api = h.client(budget_url=redis_server.url, requests_per_minute=3, timeout=2.0)
    outcomes = await five_status_calls(api)
    assert outcomes == ["healthy"] * 3 + [RateLimitError] * 2
    assert len(budget_warnings(caplog)) == 1


# -- one absurd Retry-After ------------------------------------------------------------------


@every_driver()
async def test_an_absurd_retry_after_pauses_the_account_five_minutes_not_years(
    h: Harness, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gameproto")
    h.faults.add(Fault("status", status=429, headers=(("Retry-After", "999999999"),)), method="GET", path="/status")
    api = h.client(budget_url=redis_server.url, timeout=2.0)
    for _ in range(2):
        with pytest.raises(RateLimitError) as caught:
            await api.get_status()
        assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 300
    assert "frees one in 300 s" in str(caught.value)
    key = default_key(h.base_url, TOKEN)
    assert 0 < redis_server.client().pttl(f"{{{key}}}:pause") <= 300_001
    told = [record.getMessage() for record in caplog.records if "Retry-After" in record.getMessage()]
    assert len(told) == 1, told
