"""One client behaviour, written once, run on every driver: blocking, asyncio and trio.

A behaviour is a coroutine over a ``Harness`` ``h``; it makes clients with
``h.client(...)`` and awaits their methods, typed against
``gameproto_async.GameAPI`` (both clients have that surface:
``test_client_surface.py`` holds them to it). The API, all of it:

- ``@every_driver(**client_options)`` above ``async def test_x(h, ...)``: a
  test run on every driver, ``[sync]``, ``[asyncio]``, ``[trio]`` (and, with
  ``GAMEPROTO_TRANSPORTS``, on each borrowed client: ``TRANSPORTS``), against the
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

The drivers are ``TRANSPORTS``, one entry each: the client's own (the
blocking client on requests, the async one on httpcore under asyncio and
trio), and the application's own HTTP clients it can borrow
(``GameAPI(..., http_client=...)``). ``GAMEPROTO_TRANSPORTS`` chooses: unset,
the client's own three (the README's command); ``all``; ``borrowed`` (those
the ``transports`` tox env adds); or names separated by commas. A borrowed
client is made for each ``h.client()`` from the connection settings the case
asks for (``verify_ssl``, ``trust_env``, ``max_connections`` become the
borrowed client's own), and at the end of the case it must still be open and
usable after the ``GameAPI`` that used it was closed.

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

import importlib.util
import inspect
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import (
    Any,
    AsyncIterator,
    Callable,
    Coroutine,
    Dict,
    Iterator,
    List,
    Optional,
    Tuple,
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
    "TRANSPORTS",
    "Transport",
    "transport_named",
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

# -- the transports: the client's own, and each borrowed client ---------------------------------------

Closer = Callable[[], Coroutine[Any, Any, None]]
#: What a borrowed client is made from: the connection settings a case asks for.
Connection = Dict[str, Any]


def _tls(connection: Connection) -> Union[bool, ssl.SSLContext]:
    verify = connection.get("verify_ssl", True)
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return bool(verify)


def _requests_session(connection: Connection) -> Tuple[Any, Closer]:
    import requests

    session = requests.Session()
    session.verify = connection.get("verify_ssl", True)
    session.trust_env = connection.get("trust_env", True)
    if "max_connections" in connection:
        # pool_maxsize keeps that many; requests bounds no more without pool_block, which waits past any deadline.
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=connection["max_connections"])
        session.mount("http://", adapter)
        session.mount("https://", adapter)

    async def close() -> None:
        session.close()

    return session, close


def _httpx_client(connection: Connection) -> Tuple[Any, Closer]:
    import httpx

    limits = httpx.Limits(max_connections=connection.get("max_connections", 100))
    client = httpx.Client(verify=_tls(connection), trust_env=connection.get("trust_env", True), limits=limits)

    async def close() -> None:
        client.close()

    return client, close


def _httpx_async_client(connection: Connection) -> Tuple[Any, Closer]:
    import httpx

    limits = httpx.Limits(max_connections=connection.get("max_connections", 100))
    client = httpx.AsyncClient(verify=_tls(connection), trust_env=connection.get("trust_env", True), limits=limits)
    return client, client.aclose


def _aiohttp_session(connection: Connection) -> Tuple[Any, Closer]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=connection.get("max_connections", 100), ssl=_tls(connection))
    session = aiohttp.ClientSession(connector=connector, trust_env=connection.get("trust_env", True))
    return session, session.close


@dataclass(frozen=True)
class Transport:
    """One way a client runs: ``name`` (the test's id), its ``backend``, and the borrowed client's ``make``."""

    name: str
    backend: str  # "sync", "asyncio" or "trio"
    make: Optional[Callable[[Connection], Tuple[Any, Closer]]] = None  # None: the client's own transport
    library: str = ""  # the package the borrowed client comes from
    #: What a case may ask of the client that this borrowed client cannot give, each with the reason.
    cannot: Tuple[Tuple[str, str], ...] = ()

    @property
    def borrowed(self) -> bool:
        return self.make is not None

    def lacks(self, feature: str) -> Optional[str]:
        """Why this transport cannot give ``feature``; None when it can."""
        return dict(self.cannot).get(feature)

    def skip_unless(self, feature: str) -> None:
        """Skip the case when this transport cannot give ``feature``, saying why."""
        reason = self.lacks(feature)
        if reason is not None:
            pytest.skip(f"{self.name}: {reason}")


# What a borrowed library does its own way (its proxies and TLS are borrowed with it).
_NO_CIDR = ("no_proxy=localhost, 127.0.0.0/8", "it reads no address range in NO_PROXY")
_NO_PORT = ("no_proxy=127.0.0.1:1,*.invalid", "it reads no host:port in NO_PROXY")
_HTTPX = (_NO_CIDR,)

#: Every transport, one entry each: adding one is adding a line here.
TRANSPORTS = (
    Transport("sync", "sync"),
    Transport("asyncio", "asyncio"),
    Transport("trio", "trio"),
    Transport(
        "sync-requests",
        "sync",
        _requests_session,
        "requests",
        cannot=(
            ("bounded_pool", "a requests pool bounds its connections only by waiting without any deadline"),
            ("informational", "http.client skips only 100 Continue: a 102 or 103 is read as the final answer"),
            _NO_PORT,
        ),
    ),
    Transport("sync-httpx", "sync", _httpx_client, "httpx", cannot=_HTTPX),
    Transport("asyncio-httpx", "asyncio", _httpx_async_client, "httpx", cannot=_HTTPX),
    Transport("trio-httpx", "trio", _httpx_async_client, "httpx", cannot=_HTTPX),
    Transport(
        "asyncio-aiohttp",
        "asyncio",
        _aiohttp_session,
        "aiohttp",
        cannot=(
            _NO_CIDR,
            _NO_PORT,
            ("named_deadline", "a deadline in the last moments of a wait for a connection is not told from one after"),
            ("one_send_per_attempt", "it sends a GET or DELETE again when a kept-alive connection drops, never a POST"),
        ),
    ),
)


def _installed(transport: Transport) -> bool:
    """Whether the library the transport borrows from is installed (aiohttp needs Python 3.10)."""
    return not transport.library or importlib.util.find_spec(transport.library) is not None


def _chosen(choice: str) -> Tuple[str, ...]:
    """The transports ``GAMEPROTO_TRANSPORTS`` names: unset, the client's own; ``all``; ``borrowed``; a list.

    ``all`` and ``borrowed`` leave out a transport whose library is not installed, saying so.
    """
    choice = choice.strip()
    if not choice:
        return tuple(each.name for each in TRANSPORTS if not each.borrowed)
    if choice in ("all", "borrowed"):
        missing = [each.name for each in TRANSPORTS if not _installed(each)]
        if missing:
            print(f"GAMEPROTO_TRANSPORTS={choice}: not installed here, left out: {', '.join(missing)}", file=sys.stderr)
        wanted = [each for each in TRANSPORTS if _installed(each) and (choice == "all" or each.borrowed)]
        return tuple(each.name for each in wanted)
    names = tuple(name.strip() for name in choice.split(",") if name.strip())
    unknown = sorted(set(names) - {each.name for each in TRANSPORTS})
    assert not unknown, f"GAMEPROTO_TRANSPORTS names no transport {unknown}: {[each.name for each in TRANSPORTS]}"
    return names


def transport_named(name: str) -> Transport:
    """The transport called ``name`` (a bare backend name is the client's own on it)."""
    for each in TRANSPORTS:
        if each.name == name:
            return each
    raise AssertionError(f"no transport {name!r}")


#: The drivers the behaviour tests run on (``GAMEPROTO_TRANSPORTS``; by default sync, asyncio and trio).
DRIVERS = _chosen(os.environ.get("GAMEPROTO_TRANSPORTS", ""))

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
        self.transport = transport_named(driver)
        self.backend = self.transport.backend
        self.running = running
        self.base_url = "" if running is None else running.base_url
        self.client_options = client_options
        self._closers: List[Callable[[], Coroutine[Any, Any, None]]] = []

    @property
    def blocking(self) -> bool:
        return self.backend == "sync"

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
        self._borrow(merged)
        if self.blocking:
            api = blocking_surface(SyncGameAPI(token, url, **merged))
        else:
            api = AsyncGameAPI(token, url, **merged)
        self._closers.append(api.aclose)
        return api

    def _borrow(self, options: Dict[str, Any]) -> None:
        """On a borrowed transport: ``http_client`` made from the connection settings in ``options`` (taken out).

        Closed at the end of the case, after the GameAPI, which must have left it open.
        """
        if self.transport.make is None or "http_client" in options:
            return
        # Each as the borrowed client takes it; a value gameproto refuses is left for it to refuse.
        fits: Dict[str, Callable[[Any], bool]] = {
            "verify_ssl": lambda value: isinstance(value, (bool, str)),
            "trust_env": lambda value: isinstance(value, bool),
            "max_connections": lambda value: type(value) is int and value > 0,
        }
        connection = {name: options.pop(name) for name, fit in fits.items() if name in options and fit(options[name])}
        options["http_client"], close = self.transport.make(connection)
        borrowed = options["http_client"]

        async def check_and_close() -> None:
            try:
                closed = getattr(borrowed, "is_closed", getattr(borrowed, "closed", False))
                assert not closed, "the GameAPI closed the client it borrowed"
            finally:
                await close()

        self._closers.insert(0, check_and_close)

    def from_env(self, dotenv_path: Optional[str] = ".env", **options: Any) -> AsyncGameAPI:
        """``GameAPI.from_env(...)`` of the client under test, closed at the end of the case."""
        self._borrow(options)
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
    backend = transport_named(driver).backend
    if backend == "sync":
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

        value = anyio.run(main_async, backend=backend)
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
    borrowed: bool = True,
    **client_options: Any,
) -> Callable[[Scenario], Callable[..., None]]:
    """Make ``async def test_x(h: Harness, ...)`` a test run on every driver.

    ``client_options`` are the defaults of ``h.client()``. The test's other
    parameters are fixtures or ``parametrize`` arguments as usual (put
    ``@pytest.mark.parametrize`` above this decorator). The exchange served is
    the ``exchange`` fixture's, or ``exchange()`` when a factory is given.
    ``xfail_on`` maps a driver to the bug it shows: that run is
    ``xfail(strict=True)``. ``borrowed=False``: a case about the client's own
    connection settings (TLS, ``verify_ssl``), run on its own transports only.
    """
    known = xfail_on or {}
    drivers = [
        pytest.param(driver, marks=pytest.mark.xfail(strict=True, reason=known[driver])) if driver in known else driver
        for driver in DRIVERS
        if borrowed or not transport_named(driver).borrowed
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
