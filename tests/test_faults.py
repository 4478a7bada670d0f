"""The fault suite: every failure a client meets (GAME-API.md, "Failures a client meets"), on every driver.

Each case is written once, as a coroutine over a ``Harness``, and run three
times: through the blocking client (``server`` fixture, a ServerThread) and
through the async client on asyncio and on trio (``aserver`` fixture, served on
the test's own loop). The blocking harness wraps the blocking client in
coroutines that never suspend, so the same scenario runs to its end with a
single ``send(None)``.

Every case asserts the error class, the attempts the exchange saw and the
orders that exist afterwards.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from contextlib import asynccontextmanager
from decimal import Decimal
from email.utils import formatdate
from typing import Any, AsyncIterator, Callable, Coroutine, Dict, List, Optional, Tuple, TypeVar

import anyio
import pytest

from gameproto._errors import (
    AuthenticationError,
    NetworkError,
    OrderOutcomeUnknownProtocolError,
    OrderOutcomeUnknownServerError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitError,
    ServerError,
)
from gameproto._flow import Attempt
from gameproto._retry import RetryPolicy
from gameproto.simulator.exchange import Exchange
from gameproto.simulator.faults import Fault
from gameproto_async import GameAPI as AsyncGameAPI
from gameproto_exchange import RunningServer, ServerThread, serve_exchange
from gameproto_sync import GameAPI as SyncGameAPI

from .conftest import TOKEN, future_order

T = TypeVar("T")

#: Retries after the first attempt in every case (the project's default).
RETRIES = 2
#: Backoff so small that waiting is never what a case measures.
FAST_RETRY = RetryPolicy(max_retries=RETRIES, backoff_initial=0.01, backoff_max=0.02)
#: Short timeouts, so that a case that waits for one is quick.
FAST: Dict[str, Any] = {"timeout": 3, "read_timeout": 1, "connect_timeout": 1, "retry_policy": FAST_RETRY}
#: A read timeout, and a server delay just longer than it, for the slow-answer cases.
SHORT_READ = 0.2
SLOW = 0.4
#: Timing slack for a loaded machine.
SLACK = 0.75

CREATE_PATHS = ("/orders", "/orders/create-bulk")


# -- the harness: one scenario, either client ---------------------------------------------


class Client:
    """What a scenario calls: the client's methods, awaited whichever driver is under them."""

    async def get_status(self) -> Any:
        raise NotImplementedError

    async def get_orders(self) -> Any:
        raise NotImplementedError

    async def create_order(self, order_data: Dict[str, Any]) -> Any:
        raise NotImplementedError

    async def find_matching_orders(self, order: Dict[str, Any]) -> Any:
        raise NotImplementedError


class _BlockingClient(Client):
    def __init__(self, api: SyncGameAPI) -> None:
        self.api = api

    async def get_status(self) -> Any:
        return self.api.get_status()

    async def get_orders(self) -> Any:
        return self.api.get_orders()

    async def create_order(self, order_data: Dict[str, Any]) -> Any:
        return self.api.create_order(order_data)

    async def find_matching_orders(self, order: Dict[str, Any]) -> Any:
        return self.api.find_matching_orders(order)


class _AsyncClient(Client):
    def __init__(self, api: AsyncGameAPI) -> None:
        self.api = api

    async def get_status(self) -> Any:
        return await self.api.get_status()

    async def get_orders(self) -> Any:
        return await self.api.get_orders()

    async def create_order(self, order_data: Dict[str, Any]) -> Any:
        return await self.api.create_order(order_data)

    async def find_matching_orders(self, order: Dict[str, Any]) -> Any:
        return await self.api.find_matching_orders(order)


class Harness:
    """The served exchange, and the means to make clients, wait and serve once more."""

    def __init__(self, running: RunningServer[Exchange]) -> None:
        self.running = running
        self.exchange: Exchange = running.exchange
        self.base_url = running.base_url

    @property
    def faults(self) -> Any:
        return self.exchange.faults

    def client(self, base_url: Optional[str] = None, token: str = TOKEN, **options: Any) -> Client:
        """A client of ``base_url`` (the served exchange by default), closed at the end of the case."""
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:
        raise NotImplementedError

    def serve(self, **options: Any) -> Any:
        """``async with h.serve(idle_timeout=...) as running:`` the exchange on a second server."""
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def concurrently(self, *calls: Callable[[], Coroutine[Any, Any, Any]]) -> List[Any]:
        """Run ``calls`` at once (threads, or tasks); each one's answer or the error it raised."""
        raise NotImplementedError

    def attempts(self, method: str, path: str) -> int:
        return self.exchange.attempts[(method, path)]

    def orders(self) -> List[Dict[str, Any]]:
        return self.exchange.orders_of("alice")


