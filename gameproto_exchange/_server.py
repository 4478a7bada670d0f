"""The embedded exchange over HTTP/1.1: h11 on anyio sockets (asyncio and trio).

The server only moves bytes. It turns each HTTP request under ``/api/v1`` into a
:class:`~gameproto._boundary.Request`, asks the exchange how to react, and carries
the :class:`~gameproto.simulator.faults.Reaction` out: wait, then answer or
close without a word. Everything the exchange decides stays in the exchange.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import ssl
import sys
import time
import types
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from email.utils import formatdate
from http import HTTPStatus
from typing import (
    Any,
    AsyncIterator,
    Callable,
    ContextManager,
    Dict,
    Generic,
    Iterable,
    List,
    Optional,
    Protocol,
    Tuple,
    Type,
    TypeVar,
)
from urllib.parse import parse_qsl, urlsplit

import anyio
import anyio.from_thread
import h11
from anyio.abc import ByteStream, SocketAttribute, SocketListener, TaskGroup
from anyio.streams.tls import TLSStream

from gameproto._boundary import Request, Response
from gameproto._constants import (
    API_PREFIX,
    SERVER_BODY_TIMEOUT,
    SERVER_CLIENT_HEADER,
    SERVER_HEAD_TIMEOUT,
    SERVER_IDLE_TIMEOUT,
    SERVER_MAX_BODY,
    SERVER_MAX_BUFFERED,
    SERVER_MAX_CONNECTIONS,
    SERVER_MAX_CONNECTIONS_PER_ADDRESS,
    SERVER_MIN_RATE,
)
from gameproto.simulator.faults import Reaction

__all__ = ["Limits", "Reactor", "RunningServer", "ServerThread", "serve_exchange"]

logger = logging.getLogger("gameproto.server")

#: Bytes asked of the socket at a time.
READ_SIZE = 64 * 1024
#: The largest piece of an answer written at once; a larger answer is written piece by piece.
SEND_PIECE = 256 * 1024
#: How long a refused client may keep sending before the socket is closed on it.
LINGER_SECONDS = 1.0
#: The body of a request refused from its head is read (and dropped) up to this size,
#: so that a small malformed one still earns its 400; a larger one is not read at all.
_DROP_AT_MOST = 16 * 1024


class Reactor(Protocol):
    """Anything the server can serve: the exchange, or a stand-in in tests.

    Each request carries the client's address in the ``x-gameproto-client``
    header. A reactor may also offer ``screen(request) -> Optional[Response]``:
    the refusal a request earns from its head alone, asked before any body byte is read.
    """

    def react(self, request: Request) -> Reaction: ...


ExchangeT = TypeVar("ExchangeT", bound=Reactor)


@dataclass(frozen=True)
class Limits:
    """The connection discipline of one server (``game serve`` flags; defaults in ``_constants``)."""

    #: A keep-alive connection waiting this long for the next request is closed.
    idle_timeout: float = SERVER_IDLE_TIMEOUT
    #: Bodies larger than this are refused (413).
    max_body: int = SERVER_MAX_BODY
    #: The whole request head must arrive within this of its first byte.
    head_timeout: float = SERVER_HEAD_TIMEOUT
    #: The whole body must arrive within this, however it trickles.
    body_timeout: float = SERVER_BODY_TIMEOUT
    #: Bytes a second a body or an answer must move at, after a grace of ``head_timeout``.
    min_rate: float = SERVER_MIN_RATE
    #: Connections held at once; the stalest idle or incomplete one makes room for a new one.
    max_connections: int = SERVER_MAX_CONNECTIONS
    #: Connections one client address holds at once, with the same eviction within it.
    max_connections_per_address: int = SERVER_MAX_CONNECTIONS_PER_ADDRESS
    #: Request body bytes held across all connections; a body that would pass it is refused (503).
    max_buffered: int = SERVER_MAX_BUFFERED
    #: ``Host`` names answered besides the loopback ones (``--allowed-host``), any port. A server bound
    #: to a loopback address answers only those and loopback names (a page whose name was rebound to
    #: 127.0.0.1 cannot read it); one bound elsewhere answers any ``Host`` unless names are given.
    allowed_hosts: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        named = tuple(_host_name(name) for name in self.allowed_hosts)
        for given, name in zip(self.allowed_hosts, named):
            if not name:
                raise ValueError(f"allowed_hosts: {given!r} is not a host name (give it without a scheme or path)")
        object.__setattr__(self, "allowed_hosts", named)
        for name in ("idle_timeout", "head_timeout", "body_timeout", "min_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("max_body", "max_connections", "max_connections_per_address", "max_buffered"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")

    def transfer_time(self, size: int, cap: float) -> float:
        """Seconds allowed to move ``size`` bytes: the grace plus the size at the minimum rate, at most ``cap``."""
        return min(cap, self.head_timeout + size / self.min_rate)


def _host_name(value: str) -> str:
    """The name in a ``Host`` value, lower case, without its port, brackets or final dot; '' if it is none."""
    value = value.strip().lower()
    if value.startswith("["):  # an IPv6 literal: [::1] or [::1]:8080
        end = value.find("]")
        rest = value[end + 1 :] if end > 0 else "x"
        name = value[1:end] if rest == "" or (rest.startswith(":") and rest[1:].isdigit()) else ""
    elif value.count(":") == 1:
        name, port = value.split(":")
        name = name if port.isdigit() or port == "" else ""
    else:
        name = "" if ":" in value else value
    name = name.rstrip(".")
    if not name or any(char in name for char in "/?#@ \t"):
        return ""
    return name


def is_loopback_name(name: str) -> bool:
    """Whether a host name (as ``_host_name`` gives it) can only mean this machine."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_allowed(value: Optional[str], bound: str, allowed: Tuple[str, ...]) -> bool:
    """Whether a server bound to ``bound`` answers a request whose ``Host`` is ``value`` (None: none sent)."""
    if not allowed and not is_loopback_name(_host_name(bound) or bound):
        return True  # bound to a public address with no names given: whatever name reached it
    if value is None:
        return True  # HTTP/1.0 without Host: no browser sends that, so no rebound page either
    name = _host_name(value)
    return bool(name) and (is_loopback_name(name) or name in allowed)


