"""The sliding-window rule, property-tested: the local fallback window on an injected clock,
and the Lua script in a real Redis answering exactly as it does for the same asks at the same times."""

from __future__ import annotations

from typing import Iterator, List, Tuple

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

pytest.importorskip("redis", reason="needs redis-py (the 'redis' extra)")

from gameproto_redis import SharedBudget
from gameproto_redis._local import LocalWindow

from .redis_support import RedisServer

#: Times are whole microseconds (as floats for the local window: exact, as the script's are).
WINDOW = 2_000_000.0
PAUSE_UNIT = 250_000

#: A session of one budget: (microseconds since the last ask, what is asked, its amount).
asks = st.lists(
    st.tuples(
        st.one_of(st.just(0), st.sampled_from([1, 500_000, 1_000_000, 2_000_000]), st.integers(0, 2_500_000)),
        st.sampled_from(["reserve", "reserve", "reserve", "reserve", "learn", "pause"]),
        st.integers(min_value=1, max_value=6),
    ),
    max_size=60,
)
limits = st.one_of(st.just("auto"), st.integers(min_value=1, max_value=5))
RULE = settings(max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@RULE
@given(limits, asks)
def test_the_local_window_never_holds_more_than_the_limit_and_never_idles_with_a_slot_free(
    limit: object, session: List[Tuple[int, str, int]]
) -> None:
    window = LocalWindow(limit, WINDOW)  # type: ignore[arg-type]
    now = 0.0
    granted: List[Tuple[float, int]] = []  # (time, limit in force then)
    paused_until = float("-inf")
    for step, ask, amount in session:
        now += step
        if ask == "learn":
            window.learn_limit(amount)
        elif ask == "pause":
            window.pause(amount * PAUSE_UNIT, now)
            paused_until = max(paused_until, now + amount * PAUSE_UNIT)
        else:
            in_window = sum(1 for at, _ in granted if at > now - WINDOW)
            free = now >= paused_until and in_window < window.limit
            wait = window.reserve(now)
            if free:
                assert wait == 0.0
                granted.append((now, window.limit))
            else:
                assert wait > 0.0
                # The wait named is exact: the pause's end, or the moment a slot is free.
                later = now + wait
                if now < paused_until:
                    assert later == paused_until
                else:
                    assert sum(1 for at, _ in granted if at > later - WINDOW) < window.limit
                    assert sum(1 for at, _ in granted if at > later - 1 - WINDOW) >= window.limit
    for index, (at, limit_then) in enumerate(granted):
        assert sum(1 for other, _ in granted[: index + 1] if other > at - WINDOW) <= limit_then


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@RULE
@given(limits, asks)
@example("auto", [(0, "pause", 6), (0, "pause", 1), (500_000, "reserve", 1)])  # a pause is never shortened
@example(2, [(0, "pause", 1), (249_999, "reserve", 1), (1, "reserve", 1)])  # the pause's last microsecond
@example(1, [(0, "reserve", 1), (1_999_999, "reserve", 1), (1, "reserve", 1), (0, "reserve", 1)])  # the window's edge
@example("auto", [(0, "reserve", 1)] * 4 + [(0, "learn", 2), (0, "reserve", 1), (1, "learn", 5), (0, "reserve", 1)])
def test_the_lua_script_answers_as_the_local_rule(
    redis_server: RedisServer, limit: object, session: List[Tuple[int, str, int]]
) -> None:
    # The script is given each ask's time instead of reading the server's clock, so
    # that the same session can be played against both rules.
    shared = SharedBudget(redis_server.url, "rule", limit=limit, window=WINDOW / 1e6)  # type: ignore[arg-type]
    local = LocalWindow(limit, WINDOW)  # type: ignore[arg-type]
    redis_server.client().delete(*(f"{{{shared.key}}}:{part}" for part in ("grants", "limit", "pause", "clients")))
    now_us = 1_800_000_000_000_000
    try:
        for step, ask, amount in session:
            now_us += step
            if ask == "learn":
                local.learn_limit(amount)
                if local.fixed is None:
                    shared._run("learn", amount, now_us)
            elif ask == "pause":
                local.pause(amount * PAUSE_UNIT, now_us)
                shared._run("pause", amount * PAUSE_UNIT, now_us)
            else:
                wait_us, granted_us, limit_used, _, asking = shared._run("reserve", 0, now_us)
                assert asking == 1
                assert limit_used == local.limit
                assert wait_us == local.reserve(now_us)
                assert granted_us == (now_us if wait_us == 0 else 0)
    finally:
        shared.close()
