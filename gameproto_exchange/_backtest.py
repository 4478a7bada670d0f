"""A backtest in process: a recording replayed into an exchange in memory, on a virtual clock.

``Backtest(recording)`` hands out clients (blocking and async) that are the
ordinary ``GameAPI`` with two things changed: their requests go straight
to the replayed exchange's ``handle`` (no socket, no server), and their
clock is the backtest's virtual clock, which moves only when the bot waits
through its client: ``api.sleep(seconds)``, a watcher's interval, a retry's
backoff, the request budget. The virtual clock then jumps at once, and the
recorded events up to the new moment are played. An async bot's tasks
share the clock: it moves to the earliest of their waits' ends once each
task waits (``wait_async``). A bot that calls ``time.sleep`` (or
``asyncio.sleep``) itself waits for real and its clock does not move.

When a wait would take the clock past the recording's end, the wait raises
``BacktestFinished`` (a ``BaseException``, as ``KeyboardInterrupt`` is, so a
bot's ``except Exception`` does not swallow it); ``run`` ends there.
"""

from __future__ import annotations

import heapq
import inspect
import itertools
import math
import os
import random
from email.utils import formatdate
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, Union

import anyio.lowlevel

import gameproto_async
import gameproto_sync
from gameproto._boundary import Response, Send, TransportFailure
from gameproto.simulator.answers import JSONObject
from gameproto.simulator.replay import ReplayExchange, Tape
from gameproto.simulator.replay_report import fill_hash, fill_log, report

from ._recorder import SandboxClock
from ._recording import PathArg, info, read_recording

__all__ = ["Backtest", "BacktestFinished", "VirtualClock", "DrivenClient"]

#: The personal token the backtest's clients use, and the trader name it stands for.
BACKTEST_TOKEN = "backtest-token"
BACKTEST_TRADER = "backtest-bot"
#: Turns of the event loop in which the bot's tasks do nothing through their clients before a wait moves the
#: virtual clock: a call passes a few checkpoints (the token lock, a task group) between two requests.
QUIET_ROUNDS = 8
# Never contacted: the clients' requests are answered in memory.
_UNUSED_URL = "http://127.0.0.1:9"


class BacktestFinished(BaseException):
    """The bot waited past the recording's end: the backtest is over (``Backtest.run`` ends here)."""


class VirtualClock:
    """Epoch seconds that move only when told: the exchange's clock and the clients' alike."""

    def __init__(self, start: float) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class _MemoryTransport:
    """Hands each request to the exchange and its answer back, with the ``Date`` a server would add."""

    def __init__(self, backtest: Backtest) -> None:
        self._backtest = backtest

    def answer(self, action: Send) -> Union[Response, TransportFailure]:
        exchange = self._backtest.exchange
        self._backtest._progress += 1
        response = exchange.handle(action.request)
        headers = dict(response.headers)
        headers["date"] = formatdate(exchange.now(), usegmt=True)
        return Response(response.status, headers, response.body)

    def send(self, action: Send) -> Union[Response, TransportFailure]:
        return self.answer(action)

    def close(self) -> None:
        pass


class _AsyncMemoryTransport(_MemoryTransport):
    async def send(self, action: Send) -> Union[Response, TransportFailure]:  # type: ignore[override]
        return self.answer(action)

    async def aclose(self) -> None:
        pass


def _bind(api: Any, backtest: Backtest, transport: Any) -> None:
    """Point a fresh client at the backtest: its transport, and its clocks (monotonic and wall alike)."""
    api._transport = transport
    api._session.clock = backtest.clock
    api._session.wall_clock = backtest.clock
    api._session.random = random.Random(backtest.seed).random  # the backoff's jitter, the same every run


class _BlockingClient(gameproto_sync.GameAPI):
    """``gameproto_sync.GameAPI`` answered by a backtest; its waits move the virtual clock."""

    def __init__(self, backtest: Backtest, **options: Any) -> None:
        super().__init__(backtest.token, _UNUSED_URL, **options)
        self._transport.close()
        _bind(self, backtest, _MemoryTransport(backtest))
        self._backtest = backtest

    def _pause(self, seconds: float) -> None:
        self._backtest.wait(seconds)