class BlockingHarness(Harness):
    def __init__(self, running: RunningServer[Exchange]) -> None:
        super().__init__(running)
        self._clients: List[SyncGameAPI] = []

    def client(self, base_url: Optional[str] = None, token: str = TOKEN, **options: Any) -> Client:
        api = SyncGameAPI(token, base_url or self.base_url, **{**FAST, **options})
        self._clients.append(api)
        return _BlockingClient(api)

    async def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    @asynccontextmanager
    async def serve(self, **options: Any) -> AsyncIterator[RunningServer[Exchange]]:
        with ServerThread(self.exchange, **options) as running:
            yield running

    async def aclose(self) -> None:
        for api in self._clients:
            api.close()

    async def concurrently(self, *calls: Callable[[], Coroutine[Any, Any, Any]]) -> List[Any]:
        outcomes: List[Any] = [None] * len(calls)

        def one(index: int) -> None:
            try:
                outcomes[index] = run_blocking(calls[index]())
            except Exception as error:
                outcomes[index] = error

        threads = [threading.Thread(target=one, args=(index,)) for index in range(len(calls))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return outcomes


class AsyncHarness(Harness):
    def __init__(self, running: RunningServer[Exchange]) -> None:
        super().__init__(running)
        self._clients: List[AsyncGameAPI] = []

    def client(self, base_url: Optional[str] = None, token: str = TOKEN, **options: Any) -> Client:
        api = AsyncGameAPI(token, base_url or self.base_url, **{**FAST, **options})
        self._clients.append(api)
        return _AsyncClient(api)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

    @asynccontextmanager
    async def serve(self, **options: Any) -> AsyncIterator[RunningServer[Exchange]]:
        async with serve_exchange(self.exchange, **options) as running:
            yield running

    async def aclose(self) -> None:
        for api in self._clients:
            await api.aclose()

    async def concurrently(self, *calls: Callable[[], Coroutine[Any, Any, Any]]) -> List[Any]:
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


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (every await reaches blocking code) to its end."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a scenario run by the blocking harness suspended: it awaited real async I/O")


Scenario = Callable[[Harness], Coroutine[Any, Any, None]]
SCENARIOS: Dict[str, Scenario] = {}
#: Cases that show a known bug: the reason names it (see the report in the case's docstring).
KNOWN_BUGS: Dict[str, str] = {}


def scenario(name: str, *, bug: Optional[str] = None) -> Callable[[Scenario], Scenario]:
    """Register the decorated coroutine as the case ``name``; ``bug`` marks it xfail(strict)."""

    def add(function: Scenario) -> Scenario:
        assert name not in SCENARIOS, name
        SCENARIOS[name] = function
        if bug is not None:
            KNOWN_BUGS[name] = bug
        return function

    return add


def register(name: str, function: Scenario) -> None:
    scenario(name)(function)


def scenario_params() -> List[Any]:
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[name]))
        if name in KNOWN_BUGS
        else name
        for name in SCENARIOS
    ]


# -- helpers --------------------------------------------------------------------------------


def order_payload(path: str, price: float = 100.0) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """What ``create_order`` is given for ``path``, and the orders it places (1, or 2 in a bulk)."""
    if path == "/orders":
        order = future_order("buy", price, 1.0)
        return order, [order]
    orders = [future_order("buy", price, 1.0), future_order("buy", price + 0.5, 2.0)]
    return {"orders": orders}, orders


def _key(order: Dict[str, Any]) -> Tuple[str, Decimal, Decimal]:
    side = order.get("direction", order.get("side"))
    return str(side), Decimal(str(order["price"])), Decimal(str(order["volume"]))


def assert_placed_once(h: Harness, orders: List[Dict[str, Any]]) -> None:
    """Exactly these orders exist, each once (the exchange lists prices as Decimal)."""
    existing = collections.Counter(_key(order) for order in h.orders())
    assert existing == collections.Counter(_key(order) for order in orders)
    assert max(existing.values()) == 1


