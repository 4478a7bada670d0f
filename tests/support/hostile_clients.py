"""Hostile clients of the embedded exchange: each attack one function, over raw sockets.

Used by the quick tests (``tests/exchange/test_server_hostile.py``, small sizes) and by the
scenario runner (``python -m benchmarks.hostile_load``, the sizes of the report).
Every attack talks to one loopback address only, opens a bounded number of
connections and stops at its own deadline; none of them needs the server's code.
A :class:`WellBehavedClient` keeps calling meanwhile and records what it got.
"""

from __future__ import annotations

import collections
import datetime as dt
import http.client
import itertools
import json
import multiprocessing
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Counter, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

__all__ = [
    "Outcome",
    "WellBehavedClient",
    "access_token",
    "big_book",
    "book_flood",
    "both_length_headers",
    "connection_flood",
    "foreign_hosts",
    "read_answer",
    "sandbox_bad_bodies",
    "sandbox_bad_clock_values",
    "sandbox_guesses_from_many_addresses",
    "sandbox_without_admin_token",
    "sandbox_wrong_admin_token",
    "slow_body",
    "slowloris",
    "token_exchanges",
    "token_guesses",
    "unique_paths",
    "unknown_fields_order",
]

_LOOPBACK = ("127.0.0.1", "::1", "localhost")
# Answers larger than this are read and counted, never kept.
_KEEP_BODY = 64 * 1024


@dataclass
class Outcome:
    """What one attack did and what the server made of it."""

    attack: str
    connections: int = 0
    requests: int = 0
    statuses: Counter[int] = field(default_factory=collections.Counter)
    #: Connections the server closed (end of stream or reset) while the attack still used them.
    closed_by_server: int = 0
    #: Connections that could not be opened at all.
    refused: int = 0
    largest_answer: int = 0
    retry_after: List[str] = field(default_factory=list)
    note: str = ""

    def merge(self, other: Outcome) -> None:
        self.connections += other.connections
        self.requests += other.requests
        self.statuses.update(other.statuses)
        self.closed_by_server += other.closed_by_server
        self.refused += other.refused
        self.largest_answer = max(self.largest_answer, other.largest_answer)
        self.retry_after.extend(other.retry_after[:10])


def _check_loopback(host: str) -> None:
    if host not in _LOOPBACK:
        raise ValueError(f"hostile clients only talk to loopback, not {host!r}")


def _connect(host: str, port: int, timeout: float = 5.0) -> socket.socket:
    _check_loopback(host)
    return socket.create_connection((host, port), timeout=timeout)


def read_answer(sock: socket.socket) -> Optional[Tuple[int, Dict[str, str], bytes, int]]:
    """One HTTP answer from ``sock``: status, headers, body (cut at 64 KiB) and body size; None when closed."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        try:
            data = sock.recv(65536)
        except OSError:
            return None
        if not data:
            return None
        buffer += data
        if len(buffer) > 1_000_000:
            return None
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    size = len(rest)
    kept = rest[:_KEEP_BODY]
    while size < length:
        try:
            data = sock.recv(min(262144, length - size))
        except OSError:
            return None
        if not data:
            return None
        size += len(data)
        if len(kept) < _KEEP_BODY:
            kept += data[: _KEEP_BODY - len(kept)]
    return status, headers, kept, size


def _closed(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (end of stream or reset), without waiting."""
    try:
        sock.setblocking(False)
        try:
            data = sock.recv(65536)
        finally:
            sock.setblocking(True)
    except BlockingIOError:
        return False
    except OSError:
        return True
    if data:  # an answer (a refusal); the close usually follows
        return False
    return True


def _close_all(sockets: List[socket.socket]) -> None:
    for sock in sockets:
        try:
            sock.close()
        except OSError:
            pass


def _request(method: str, path: str, body: bytes = b"", headers: Optional[Dict[str, str]] = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def access_token(host: str, port: int, personal_token: str) -> str:
    """An access token for ``personal_token``, exchanged the way a client does."""
    with _connect(host, port) as sock:
        sock.sendall(_request("POST", "/api/v1/auth/token", json.dumps({"token": personal_token}).encode()))
        answer = read_answer(sock)
    if answer is None or answer[0] != 200:
        raise RuntimeError(f"token exchange failed: {answer and answer[0]}")
    return str(json.loads(answer[2])["access_token"])


def future_order(side: str = "buy", price: float = 50.0, volume: float = 1.0) -> Dict[str, Any]:
    """A valid order for a quarter hour of tomorrow, in UTC."""
    day = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).date().isoformat()
    return {
        "side": side,
        "price": price,
        "volume": volume,
        "date": day,
        "start_time": "10:00",
        "end_time": "10:15",
        "duration": "15m",
        "tz_offset_hours": 0,
    }


