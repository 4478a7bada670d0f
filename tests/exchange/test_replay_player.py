"""The replay's player: on a running clock it applies each recorded event when the clock reaches it, in short steps.

The clock is a ``SpeedClock`` on an injected host clock that the tests move,
so what is due is known at every moment; the player's real sleeps only
decide how soon it looks again.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable, List, Set, Tuple

import anyio
import anyio.lowlevel
import pytest

import gameproto_sync
from gameproto.simulator.replay import LevelChange, ReplayExchange, Tape
from gameproto_exchange import ServerThread
from gameproto_exchange._replay import PLAY_STEP, ReplaySandbox, SpeedClock, replay_sandbox
from tests.support.replay import CONTRACT, T0, levels_of

SPEED = 100.0


def tape_of(count: int, every: float = 1.0) -> Tape:
    """``count`` changes of the offer at 50, one each ``every`` replayed seconds from T0 + ``every``."""
    changes = [
        LevelChange(T0 + every * (number + 1), CONTRACT, 15, "sell", Decimal(50), Decimal(number % 7 + 1))
        for number in range(count)
    ]
    return Tape(changes, [], start=T0, end=T0 + every * (count + 1))


def played(exchange: ReplayExchange) -> int:
    """How many recorded events the book holds so far (``/status``'s figure; reading it plays nothing)."""
    count = exchange.replay_status(T0)["played"]
    assert isinstance(count, int)
    return count


def running_replay(tape: Tape) -> Tuple[ReplaySandbox, List[float]]:
    """A replay at SPEED on a host clock the test moves (host seconds since the replay began)."""
    host = [0.0]
    clock = SpeedClock(T0, SPEED, monotonic=lambda: host[0])
    return ReplaySandbox(ReplayExchange(tape, ["demo-token"], clock=clock, speed=SPEED)), host


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(30):
        while not condition():
            await anyio.sleep(0.005)


def test_play_applies_at_most_its_limit_and_says_whether_it_caught_up() -> None:
    moment = [T0]
    exchange = ReplayExchange(tape_of(5), ["demo-token"], clock=lambda: moment[0])
    assert exchange.play(T0 + 5, limit=2) is False and played(exchange) == 2
    assert exchange.play(T0 + 3, limit=10) is True and played(exchange) == 3  # nothing after T0 + 3 is due
    moment[0] = T0 + 4
    assert exchange.play_due(10) == T0 + 5 and played(exchange) == 4  # the next event, still to play
    assert exchange.play(T0 + 60) is True and played(exchange) == 5
    assert exchange.play_due(10) is None


@pytest.mark.anyio
async def test_the_player_applies_each_event_as_the_clock_reaches_it(anyio_backend: str) -> None:
    sandbox, host = running_replay(tape_of(5))
    exchange = sandbox.exchange
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(sandbox.background)
            host[0] = 3 / SPEED  # the clock at T0 + 3: three events due, no request read it
            await until(lambda: played(exchange) >= 3)
            assert played(exchange) == 3
            host[0] = 10 / SPEED  # past the end: the player plays the rest and stops by itself
    assert played(exchange) == 5


@pytest.mark.anyio
async def test_a_burst_of_recorded_events_never_holds_the_loop_for_long(anyio_backend: str) -> None:
    # Thousands of events at one moment: the player applies them PLAY_STEP at a time, and between two steps
    # the other tasks (the server's connections) run: one that looks each time it runs sees the book in steps.
    burst = 10 * PLAY_STEP
    changes = [LevelChange(T0 + 1, CONTRACT, 15, "sell", Decimal(50 + number), Decimal(1)) for number in range(burst)]
    sandbox, host = running_replay(Tape(changes, [], start=T0, end=T0 + 2))
    exchange = sandbox.exchange
    seen: Set[int] = set()

    async def look() -> None:
        while played(exchange) < burst:
            seen.add(played(exchange))
            await anyio.lowlevel.checkpoint()

    host[0] = 5 / SPEED
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(look)
            group.start_soon(sandbox.background)
    steps = sorted(seen | {burst})
    assert len(steps) >= 5  # seen between steps, not only before and after
    assert all(later - earlier <= 2 * PLAY_STEP for earlier, later in zip(steps, steps[1:]))


def test_a_served_replay_plays_its_recording_between_requests() -> None:
    sandbox, host = running_replay(tape_of(5))
    with ServerThread(sandbox) as running:
        host[0] = 2 / SPEED
        anyio.run(until, lambda: played(sandbox.exchange) >= 2)
        assert played(sandbox.exchange) == 2
        with gameproto_sync.GameAPI("demo-token", running.base_url) as api:
            offered = levels_of(api.get_market_data())[(CONTRACT, "sell", Decimal(50))]
            assert offered == 2  # the second change: 2 MWh at 50


def test_a_replay_on_a_manual_clock_has_nothing_to_play_between_requests() -> None:
    sandbox = replay_sandbox(tape_of(5), ["demo-token"])
    anyio.run(sandbox.background)  # returns at once: a manual clock moves only when told
    assert played(sandbox.exchange) == 0
