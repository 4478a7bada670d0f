"""One trading scenario, three drivers: the blocking client, the async client on asyncio and on trio.

A scenario is a coroutine over a ``Harness``. The async harness runs it on
the test's event loop (the anyio pytest plugin's asyncio or trio) with the
exchange served on that loop; the blocking harness runs it in a thread of its
own (bounded by ``join``) against a ``ServerThread``, through a blocking
client wrapped in coroutines that never suspend, so that one ``send(None)``
runs it to its end. Watches are async iterators either way: the blocking
client's plain iterator is wrapped the same way.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Awaitable, Callable, Coroutine, Dict, List, Optional, TypeVar

import anyio

from gameproto.simulator.exchange import Exchange
from gameproto_async import GameAPI as AsyncGameAPI
from gameproto_exchange import ServerThread, serve_exchange
from gameproto_sync import GameAPI as SyncGameAPI

T = TypeVar("T")

_URL = re.compile(r"(https?://[0-9.]+:[0-9]+)")

#: The longest a scenario may run before it fails (a bound, not a measurement).
SCENARIO_LIMIT = 90.0


class Events:
    """A watch as an async iterator, whichever client is under it; ``aclose`` stops it."""

    def __init__(self, source: Any, blocking: bool) -> None:
        self._source = source
        self._blocking = blocking

    def __aiter__(self) -> Events:
        return self

    async def __anext__(self) -> Any:
        if self._blocking:
            try:
                return next(self._source)
            except StopIteration:
                raise StopAsyncIteration from None
        return await self._source.__anext__()

    async def aclose(self) -> None:
        if self._blocking:
            self._source.close()
        else:
            await self._source.aclose()


class Trader:
    """One client of one driver; ``await trader.call("get_orders")`` whichever it is."""

    def __init__(self, api: Any, blocking: bool) -> None:
        self.api = api
        self.blocking = blocking

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.api, name)(*args, **kwargs)
        if not self.blocking:
            result = await result
        return result

    def watch(self, name: str, **kwargs: Any) -> Events:
        return Events(getattr(self.api, name)(**kwargs), self.blocking)

    @property
    def clock_offset(self) -> Optional[float]:
        return self.api.clock_offset  # type: ignore[no-any-return]


class Harness:
    """The exchange (when served in this process), and the means to make traders, wait and run at once."""

    blocking = False

    def __init__(self, base_url: str, exchange: Optional[Exchange]) -> None:
        self.base_url = base_url
        self._exchange = exchange
        self._apis: List[Any] = []

    @property
    def exchange(self) -> Exchange:
        assert self._exchange is not None, "this scenario's exchange runs in another process"
        return self._exchange

    def trader(self, token: str, base_url: Optional[str] = None, **options: Any) -> Trader:
        """A client of the exchange (or of ``base_url``), closed at the end of the scenario."""
        options.setdefault("trust_env", False)
        kind = SyncGameAPI if self.blocking else AsyncGameAPI
        api = kind(token, base_url or self.base_url, **options)
        self._apis.append(api)
        return Trader(api, self.blocking)

    async def sleep(self, seconds: float) -> None:
        raise NotImplementedError

    async def concurrently(self, *calls: Callable[[], Awaitable[Any]]) -> List[Any]:
        """Run ``calls`` at once (threads, or tasks); each one's answer or the exception it raised."""
        raise NotImplementedError

    async def wait_until(self, condition: Callable[[], bool], what: str, limit: float = 30.0) -> None:
        """Return once ``condition()`` holds; fail naming ``what`` after ``limit`` seconds."""
        give_up = time.monotonic() + limit
        while not condition():
            if time.monotonic() > give_up:
                raise AssertionError(f"gave up waiting for {what}")
            await self.sleep(0.01)

    async def aclose(self) -> None:
        raise NotImplementedError


