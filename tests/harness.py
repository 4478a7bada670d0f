"""One client behaviour, written once, run on every driver: blocking, asyncio and trio.

A behaviour is a coroutine over a ``Harness``; ``@every_driver()`` makes it a
test that runs three times:

- ``sync``: the blocking client against the exchange served from a
  background thread. The harness hands the scenario the blocking client
  behind the async client's surface (each method a coroutine that never
  suspends), and runs the scenario with a single ``send(None)``: a scenario
  that awaits real async I/O fails instead of passing by accident.
- ``asyncio`` and ``trio``: the async client against the exchange served on
  the scenario's own event loop.

Both clients have the same surface (``test_client_surface.py`` holds them to
it), so a scenario is typed against ``gameproto_async.GameAPI``.
"""

from __future__ import annotations

import inspect
import threading
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Coroutine, Dict, List, Optional, TypeVar, Union, cast

import anyio
import pytest

from gameproto.simulator.exchange import Exchange
from gameproto.simulator.faults import FaultPlan
from gameproto_async import GameAPI as AsyncGameAPI
from gameproto_exchange import RunningServer, ServerThread, serve_exchange
from gameproto_sync import GameAPI as SyncGameAPI

from .support import TOKEN

__all__ = ["DRIVERS", "Harness", "every_driver", "run_blocking", "blocking_surface", "Scenario"]

T = TypeVar("T")

#: The three ways a client runs: the blocking client, and the async one on each event loop.
DRIVERS = ("sync", "asyncio", "trio")


class _Blocking:
    """The blocking client behind the async client's surface: each method a coroutine that never suspends."""

    def __init__(self, api: SyncGameAPI) -> None:
        self.blocking = api

    def __getattr__(self, name: str) -> Any:
        member = getattr(self.blocking, name)
        if not callable(member):
            return member

        async def call(*args: Any, **kwargs: Any) -> Any:
            return member(*args, **kwargs)

        return call

    async def aclose(self) -> None:
        self.blocking.close()

    async def __aenter__(self) -> _Blocking:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.blocking.close()

    def __repr__(self) -> str:
        return repr(self.blocking)

    def __str__(self) -> str:
        return str(self.blocking)


def blocking_surface(api: SyncGameAPI) -> AsyncGameAPI:
    """``api`` behind the async client's surface: run what it returns with ``run_blocking``."""
    return cast(AsyncGameAPI, _Blocking(api))


class Harness:
    """The served exchange, and the means to make clients, wait, run calls at once and serve again."""

    def __init__(self, driver: str, running: RunningServer[Exchange], client_options: Dict[str, Any]) -> None:
        self.driver = driver
        self.running = running
        self.exchange: Exchange = running.exchange
        self.base_url = running.base_url
        self.client_options = client_options
        self._closers: List[Callable[[], Coroutine[Any, Any, None]]] = []

    @property
    def blocking(self) -> bool:
        return self.driver == "sync"

    @property
    def faults(self) -> FaultPlan:
        return self.exchange.faults

    def client(self, base_url: Optional[str] = None, token: str = TOKEN, **options: Any) -> AsyncGameAPI:
        """A client of ``base_url`` (the served exchange by default), closed at the end of the case."""
        merged = {**self.client_options, **options}
        url = base_url or self.base_url
        if self.blocking:
            api = blocking_surface(SyncGameAPI(token, url, **merged))
        else:
            api = AsyncGameAPI(token, url, **merged)
        self._closers.append(api.aclose)
        return api

    def from_env(self, dotenv_path: Optional[str] = ".env", **options: Any) -> AsyncGameAPI:
        """``GameAPI.from_env(...)`` of the client under test, closed at the end of the case."""
        if self.blocking:
            api = blocking_surface(SyncGameAPI.from_env(dotenv_path, **options))
        else:
            api = AsyncGameAPI.from_env(dotenv_path, **options)
        self._closers.append(api.aclose)
        return api

    @staticmethod
    def unwrapped(api: AsyncGameAPI) -> Union[SyncGameAPI, AsyncGameAPI]:
        """The client object itself: ``gameproto_sync.GameAPI`` or ``gameproto_async.GameAPI``."""
        return api.blocking if isinstance(api, _Blocking) else api

    async def sleep(self, seconds: float) -> None:
        if self.blocking:
            time.sleep(seconds)
        else:
            await anyio.sleep(seconds)

    @asynccontextmanager
    async def serve(self, **options: Any) -> AsyncIterator[RunningServer[Exchange]]:
        """``async with h.serve(idle_timeout=...) as running:`` the exchange on a second server."""
        if self.blocking:
            with ServerThread(self.exchange, **options) as running:
                yield running
        else:
            async with serve_exchange(self.exchange, **options) as running:
                yield running

    async def concurrently(self, *calls: Callable[[], Coroutine[Any, Any, Any]]) -> List[Any]:
        """Run ``calls`` at once (threads, or tasks); each one's answer or the exception it raised."""
        outcomes: List[Any] = [None] * len(calls)
        if self.blocking:

            def one_thread(index: int) -> None:
                try:
                    outcomes[index] = run_blocking(calls[index]())
                except Exception as error:
                    outcomes[index] = error

            threads = [threading.Thread(target=one_thread, args=(index,)) for index in range(len(calls))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return outcomes

        async def one_task(index: int) -> None:
            try:
                outcomes[index] = await calls[index]()
            except Exception as error:
                outcomes[index] = error

        async with anyio.create_task_group() as group:
            for index in range(len(calls)):
                group.start_soon(one_task, index)
        return outcomes

    async def aclose(self) -> None:
        for close in reversed(self._closers):
            await close()

    def attempts(self, method: str, path: str) -> int:
        """How many requests the exchange received for ``method path``."""
        return self.exchange.attempts[(method, path)]

    def requests(self) -> int:
        """How many requests the exchange received in all."""
        return sum(self.exchange.attempts.values())

    def orders(self) -> List[Dict[str, Any]]:
        """alice's orders, as the exchange holds them."""
        return self.exchange.orders_of("alice")


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (every await reaches blocking code) to its end."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a scenario run by the blocking harness suspended: it awaited real async I/O")