class WellBehavedClient:
    """A trader that keeps calling ``GET /status`` and ``GET /orders`` over keep-alive connections.

    Runs in a thread between ``start()`` and ``stop()``; records each call's latency
    (connecting included) and every failure. It opens a new connection every
    ``reconnect_every`` calls, as a pool whose idle connections expire does, and
    after a failure.
    """

    def __init__(
        self,
        host: str,
        port: int,
        personal_token: str,
        *,
        timeout: float = 60.0,
        pause: float = 0.05,
        reconnect_every: int = 5,
    ) -> None:
        _check_loopback(host)
        self.host, self.port, self.personal_token = host, port, personal_token
        self.timeout, self.pause, self.reconnect_every = timeout, pause, reconnect_every
        self.latencies: List[float] = []
        self.statuses: Counter[int] = collections.Counter()
        self.failures: List[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="well-behaved-client", daemon=True)
        self._access = ""

    @property
    def answers(self) -> int:
        return sum(self.statuses.values())

    @property
    def worst_latency(self) -> float:
        return max(self.latencies, default=0.0)

    def start(self) -> WellBehavedClient:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def __enter__(self) -> WellBehavedClient:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def wait_for_answers(self, count: int, limit: float = 30.0) -> bool:
        """Block until ``count`` more answers came (or ``limit`` seconds passed); whether they came."""
        target = self.answers + count
        end = time.monotonic() + limit
        while self.answers < target and time.monotonic() < end and self._thread.is_alive():
            time.sleep(0.01)
        return self.answers >= target

    def _call(self, connection: http.client.HTTPConnection, method: str, path: str, body: Optional[bytes]) -> int:
        headers = {"Content-Type": "application/json"}
        if path != "/api/v1/auth/token":
            headers["Authorization"] = f"Bearer {self._access}"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        if path == "/api/v1/auth/token" and response.status == 200:
            self._access = json.loads(payload)["access_token"]
        return response.status

    def _run(self) -> None:
        connection: Optional[http.client.HTTPConnection] = None
        calls = [("GET", "/api/v1/status"), ("GET", "/api/v1/orders")]
        turn = 0
        while not self._stop.is_set():
            if connection is not None and turn % self.reconnect_every == 0:
                connection.close()
                connection = None
            if connection is None:
                connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            if not self._access:
                method, path, body = "POST", "/api/v1/auth/token", json.dumps({"token": self.personal_token}).encode()
            else:
                method, path = calls[turn % 2]
                body = None
                turn += 1
            started = time.monotonic()
            try:
                status = self._call(connection, method, path, body)
            except (OSError, http.client.HTTPException) as error:
                self.latencies.append(time.monotonic() - started)
                self.failures.append(f"{method} {path}: {type(error).__name__}")
                connection.close()
                connection = None
                continue
            self.latencies.append(time.monotonic() - started)
            self.statuses[status] += 1
            if status == 401:
                self._access = ""
            self._stop.wait(self.pause)
        if connection is not None:
            connection.close()


def _keep_alive(
    outcome: Outcome, host: str, port: int, messages: Iterable[bytes], end: float, timeout: float = 5.0
) -> Iterator[Tuple[int, Dict[str, str], bytes, int]]:
    """Send ``messages`` one after another on a keep-alive connection, reopened when the server closes it.

    Yields each answer; counts connections, requests, closes and statuses in
    ``outcome``; stops at ``end`` (a ``time.monotonic()`` reading).
    """
    sock: Optional[socket.socket] = None
    try:
        for message in messages:
            if time.monotonic() > end:
                break
            if sock is None:
                sock = _connect(host, port, timeout=timeout)
                outcome.connections += 1
            try:
                sock.sendall(message)
                outcome.requests += 1
                answer = read_answer(sock)
            except OSError:
                answer = None
            if answer is None:
                outcome.closed_by_server += 1
                sock.close()
                sock = None
                continue
            outcome.statuses[answer[0]] += 1
            yield answer
    finally:
        if sock is not None:
            sock.close()


