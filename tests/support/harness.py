"""One client behaviour, written once, run on every driver: blocking, asyncio and trio.

A behaviour is a coroutine over a ``Harness`` ``h``; it makes clients with
``h.client(...)`` and awaits their methods, typed against
``gameproto_async.GameAPI`` (both clients have that surface:
``test_client_surface.py`` holds them to it). The API, all of it:

- ``@every_driver(**client_options)`` above ``async def test_x(h, ...)``: a
  test run three times, ``[sync]``, ``[asyncio]``, ``[trio]``, against the
  ``exchange`` fixture served for it (``exchange=factory`` serves
  ``factory()`` instead; ``xfail_on={driver: reason}`` marks a known bug).
  The test's other parameters are fixtures or ``parametrize`` arguments.
- ``run_on(driver, behaviour, exchange=None)``: run ``behaviour(h)`` once and
  return its value, for a test that chooses its own server (``h.client(url)``)
  or runs more than one behaviour; ``exchange`` is served when given.
- ``Harness``: ``client``/``from_env`` (closed at the end), ``unwrapped``,
  ``exchange``, ``base_url``, ``faults``, ``sleep``, ``wait_until``,
  ``concurrently``, ``serve``, and the exchange's counts ``attempts``,
  ``requests``, ``orders``.
- ``collect(watch, enough)``: a watch's events until ``enough(events)``, closed after.
- ``GameServe`` (``game serve`` in a child process) and ``FaultProxy`` (a TCP
  proxy that fails chosen requests): servers a behaviour can run against.

How each driver runs: ``sync`` is the blocking client, served from a
background thread, behind the async surface (each method a coroutine that
never suspends, each watch an async iterator over the blocking one); the
behaviour runs with a single ``send(None)``, in a thread of its own, so a
behaviour that awaits real async I/O fails instead of passing by accident.
``asyncio`` and ``trio`` are the async client, the exchange served on the
behaviour's own event loop. Either way a behaviour that runs past
``SCENARIO_LIMIT`` fails (a bound on a hang, never a measurement), its
clients are closed, and the served exchange must have had no internal error.
"""

from __future__ import annotations

import inspect
import os
import re
import socket
import subprocess
import sys
import threading
import time
from contextlib import asynccontextmanager
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Coroutine,
    Dict,
    Iterator,
    List,
    Optional,
    TypeVar,
    Union,
    cast,
)

import anyio
import pytest

from gameproto.simulator.exchange import Exchange
from gameproto.simulator.faults import FaultPlan
from gameproto_async import GameAPI as AsyncGameAPI
from gameproto_exchange import RunningServer, ServerThread, serve_exchange
from gameproto_sync import GameAPI as SyncGameAPI
from tests.support.common import TOKEN
from tests.support.tcp import accept_loop

__all__ = [
    "DRIVERS",
    "SCENARIO_LIMIT",
    "Harness",
    "Scenario",
    "every_driver",
    "run_on",
    "run_scenario",
    "run_blocking",
    "blocking_surface",
    "collect",
    "GameServe",
    "FaultProxy",
]

T = TypeVar("T")
E = TypeVar("E")

#: The three ways a client runs: the blocking client, and the async one on each event loop.
DRIVERS = ("sync", "asyncio", "trio")

#: The longest a behaviour may run before it fails (a bound on a hang, not a measurement).
SCENARIO_LIMIT = 90.0


# -- the blocking client behind the async surface ----------------------------------------------------


class _Events:
    """The blocking client's watch (a plain iterator) as an async iterator; ``aclose`` stops it."""

    def __init__(self, source: Iterator[Any]) -> None:
        self._source = source

    def __aiter__(self) -> _Events:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self._source)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


class _Blocking:
    """The blocking client behind the async client's surface: each method a coroutine that never suspends."""

    def __init__(self, api: SyncGameAPI) -> None:
        self.blocking = api

    def __getattr__(self, name: str) -> Any:
        member = getattr(self.blocking, name)
        if not callable(member):
            return member
        if not inspect.iscoroutinefunction(getattr(AsyncGameAPI, name, None)):

            def plain(*args: Any, **kwargs: Any) -> Any:
                result = member(*args, **kwargs)
                return _Events(result) if isinstance(result, Iterator) else result

            return plain

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


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (every await reaches blocking code) to its end."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a scenario run by the blocking harness suspended: it awaited real async I/O")


# -- the harness ------------------------------------------------------------------------------------