Scenario = Callable[..., Coroutine[Any, Any, None]]


def run_scenario(
    driver: str, exchange: Exchange, scenario: Scenario, client_options: Dict[str, Any], **kwargs: Any
) -> None:
    """Serve ``exchange``, run ``scenario`` on ``driver``, close its clients, check the server never failed."""
    if driver == "sync":
        with ServerThread(exchange) as running:
            harness = Harness(driver, running, client_options)
            try:
                run_blocking(scenario(harness, **kwargs))
            finally:
                run_blocking(harness.aclose())
    else:

        async def main() -> None:
            async with serve_exchange(exchange) as running:
                harness = Harness(driver, running, client_options)
                try:
                    await scenario(harness, **kwargs)
                finally:
                    await harness.aclose()

        anyio.run(main, backend=driver)
    assert exchange.internal_errors == []


def every_driver(
    *, xfail_on: Optional[Dict[str, str]] = None, **client_options: Any
) -> Callable[[Scenario], Callable[..., None]]:
    """Make ``async def test_x(h: Harness, ...)`` a test run on every driver.

    ``client_options`` are the defaults of ``h.client()``. The test's other
    parameters are fixtures or ``parametrize`` arguments as usual (put
    ``@pytest.mark.parametrize`` above this decorator). ``xfail_on`` maps a
    driver to the bug it shows: that run is ``xfail(strict=True)``.
    """
    known = xfail_on or {}
    drivers = [
        pytest.param(driver, marks=pytest.mark.xfail(strict=True, reason=known[driver])) if driver in known else driver
        for driver in DRIVERS
    ]

    def decorate(scenario: Scenario) -> Callable[..., None]:
        extra = list(inspect.signature(scenario).parameters.values())[1:]
        taken = {parameter.name for parameter in extra} & {"driver", "exchange"}
        assert not taken, f"{scenario.__name__}: use h.driver and h.exchange, not parameters {sorted(taken)}"

        def test(driver: str, exchange: Exchange, **kwargs: Any) -> None:
            run_scenario(driver, exchange, scenario, client_options, **kwargs)

        keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
        test.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter("driver", keyword), inspect.Parameter("exchange", keyword), *extra]
        )
        test.__name__ = scenario.__name__
        test.__qualname__ = scenario.__qualname__
        test.__doc__ = scenario.__doc__
        test.__module__ = scenario.__module__
        marked: Callable[..., None] = pytest.mark.parametrize("driver", drivers)(test)
        return marked

    return decorate