class _AsyncClient(gameproto_async.GameAPI):
    """``gameproto_async.GameAPI`` answered by a backtest; its waits move the virtual clock."""

    def __init__(self, backtest: Backtest, **options: Any) -> None:
        super().__init__(backtest.token, _UNUSED_URL, **options)
        _bind(self, backtest, _AsyncMemoryTransport(backtest))
        self._backtest = backtest

    async def _pause(self, seconds: float) -> None:
        await self._backtest.wait_async(seconds)


class Backtest:
    """A recording (a path, as text or ``pathlib.Path``, or a ``Tape``) replayed in memory; its clients trade on it.

    The virtual clock starts at the recording's first poll (or ``start``,
    epoch seconds); ``seed`` seeds the exchange (its spot data) and the
    clients' jitter, so that a run is the same every time.
    """

    def __init__(
        self,
        recording: Union[PathArg, Tape],
        *,
        seed: int = 0,
        start: Optional[float] = None,
        trader: str = BACKTEST_TRADER,
    ) -> None:
        if isinstance(recording, Tape):
            self.tape, self.recording = recording, None
        elif isinstance(recording, (str, os.PathLike)):
            self.recording = os.fspath(recording)
            self.tape = read_recording(self.recording)
        else:
            raise TypeError(f"recording must be a path or a Tape, got {type(recording).__name__}")
        first = self.tape.start if start is None else float(start)
        if not (math.isfinite(first) and self.tape.start <= first <= self.tape.end):
            span = f"{self.tape.start} to {self.tape.end}"
            raise ValueError(f"start must be within the recording ({span}), got {start!r}")
        self.seed = seed
        self.token = BACKTEST_TOKEN
        self.trader = trader
        self.clock = VirtualClock(first)
        self.exchange = ReplayExchange(self.tape, {self.token: trader}, clock=self.clock, seed=seed)
        self.exchange.now()  # the book as it stood at the start
        #: The async waits under way: (the virtual time each ends at, its number), earliest first.
        self._waiting: List[Tuple[float, int]] = []
        self._numbers = itertools.count()
        #: Counts what the bot's tasks do through their clients (requests, waits begun and ended): a wait moves
        #: the clock only once this stood still for QUIET_ROUNDS turns of the event loop.
        self._progress = 0

    # -- the clock ------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """The virtual clock: epoch seconds, the exchange's time."""
        return self.clock.now

    @property
    def finished(self) -> bool:
        """Whether the virtual clock has reached the recording's end."""
        return self.clock.now >= self.tape.end

    def wait(self, seconds: float) -> None:
        """Move the virtual clock by ``seconds`` (playing what the recording holds up to then).

        Raises ``BacktestFinished`` instead when the clock is at the
        recording's end: a bot that waits for more has seen all of it.
        """
        if self.finished:
            raise BacktestFinished(f"the recording ends at {self.tape.end}")
        self.clock.advance(min(max(0.0, seconds), self.tape.end - self.clock.now))
        self.exchange.now()

    async def wait_async(self, seconds: float) -> None:
        """``wait`` for an async bot, whose tasks may wait at once: the clock moves to the earliest wait's end.

        Two tasks waiting 60 s and 100 s wake at +60 and +100, not one after
        the other (+60, +160): each wait notes when it ends, lets the other
        tasks run up to their own waits, and the earliest moves the clock.
        It moves once the bot's tasks have done nothing through their
        clients for ``QUIET_ROUNDS`` turns of the event loop: a task in the
        middle of a call (taking the token lock, say) gets to its answer
        first, so the clock never jumps under a call's deadline. A task
        waiting on something else than its client (a real sleep, a socket)
        is not waited for.
        """
        if self.finished:
            raise BacktestFinished(f"the recording ends at {self.tape.end}")
        entry = (self.clock.now + max(0.0, seconds), next(self._numbers))
        heapq.heappush(self._waiting, entry)
        self._progress += 1
        try:
            seen, quiet = self._progress, 0
            while True:
                await anyio.lowlevel.checkpoint()  # the other tasks run up to their next wait (or their end)
                if self.clock.now >= entry[0]:
                    return  # an earlier-numbered wait ending at the same moment moved the clock here
                if self._waiting[0] != entry:
                    continue  # an earlier wait moves the clock
                if self._progress != seen:
                    seen, quiet = self._progress, 0
                    continue
                quiet += 1
                if quiet >= QUIET_ROUNDS:
                    self.wait(entry[0] - self.clock.now)
                    return
        finally:
            self._waiting.remove(entry)
            heapq.heapify(self._waiting)
            self._progress += 1

    # -- the clients ----------------------------------------------------------------------

    def client(self, **options: Any) -> gameproto_sync.GameAPI:
        """A blocking client (``gameproto_sync.GameAPI``) on this backtest; options as the client's."""
        return _BlockingClient(self, **options)

    def async_client(self, **options: Any) -> gameproto_async.GameAPI:
        """An async client (``gameproto_async.GameAPI``) on this backtest; options as the client's."""
        return _AsyncClient(self, **options)

    def run(self, bot: Callable[[gameproto_sync.GameAPI], Any], **options: Any) -> Dict[str, Any]:
        """Run ``bot(api)`` on a blocking client until it returns or waits past the recording's end; the report."""
        with self.client(**options) as api:
            try:
                bot(api)
            except BacktestFinished:
                pass
        return self.report()

    async def run_async(
        self, bot: Callable[[gameproto_async.GameAPI], Awaitable[Any]], **options: Any
    ) -> Dict[str, Any]:
        """Run ``await bot(api)`` on an async client until it returns or waits past the end; the report."""
        async with self.async_client(**options) as api:
            try:
                result = bot(api)
                if inspect.isawaitable(result):
                    await result
            except BacktestFinished:
                pass
        return self.report()

    # -- what came of it ---------------------------------------------------------------------

    def trades(self) -> List[JSONObject]:
        """Every trade of the replay, recorded and the bot's, oldest first (as ``GET /trades`` lists them)."""
        return self.exchange.trades

    def fill_log(self) -> bytes:
        """The bot's fills as JSON lines: byte for byte the same for the same recording, bot and seed."""
        return fill_log(self.trades(), [self.trader])

    @property
    def fill_hash(self) -> str:
        """The SHA-256 of ``fill_log()``."""
        return fill_hash(self.fill_log())

    def report(self) -> Dict[str, Any]:
        """Fills with their slippage against the recorded mid, position and cash per contract and per day."""
        return report(self.tape, self.trades(), [self.trader])