class Harness:
    """The served exchange (if any), and the means to make clients, wait, run calls at once and serve again."""

    def __init__(self, driver: str, running: Optional[RunningServer[Exchange]], client_options: Dict[str, Any]) -> None:
        self.driver = driver
        self.running = running
        self.base_url = "" if running is None else running.base_url
        self.client_options = client_options
        self._closers: List[Callable[[], Coroutine[Any, Any, None]]] = []

    @property
    def blocking(self) -> bool:
        return self.driver == "sync"

    @property
    def exchange(self) -> Exchange:
        """The served exchange (a behaviour run without one has none)."""
        assert self.running is not None, "no exchange is served for this behaviour"
        return self.running.exchange

    @property
    def faults(self) -> FaultPlan:
        return self.exchange.faults

    def client(self, base_url: Optional[str] = None, token: str = TOKEN, **options: Any) -> AsyncGameAPI:
        """A client of ``base_url`` (the served exchange by default), closed at the end of the case."""
        merged = {**self.client_options, **options}
        url = base_url or self.base_url
        assert url, "no exchange is served for this behaviour: give the client a base_url"
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

    async def wait_until(self, condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
        """Return once ``condition()`` holds; fail naming ``what`` after ``limit`` seconds (a bound on a hang)."""
        give_up = time.monotonic() + limit
        while not condition():
            if time.monotonic() > give_up:
                raise AssertionError(f"gave up waiting for {what}")
            await self.sleep(0.01)

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
        """Run ``calls`` at once (threads let go together, or tasks); each one's answer or the exception it raised."""
        outcomes: List[Any] = [None] * len(calls)
        if self.blocking:
            start = threading.Barrier(len(calls))

            def one_thread(index: int) -> None:
                start.wait()
                try:
                    outcomes[index] = run_blocking(calls[index]())
                except Exception as error:
                    outcomes[index] = error

            threads = [threading.Thread(target=one_thread, args=(index,), daemon=True) for index in range(len(calls))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(SCENARIO_LIMIT)
                assert not thread.is_alive(), "a concurrent call did not end"
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


# -- running a behaviour --------------------------------------------------------------------------------


Scenario = Callable[..., Coroutine[Any, Any, None]]


def run_on(
    driver: str,
    behaviour: Callable[[Harness], Coroutine[Any, Any, T]],
    exchange: Optional[Exchange] = None,
    client_options: Optional[Dict[str, Any]] = None,
) -> T:
    """``behaviour(h)`` on ``driver``, ``exchange`` served if given; its value. Clients closed, server checked."""
    options = client_options or {}
    if driver == "sync":
        outcome: Dict[str, Any] = {}

        def main(harness: Harness) -> None:
            try:
                outcome["value"] = run_blocking(_closing(harness, behaviour))
            except BaseException as error:
                outcome["error"] = error

        with _ServedInThread(exchange) as running:
            thread = threading.Thread(target=main, args=(Harness(driver, running, options),), daemon=True)
            thread.start()
            thread.join(SCENARIO_LIMIT)
            assert not thread.is_alive(), f"the behaviour did not end within {SCENARIO_LIMIT:g} s"
        if "error" in outcome:
            raise outcome["error"]
        value = cast(T, outcome["value"])
    else:

        async def main_async() -> T:
            with anyio.fail_after(SCENARIO_LIMIT):
                if exchange is None:
                    return await _closing(Harness(driver, None, options), behaviour)
                async with serve_exchange(exchange) as running:
                    return await _closing(Harness(driver, running, options), behaviour)

        value = anyio.run(main_async, backend=driver)
    if exchange is not None:
        assert exchange.internal_errors == []
    return value


def run_scenario(
    driver: str, exchange: Exchange, scenario: Scenario, client_options: Dict[str, Any], **kwargs: Any
) -> None:
    """Serve ``exchange``, run ``scenario(h, **kwargs)`` on ``driver`` (``run_on`` with arguments)."""

    async def behaviour(harness: Harness) -> None:
        await scenario(harness, **kwargs)

    run_on(driver, behaviour, exchange, client_options)


async def _closing(harness: Harness, behaviour: Callable[[Harness], Coroutine[Any, Any, T]]) -> T:
    try:
        return await behaviour(harness)
    finally:
        await harness.aclose()


class _ServedInThread:
    """``with _ServedInThread(exchange) as running``: a ServerThread, or None without an exchange."""

    def __init__(self, exchange: Optional[Exchange]) -> None:
        self._thread = None if exchange is None else ServerThread(exchange)

    def __enter__(self) -> Optional[RunningServer[Exchange]]:
        return None if self._thread is None else self._thread.start()

    def __exit__(self, *exc_info: object) -> None:
        if self._thread is not None:
            self._thread.stop()


def every_driver(
    *,
    xfail_on: Optional[Dict[str, str]] = None,
    exchange: Optional[Callable[[], Exchange]] = None,
    **client_options: Any,
) -> Callable[[Scenario], Callable[..., None]]:
    """Make ``async def test_x(h: Harness, ...)`` a test run on every driver.

    ``client_options`` are the defaults of ``h.client()``. The test's other
    parameters are fixtures or ``parametrize`` arguments as usual (put
    ``@pytest.mark.parametrize`` above this decorator). The exchange served is
    the ``exchange`` fixture's, or ``exchange()`` when a factory is given.
    ``xfail_on`` maps a driver to the bug it shows: that run is
    ``xfail(strict=True)``.
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
        keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
        served = [] if exchange is not None else [inspect.Parameter("exchange", keyword)]

        def test(driver: str, **kwargs: Any) -> None:
            made = kwargs.pop("exchange") if exchange is None else exchange()
            run_scenario(driver, made, scenario, client_options, **kwargs)

        test.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter("driver", keyword), *served, *extra]
        )
        test.__name__ = scenario.__name__
        test.__qualname__ = scenario.__qualname__
        test.__doc__ = scenario.__doc__
        test.__module__ = scenario.__module__
        marked: Callable[..., None] = pytest.mark.parametrize("driver", drivers)(test)
        return marked

    return decorate


async def collect(events: AsyncIterator[E], enough: Callable[[List[E]], bool]) -> List[E]:
    """A watch's events until ``enough(events so far)``; the watch is closed either way."""
    seen: List[E] = []
    try:
        async for event in events:
            seen.append(event)
            if enough(seen):
                break
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    return seen


# -- servers a behaviour can run against ----------------------------------------------------------------

_URL = re.compile(r"(https?://[0-9.]+:[0-9]+)")


class GameServe:
    """``game serve --port 0`` in a child process (``extra`` its further flags); ``base_url`` once it listens.

    ``banner`` holds what it printed up to "press Ctrl-C"; ``kill()`` ends it
    with SIGKILL (nothing flushed on the way out), for the tests of state that
    survives; ``stop()`` (and leaving the ``with`` block) terminates it.
    """

    def __init__(self, *extra: str) -> None:
        self.extra = list(extra)
        self.base_url = ""
        self.banner: List[str] = []
        self._process: Optional[subprocess.Popen[str]] = None

    def start(self) -> GameServe:
        command = [sys.executable, "-m", "gameproto_cli", "serve", "--port", "0", *self.extra]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert self._process.stdout is not None
        self.banner, self.base_url = [], ""
        for line in self._process.stdout:
            self.banner.append(line)
            found = _URL.search(line)
            if found and not self.base_url:
                self.base_url = found.group(1)
            if line.startswith("press Ctrl-C"):
                return self
        raise RuntimeError(f"game serve did not start (exit {self._process.wait()}): {''.join(self.banner)}")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, nothing flushed on the way out."""
        assert self._process is not None
        self._process.kill()
        self._process.wait()
        assert self._process.stdout is not None
        self._process.stdout.close()
        self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.communicate(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck server
                self._process.kill()
                self._process.communicate()
            self._process = None

    def __enter__(self) -> GameServe:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class FaultProxy:
    """A loopback TCP proxy in front of a server, that can fail the next requests to a path.

    ``fail(kind, path, times)``: the next ``times`` requests whose path ends
    with ``path`` are met with ``"drop"`` (the connection closed, nothing
    forwarded) or ``"503"`` (a 503 answer, then the connection closed). It
    reads requests one chunk at a time, which holds for the small GETs it is
    meant for. ``forwarded[(method, path)]`` counts what went through.
    """

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition("//")[2].partition(":")
        self._target = (host, int(port))
        self._faults: List[List[Any]] = []
        self.forwarded: Dict[Any, int] = {}
        self.injected = 0
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def fail(self, kind: str, path: str, times: int = 1) -> None:
        assert kind in ("drop", "503"), kind
        with self._lock:
            self._faults.append([kind, path, times])

    def __enter__(self) -> FaultProxy:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._listener.close()

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        accept_loop(self._listener, self._stop.is_set, self._connect, self._threads)

    def _connect(self, client: socket.socket) -> None:
        upstream = socket.create_connection(self._target, timeout=5)
        for end in (client, upstream):
            end.settimeout(0.05)
        self._spawn(self._requests, client, upstream)
        self._spawn(self._answers, upstream, client)

    def _fault_for(self, chunk: bytes) -> Optional[str]:
        method, _, rest = chunk.partition(b" ")
        path = rest.partition(b" ")[0].decode("latin-1").partition("?")[0]
        with self._lock:
            for rule in self._faults:
                if path.endswith(rule[1]) and rule[2] > 0:
                    rule[2] -= 1
                    self.injected += 1
                    return str(rule[0])
            key = (method.decode("latin-1"), path)
            self.forwarded[key] = self.forwarded.get(key, 0) + 1
        return None

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                try:
                    chunk = client.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                fault = self._fault_for(chunk) if chunk[:1].isalpha() else None
                if fault == "503":
                    body = b'{"detail":"Service Unavailable"}'
                    client.sendall(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                if fault is not None:
                    return
                upstream.sendall(chunk)
        except OSError:
            return
        finally:
            _close(client, upstream)

    def _answers(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                try:
                    chunk = upstream.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                client.sendall(chunk)
        except OSError:
            return
        finally:
            _close(client, upstream)


def _close(*ends: socket.socket) -> None:
    for end in ends:
        try:
            end.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        end.close()