class RunningServer(Generic[ExchangeT]):
    """A listening server: where it is, what it serves, and how busy it has been."""

    def __init__(self, exchange: ExchangeT, host: str, port: int, scheme: str) -> None:
        self.exchange = exchange
        self.host = host
        self.port = port
        self.scheme = scheme
        self.connections_accepted = 0
        self.requests_served = 0
        #: Connections closed to make room for a new one (the stalest idle or incomplete).
        self.connections_evicted = 0
        #: Connections closed on arrival: every held one was busy answering.
        self.connections_refused = 0
        #: Connections closed for missing a deadline (idle, head, body or answer).
        self.connections_timed_out = 0
        #: Connections held right now, and the most held at once.
        self.connections_open = 0
        self.connections_peak = 0
        #: Request body bytes held right now.
        self.buffered = 0

    @property
    def base_url(self) -> str:
        """``scheme://host:port``, without the ``/api/v1`` prefix (what clients take)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The base URL with the API prefix, where the paths of the protocol start."""
        return self.base_url + API_PREFIX

    def __repr__(self) -> str:
        return f"RunningServer({self.base_url!r}, connections_accepted={self.connections_accepted})"


class _Refused(Exception):
    """The request is answered with ``status`` and the connection closed."""

    def __init__(self, status: int, detail: str, response: Optional[Response] = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.response = response


class _Late(Exception):
    """The client missed a deadline: idle too long, or a head or body too slow."""


def _json_response(status: int, detail: str) -> Response:
    return Response(status, {"content-type": "application/json"}, json.dumps({"detail": detail}).encode())


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def _to_request(event: h11.Request, body: bytes, client: str, prefix: str = API_PREFIX) -> Optional[Request]:
    """The exchange's view of an HTTP request, or None when it is not under ``prefix``.

    The client's address rides in a header of its own; one the client sent is dropped.
    """
    target = event.target.decode("latin-1")
    if target.startswith(("http://", "https://")):  # absolute form, as sent to a proxy
        parts = urlsplit(target)
        path, query = parts.path or "/", parts.query
    else:
        path, _, query = target.partition("?")
    if prefix and path != prefix and not path.startswith(prefix + "/"):
        return None
    sent = [
        (name.decode("latin-1").lower(), value.decode("latin-1"))
        for name, value in event.headers
        if name.lower() != _CLIENT_HEADER
    ]
    return Request(
        method=event.method.decode("ascii", "replace"),
        # The path stays percent-encoded, as Request.path is on the client side.
        path=path[len(prefix) :] or "/",
        query=tuple(parse_qsl(query, keep_blank_values=True)),
        headers=(*sent, (SERVER_CLIENT_HEADER, client)),
        body=body or None,
    )


_CLIENT_HEADER = SERVER_CLIENT_HEADER.encode("ascii")

# What a connection is doing: only "busy" (a complete request being answered) is never
# evicted; "closing" (refused, draining before the close) goes first.
_IDLE, _HEAD, _BODY, _BUSY, _CLOSING = "idle", "head", "body", "busy", "closing"


class _Connection:
    """One client: h11 driven over one byte stream, many requests in turn."""

    def __init__(self, server: _Server, stream: ByteStream, client: str) -> None:
        self.server = server
        self.limits = server.limits
        self.stream = stream
        self.client = client
        self.h11 = h11.Connection(h11.SERVER)
        self.scope = anyio.CancelScope()
        self.phase = _IDLE
        #: When this connection began waiting for its current request: how stale it is.
        self.waiting_since = anyio.current_time()
        self.reserved = 0

    async def _receive(self, deadline: float) -> int:
        """Feed h11 what the client sends next; the bytes received. _Late past ``deadline``."""
        with anyio.CancelScope(deadline=deadline):
            try:
                data = await self.stream.receive(READ_SIZE)
            except anyio.EndOfStream:
                data = b""
            self.h11.receive_data(data)
            return len(data)
        raise _Late

    async def _read_head(self) -> Any:
        """The next request head, or ConnectionClosed.

        Its first byte must come within the idle timeout, the whole head within
        the head timeout of that byte: a deadline, which trickled bytes do not move.
        """
        self.phase = _IDLE
        deadline = self.waiting_since + self.limits.idle_timeout
        if self.h11.trailing_data[0]:  # pipelined bytes already wait: the head has begun
            self.phase, deadline = _HEAD, anyio.current_time() + self.limits.head_timeout
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            received = await self._receive(deadline)
            if received and self.phase == _IDLE:
                self.phase, deadline = _HEAD, anyio.current_time() + self.limits.head_timeout

    async def _send(self, *events: Any) -> None:
        # One write per answer: head and body in one segment, not two.
        data = b"".join(self.h11.send(event) or b"" for event in events)
        if data:
            # A client that stops reading must not hold its task forever; a large answer gets its time.
            allowed = max(self.limits.idle_timeout, self.limits.transfer_time(len(data), math.inf))
            with anyio.fail_after(allowed):
                await self.stream.send(data)

    async def _respond(self, response: Response, method: bytes, close: bool = False) -> None:
        skip = {"content-length", "transfer-encoding", "connection", "server", "date"}
        headers: List[Tuple[str, str]] = [
            (name, value) for name, value in response.headers.items() if name.lower() not in skip
        ]
        headers += [
            ("content-length", str(len(response.body))),
            ("server", "gameproto"),
            ("date", formatdate(self.server.clock(), usegmt=True)),
        ]
        if close:
            headers.append(("connection", "close"))
        head = h11.Response(status_code=response.status, headers=headers, reason=_reason(response.status))
        body = response.body if method != b"HEAD" else b""
        if len(body) <= SEND_PIECE:
            await self._send(head, *([h11.Data(data=body)] if body else []), h11.EndOfMessage())
            return
        # A large answer goes in pieces, each its own write: the other connections are served
        # between them, and no copy of the whole answer is made on the way out.
        await self._send(head, h11.Data(data=body[:SEND_PIECE]))
        for start in range(SEND_PIECE, len(body), SEND_PIECE):
            await self._send(h11.Data(data=body[start : start + SEND_PIECE]))
        await self._send(h11.EndOfMessage())

    def _check_head(self, event: h11.Request) -> Optional[Response]:
        """Refuse, from the head alone, what must not be read: ambiguous framing, too large a body.

        Returns the exchange's refusal of a request with a body (no valid token,
        say): that body is never kept, and a large one never read.
        """
        names = [name for name, _ in event.headers]
        if b"transfer-encoding" in names and b"content-length" in names:
            # RFC 9112 6.3: a request with both is a smuggling attempt; answer 400 and close.
            raise _Refused(400, "a request may not have both Content-Length and Transfer-Encoding")
        declared = dict(event.headers).get(b"content-length")
        max_body = self.limits.max_body
        if declared is not None and int(declared) > max_body:  # h11 has checked it is digits
            raise _Refused(413, f"request body larger than {max_body} bytes")
        has_body = b"transfer-encoding" in names or (declared is not None and int(declared) > 0)
        screen = getattr(self.server.exchange, "screen", None)
        if has_body and screen is not None and self._host_allowed(event):
            request = _to_request(event, b"", self.client)
            if request is not None:
                refusal: Optional[Response] = screen(request)
                return refusal
        return None

    def _host_allowed(self, event: h11.Request) -> bool:
        host = dict(event.headers).get(b"host")
        given = None if host is None else host.decode("latin-1")
        return host_allowed(given, self.server.running.host, self.limits.allowed_hosts)

    def _reserve(self, size: int) -> None:
        running = self.server.running
        if running.buffered + size > self.limits.max_buffered:
            raise _Refused(503, "the exchange holds too many request bodies; try again shortly")
        running.buffered += size
        self.reserved += size

    def _release(self) -> None:
        self.server.running.buffered -= self.reserved
        self.reserved = 0

    async def _read_body(self, event: h11.Request, refusal: Optional[Response]) -> bytes:
        """The body, within its deadline. A refused request's body is read and dropped
        when small (so a malformed one still earns its 400 or 413), not read at all when large."""
        max_body = self.limits.max_body
        declared = dict(event.headers).get(b"content-length")
        expected = int(declared) if declared is not None else max_body
        if refusal is not None and (expected > _DROP_AT_MOST or self.h11.client_is_waiting_for_100_continue):
            raise _Refused(refusal.status, "", refusal)
        self.phase = _BODY
        deadline = anyio.current_time() + self.limits.transfer_time(expected, self.limits.body_timeout)
        if declared is not None and refusal is None:
            self._reserve(expected)
        if self.h11.client_is_waiting_for_100_continue:
            await self._send(h11.InformationalResponse(status_code=100, headers=[]))
        chunks: List[bytes] = []
        size = 0
        while True:
            part = self.h11.next_event()
            if part is h11.NEED_DATA:
                await self._receive(deadline)
                continue
            if isinstance(part, h11.Data):
                size += len(part.data)
                if size > max_body:  # a chunked body that keeps coming
                    raise _Refused(413, f"request body larger than {max_body} bytes")
                if refusal is not None:
                    if size > _DROP_AT_MOST:
                        raise _Refused(refusal.status, "", refusal)
                    continue  # dropped, never kept
                if declared is None:
                    self._reserve(len(part.data))
                chunks.append(part.data)
            elif isinstance(part, h11.EndOfMessage):
                if refusal is not None:
                    raise _Refused(refusal.status, "", refusal)
                return b"".join(chunks)
            else:  # pragma: no cover - h11 only yields Data then EndOfMessage here
                raise _Refused(400, "unexpected event in the request body")

    async def run(self) -> None:
        """Serve requests until the client closes, misses a deadline, or must be closed on."""
        while True:
            try:
                event = await self._read_head()
                if isinstance(event, h11.ConnectionClosed):
                    return
                assert isinstance(event, h11.Request)
                refusal = self._check_head(event)
                body = await self._read_body(event, refusal)
            except h11.RemoteProtocolError as error:
                status = error.error_status_hint  # 400, or 431 for a head too large
                await self._refuse(status, "malformed HTTP request" if status == 400 else _reason(status).decode())
                return
            except _Refused as refusal:
                await self._refuse(refusal.status, refusal.detail, refusal.response)
                return
            except _Late:
                self.server.running.connections_timed_out += 1
                return  # quietly: a client this slow is not waiting for an answer
            finally:
                self._release()
            self.phase = _BUSY
            if not await self._answer(event, body):
                return
            self.waiting_since = anyio.current_time()
            if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
                self.h11.start_next_cycle()
            else:  # the client asked to close (Connection: close, HTTP/1.0)
                return

    async def _answer(self, event: h11.Request, body: bytes) -> bool:
        """Answer one request; False when the connection is to be dropped instead."""
        if not self._host_allowed(event):
            # On every path, before anything reads or changes the exchange: a page served from another
            # name (DNS rebinding) must not read this server. Malformed requests got their 400 already.
            given = dict(event.headers).get(b"host", b"").decode("latin-1")
            shown = given[:100].encode("unicode_escape").decode("ascii")
            detail = f"this server does not answer for the host {shown!r} (game serve --allowed-host NAME adds it)"
            await self._respond(_json_response(421, detail), event.method, close=True)
            return False
        request = _to_request(event, body, self.client)
        if request is None:
            await self._respond(self._outside_api(event, body), event.method)
            return True
        try:
            reaction = self.server.exchange.react(request)
        except Exception:
            # A bug in the exchange: answer 500 and keep serving (the request repr holds no headers).
            logger.error("the exchange failed on %r", request, exc_info=True)
            await self._respond(_json_response(500, "Internal Server Error"), event.method)
            return True
        self.server.running.requests_served += 1
        if reaction.delay > 0:
            await anyio.sleep(reaction.delay)
        if reaction.response is None:
            return False  # the fault asked for a dropped connection
        await self._respond(reaction.response, event.method)
        return True

    def _outside_api(self, event: h11.Request, body: bytes) -> Response:
        """A path outside the API prefix: the reactor's ``outside_api`` answers it (the sandbox's page), else 404."""
        outside = getattr(self.server.exchange, "outside_api", None)
        if outside is None:
            return _json_response(404, "Not Found")
        try:
            response: Response = outside(_to_request(event, body, self.client, prefix=""))
        except Exception:
            logger.error("the sandbox failed on %s", event.target[:200], exc_info=True)
            return _json_response(500, "Internal Server Error")
        return response

    async def _refuse(self, status: int, detail: str, response: Optional[Response] = None) -> None:
        """Answer an error if h11 still allows it, then close after draining what the client sends."""
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        self.phase = _BUSY
        await self._respond(response or _json_response(status, detail), b"", close=True)
        await self._linger()

    async def _linger(self) -> None:
        # Closing with unread bytes makes the kernel send RST, and the client may lose
        # the answer we just sent; so stop writing and read (and drop) for a moment first.
        self.phase = _CLOSING
        try:
            await self.stream.send_eof()
        except (NotImplementedError, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return
        with anyio.move_on_after(min(LINGER_SECONDS, self.limits.idle_timeout)):
            try:
                while True:
                    await self.stream.receive(READ_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass


def _address(stream: ByteStream) -> str:
    try:
        remote = stream.extra(SocketAttribute.remote_address)
    except Exception:  # not a socket (a test's memory stream): one address for all
        return ""
    return str(remote[0]) if isinstance(remote, tuple) else str(remote)


class _Server:
    """The serving machinery behind a :class:`RunningServer`."""

    def __init__(self, running: RunningServer[Any], ssl_context: Optional[ssl.SSLContext], limits: Limits) -> None:
        self.running = running
        self.exchange: Reactor = running.exchange
        # The Date header tells the exchange's time, which may be shifted from the host's.
        exchange_now = getattr(running.exchange, "now", None)
        self.clock: Callable[[], float] = exchange_now if callable(exchange_now) else time.time
        self.ssl_context = ssl_context
        self.limits = limits
        # Insertion-ordered sets: every held connection, and those of each address.
        self.connections: Dict[_Connection, None] = {}
        self.by_address: Dict[str, Dict[_Connection, None]] = {}

    def _stalest(self, among: Iterable[_Connection]) -> Optional[_Connection]:
        waiting = [one for one in among if one.phase != _BUSY]
        return min(waiting, key=lambda one: (one.phase != _CLOSING, one.waiting_since), default=None)

    def _evict(self, victim: _Connection) -> None:
        self._forget(victim)
        victim.scope.cancel()
        self.running.connections_evicted += 1

    def _forget(self, connection: _Connection) -> None:
        if self.connections.pop(connection, False) is None:
            self.running.connections_open -= 1
            same = self.by_address.get(connection.client)
            if same is not None:
                same.pop(connection, None)
                if not same:
                    del self.by_address[connection.client]

    def _admit(self, connection: _Connection) -> bool:
        """Hold ``connection``, closing the stalest waiting one where a cap is reached; False if none can go."""
        same = self.by_address.get(connection.client, {})
        if len(same) >= self.limits.max_connections_per_address:
            victim = self._stalest(same)
            if victim is None:
                return False
            self._evict(victim)
        if len(self.connections) >= self.limits.max_connections:
            victim = self._stalest(self.connections)
            if victim is None:
                return False
            self._evict(victim)
        self.connections[connection] = None
        self.by_address.setdefault(connection.client, {})[connection] = None
        self.running.connections_open += 1
        self.running.connections_peak = max(self.running.connections_peak, self.running.connections_open)
        return True

    async def accept_loop(self, listener: SocketListener, task_group: TaskGroup) -> None:
        while True:
            try:
                stream = await listener.accept()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            except OSError as error:
                # Out of file descriptors or a client gone before accept: wait, keep listening.
                logger.debug("accept failed: %s", error)
                await anyio.sleep(0.1)
                continue
            self.running.connections_accepted += 1
            connection = _Connection(self, stream, _address(stream))
            if not self._admit(connection):
                self.running.connections_refused += 1
                await anyio.aclose_forcefully(stream)
                continue
            task_group.start_soon(self.serve_connection, connection)

    async def serve_connection(self, connection: _Connection) -> None:
        stream = connection.stream
        try:
            with connection.scope:
                if self.ssl_context is not None:
                    with anyio.fail_after(self.limits.head_timeout):
                        stream = connection.stream = await TLSStream.wrap(
                            stream, server_side=True, ssl_context=self.ssl_context, standard_compatible=False
                        )
                await connection.run()
        except Exception as error:
            # Only the type: messages of h11 or ssl may quote what the client sent, bearer tokens included.
            logger.debug("connection closed after %s", type(error).__name__)
        finally:
            self._forget(connection)
            await anyio.aclose_forcefully(stream)


def _limits(limits: Optional[Limits], idle_timeout: Optional[float], max_body: Optional[int]) -> Limits:
    chosen = limits or Limits()
    if idle_timeout is not None:
        chosen = replace(chosen, idle_timeout=idle_timeout)
    if max_body is not None:
        chosen = replace(chosen, max_body=max_body)
    return chosen


@asynccontextmanager
async def serve_exchange(
    exchange: ExchangeT,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ssl_context: Optional[ssl.SSLContext] = None,
    idle_timeout: Optional[float] = None,
    max_body: Optional[int] = None,
    limits: Optional[Limits] = None,
) -> AsyncIterator[RunningServer[ExchangeT]]:
    """Serve ``exchange`` while the block runs; yields the :class:`RunningServer` (port 0: a free port).

    ``limits`` sets the connection discipline (``idle_timeout`` and ``max_body``,
    when given, override its fields). Leaving the block stops listening and
    closes every connection at once.
    """
    chosen = _limits(limits, idle_timeout, max_body)
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    try:
        # Every backend's TCP listeners are SocketListeners; the filter is for the type checker.
        sockets = [one for one in listener.listeners if isinstance(one, SocketListener)]
        real_port = int(sockets[0].extra(SocketAttribute.local_port))
        running = RunningServer(exchange, host, real_port, "https" if ssl_context is not None else "http")
        server = _Server(running, ssl_context, chosen)
        async with anyio.create_task_group() as task_group:
            for one in sockets:
                task_group.start_soon(server.accept_loop, one, task_group)
            try:
                yield running
            finally:
                task_group.cancel_scope.cancel()
    finally:
        await anyio.aclose_forcefully(listener)


class ServerThread(Generic[ExchangeT]):
    """The same server on its own event loop in a background thread, for blocking code.

    ``with ServerThread(exchange) as running:`` listens before the block starts and is
    stopped (connections closed, thread joined) when it ends.
    """

    def __init__(
        self,
        exchange: ExchangeT,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: Optional[ssl.SSLContext] = None,
        backend: str = "asyncio",
        *,
        idle_timeout: Optional[float] = None,
        max_body: Optional[int] = None,
        limits: Optional[Limits] = None,
    ) -> None:
        self.exchange = exchange
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.backend = backend
        self.limits = _limits(limits, idle_timeout, max_body)
        self.running: Optional[RunningServer[ExchangeT]] = None
        self._portal: Optional[ContextManager[anyio.from_thread.BlockingPortal]] = None
        self._served: Optional[ContextManager[RunningServer[ExchangeT]]] = None

    def start(self) -> RunningServer[ExchangeT]:
        """Start the thread and return once the server listens."""
        if self.running is not None:
            raise RuntimeError("the server is already running")
        portal_cm = anyio.from_thread.start_blocking_portal(self.backend)
        portal = portal_cm.__enter__()
        try:
            served = portal.wrap_async_context_manager(
                serve_exchange(
                    self.exchange,
                    self.host,
                    self.port,
                    ssl_context=self.ssl_context,
                    limits=self.limits,
                )
            )
            running = served.__enter__()
        except BaseException:
            portal_cm.__exit__(*sys.exc_info())
            raise
        self._portal, self._served, self.running = portal_cm, served, running
        return running

    def stop(self) -> None:
        """Stop serving, close every connection and join the thread; harmless when stopped."""
        portal, served = self._portal, self._served
        self._portal = self._served = self.running = None
        try:
            if served is not None:
                served.__exit__(None, None, None)
        finally:
            if portal is not None:
                portal.__exit__(None, None, None)

    def __enter__(self) -> RunningServer[ExchangeT]:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[types.TracebackType],
    ) -> None:
        self.stop()