# -- the attacks ----------------------------------------------------------------------------


def unknown_fields_order(
    host: str, port: int, access: str, *, fields: int = 60_000, repeat: int = 1, deadline: float = 60.0
) -> Outcome:
    """POST ``repeat`` orders, each a valid order plus ``fields`` unknown fields (about 1 MB at 60,000)."""
    outcome = Outcome("unknown_fields")
    order: Dict[str, Any] = future_order()
    # Near-misses of "volume", so a fuzzy "did you mean" has work to do; 60,000 make 0.9 MB.
    order.update({f"volum{number:05d}": 1 for number in range(fields)})
    body = json.dumps(order, separators=(",", ":")).encode()
    message = _request("POST", "/api/v1/orders", body, {"Authorization": f"Bearer {access}"})
    end = time.monotonic() + deadline
    for answer in _keep_alive(outcome, host, port, itertools.repeat(message, repeat), end, timeout=deadline):
        outcome.largest_answer = max(outcome.largest_answer, answer[3])
        if answer[0] == 422 and not outcome.note:
            outcome.note = answer[2][-300:].decode("utf-8", "replace")
    return outcome


def slowloris(
    host: str,
    port: int,
    *,
    connections: int,
    interval: float,
    duration: float,
    reconnect: bool = False,
    stop: Optional[threading.Event] = None,
) -> Outcome:
    """Hold ``connections`` requests whose head never ends: one header line each every ``interval`` s.

    With ``reconnect`` a connection the server closes is opened again, so the
    pressure stays; the attack ends after ``duration`` seconds.
    """
    outcome = Outcome("slowloris")
    sockets: List[socket.socket] = []
    end = time.monotonic() + duration

    def opened() -> Optional[socket.socket]:
        try:
            sock = _connect(host, port, timeout=2.0)
        except OSError:
            outcome.refused += 1
            return None
        outcome.connections += 1
        try:
            sock.sendall(b"POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        except OSError:
            outcome.closed_by_server += 1
            sock.close()
            return None
        outcome.requests += 1
        return sock

    try:
        for _ in range(connections):
            if time.monotonic() > end or (stop is not None and stop.is_set()):
                break
            sock = opened()
            if sock is not None:
                sockets.append(sock)
        line = 0
        while time.monotonic() < end and not (stop is not None and stop.is_set()):
            pause = min(interval, max(0.0, end - time.monotonic()))
            if stop is not None:
                stop.wait(pause)
            else:
                time.sleep(pause)
            line += 1
            alive: List[socket.socket] = []
            for sock in sockets:
                try:
                    if _closed(sock):
                        raise ConnectionResetError
                    sock.sendall(f"X-Slow-{line}: {line}\r\n".encode())
                    alive.append(sock)
                except OSError:
                    outcome.closed_by_server += 1
                    sock.close()
            if reconnect:
                while len(alive) < connections and time.monotonic() < end:
                    sock = opened()
                    if sock is None:
                        break
                    alive.append(sock)
            sockets = alive
    finally:
        _close_all(sockets)
    return outcome


def slow_body(
    host: str,
    port: int,
    *,
    connections: int,
    body_size: int = 1024 * 1024,
    unsent: int = 500,
    interval: float = 10.0,
    duration: float = 30.0,
    authorization: Optional[str] = None,
) -> Outcome:
    """``connections`` POSTs declaring ``body_size`` bytes: all but ``unsent`` sent, then a byte each ``interval`` s."""
    outcome = Outcome("slow_body")
    sockets: List[socket.socket] = []
    end = time.monotonic() + duration
    headers = {"Content-Type": "application/json", "Content-Length": str(body_size)}
    if authorization is not None:
        headers["Authorization"] = authorization
    head = "POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    chunk = b"x" * (body_size - unsent)
    try:
        for _ in range(connections):
            if time.monotonic() > end:
                break
            try:
                sock = _connect(host, port, timeout=2.0)
            except OSError:
                outcome.refused += 1
                continue
            outcome.connections += 1
            outcome.requests += 1
            try:
                sock.sendall(head.encode() + b"\r\n")
                sock.settimeout(0.5)  # the server may stop reading: send what the kernel takes
                sock.sendall(chunk)
            except OSError:
                pass  # a refusal, or a full window: both are checked below
            sock.settimeout(2.0)
            sockets.append(sock)
        while time.monotonic() < end and sockets:
            time.sleep(min(interval, max(0.0, end - time.monotonic())))
            alive = []
            for sock in sockets:
                try:
                    if _closed(sock):
                        raise ConnectionResetError
                    sock.settimeout(0.2)
                    sock.send(b"x")
                    alive.append(sock)
                except socket.timeout:
                    alive.append(sock)
                except OSError:
                    outcome.closed_by_server += 1
                    sock.close()
            sockets = alive
    finally:
        _close_all(sockets)
    return outcome


def unique_paths(
    host: str, port: int, *, requests: int, path_length: int = 8000, deadline: float = 120.0, access: str = ""
) -> Outcome:
    """``requests`` GETs, each to a new ``path_length``-character path under ``/api/v1/``, on keep-alive."""
    outcome = Outcome("unique_paths")
    headers = {"Authorization": f"Bearer {access}"} if access else {}
    stems = (f"/api/v1/{number:08d}/" for number in range(requests))
    messages = (_request("GET", stem + "p" * max(0, path_length - len(stem)), headers=headers) for stem in stems)
    for _ in _keep_alive(outcome, host, port, messages, time.monotonic() + deadline):
        pass
    return outcome


def token_guesses(host: str, port: int, *, guesses: int, deadline: float = 60.0) -> Outcome:
    """``guesses`` wrong personal tokens on one keep-alive connection (reopened when closed)."""
    outcome = Outcome("token_guesses")
    bodies = (json.dumps({"token": f"guess-{number:08d}"}).encode() for number in range(guesses))
    messages = (_request("POST", "/api/v1/auth/token", body) for body in bodies)
    for answer in _keep_alive(outcome, host, port, messages, time.monotonic() + deadline):
        if "retry-after" in answer[1] and len(outcome.retry_after) < 10:
            outcome.retry_after.append(answer[1]["retry-after"])
    return outcome


def token_exchanges(host: str, port: int, personal_token: str, *, count: int, deadline: float = 120.0) -> Outcome:
    """``count`` valid token exchanges on one keep-alive connection (each makes an access token)."""
    outcome = Outcome("token_exchanges")
    message = _request("POST", "/api/v1/auth/token", json.dumps({"token": personal_token}).encode())
    for _ in _keep_alive(outcome, host, port, itertools.repeat(message, count), time.monotonic() + deadline):
        pass
    return outcome


def big_book(host: str, port: int, access: str, *, orders: int, listings: int, deadline: float = 120.0) -> Outcome:
    """Rest ``orders`` buy orders (bulks of 100), then list this trader's sell orders ``listings`` times.

    Listing the sells touches none of the buys when the exchange indexes each
    trader's orders; a scan of the book pays for all of them.
    """
    outcome = Outcome("big_book")
    end = time.monotonic() + deadline
    auth = {"Authorization": f"Bearer {access}", "Content-Type": "application/json"}
    with _connect(host, port, timeout=deadline) as sock:
        outcome.connections += 1
        placed = 0
        while placed < orders and time.monotonic() < end:
            count = min(100, orders - placed)
            batch = [future_order("buy", price=10.0 + (placed + n) % 40, volume=1.0) for n in range(count)]
            sock.sendall(_request("POST", "/api/v1/orders/create-bulk", json.dumps({"orders": batch}).encode(), auth))
            answer = read_answer(sock)
            if answer is None:
                outcome.closed_by_server += 1
                return outcome
            placed += count
        outcome.note = f"{placed} orders placed"
        for _ in range(listings):
            if time.monotonic() > end:
                break
            sock.sendall(_request("GET", "/api/v1/orders?direction=sell", headers=auth))
            outcome.requests += 1
            answer = read_answer(sock)
            if answer is None:
                outcome.closed_by_server += 1
                break
            outcome.statuses[answer[0]] += 1
            outcome.largest_answer = max(outcome.largest_answer, answer[3])
    return outcome


def book_flood(
    host: str,
    port: int,
    accesses: Sequence[str],
    *,
    orders: int,
    pollers: int,
    polls: int,
    deadline: float = 300.0,
    polling: Optional[Callable[[], None]] = None,
    processes: bool = False,
) -> Outcome:
    """Flood the book, then poll it: each access token rests ``orders`` buys, then ``pollers`` poll ``/market``.

    The buys go in bulks of 100, at a price of their own each (one market
    level per order, so the market answer is as large as the book), over
    eight quarter hours of tomorrow; nothing crosses. Then ``pollers``
    keep-alive connections ask ``GET /market`` ``polls`` times each, at once.
    ``polling`` is called when the polling starts; with ``processes`` the
    pollers are processes of their own, not threads. ``note`` tells how many
    orders rest, and how many the exchange refused (a cap on resting orders).
    """
    outcome = Outcome("book_flood")
    end = time.monotonic() + deadline
    placed = refused = 0
    number = 0
    for access in accesses:
        auth = {"Authorization": f"Bearer {access}", "Content-Type": "application/json"}
        with _connect(host, port, timeout=deadline) as sock:
            outcome.connections += 1
            sent = 0
            while sent < orders and time.monotonic() < end:
                batch = []
                for _ in range(min(100, orders - sent)):
                    start = dt.time(10, 15 * (number % 4)) if number % 8 < 4 else dt.time(11, 15 * (number % 4))
                    stop = (dt.datetime.combine(dt.date.today(), start) + dt.timedelta(minutes=15)).time()
                    batch.append(
                        dict(
                            future_order("buy", price=round(10.0 + number * 0.01, 2), volume=1.0),
                            start_time=start.strftime("%H:%M"),
                            end_time=stop.strftime("%H:%M"),
                        )
                    )
                    number += 1
                body = json.dumps({"orders": batch}).encode()
                sock.sendall(_request("POST", "/api/v1/orders/create-bulk", body, auth))
                outcome.requests += 1
                answer = read_answer(sock)
                if answer is None:
                    outcome.closed_by_server += 1
                    break
                outcome.statuses[answer[0]] += 1
                sent += len(batch)
                # Each refusal names the cap; a cut answer (over 64 KiB) counts what it shows.
                refused += answer[2].count(b"resting orders, the most")
            placed += sent
    outcome.note = f"{placed - refused} orders resting, {refused} refused"
    if polling is not None:
        polling()
    message = _request("GET", "/api/v1/market", headers={"Authorization": f"Bearer {accesses[0]}"})
    if processes:  # the pollers' reading kept out of this process (and of the measuring client's way)
        with multiprocessing.get_context("fork").Pool(pollers) as pool:
            polled = pool.starmap(_poll, [(host, port, message, polls, deadline)] * pollers)
        for mine in polled:
            outcome.merge(mine)
        return outcome
    lock = threading.Lock()

    def poll() -> None:
        mine = _poll(host, port, message, polls, deadline)
        with lock:
            outcome.merge(mine)

    threads = [threading.Thread(target=poll, daemon=True) for _ in range(pollers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(deadline + 5)
    return outcome


def _poll(host: str, port: int, message: bytes, polls: int, deadline: float) -> Outcome:
    """Send ``message`` ``polls`` times on one keep-alive connection; the answers counted."""
    mine = Outcome("book_flood")
    end = time.monotonic() + deadline
    for answer in _keep_alive(mine, host, port, itertools.repeat(message, polls), end, timeout=deadline):
        mine.largest_answer = max(mine.largest_answer, answer[3])
    return mine


def both_length_headers(host: str, port: int, access: str = "") -> Outcome:
    """A request with both ``Content-Length`` and ``Transfer-Encoding``; then whether the server closed."""
    outcome = Outcome("both_length_headers")
    message = (
        "POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + (f"Authorization: Bearer {access}\r\n" if access else "")
        + "Content-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        "2\r\n{}\r\n0\r\n\r\n"
    ).encode()
    with _connect(host, port) as sock:
        outcome.connections += 1
        sock.sendall(message)
        outcome.requests += 1
        answer = read_answer(sock)
        if answer is not None:
            outcome.statuses[answer[0]] += 1
        # A server that closes answers nothing more: the next read ends the stream.
        try:
            sock.sendall(_request("GET", "/api/v1/status"))
            sock.settimeout(5.0)
            more = sock.recv(65536)
        except OSError:
            more = b""
        if not more:
            outcome.closed_by_server += 1
    return outcome


def connection_flood(
    host: str, port: int, *, connections: int, duration: float, stop: Optional[threading.Event] = None
) -> Outcome:
    """Open ``connections`` connections that never send a byte, hold them ``duration`` seconds."""
    outcome = Outcome("connection_flood")
    sockets: List[socket.socket] = []
    end = time.monotonic() + duration
    try:
        for _ in range(connections):
            try:
                sockets.append(_connect(host, port, timeout=2.0))
                outcome.connections += 1
            except OSError:
                outcome.refused += 1
        while time.monotonic() < end and not (stop is not None and stop.is_set()):
            time.sleep(0.2)
        outcome.closed_by_server = sum(1 for sock in sockets if _closed(sock))
    finally:
        _close_all(sockets)
    return outcome


def run_in_thread(attack: Callable[[], Outcome]) -> Tuple[threading.Thread, List[Outcome]]:
    """Start ``attack`` in a thread; the list receives its outcome when it ends."""
    result: List[Outcome] = []
    thread = threading.Thread(target=lambda: result.append(attack()), daemon=True)
    thread.start()
    return thread, result


# -- the sandbox's admin endpoints (game serve --admin-token) ---------------------------------------------

_SANDBOX_MOVES = (("/_sandbox/clock/advance", {"by": "15m"}), ("/_sandbox/clock/set", {"to": "2099-01-01T00:00Z"}))


def _sandbox_calls(outcome: Outcome, host: str, port: int, messages: Iterable[bytes]) -> None:
    for _ in _keep_alive(outcome, host, port, iter(list(messages)), time.monotonic() + 30.0):
        pass


def sandbox_without_admin_token(host: str, port: int) -> Outcome:
    """Every admin endpoint called with no Authorization header at all: each must be refused (401)."""
    outcome = Outcome("sandbox_without_admin_token")
    calls = [_request("POST", path, json.dumps(body).encode()) for path, body in _SANDBOX_MOVES]
    calls += [_request("POST", "/_sandbox/reset", b"{}"), _request("GET", "/_sandbox/clock", b"")]
    _sandbox_calls(outcome, host, port, calls)
    return outcome


def sandbox_wrong_admin_token(host: str, port: int, *, guesses: int) -> Outcome:
    """``guesses`` wrong admin tokens (a prefix of none, empty, other schemes among them) on the admin endpoints."""
    outcome = Outcome("sandbox_wrong_admin_token")
    tries = ["Bearer ", "Basic YWRtaW46YWRtaW4=", "Bearer " + "x" * 4096]
    tries += [f"Bearer guess-{number:06d}" for number in range(max(0, guesses - len(tries)))]
    calls = []
    for number, authorization in enumerate(tries):
        path, body = _SANDBOX_MOVES[number % 2]
        calls.append(_request("POST", path, json.dumps(body).encode(), {"Authorization": authorization}))
    _sandbox_calls(outcome, host, port, calls)
    return outcome


def sandbox_bad_clock_values(host: str, port: int, admin_token: str) -> Outcome:
    """The right admin token with clock values that are no time, go back, or go too far: each 422."""
    outcome = Outcome("sandbox_bad_clock_values")
    auth = {"Authorization": f"Bearer {admin_token}"}
    advances: List[Any] = ["-15m", "0", "0s", "fifteen minutes", "1e400", "15m;drop", None, True, [], {}, -1, 10**12]
    advances += [10**400, -(10**400), "8d", 7 * 86400 + 1, "-0", " ", "1.5.5m"]
    sets: List[Any] = ["1999-01-01T00:00Z", "not a time", "2030-13-45T99:99Z", 1893456000, None]
    sets += ["9999-12-31T23:59Z", "2030-01-01T00:00+99:00"]
    raw_bodies = [b"", b"not json", b"[1,2]", b'{"by": NaN}', b'{"by": Infinity}']
    calls = [_request("POST", "/_sandbox/clock/advance", json.dumps({"by": by}).encode(), auth) for by in advances]
    calls += [_request("POST", "/_sandbox/clock/set", json.dumps({"to": to}).encode(), auth) for to in sets]
    calls += [_request("POST", "/_sandbox/clock/advance", body, auth) for body in raw_bodies]
    _sandbox_calls(outcome, host, port, calls)
    return outcome


def sandbox_guesses_from_many_addresses(host: str, port: int, *, addresses: int, per_address: int) -> Outcome:
    """Wrong admin tokens from ``addresses`` loopback source addresses (127.0.0.2 on), ``per_address`` each:
    any local user may send from any of 127.0.0.0/8, so a limit per address alone would not hold.
    OSError where the system lets no socket bind those addresses (only Linux routes all of 127/8)."""
    _check_loopback(host)
    outcome = Outcome("sandbox_guesses_from_many_addresses")
    for number in range(addresses):
        source = f"127.0.{(number + 2) // 256}.{(number + 2) % 256}"
        for guess in range(per_address):
            sock = socket.create_connection((host, port), timeout=5.0, source_address=(source, 0))
            with sock:
                outcome.connections += 1
                path, body = _SANDBOX_MOVES[guess % 2]
                auth = {"Authorization": f"Bearer guess-{number}-{guess}"}
                sock.sendall(_request("POST", path, json.dumps(body).encode(), auth))
                outcome.requests += 1
                answer = read_answer(sock)
            if answer is None:
                outcome.closed_by_server += 1
            else:
                outcome.statuses[answer[0]] += 1
    return outcome


def sandbox_bad_bodies(host: str, port: int, admin_token: str) -> Outcome:
    """The right admin token with bodies that are no JSON object of the endpoint's one field: arrays nested
    deeper than any parser recurses, unknown or misspelt fields, a body on a reset. Each 422, nothing done."""
    outcome = Outcome("sandbox_bad_bodies")
    auth = {"Authorization": f"Bearer {admin_token}"}
    deep = b"[" * 100_000 + b"]" * 100_000
    bodies = {
        "/_sandbox/clock/advance": [deep, b'{"by": ' + deep + b"}", b'{"by": "15m", "to": "2099-01-01T00:00Z"}'],
        "/_sandbox/clock/set": [deep, b'{"to": "2099-01-01T00:00Z", "by": "15m"}', b'{"too": "2099-01-01T00:00Z"}'],
        "/_sandbox/reset": [deep, b"not json", b"[]", b'{"confirm": true}', b"null", b"\xff\xfe{}"],
    }
    calls = [_request("POST", path, body, auth) for path, some in bodies.items() for body in some]
    _sandbox_calls(outcome, host, port, calls)
    return outcome


#: ``Host`` names a page of another site could make a browser send to a loopback server (DNS rebinding),
#: and near-misses of loopback names: a loopback server that names none with ``--allowed-host`` refuses each.
FOREIGN_HOSTS = (
    "evil.example",
    "evil.example:8765",
    "EVIL.EXAMPLE.",
    "127.0.0.1.evil.example",
    "localhost.evil.example:80",
    "[::1].evil.example",
    "[::1]evil.example:80",
    "localhost@evil.example",
    "127.0.0.1:80@evil.example",
    "localhost evil.example",
    "127.0.0.256",
    "127.0.0.1:http",
    "x" * 5000 + ".example",
)


def foreign_hosts(host: str, port: int, paths: Sequence[str] = ("/", "/_view", "/api/v1/status")) -> Outcome:
    """Every path asked for under a foreign ``Host``: plainly, in the target's absolute form, and as a second
    ``Host`` header after a loopback one. A loopback server refuses each before it reads a token: 421, and
    400 for the head with two ``Host`` headers (one per path; no server may choose between them)."""
    outcome = Outcome("foreign_hosts")
    calls = []
    for path in paths:
        for name in FOREIGN_HOSTS:
            calls.append(f"GET {path} HTTP/1.1\r\nHost: {name}\r\n\r\n".encode("latin-1"))
        calls.append(f"GET http://evil.example{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode("latin-1"))
        calls.append(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n".encode("latin-1"))
    for message in calls:  # one connection each: the server closes a connection it refused
        with _connect(host, port) as sock:
            outcome.connections += 1
            outcome.requests += 1
            sock.sendall(message)
            answer = read_answer(sock)
        if answer is None:
            outcome.closed_by_server += 1
        else:
            outcome.statuses[answer[0]] += 1
            if answer[0] != (400 if message.count(b"\r\nHost: ") > 1 else 421):
                outcome.note += f"{answer[0]} for {message[:120]!r}; "
    return outcome
