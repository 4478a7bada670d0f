"""Hostile and broken servers, written byte by byte on loopback sockets.

A ``HostileServer`` reads each request off a raw socket and hands it to a
*case*: one function that writes whatever bytes it likes in answer (an
endless body, a 103 before the 200, a redirect carrying the token ...).
Behind the cases stands the pure simulator, so a case can answer honestly
where it does not mean to attack: ``honest(server, seen)`` is the answer the
exchange would give, as bytes. A new hostile case is one function.

Everything is bounded: each connection lives at most ``lifetime`` seconds,
the server accepts at most ``max_connections`` connections in all, and
``__exit__`` shuts every socket and joins every thread.

``ConnectProxy`` is a tiny HTTP proxy (CONNECT tunnels and absolute-form
forwarding) to loopback only, recording every byte it relays.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

from gameproto._boundary import Request, Response
from gameproto.simulator.exchange import Exchange
from tests.support.common import TOKEN
from tests.support.tcp import accept_loop

__all__ = [
    "Seen",
    "Case",
    "HostileServer",
    "ConnectProxy",
    "honest",
    "answer_bytes",
    "on_api",
    "endless_chunked",
    "endless_until_close",
    "huge_content_length",
    "compressed",
    "informational_first",
    "redirect_with_token",
    "issue_access_token",
    "garbage_echoing_tokens",
    "refuse_token_exchange",
    "slow_honest",
    "odd_status",
    "edited",
    "dated",
    "status_timestamp",
    "market_price",
    "order_id_listed",
    "executed_volume_listed",
    "API_PREFIX",
]

API_PREFIX = "/api/v1"
TOKEN_TARGET = API_PREFIX + "/auth/token"
#: One block of an endless body.
BLOCK = 64 * 1024


@dataclass
class Seen:
    """One request as the hostile server read it off the wire."""

    method: str
    target: str
    headers: Dict[str, str]
    body: bytes
    head: bytes = field(repr=False)

    @property
    def path(self) -> str:
        return urlsplit(self.target).path if self.target.startswith("http") else self.target.partition("?")[0]

    @property
    def is_token_exchange(self) -> bool:
        return self.path == TOKEN_TARGET

    @property
    def bearer(self) -> Optional[str]:
        value = self.headers.get("authorization", "")
        return value[len("Bearer ") :] if value.startswith("Bearer ") else None

    def as_request(self) -> Optional[Request]:
        """The simulator's view of this request (None when it is not under the API prefix)."""
        path = self.path
        if not path.startswith(API_PREFIX):
            return None
        query = urlsplit(self.target).query
        return Request(
            self.method,
            path[len(API_PREFIX) :] or "/",
            tuple(parse_qsl(query, keep_blank_values=True)),
            tuple(self.headers.items()),
            self.body or None,
        )


#: A case: write the answer to ``seen`` on ``connection``; return whether to read another request.
Case = Callable[["HostileServer", socket.socket, Seen], bool]


def answer_bytes(status: int, body: bytes = b"", headers: Tuple[Tuple[str, str], ...] = ()) -> bytes:
    """An HTTP/1.1 answer with a Content-Length, written out."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Whatever"
    lines = [f"HTTP/1.1 {status} {phrase}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _json(status: int, value: object, *headers: Tuple[str, str]) -> bytes:
    return answer_bytes(status, json.dumps(value).encode(), (("Content-Type", "application/json"), *headers))


def honest_response(server: HostileServer, seen: Seen) -> Response:
    request = seen.as_request()
    if request is None:
        return Response(404, {"content-type": "application/json"}, b'{"detail": "Not Found"}')
    return server.exchange.handle(request)


def honest(server: HostileServer, seen: Seen) -> bytes:
    """The bytes the exchange would answer ``seen`` with."""
    answer = honest_response(server, seen)
    headers = tuple((name, value) for name, value in answer.headers.items() if name.lower() != "content-length")
    return answer_bytes(answer.status, answer.body, headers)


def _send(connection: socket.socket, data: bytes) -> bool:
    try:
        connection.sendall(data)
    except OSError:
        return False
    return True


def _honestly(server: HostileServer, connection: socket.socket, seen: Seen) -> bool:
    return _send(connection, honest(server, seen))


def on_api(hostile: Case, paths: Tuple[str, ...] = ()) -> Case:
    """``hostile`` for the API's calls (those under ``paths``, when given); the token exchange answered honestly."""

    def case(server: HostileServer, connection: socket.socket, seen: Seen) -> bool:
        chosen = not paths or seen.path[len(API_PREFIX) :] in paths
        if seen.is_token_exchange or not chosen:
            return _honestly(server, connection, seen)
        return hostile(server, connection, seen)

    return case


