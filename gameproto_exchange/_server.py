"""The embedded exchange over HTTP/1.1: h11 on anyio sockets (asyncio and trio).

The server only moves bytes. It turns each HTTP request under ``/api/v1`` into a
:class:`~gameproto._boundary.Request`, asks the exchange how to react, and carries
the :class:`~gameproto.simulator.faults.Reaction` out: wait, then answer or
close without a word. Everything the exchange decides stays in the exchange.
"""

from __future__ import annotations

import json
import logging
import ssl
import sys
import time
import types
from contextlib import asynccontextmanager
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, AsyncIterator, Callable, ContextManager, Generic, List, Optional, Protocol, Tuple, Type, TypeVar
from urllib.parse import parse_qsl, urlsplit

import anyio
import anyio.from_thread
import h11
from anyio.abc import ByteStream, SocketAttribute, SocketListener, TaskGroup
from anyio.streams.tls import TLSStream

from gameproto._boundary import Request, Response
from gameproto._constants import API_PREFIX, SERVER_IDLE_TIMEOUT, SERVER_MAX_BODY
from gameproto.simulator.faults import Reaction

__all__ = ["Reactor", "RunningServer", "ServerThread", "serve_exchange", "serve_forever"]

logger = logging.getLogger("gameproto.server")

#: Bytes asked of the socket at a time.
READ_SIZE = 64 * 1024
#: How long a refused client may keep sending before the socket is closed on it.
LINGER_SECONDS = 1.0


class Reactor(Protocol):
    """Anything the server can serve: the exchange, or a stand-in in tests."""

    def react(self, request: Request) -> Reaction: ...


ExchangeT = TypeVar("ExchangeT", bound=Reactor)


class RunningServer(Generic[ExchangeT]):
    """A listening server: where it is, what it serves, and how busy it has been."""

    def __init__(self, exchange: ExchangeT, host: str, port: int, scheme: str) -> None:
        self.exchange = exchange
        self.host = host
        self.port = port
        self.scheme = scheme
        self.connections_accepted = 0
        self.requests_served = 0

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

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class _Idle(Exception):
    """The client sent nothing for the idle timeout."""