class DrivenClient(gameproto_sync.GameAPI):
    """A blocking client of a replay served on a manual clock, whose waits move that clock: a backtest over HTTP.

    ``game serve --replay RECORDING --clock manual --admin-token ADMIN``
    serves the replay; ``DrivenClient(RECORDING, token, base_url,
    admin_token=ADMIN)`` is ``gameproto_sync.GameAPI`` with one change: a
    wait (``api.sleep``, a watcher's interval, a backoff) advances the
    sandbox's clock by that much, at once, through its admin endpoint, as a
    ``Backtest``'s client moves its virtual clock. A wait at the
    recording's end raises ``BacktestFinished``. The same recording, bot and
    seed give the fill log they give in process.
    """

    def __init__(self, recording: PathArg, token: str, base_url: str, *, admin_token: str, **options: Any) -> None:
        summary = info(recording)
        if summary.end is None:
            raise ValueError(f"{os.fspath(recording)} holds no poll yet: record for a while first")
        super().__init__(token, base_url, **options)
        #: The recording's last poll, by the exchange's clock: no wait goes past it.
        self.end = float(summary.end)
        self._driver = SandboxClock(self.base_url, admin_token)

    def _pause(self, seconds: float) -> None:
        now = self._driver.now()
        if now >= self.end:
            raise BacktestFinished(f"the recording ends at {self.end}")
        step = min(seconds, self.end - now)
        if step > 0:
            self._driver.advance(step)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._driver.close()