def _endless(server: HostileServer, connection: socket.socket, head: bytes, block: bytes) -> bool:
    """``head``, then ``block`` again and again until the client hangs up (or the server's bounds end it)."""
    if not _send(connection, head):
        return False
    ends = time.monotonic() + server.lifetime
    while not server.stopping.is_set() and time.monotonic() < ends:
        if not _send(connection, block):
            break
        server.bytes_written += len(block)
    return False


def endless_chunked(server: HostileServer, connection: socket.socket, seen: Seen) -> bool:
    """200, chunked, and chunks that never end."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    block = b"%x\r\n" % BLOCK + b"[" * BLOCK + b"\r\n"
    return _endless(server, connection, head, block)


def endless_until_close(server: HostileServer, connection: socket.socket, seen: Seen) -> bool:
    """200 with neither a length nor chunks: a body that lasts until the connection closes, and never does."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
    return _endless(server, connection, head, b" " * BLOCK)


def huge_content_length(server: HostileServer, connection: socket.socket, seen: Seen) -> bool:
    """200 announcing 2 GB, then as much of it as the client will take."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2000000000\r\n\r\n"
    return _endless(server, connection, head, b" " * BLOCK)


def _bomb(encoding: str, inflated: int) -> bytes:
    if encoding == "gzip":
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    else:
        packer = zlib.compressobj(9, zlib.DEFLATED, 15)
    zeros = b"0" * (1024 * 1024)
    parts = [packer.compress(zeros) for _ in range(inflated // len(zeros))]
    return b"".join(parts) + packer.flush()


def compressed(encoding: str = "gzip", inflated: int = 64 * 1024 * 1024) -> Case:
    """200 whose body, once inflated, would be ``inflated`` bytes (a few KiB as sent)."""
    body = _bomb(encoding, inflated) if encoding in ("gzip", "deflate") else b"\x00" * 100

    def case(server: HostileServer, connection: socket.socket, seen: Seen) -> bool:
        headers = (("Content-Type", "application/json"), ("Content-Encoding", encoding))
        return _send(connection, answer_bytes(200, body, headers))

    return case


def informational_first(*statuses: int) -> Case:
    """Each of ``statuses`` (1xx answers) first, then the exchange's honest answer."""

    def case(server: HostileServer, connection: socket.socket, seen: Seen) -> bool:
        early = b"".join(
            f"HTTP/1.1 {status} Informational\r\nLink: </style.css>; rel=preload\r\n\r\n".encode()
            for status in statuses
        )
        return _send(connection, early + honest(server, seen))

    return case


def redirect_with_token(status: int = 307) -> Case:
    """A redirect whose Location (and body) carry the caller's access token."""

    def case(server: HostileServer, connection: socket.socket, seen: Seen) -> bool:
        token = seen.bearer or "none"
        location = f"https://elsewhere.invalid/collect?access_token={token}&personal={TOKEN}"
        return _send(connection, _json(status, {"detail": f"moved, token {token}"}, ("Location", location)))

    return case


def garbage_echoing_tokens(server: HostileServer, connection: socket.socket, seen: Seen) -> bool:
    """200 with a body no parser can read, quoting the caller's access token and the personal one."""
    body = json.dumps({"unexpected": f"bearer {seen.bearer} personal {TOKEN}"}).encode()
    return _send(connection, answer_bytes(200, body, (("Content-Type", "application/json"),)))


def issue_access_token(access_token: str, then: Optional[Case] = None) -> Case:
    """The token exchange answers ``access_token`` (whatever it is); calls go to ``then`` (or 503)."""

    def case(server: HostileServer, connection: socket.socket, seen: Seen) -> bool:
        if seen.is_token_exchange:
            body = json.dumps({"access_token": access_token, "expires_in": 3600}, ensure_ascii=False).encode()
            return _send(connection, answer_bytes(200, body, (("Content-Type", "application/json"),)))
        if then is not None:
            return then(server, connection, seen)
        detail = {"detail": f"service temporarily unavailable for {seen.bearer}"}
        return _send(connection, _json(503, detail))

    return case


def refuse_token_exchange(server: HostileServer, connection: socket.socket, seen: Seen) -> bool:
    """401 to every token exchange, after a moment (so that callers pile up behind it)."""
    if seen.is_token_exchange:
        time.sleep(0.5)  # long enough for every caller started meanwhile to be waiting for it
        return _send(connection, _json(401, {"detail": "invalid personal token"}))
    return _honestly(server, connection, seen)