def free_port() -> int:
    """A port that nothing listens on (bound, then closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TrickleServer:
    """A raw HTTP server that answers the token exchange, then trickles every other answer's head.

    One header byte every ``interval`` seconds, for at most ``lasting`` seconds, then it closes:
    each read comes well within any read timeout, yet the answer never ends in time.
    """

    def __init__(self, interval: float = 0.1, lasting: float = 6.0) -> None:
        self.interval = interval
        self.lasting = lasting
        self.requests: List[str] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._threads: List[threading.Thread] = [threading.Thread(target=self._accept, daemon=True)]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> TrickleServer:
        self._threads[0].start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(0.2)
            data = b""
            while not self._stop.is_set():
                head, found, rest = data.partition(b"\r\n\r\n")
                if found:
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    if len(rest) >= length:
                        data = rest[length:]
                        target = head.split(b" ")[1].decode()
                        self.requests.append(target)
                        if not self._answer(connection, target):
                            return
                        continue
                try:
                    chunk = connection.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                data += chunk

    def _answer(self, connection: socket.socket, target: str) -> bool:
        try:
            if target.endswith("/auth/token"):
                body = b'{"access_token": "trickled-access-token", "expires_in": 3600}'
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
                return True
            connection.sendall(b"HTTP/1.1 200 OK\r\nx-slow: ")
            ends = time.monotonic() + self.lasting
            while time.monotonic() < ends and not self._stop.is_set():
                time.sleep(self.interval)
                connection.sendall(b"a")
        except OSError:
            pass
        return False


# -- GET: 5xx -------------------------------------------------------------------------------


def _get_5xx_once(status: int) -> Scenario:
    async def case(h: Harness) -> None:
        h.faults.add(Fault("status", status=status), method="GET", path="/status")
        api = h.client()
        assert (await api.get_status())["status"] == "healthy"
        assert h.attempts("GET", "/status") == 2
        assert h.orders() == []

    return case


def _get_5xx_always(status: int) -> Scenario:
    async def case(h: Harness) -> None:
        h.faults.add(Fault("status", status=status), method="GET", path="/status", times=100)
        api = h.client()
        started = time.monotonic()
        with pytest.raises(ServerError) as caught:
            await api.get_status()
        elapsed = time.monotonic() - started
        assert not isinstance(caught.value, OutcomeUnknownError)  # a GET creates nothing
        assert caught.value.status_code == status
        assert h.attempts("GET", "/status") == 1 + RETRIES
        assert elapsed < 1.0
        assert h.orders() == []

    return case


for _status in (502, 503, 504):
    register(f"get_{_status}_once_is_retried", _get_5xx_once(_status))
    register(f"get_{_status}_always_is_ServerError", _get_5xx_always(_status))


# -- GET: dropped connections ---------------------------------------------------------------


def _get_dropped_once(kind: str) -> Scenario:
    async def case(h: Harness) -> None:
        h.faults.add(Fault(kind), method="GET", path="/orders")
        api = h.client()
        assert await api.get_orders() == []
        assert h.attempts("GET", "/orders") == 2
        assert h.orders() == []

    return case


def _get_dropped_always(kind: str) -> Scenario:
    async def case(h: Harness) -> None:
        h.faults.add(Fault(kind), method="GET", path="/orders", times=100)
        api = h.client()
        started = time.monotonic()
        with pytest.raises(NetworkError) as caught:
            await api.get_orders()
        assert not isinstance(caught.value, OutcomeUnknownError)
        assert time.monotonic() - started < 1.0
        assert h.attempts("GET", "/orders") == 1 + RETRIES
        assert h.orders() == []

    return case


for _kind in ("drop_before", "drop_after"):
    register(f"get_{_kind}_once_is_retried", _get_dropped_once(_kind))
    register(f"get_{_kind}_always_is_NetworkError", _get_dropped_always(_kind))


# -- GET: slow answers and the overall deadline ---------------------------------------------


@scenario("get_slow_once_is_retried")
async def _get_slow_once(h: Harness) -> None:
    h.faults.add(Fault("delay", delay=SLOW), method="GET", path="/status")
    api = h.client(read_timeout=SHORT_READ)
    started = time.monotonic()
    assert (await api.get_status())["status"] == "healthy"
    elapsed = time.monotonic() - started
    assert SHORT_READ * 0.9 <= elapsed < SLOW + SLACK
    assert h.attempts("GET", "/status") == 2
    assert h.orders() == []


@scenario("get_slow_always_is_NetworkError_within_timeout")
async def _get_slow_always(h: Harness) -> None:
    h.faults.add(Fault("delay", delay=SLOW), method="GET", path="/status", times=100)
    api = h.client(timeout=3, read_timeout=SHORT_READ)
    started = time.monotonic()
    with pytest.raises(NetworkError) as caught:
        await api.get_status()
    elapsed = time.monotonic() - started
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert h.attempts("GET", "/status") == 1 + RETRIES
    assert (1 + RETRIES) * SHORT_READ * 0.9 <= elapsed < 3 + SLACK
    assert h.orders() == []


@scenario("get_ends_within_its_deadline_whatever_the_server_does")
async def _get_deadline(h: Harness) -> None:
    # A drop, a 503, then an answer that takes 10 s: the call still ends at its 1.5 s deadline.
    h.faults.add(Fault("drop_before"), method="GET", path="/status")
    h.faults.add(Fault("status", status=503), method="GET", path="/status")
    h.faults.add(Fault("delay", delay=10.0), method="GET", path="/status", times=100)
    api = h.client(timeout=1.5, read_timeout=15, retry_policy=RetryPolicy(max_retries=5, backoff_initial=0.01))
    started = time.monotonic()
    with pytest.raises(NetworkError) as caught:
        await api.get_status()
    elapsed = time.monotonic() - started
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert elapsed < 2.5
    assert h.attempts("GET", "/status") == 3
    assert h.orders() == []


@scenario("post_ends_within_its_deadline_whatever_the_server_does")
async def _post_deadline(h: Harness) -> None:
    h.faults.add(Fault("delay", delay=10.0), method="POST", path="/orders")
    api = h.client(timeout=0.8, read_timeout=15)
    order = future_order()
    started = time.monotonic()
    with pytest.raises(OutcomeUnknownError):
        await api.create_order(order)
    assert time.monotonic() - started < 0.8 + SLACK
    assert h.attempts("POST", "/orders") == 1
    assert_placed_once(h, [order])  # the exchange carried it out before it stalled


@scenario("trickled_answer_ends_within_the_deadline")
async def _trickled_answer(h: Harness) -> None:
    # Every read succeeds within the read timeout, yet the answer takes 6 s: only the overall deadline stops it.
    with TrickleServer() as trickle:
        api = h.client(trickle.base_url, timeout=1.0, read_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(NetworkError) as caught:
            await api.get_status()
        elapsed = time.monotonic() - started
        requests = list(trickle.requests)
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert elapsed < 1.0 + SLACK, f"the call took {elapsed:.1f} s, deadline 1 s"
    assert requests[0] == "/api/v1/auth/token" and requests[1:2] == ["/api/v1/status"]


# -- 429 and Retry-After --------------------------------------------------------------------


@scenario("get_429_retry_after_seconds_is_waited_then_retried")
async def _get_429_seconds(h: Harness) -> None:
    h.faults.add(Fault("status", status=429, headers=(("Retry-After", "1"),)), method="GET", path="/status")
    api = h.client()
    started = time.monotonic()
    assert (await api.get_status())["status"] == "healthy"
    elapsed = time.monotonic() - started
    assert 0.95 <= elapsed < 1 + SLACK
    assert h.attempts("GET", "/status") == 2
    assert h.orders() == []


@scenario("get_429_retry_after_http_date_is_waited_then_retried")
async def _get_429_date(h: Harness) -> None:
    when = formatdate(time.time() + 1, usegmt=True)  # whole seconds: a wait of at most 1 s
    h.faults.add(Fault("status", status=429, headers=(("Retry-After", when),)), method="GET", path="/status")
    api = h.client()
    started = time.monotonic()
    assert (await api.get_status())["status"] == "healthy"
    assert time.monotonic() - started < 1 + SLACK
    assert h.attempts("GET", "/status") == 2
    assert h.orders() == []


@scenario("get_429_always_is_RateLimitError_with_retry_after")
async def _get_429_always(h: Harness) -> None:
    h.faults.add(Fault("status", status=429, headers=(("Retry-After", "0"),)), method="GET", path="/status", times=9)
    api = h.client()
    with pytest.raises(RateLimitError) as caught:
        await api.get_status()
    assert caught.value.retry_after == 0.0
    assert caught.value.status_code == 429
    assert h.attempts("GET", "/status") == 1 + RETRIES
    assert h.orders() == []


@scenario("get_429_retry_after_beyond_the_deadline_is_RateLimitError_at_once")
async def _get_429_beyond_deadline(h: Harness) -> None:
    h.faults.add(Fault("status", status=429, headers=(("Retry-After", "5"),)), method="GET", path="/status")
    api = h.client(timeout=3)
    started = time.monotonic()
    with pytest.raises(RateLimitError) as caught:
        await api.get_status()
    assert time.monotonic() - started < 0.5  # no sleep that the deadline would cut short
    assert caught.value.retry_after == 5.0
    assert h.attempts("GET", "/status") == 1


@scenario("get_429_retry_after_beyond_the_cap_is_RateLimitError_at_once")
async def _get_429_beyond_cap(h: Harness) -> None:
    h.faults.add(Fault("status", status=429, headers=(("Retry-After", "3600"),)), method="GET", path="/status")
    api = h.client()
    started = time.monotonic()
    with pytest.raises(RateLimitError) as caught:
        await api.get_status()
    assert time.monotonic() - started < 0.5
    assert caught.value.retry_after == 3600.0
    assert h.attempts("GET", "/status") == 1
    assert h.orders() == []


# -- POST /orders and /orders/create-bulk ---------------------------------------------------


def _post_429_once(path: str) -> Scenario:
    async def case(h: Harness) -> None:
        h.faults.add(Fault("status", status=429, headers=(("Retry-After", "0"),)), method="POST", path=path)
        payload, placed = order_payload(path)
        api = h.client()
        await api.create_order(payload)
        assert h.attempts("POST", path) == 2
        assert_placed_once(h, placed)

    return case


def _post_429_always(path: str) -> Scenario:
    async def case(h: Harness) -> None:
        h.faults.add(Fault("status", status=429), method="POST", path=path, times=9)
        payload, _ = order_payload(path)
        api = h.client()
        with pytest.raises(RateLimitError) as caught:
            await api.create_order(payload)
        assert not isinstance(caught.value, OutcomeUnknownError)  # a 429 was not carried out
        assert h.attempts("POST", path) == 1 + RETRIES
        assert h.orders() == []

    return case


def _post_503(path: str) -> Scenario:
    async def case(h: Harness) -> None:
        h.faults.add(Fault("status", status=503), method="POST", path=path)
        payload, _ = order_payload(path)
        api = h.client()
        with pytest.raises(OrderOutcomeUnknownServerError) as caught:
            await api.create_order(payload)
        assert isinstance(caught.value, OutcomeUnknownError)
        assert not isinstance(caught.value, ServerError)  # a retry-on-5xx handler must not resend it
        assert caught.value.status_code == 503
        assert h.attempts("POST", path) == 1
        assert h.orders() == []  # the fault answered without carrying it out

    return case


def _post_drop_after(path: str) -> Scenario:
    async def case(h: Harness) -> None:
        h.faults.add(Fault("drop_after"), method="POST", path=path)
        payload, placed = order_payload(path)
        api = h.client()
        with pytest.raises(OutcomeUnknownError):
            await api.create_order(payload)
        assert h.attempts("POST", path) == 1
        assert_placed_once(h, placed)

    return case


def _post_slow(path: str) -> Scenario:
    async def case(h: Harness) -> None:
        h.faults.add(Fault("delay", delay=SLOW), method="POST", path=path)
        payload, placed = order_payload(path)
        api = h.client(read_timeout=SHORT_READ)
        started = time.monotonic()
        with pytest.raises(OutcomeUnknownError):
            await api.create_order(payload)
        assert time.monotonic() - started < SLOW
        assert h.attempts("POST", path) == 1
        assert_placed_once(h, placed)  # carried out at once; only the answer is late

    return case


def _post_drop_before(path: str) -> Scenario:
    async def case(h: Harness) -> None:
        # Not carried out; but the client lost the connection after sending, so it cannot know.
        h.faults.add(Fault("drop_before"), method="POST", path=path)
        payload, _ = order_payload(path)
        api = h.client()
        with pytest.raises(OutcomeUnknownError):
            await api.create_order(payload)
        assert h.attempts("POST", path) == 1
        assert h.orders() == []

    return case


def _post_not_json(path: str) -> Scenario:
    async def case(h: Harness) -> None:
        h.faults.add(Fault("not_json"), method="POST", path=path)
        payload, placed = order_payload(path)
        api = h.client()
        with pytest.raises(OrderOutcomeUnknownProtocolError) as caught:
            await api.create_order(payload)
        assert not isinstance(caught.value, ProtocolError)
        assert isinstance(caught.value, OutcomeUnknownError)
        assert caught.value.status_code == 200 and "Bad Gateway" in caught.value.excerpt
        assert h.attempts("POST", path) == 1
        assert_placed_once(h, placed)

    return case


for _path in CREATE_PATHS:
    _name = "post_orders" if _path == "/orders" else "post_bulk"
    register(f"{_name}_429_once_is_retried_and_placed_once", _post_429_once(_path))
    register(f"{_name}_429_always_is_RateLimitError", _post_429_always(_path))
    register(f"{_name}_503_is_not_retried", _post_503(_path))
    register(f"{_name}_drop_after_is_OutcomeUnknown_never_repeated", _post_drop_after(_path))
    register(f"{_name}_slow_is_OutcomeUnknown", _post_slow(_path))
    register(f"{_name}_drop_before_is_OutcomeUnknown", _post_drop_before(_path))
    register(f"{_name}_not_json_is_OutcomeUnknown_protocol_error", _post_not_json(_path))


@scenario("post_to_a_refused_connection_is_retried_and_not_OutcomeUnknown")
async def _post_refused(h: Harness) -> None:
    seen: List[Attempt] = []
    async with h.serve() as running:
        api = h.client(running.base_url, on_attempt=seen.append)
        await api.get_status()  # the access token, and a pooled connection that is about to die
    # Nothing listens there any more: the POST never leaves, so it may be sent again.
    with pytest.raises(NetworkError) as caught:
        await api.create_order(future_order())
    assert not isinstance(caught.value, OutcomeUnknownError)
    tries = [a for a in seen if a.path == "/orders"]
    assert [(a.method, a.status, a.failure) for a in tries] == [("POST", None, "connect")] * (1 + RETRIES)
    assert h.attempts("POST", "/orders") == 0
    assert h.orders() == []


@scenario("refused_connection_from_the_first_call_is_NetworkError")
async def _refused_from_the_start(h: Harness) -> None:
    seen: List[Attempt] = []
    api = h.client(f"http://127.0.0.1:{free_port()}", on_attempt=seen.append)
    with pytest.raises(NetworkError) as caught:
        await api.create_order(future_order())
    assert not isinstance(caught.value, OutcomeUnknownError)
    # The token exchange is the first request: it is retried, and the order is never sent.
    assert [(a.method, a.path, a.failure) for a in seen] == [("POST", "/auth/token", "connect")] * (1 + RETRIES)
    assert sum(h.exchange.attempts.values()) == 0
    assert h.orders() == []


@scenario("post_after_the_server_closed_an_idle_connection_succeeds")
async def _post_after_idle_close(h: Harness) -> None:
    async with h.serve(idle_timeout=0.3) as running:
        api = h.client(running.base_url)
        await api.get_status()
        await h.sleep(0.6)  # the server closes the idle keep-alive connection meanwhile
        order = future_order()
        created = await api.create_order(order)
        assert str(created["order_id"]).startswith("ord_")
        assert running.connections_accepted == 2
    assert h.attempts("POST", "/orders") == 1
    assert_placed_once(h, [order])


@scenario("post_bulk_split_with_one_part_dropped_reports_what_is_unknown")
async def _bulk_split_part_dropped(h: Harness) -> None:
    # 150 orders go as two requests; the first to arrive passes (a delay of 0), the second is
    # carried out and never answered. Nothing is repeated, and the error says which indices are unknown.
    h.faults.add(Fault("delay", delay=0.0), method="POST", path="/orders/create-bulk")
    h.faults.add(Fault("drop_after"), method="POST", path="/orders/create-bulk")
    orders = [future_order("buy", 10.0 + i / 100, 1.0) for i in range(150)]
    api = h.client()
    with pytest.raises(OutcomeUnknownError) as caught:
        await api.create_order({"orders": orders})
    partial = caught.value.partial_result
    assert partial is not None and partial["unsent"] == [] and partial["failed"] == []
    created = sorted(entry["index"] for entry in partial["created"])
    assert sorted(created + partial["unknown"]) == list(range(150))
    assert partial["unknown"] in (list(range(100)), list(range(100, 150)))
    assert h.attempts("POST", "/orders/create-bulk") == 2
    assert_placed_once(h, orders)


@scenario("slow_token_exchange_ends_within_the_deadline")
async def _slow_token_exchange(h: Harness) -> None:
    h.faults.add(Fault("delay", delay=10.0), method="POST", path="/auth/token", times=100)
    api = h.client(timeout=0.8, read_timeout=15)
    started = time.monotonic()
    with pytest.raises(NetworkError) as caught:
        await api.create_order(future_order())
    assert not isinstance(caught.value, OutcomeUnknownError)  # the order was never sent
    assert time.monotonic() - started < 0.8 + SLACK
    assert h.attempts("POST", "/auth/token") == 1
    assert h.attempts("POST", "/orders") == 0
    assert h.orders() == []


# -- answers that are not what the protocol says --------------------------------------------


@scenario("get_not_json_is_ProtocolError")
async def _get_not_json(h: Harness) -> None:
    h.faults.add(Fault("not_json"), method="GET", path="/status")
    api = h.client()
    with pytest.raises(ProtocolError) as caught:
        await api.get_status()
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert caught.value.status_code == 200
    assert "502 Bad Gateway" in caught.value.excerpt and len(caught.value.excerpt) <= 203
    assert h.attempts("GET", "/status") == 1
    assert h.orders() == []


@scenario("get_orders_of_the_wrong_shape_is_ProtocolError")
async def _get_wrong_shape(h: Harness) -> None:
    h.faults.add(Fault("status", status=200, body=b'{"unexpected": 1}'), method="GET", path="/orders")
    api = h.client()
    with pytest.raises(ProtocolError) as caught:
        await api.get_orders()
    assert caught.value.status_code == 200
    assert "unexpected" in caught.value.excerpt
    assert h.attempts("GET", "/orders") == 1
    assert h.orders() == []


@scenario("long_garbage_is_cut_to_a_short_excerpt")
async def _long_garbage(h: Harness) -> None:
    h.faults.add(Fault("not_json", body=b"<html>" + b"x" * 100_000), method="GET", path="/status")
    api = h.client()
    with pytest.raises(ProtocolError) as caught:
        await api.get_status()
    assert caught.value.excerpt.startswith("<html>xxx") and len(caught.value.excerpt) <= 203
    assert len(str(caught.value)) < 400
    assert h.attempts("GET", "/status") == 1


# -- the token ------------------------------------------------------------------------------


@scenario("refused_personal_token_is_AuthenticationError")
async def _refused_token(h: Harness) -> None:
    api = h.client(token="personal-token-nobody")
    with pytest.raises(AuthenticationError):
        await api.create_order(future_order())
    assert h.attempts("POST", "/auth/token") == 1
    assert h.attempts("POST", "/orders") == 0
    assert h.exchange.exchanges == 0
    assert h.orders() == []


@scenario("token_exchange_503_once_is_retried")
async def _token_503_once(h: Harness) -> None:
    h.faults.add(Fault("status", status=503), method="POST", path="/auth/token")
    api = h.client()
    assert (await api.get_status())["status"] == "healthy"
    assert h.attempts("POST", "/auth/token") == 2
    assert h.exchange.exchanges == 1
    assert h.attempts("GET", "/status") == 1


def _token_expired(path: str) -> Scenario:
    async def case(h: Harness) -> None:
        api = h.client()
        await api.get_status()
        assert h.exchange.exchanges == 1
        h.exchange.expire_access_tokens()
        if path == "/orders":
            order = future_order()
            await api.create_order(order)
            assert h.attempts("POST", "/orders") == 2  # 401, then the repeat
            assert_placed_once(h, [order])
        else:
            await api.get_status()
            assert h.attempts("GET", "/status") == 3  # the first call, the 401, the repeat
            assert h.orders() == []
        assert h.exchange.exchanges == 2
        assert h.attempts("POST", "/auth/token") == 2

    return case


register("token_expired_mid_run_get_is_repeated_once", _token_expired("/status"))
register("token_expired_mid_run_post_is_repeated_once", _token_expired("/orders"))


@scenario(
    "a_401_late_in_a_call_re_exchanges_within_the_call_deadline",
)
async def _late_401(h: Harness) -> None:
    """The answer to the call is a 401 that comes 0.4 s late; the new exchange then stalls.

    Guards against ``Session.exchange_token`` (gameproto/flow.py) starting its own deadline of ``timeout``
    when it runs, whatever is left of the call that asked for it (``RefreshToken`` carries no
    deadline), so this 0.6 s call lasts 0.4 s + 0.6 s = 1 s.
    """
    api = h.client(timeout=0.6, read_timeout=15)
    await api.get_status()
    h.exchange.expire_access_tokens()
    h.faults.add(Fault("delay", delay=0.4), method="GET", path="/status")  # carried out: a 401, late
    h.faults.add(Fault("delay", delay=10.0), method="POST", path="/auth/token", times=100)
    started = time.monotonic()
    with pytest.raises(NetworkError):
        await api.get_status()
    elapsed = time.monotonic() - started
    assert h.attempts("GET", "/status") == 2
    assert h.attempts("POST", "/auth/token") == 2
    assert elapsed < 0.6 + 0.3, f"a call with a 0.6 s deadline took {elapsed:.2f} s"


@scenario(
    "calls_waiting_for_a_failing_token_exchange_end_within_their_deadline",
)
async def _waiters_on_a_stalled_exchange(h: Harness) -> None:
    """Two calls at once find no token; the exchange stalls for ever.

    Guards against this: the first call exchanges under the token lock (gameproto_sync/client.py and
    gameproto_async/client.py ``_drive``, the ``RefreshToken`` branch) and fails at its
    deadline; the generation is unchanged, so the second, which waited for the lock without
    a bound, starts its own exchange with a fresh ``timeout``: they end at 0.6 s and 1.2 s
    although each has a deadline of 0.6 s (with n calls, the last ends at n x timeout).
    """
    api = h.client(timeout=0.6, read_timeout=15)
    h.faults.add(Fault("delay", delay=10.0), method="POST", path="/auth/token", times=100)
    started = time.monotonic()
    finished: List[float] = []

    async def call() -> Any:
        try:
            return await api.get_status()
        finally:
            finished.append(time.monotonic() - started)

    outcomes = await h.concurrently(call, call)
    assert all(isinstance(outcome, NetworkError) for outcome in outcomes), outcomes
    assert h.attempts("GET", "/status") == 0
    assert max(finished) < 0.6 + 0.3, f"calls with a 0.6 s deadline took {sorted(finished)} s"


# -- reconcile after OutcomeUnknownError ----------------------------------------------------


@scenario("reconcile_finds_the_order_a_drop_after_placed")
async def _reconcile_placed(h: Harness) -> None:
    api = h.client()
    await api.create_order(future_order("buy", 99.0, 1.0))  # a neighbour that must not match
    h.exchange.faults.add(Fault("drop_after"), method="POST", path="/orders")
    order = future_order("buy", 101.25, 3.0)
    with pytest.raises(OutcomeUnknownError):
        await api.create_order(order)
    matches = await api.find_matching_orders(order)
    assert len(matches) == 1
    assert matches[0]["price"] == 101.25 and matches[0]["volume"] == 3.0
    assert h.attempts("POST", "/orders") == 2
    assert len(h.orders()) == 2


@scenario("reconcile_finds_nothing_after_drop_before_and_a_resend_places_it_once")
async def _reconcile_not_placed(h: Harness) -> None:
    h.exchange.faults.add(Fault("drop_before"), method="POST", path="/orders")
    api = h.client()
    order = future_order("sell", 250.5, 2.0)
    with pytest.raises(OutcomeUnknownError):
        await api.create_order(order)
    assert await api.find_matching_orders(order) == []
    await api.create_order(order)
    assert len(await api.find_matching_orders(order)) == 1
    assert h.attempts("POST", "/orders") == 2
    assert_placed_once(h, [order])


# -- the tests: every scenario, through each client -----------------------------------------


@pytest.mark.parametrize("name", scenario_params())
def test_blocking(name: str, server: RunningServer[Exchange]) -> None:
    harness = BlockingHarness(server)
    try:
        run_blocking(SCENARIOS[name](harness))
    finally:
        run_blocking(harness.aclose())
    assert server.exchange.internal_errors == []


@pytest.mark.anyio
@pytest.mark.parametrize("name", scenario_params())
async def test_async(name: str, aserver: RunningServer[Exchange]) -> None:
    harness = AsyncHarness(aserver)
    try:
        await SCENARIOS[name](harness)
    finally:
        await harness.aclose()
    assert aserver.exchange.internal_errors == []
