"""The sliding-window rule, property-tested: the core's ``RequestBudget`` (which the shared budget's
fallback runs) on an injected clock, with ``share`` and ``record``; and the Lua script in a real Redis
answering exactly as the core's rule does for the same asks at the same times."""

from __future__ import annotations

from typing import Iterator, List, Tuple

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

pytest.importorskip("redis", reason="needs redis-py (the 'redis' extra)")

import time

from gameproto._budget import RequestBudget
from gameproto._constants import RETRY_AFTER_MAX
from gameproto_redis import SharedBudget
from tests.support.redis_server import RedisServer

#: Times are whole ticks of 1/64 s (15,625 us): exact in the core's float seconds and in the script's microseconds.
TICK = 1 / 64
TICK_US = 15_625
WINDOW = 128 * TICK  # 2 s
PAUSE_UNIT = 16  # ticks: 0.25 s
#: A pause asked in these units is absurd (11.6 days): both rules cap it.
ABSURD = 4_000_000

#: A session of one budget: (ticks since the last ask, what is asked, its amount).
asks = st.lists(
    st.tuples(
        st.one_of(st.just(0), st.sampled_from([1, 32, 64, 127, 128]), st.integers(0, 160)),
        st.sampled_from(["reserve", "reserve", "reserve", "reserve", "learn", "pause"]),
        st.one_of(st.integers(min_value=1, max_value=6), st.just(ABSURD)),
    ),
    max_size=60,
)
limits = st.one_of(st.just("auto"), st.integers(min_value=1, max_value=5))
RULE = settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pause_seconds(amount: int) -> float:
    return amount * PAUSE_UNIT * TICK


@RULE
@given(limits, asks, st.integers(min_value=1, max_value=3))
def test_the_core_rule_never_holds_more_than_its_share_and_never_idles_with_a_slot_free(
    limit: object, session: List[Tuple[int, str, int]], clients: int
) -> None:
    budget = RequestBudget(limit, WINDOW)  # type: ignore[arg-type]
    budget.share(clients)
    now = 0.0
    granted: List[Tuple[float, int]] = []  # (time, slots allowed then)
    paused_until = 0.0
    for step, ask, amount in session:
        now += step * TICK
        if ask == "learn":
            budget.learn_limit(amount if amount != ABSURD else 7)
        elif ask == "pause":
            budget.pause(pause_seconds(amount), now)
            paused_until = max(paused_until, now + min(pause_seconds(amount), RETRY_AFTER_MAX))
        else:
            assert budget.limit is not None
            allowed = max(1, budget.limit // clients)
            in_window = sum(1 for at, _ in granted if at > now - WINDOW)
            free = now >= paused_until and in_window < allowed
            wait = budget.reserve(now)
            if free:
                assert wait == 0.0
                granted.append((now, allowed))
            else:
                assert wait > 0.0
                # The wait named is exact: the pause's end, or the moment a slot is free.
                later = now + wait
                if now < paused_until:
                    assert later == paused_until
                else:
                    assert sum(1 for at, _ in granted if at > later - WINDOW) < allowed
                    assert sum(1 for at, _ in granted if at > later - TICK - WINDOW) >= allowed
    for index, (at, allowed_then) in enumerate(granted):
        assert sum(1 for other, _ in granted[: index + 1] if other > at - WINDOW) <= allowed_then


def test_grants_recorded_from_elsewhere_count_and_the_newest_limit_are_kept() -> None:
    budget = RequestBudget(4, WINDOW)
    for tick in range(6):
        budget.record(tick * TICK)
    assert budget.in_window(6 * TICK) == 4  # never more than the limit kept
    budget.share(2)  # alone, two a window: the third newest must leave first
    assert budget.reserve(6 * TICK) == pytest.approx(4 * TICK + WINDOW - 6 * TICK)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@RULE
@given(limits, asks)
@example("auto", [(0, "pause", 6), (0, "pause", 1), (32, "reserve", 1)])  # a pause is never shortened
@example(2, [(0, "pause", 1), (15, "reserve", 1), (1, "reserve", 1)])  # the pause's last tick
@example(1, [(0, "reserve", 1), (127, "reserve", 1), (1, "reserve", 1), (0, "reserve", 1)])  # the window's edge
@example("auto", [(0, "reserve", 1)] * 4 + [(0, "learn", 2), (0, "reserve", 1), (1, "learn", 5), (0, "reserve", 1)])
@example(3, [(0, "pause", ABSURD), (0, "reserve", 1), (19_199, "reserve", 1), (1, "reserve", 1)])  # the cap
def test_the_lua_script_answers_as_the_core_rule(
    redis_server: RedisServer, limit: object, session: List[Tuple[int, str, int]]
) -> None:
    # The script is given each ask's time instead of reading the server's clock, so
    # that the same session can be played against both rules.
    shared = SharedBudget(redis_server.url, "rule", limit=limit, window=WINDOW)  # type: ignore[arg-type]
    core = RequestBudget(limit, WINDOW)  # type: ignore[arg-type]
    redis_server.client().delete(*(f"{{{shared.key}}}:{part}" for part in ("grants", "limit", "pause", "clients")))
    start_us = 1_800_000_000_000_000
    ticks = 0
    try:
        for step, ask, amount in session:
            ticks += step
            now_us, now = start_us + ticks * TICK_US, ticks * TICK
            deadline = time.monotonic() + 10.0
            if ask == "learn":
                learnt = amount if amount != ABSURD else 7
                core.learn_limit(learnt)
                if core.auto:
                    shared._run("learn", learnt, deadline, now_us)
            elif ask == "pause":
                core.pause(pause_seconds(amount), now)
                shared._run("pause", amount * PAUSE_UNIT * TICK_US, deadline, now_us)
            else:
                wait_us, granted_us, limit_used, _, asking = shared._run("reserve", 0, deadline, now_us)
                assert asking == 1
                assert limit_used == core.limit
                assert wait_us == core.reserve(now) * 1e6
                assert granted_us == (now_us if wait_us == 0 else 0)
    finally:
        shared.close()