def slow_honest(delay: float) -> Case:
    """The honest answer, ``delay`` seconds late: holds its connection busy meanwhile."""

    def case(server: HostileServer, connection: socket.socket, seen: Seen) -> bool:
        time.sleep(delay)
        return _honestly(server, connection, seen)

    return case


def odd_status(status: int, body: bytes = b'{"what": "ever"}') -> Case:
    """The exchange carries the request out, then answers ``status`` (a 2xx/3xx/6xx nobody expects)."""

    def case(server: HostileServer, connection: socket.socket, seen: Seen) -> bool:
        honest_response(server, seen)
        return _send(connection, answer_bytes(status, body, (("Content-Type", "application/json"),)))

    return case


def edited(path: str, edit: Callable[[object], object], headers: Tuple[Tuple[str, str], ...] = ()) -> Case:
    """The exchange's honest answer, its JSON body passed through ``edit`` on calls of ``path`` (and ``headers`` added).

    The request is carried out as the exchange would; only what is written back differs.
    """

    def case(server: HostileServer, connection: socket.socket, seen: Seen) -> bool:
        answer = honest_response(server, seen)
        body = answer.body
        if seen.path == API_PREFIX + path and answer.status < 300:
            body = json.dumps(edit(json.loads(body))).encode()
        kept = tuple((name, value) for name, value in answer.headers.items() if name.lower() != "content-length")
        return _send(connection, answer_bytes(answer.status, body, kept + headers))

    return case


def dated(date: str) -> Case:
    """Every answer honest, with a ``Date`` header of ``date`` (a valid HTTP date, however absurd: year 9999)."""
    return edited("", lambda body: body, (("Date", date),))


def status_timestamp(timestamp: str) -> Case:
    """``/status`` answers with ``timestamp`` as the exchange's time (e.g. an offset of ``+99:59``)."""

    def edit(body: object) -> object:
        return {**body, "timestamp": timestamp} if isinstance(body, dict) else body

    return edited("/status", edit)


def _rows(field: str, value: object) -> Callable[[object], object]:
    def edit(body: object) -> object:
        if not isinstance(body, list):
            return body
        return [{**row, field: value} if isinstance(row, dict) and field in row else row for row in body]

    return edit


def market_price(price: object, side: str = "sell") -> Case:
    """``/market``: the offers of ``side`` priced ``price`` (e.g. an integer of 401 digits); the others honest."""

    def edit(body: object) -> object:
        if not isinstance(body, list):
            return body
        return [
            {**row, "price": price} if isinstance(row, dict) and row.get("direction") == side else row for row in body
        ]

    return edited("/market", edit)


def order_id_listed(order_id: object) -> Case:
    """``/orders`` listings whose every order has the id ``order_id`` (e.g. ``ord_`` and 5,000 digits)."""
    return edited("/orders", _rows("order_id", order_id))


def executed_volume_listed(volume: object) -> Case:
    """``/orders`` listings whose every order says it executed ``volume`` (e.g. ``"1e1000000"``)."""
    return edited("/orders", _rows("executed_volume", volume))


def _read_request(connection: socket.socket, buffered: bytes) -> Tuple[Optional[Seen], bytes]:
    """The next request on ``connection`` (and what was read past it), or None when it closed."""
    data = buffered
    while b"\r\n\r\n" not in data:
        if len(data) > 65536:
            return None, b""
        chunk = connection.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    method, target = lines[0].decode("latin-1").split(" ")[:2]
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    length = int(headers.get("content-length", "0") or 0)
    while len(rest) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return None, b""
        rest += chunk
    return Seen(method, target, headers, rest[:length], head), rest[length:]