class BlockingHarness(Harness):
    blocking = True

    async def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def concurrently(self, *calls: Callable[[], Awaitable[Any]]) -> List[Any]:
        outcomes: List[Any] = [None] * len(calls)

        def one(index: int) -> None:
            try:
                outcomes[index] = run_blocking(calls[index]())  # type: ignore[arg-type]
            except Exception as error:
                outcomes[index] = error

        threads = [threading.Thread(target=one, args=(index,), daemon=True) for index in range(len(calls))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(SCENARIO_LIMIT)
            assert not thread.is_alive(), "a concurrent call did not end"
        return outcomes

    async def aclose(self) -> None:
        for api in self._apis:
            api.close()


class AsyncHarness(Harness):
    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    async def concurrently(self, *calls: Callable[[], Awaitable[Any]]) -> List[Any]:
        outcomes: List[Any] = [None] * len(calls)

        async def one(index: int) -> None:
            try:
                outcomes[index] = await calls[index]()
            except Exception as error:
                outcomes[index] = error

        async with anyio.create_task_group() as group:
            for index in range(len(calls)):
                group.start_soon(one, index)
        return outcomes

    async def aclose(self) -> None:
        for api in self._apis:
            await api.aclose()


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (every await reaches blocking code) to its end."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a scenario run by the blocking harness suspended: it awaited real async I/O")


Scenario = Callable[[Harness], Coroutine[Any, Any, None]]


def run_scenario_blocking(scenario: Scenario, exchange: Optional[Exchange] = None, base_url: str = "") -> None:
    """``scenario`` through the blocking client, in a thread bounded by ``SCENARIO_LIMIT``."""
    failure: Dict[str, BaseException] = {}

    def main(harness: Harness) -> None:
        try:
            run_blocking(_closing(harness, scenario))
        except BaseException as error:
            failure["error"] = error

    with _served_in_thread(exchange) as url:
        harness = BlockingHarness(url or base_url, exchange)
        thread = threading.Thread(target=main, args=(harness,), daemon=True)
        thread.start()
        thread.join(SCENARIO_LIMIT)
        assert not thread.is_alive(), f"the scenario did not end within {SCENARIO_LIMIT:g} s"
    if "error" in failure:
        raise failure["error"]


async def run_scenario_async(scenario: Scenario, exchange: Optional[Exchange] = None, base_url: str = "") -> None:
    """``scenario`` through the async client on the running loop, bounded by ``SCENARIO_LIMIT``."""
    with anyio.fail_after(SCENARIO_LIMIT):
        if exchange is None:
            await _closing(AsyncHarness(base_url, None), scenario)
            return
        async with serve_exchange(exchange) as running:
            await _closing(AsyncHarness(running.base_url, exchange), scenario)


async def _closing(harness: Harness, scenario: Scenario) -> None:
    try:
        await scenario(harness)
    finally:
        await harness.aclose()


class _served_in_thread:
    """``with _served_in_thread(exchange) as url``: a ServerThread, or nothing (url "") without an exchange."""

    def __init__(self, exchange: Optional[Exchange]) -> None:
        self._thread = None if exchange is None else ServerThread(exchange)

    def __enter__(self) -> str:
        return "" if self._thread is None else self._thread.start().base_url

    def __exit__(self, *exc_info: object) -> None:
        if self._thread is not None:
            self._thread.stop()


async def collect(events: Events, enough: Callable[[List[Any]], bool]) -> List[Any]:
    """Events until ``enough(events so far)``; the watch is closed either way."""
    seen: List[Any] = []
    try:
        async for event in events:
            seen.append(event)
            if enough(seen):
                break
    finally:
        await events.aclose()
    return seen


class GameServe:
    """``game serve --port 0`` in a child process (``extra`` its further flags); ``base_url`` once it listens."""

    def __init__(self, *extra: str) -> None:
        self.extra = list(extra)
        self.base_url = ""
        self._process: Optional[subprocess.Popen[str]] = None

    def __enter__(self) -> GameServe:
        command = [sys.executable, "-m", "gameproto_cli", "serve", "--port", "0", *self.extra]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert self._process.stdout is not None
        for line in self._process.stdout:
            found = _URL.search(line)
            if found:
                self.base_url = found.group(1)
                return self
        raise RuntimeError(f"game serve did not start (exit {self._process.wait()})")

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.communicate(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck server
                self._process.kill()
                self._process.communicate()


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
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
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