def _json_response(status: int, detail: str) -> Response:
    return Response(status, {"content-type": "application/json"}, json.dumps({"detail": detail}).encode())


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def _to_request(event: h11.Request, body: bytes) -> Optional[Request]:
    """The exchange's view of an HTTP request, or None when it is not under the API prefix."""
    target = event.target.decode("latin-1")
    if target.startswith(("http://", "https://")):  # absolute form, as sent to a proxy
        parts = urlsplit(target)
        path, query = parts.path or "/", parts.query
    else:
        path, _, query = target.partition("?")
    if path != API_PREFIX and not path.startswith(API_PREFIX + "/"):
        return None
    return Request(
        method=event.method.decode("ascii", "replace"),
        # The path stays percent-encoded, as Request.path is on the client side.
        path=path[len(API_PREFIX) :] or "/",
        query=tuple(parse_qsl(query, keep_blank_values=True)),
        headers=tuple((name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in event.headers),
        body=body or None,
    )


class _Connection:
    """One client: h11 driven over one byte stream, many requests in turn."""

    def __init__(self, server: _Server, stream: ByteStream) -> None:
        self.server = server
        self.stream = stream
        self.h11 = h11.Connection(h11.SERVER)

    async def _receive(self) -> None:
        with anyio.move_on_after(self.server.idle_timeout):
            try:
                data = await self.stream.receive(READ_SIZE)
            except anyio.EndOfStream:
                data = b""
            self.h11.receive_data(data)
            return
        raise _Idle

    async def _next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            await self._receive()

    async def _send(self, *events: Any) -> None:
        # One write per answer: head and body in one segment, not two.
        data = b"".join(self.h11.send(event) or b"" for event in events)
        if data:
            # A client that stops reading must not hold its task forever.
            with anyio.fail_after(self.server.idle_timeout):
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
        events: List[Any] = [head]
        if response.body and method != b"HEAD":
            events.append(h11.Data(data=response.body))
        events.append(h11.EndOfMessage())
        await self._send(*events)

    async def _read_body(self, event: h11.Request) -> bytes:
        max_body = self.server.max_body
        declared = dict(event.headers).get(b"content-length")
        if declared is not None and int(declared) > max_body:  # h11 has checked it is digits
            raise _Refused(413, f"request body larger than {max_body} bytes")
        if self.h11.client_is_waiting_for_100_continue:
            await self._send(h11.InformationalResponse(status_code=100, headers=[]))
        chunks: List[bytes] = []
        size = 0
        while True:
            part = await self._next_event()
            if isinstance(part, h11.Data):
                size += len(part.data)
                if size > max_body:  # a chunked body that keeps coming
                    raise _Refused(413, f"request body larger than {max_body} bytes")
                chunks.append(part.data)
            elif isinstance(part, h11.EndOfMessage):
                return b"".join(chunks)
            else:  # pragma: no cover - h11 only yields Data then EndOfMessage here
                raise _Refused(400, "unexpected event in the request body")

    async def run(self) -> None:
        """Serve requests until the client closes, goes idle, or must be closed on."""
        while True:
            try:
                event = await self._next_event()
                if isinstance(event, h11.ConnectionClosed):
                    return
                assert isinstance(event, h11.Request)
                body = await self._read_body(event)
            except h11.RemoteProtocolError as error:
                status = error.error_status_hint  # 400, or 431 for a head too large
                await self._refuse(status, "malformed HTTP request" if status == 400 else _reason(status).decode())
                return
            except _Refused as refusal:
                await self._refuse(refusal.status, refusal.detail)
                return
            except _Idle:
                return  # quietly: an idle keep-alive connection is nothing to answer
            if not await self._answer(event, body):
                return
            if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
                self.h11.start_next_cycle()
            else:  # the client asked to close (Connection: close, HTTP/1.0)
                return

    async def _answer(self, event: h11.Request, body: bytes) -> bool:
        """Answer one request; False when the connection is to be dropped instead."""
        request = _to_request(event, body)
        if request is None:
            await self._respond(_json_response(404, "Not Found"), event.method)
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

    async def _refuse(self, status: int, detail: str) -> None:
        """Answer an error if h11 still allows it, then close after draining what the client sends."""
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        await self._respond(_json_response(status, detail), b"", close=True)
        await self._linger()

    async def _linger(self) -> None:
        # Closing with unread bytes makes the kernel send RST, and the client may lose
        # the answer we just sent; so stop writing and read (and drop) for a moment first.
        try:
            await self.stream.send_eof()
        except (NotImplementedError, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            return
        with anyio.move_on_after(min(LINGER_SECONDS, self.server.idle_timeout)):
            try:
                while True:
                    await self.stream.receive(READ_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass


class _Server:
    """The serving machinery behind a :class:`RunningServer`."""

    def __init__(
        self,
        running: RunningServer[Any],
        ssl_context: Optional[ssl.SSLContext],
        idle_timeout: float,
        max_body: int,
    ) -> None:
        self.running = running
        self.exchange: Reactor = running.exchange
        # The Date header tells the exchange's time, which may be shifted from the host's.
        exchange_now = getattr(running.exchange, "now", None)
        self.clock: Callable[[], float] = exchange_now if callable(exchange_now) else time.time
        self.ssl_context = ssl_context
        self.idle_timeout = idle_timeout
        self.max_body = max_body

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
            task_group.start_soon(self.serve_connection, stream)

    async def serve_connection(self, stream: ByteStream) -> None:
        try:
            if self.ssl_context is not None:
                with anyio.fail_after(self.idle_timeout):
                    stream = await TLSStream.wrap(
                        stream, server_side=True, ssl_context=self.ssl_context, standard_compatible=False
                    )
            await _Connection(self, stream).run()
        except Exception as error:
            # Only the type: messages of h11 or ssl may quote what the client sent, bearer tokens included.
            logger.debug("connection closed after %s", type(error).__name__)
        finally:
            await anyio.aclose_forcefully(stream)


@asynccontextmanager
async def serve_exchange(
    exchange: ExchangeT,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ssl_context: Optional[ssl.SSLContext] = None,
    idle_timeout: float = SERVER_IDLE_TIMEOUT,
    max_body: int = SERVER_MAX_BODY,
) -> AsyncIterator[RunningServer[ExchangeT]]:
    """Serve ``exchange`` while the block runs; yields the :class:`RunningServer` (port 0: a free port).

    Leaving the block stops listening and closes every connection at once.
    """
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    try:
        # Every backend's TCP listeners are SocketListeners; the filter is for the type checker.
        sockets = [one for one in listener.listeners if isinstance(one, SocketListener)]
        real_port = int(sockets[0].extra(SocketAttribute.local_port))
        running = RunningServer(exchange, host, real_port, "https" if ssl_context is not None else "http")
        server = _Server(running, ssl_context, idle_timeout, max_body)
        async with anyio.create_task_group() as task_group:
            for one in sockets:
                task_group.start_soon(server.accept_loop, one, task_group)
            try:
                yield running
            finally:
                task_group.cancel_scope.cancel()
    finally:
        await anyio.aclose_forcefully(listener)


async def serve_forever(
    exchange: ExchangeT,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ready: Optional[Callable[[RunningServer[ExchangeT]], None]] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
    idle_timeout: float = SERVER_IDLE_TIMEOUT,
    max_body: int = SERVER_MAX_BODY,
) -> None:
    """Serve ``exchange`` until cancelled, calling ``ready`` once it listens."""
    async with serve_exchange(
        exchange, host, port, ssl_context=ssl_context, idle_timeout=idle_timeout, max_body=max_body
    ) as running:
        if ready is not None:
            ready(running)
        await anyio.sleep_forever()


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
        idle_timeout: float = SERVER_IDLE_TIMEOUT,
        max_body: int = SERVER_MAX_BODY,
    ) -> None:
        self.exchange = exchange
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.backend = backend
        self.idle_timeout = idle_timeout
        self.max_body = max_body
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
                    idle_timeout=self.idle_timeout,
                    max_body=self.max_body,
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