class _Listener:
    """A loopback listener, an accept thread, a thread per connection; all bounded and joined at exit."""

    def __init__(self, lifetime: float, max_connections: int) -> None:
        self.lifetime = lifetime
        self.max_connections = max_connections
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.accepted = 0
        self.open_now = 0
        self.peak_open = 0
        self._sockets: List[socket.socket] = []
        self._threads: List[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])

    def wait_until_idle(self, seconds: float) -> bool:
        """Whether every connection was closed within ``seconds``."""
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            with self.lock:
                if self.open_now == 0:
                    return True
            time.sleep(0.01)
        return False

    def take_peak(self) -> int:
        """The most connections open at once since the last ``take_peak``."""
        with self.lock:
            peak, self.peak_open = self.peak_open, self.open_now
        return peak

    def start(self) -> None:
        thread = threading.Thread(target=self._accept, daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in list(self._threads):
            thread.join(timeout=10)
        self._listener.close()

    def _accept(self) -> None:
        accept_loop(self._listener, self.stopping.is_set, self._run, self._threads, self._admit)

    def _admit(self, connection: socket.socket) -> bool:
        with self.lock:
            if self.accepted >= self.max_connections:
                connection.close()
                return False
            self.accepted += 1
            self.open_now += 1
            self.peak_open = max(self.peak_open, self.open_now)
            self._sockets.append(connection)
        return True

    def _run(self, connection: socket.socket) -> None:
        try:
            with connection:
                connection.settimeout(self.lifetime)
                self.serve(connection)
        except OSError:
            pass
        finally:
            with self.lock:
                self.open_now -= 1

    def serve(self, connection: socket.socket) -> None:
        raise NotImplementedError


class HostileServer(_Listener):
    """An HTTP server on 127.0.0.1 whose every answer is written by ``case``.

    ``seen`` lists every request read; ``peak_open`` is the most
    connections that were open at once; ``bytes_written`` counts the bytes
    of endless bodies sent.
    """

    def __init__(
        self,
        case: Case,
        *,
        exchange: Optional[Exchange] = None,
        lifetime: float = 20.0,
        max_connections: int = 256,
    ) -> None:
        super().__init__(lifetime, max_connections)
        self.case = case
        self.exchange = exchange if exchange is not None else Exchange(tokens={TOKEN: "alice"}, seed=7)
        self.seen: List[Seen] = []
        self.bytes_written = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, path: str, method: Optional[str] = None) -> int:
        """Requests seen for ``path`` (relative to the API prefix, e.g. ``/auth/token``), of ``method`` if given."""
        with self.lock:
            return sum(1 for seen in self.seen if seen.path == API_PREFIX + path and method in (None, seen.method))

    def __enter__(self) -> HostileServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve(self, connection: socket.socket) -> None:
        buffered = b""
        while not self.stopping.is_set():
            seen, buffered = _read_request(connection, buffered)
            if seen is None:
                return
            with self.lock:
                self.seen.append(seen)
            if not self.case(self, connection, seen):
                return


class ConnectProxy(_Listener):
    """An HTTP proxy to loopback: CONNECT tunnels, and absolute-form requests forwarded as they are.

    ``heads`` lists the first line of every request the proxy was sent;
    ``relayed`` holds every byte it carried from the client (inside tunnels
    too), so a test can look for a token in it.
    """

    def __init__(self, lifetime: float = 20.0, max_connections: int = 64) -> None:
        super().__init__(lifetime, max_connections)
        self.heads: List[str] = []
        self.relayed = bytearray()
        self.proxy_authorizations: List[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ConnectProxy:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve(self, connection: socket.socket) -> None:
        seen, rest = _read_request(connection, b"")
        if seen is None:
            return
        with self.lock:
            self.heads.append(f"{seen.method} {seen.target}")
            self.relayed += seen.head + b"\r\n\r\n" + seen.body
            if "proxy-authorization" in seen.headers:
                self.proxy_authorizations.append(seen.headers["proxy-authorization"])
        if seen.method == "CONNECT":
            host, _, port = seen.target.rpartition(":")
            upstream_address = (host.strip("[]"), int(port))
            first = b""
            greeting = b"HTTP/1.1 200 Connection established\r\n\r\n"
        else:
            parts = urlsplit(seen.target)
            upstream_address = (parts.hostname or "", parts.port or 80)
            # Forwarded as it came (the exchange reads absolute-form targets);
            # one request per connection keeps the relay simple.
            first = seen.head + b"\r\n\r\n" + seen.body + rest
            greeting = b""
        if upstream_address[0] not in ("127.0.0.1", "localhost", "::1"):
            _send(connection, answer_bytes(403, b"loopback only"))
            return
        with socket.create_connection(upstream_address, timeout=self.lifetime) as upstream:
            if greeting and not _send(connection, greeting):
                return
            if first and not _send(upstream, first):
                return
            self._pipe(connection, upstream)

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        ends = time.monotonic() + self.lifetime
        while not self.stopping.is_set() and time.monotonic() < ends:
            ready, _, _ = select.select([client, upstream], [], [], 0.1)
            for sock in ready:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if sock is client:
                    with self.lock:
                        self.relayed += data
                    if not _send(upstream, data):
                        return
                elif not _send(client, data):
                    return
