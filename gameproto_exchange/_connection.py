"""One HTTP/1.1 connection of the embedded exchange: h11 events in, the exchange's reactions out.

Split from ``_server.py`` (which accepts connections and runs the server): this module reads one
connection's requests within the limits, checks the Host, and carries each reaction out. The
limits and what is served are ``_limits``, the Host rule ``_hosts``, turning what came into a
``Request`` (and telling a plain request, read without h11) ``_reading``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from email.utils import formatdate
from http import HTTPStatus
from typing import (
    TYPE_CHECKING,
    Any,
    Awaitable,
    Callable,
    FrozenSet,
    List,
    Optional,
    Tuple,
)
from urllib.parse import urlsplit

import anyio
import h11
from anyio.abc import ByteStream

from gameproto._boundary import Request, Response
from gameproto._constants import (
    API_PREFIX,
)

from ._hosts import host_name, is_loopback_name
from ._reading import exchange_request, plain_request, to_request

if TYPE_CHECKING:  # the server that owns each connection; it imports this module
    from ._server import _Server

__all__: List[str] = []  # the server (_server) alone uses the connection

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


@functools.lru_cache(maxsize=None)
def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


#: The headers of the usual answer, a JSON body and nothing else.
_JSON_ONLY = {"content-type": "application/json"}
#: The Date header of the last second written: (second, header value).
_LAST_DATE: List[Any] = [None, ""]


def _http_date(moment: float) -> str:
    """``moment`` as an HTTP date, made once a second (an answer's Date has whole seconds)."""
    second = math.floor(moment)
    if _LAST_DATE[0] != second:
        _LAST_DATE[:] = [second, formatdate(second, usegmt=True)]
    text: str = _LAST_DATE[1]
    return text


#: The usual answer's head, written without h11: the same bytes h11 writes for it.
_USUAL_HEAD = (
    b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nserver: gameproto\r\ndate: %s\r\n\r\n"
)
_FIELD_NAME = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")

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
        #: The head last screened and the request made of it (without its body), so that it is made once.
        self.screened: Optional[Tuple[h11.Request, Request]] = None
        #: The Host value of this connection's last plain request that passed the Host check.
        self.host_answered: Optional[bytes] = None

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
            await self._send_bytes(data)

    async def _send_bytes(self, data: bytes) -> None:
        # A client that stops reading must not hold its task forever; a large answer gets its time.
        allowed = max(self.limits.idle_timeout, self.limits.transfer_time(len(data), math.inf))
        # What anyio.fail_after does, without its generator-based context manager (one per answer).
        with anyio.CancelScope(deadline=anyio.current_time() + allowed) as scope:
            await self.stream.send(data)
        if scope.cancelled_caught:
            raise TimeoutError

    def _head_bytes(self, response: Response, close: bool) -> bytes:
        """The head of an answer to a plain request, as h11 writes it (its checks of the values included)."""
        status = response.status
        date = _http_date(self.server.clock()).encode("ascii")
        if not close and response.headers == _JSON_ONLY:
            return _USUAL_HEAD % (status, _reason(status), len(response.body), date)
        skip = {"content-length", "transfer-encoding", "connection", "server", "date"}
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, _reason(status))]
        for name, value in response.headers.items():
            if name.lower() in skip:
                continue
            raw_name, raw_value = name.encode("ascii"), value.encode("ascii")  # h11 takes ASCII only, too
            if _FIELD_NAME.fullmatch(raw_name) is None or _FIELD_VALUE.fullmatch(raw_value) is None:
                raise h11.LocalProtocolError(f"illegal header {name!r}")  # what h11 raises on it
            lines.append(b"%s: %s\r\n" % (raw_name, raw_value))
        lines.append(b"content-length: %d\r\nserver: gameproto\r\ndate: %s\r\n" % (len(response.body), date))
        if close:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    async def _write(self, response: Response, close: bool = False) -> None:
        """Answer a plain request (read without h11): the head and body in one write, a large body in pieces."""
        head, body = self._head_bytes(response, close), response.body
        if len(body) <= SEND_PIECE:
            await self._send_bytes(head + body)
            return
        await self._send_bytes(head + body[:SEND_PIECE])
        for start in range(SEND_PIECE, len(body), SEND_PIECE):
            await self._send_bytes(body[start : start + SEND_PIECE])

    async def _respond(self, response: Response, method: bytes, close: bool = False) -> None:
        if not close and response.headers == _JSON_ONLY:
            # The usual answer: its head is ours alone, every value known to be valid (digits, a date),
            # so h11 is told it need not check them again.
            parsed = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(response.body)).encode("ascii")),
                (b"server", b"gameproto"),
                (b"date", _http_date(self.server.clock()).encode("ascii")),
            ]
            head = h11.Response(
                status_code=response.status, headers=parsed, reason=_reason(response.status), _parsed=True
            )
        else:
            skip = {"content-length", "transfer-encoding", "connection", "server", "date"}
            headers: List[Tuple[str, str]] = [
                (name, value) for name, value in response.headers.items() if name.lower() not in skip
            ]
            headers += [
                ("content-length", str(len(response.body))),
                ("server", "gameproto"),
                ("date", _http_date(self.server.clock())),
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

    def _check_host(self, event: h11.Request) -> None:
        """Refuse (421) a request naming a host this server does not answer, on every path."""
        allowed = self.server.allowed_hosts
        if allowed is None:
            return
        named = [value.decode("latin-1") for name, value in event.headers if name == b"host"]
        target = event.target.decode("latin-1")
        if target.startswith(("http://", "https://")):  # absolute form: its authority is the host asked for
            named.append(urlsplit(target).netloc.rpartition("@")[2])
        self._check_host_names(allowed, named)

    @staticmethod
    def _check_host_names(allowed: FrozenSet[str], named: List[str]) -> None:
        for value in named:
            name = host_name(value)
            if name not in allowed and not is_loopback_name(name):
                shown = value if len(value) <= 100 else value[:100] + "..."
                raise _Refused(
                    421,
                    f"this server does not answer for the host {shown!r}: it answers loopback names"
                    + (f" and {', '.join(sorted(allowed))}" if allowed else "")
                    + " (game serve --allowed-host NAME adds one)",
                )

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
        if has_body and screen is not None:
            request = to_request(event, b"", self.client)
            if request is not None:
                self.screened = (event, request)
                refusal: Optional[Response] = screen(request)
                return refusal
        return None

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
            if not self.h11.trailing_data[0]:  # nothing h11 holds: the next request may be read plainly
                served = await self._plain()
                if served is not None:
                    if not served:
                        return
                    self.waiting_since = anyio.current_time()
                    continue
            try:
                event = await self._read_head()
                if isinstance(event, h11.ConnectionClosed):
                    return
                assert isinstance(event, h11.Request)
                self._check_host(event)
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
        screened, self.screened = self.screened, None
        if screened is not None and screened[0] is event:  # made from its head already: add the body
            head = screened[1]
            request: Optional[Request] = Request(head.method, head.path, head.query, head.headers, body or None)
        else:
            request = to_request(event, body, self.client)
        if request is None:
            await self._respond(self._outside_api(event, body), event.method)
            return True
        return await self._carry_out(request, lambda response: self._respond(response, event.method))

    async def _carry_out(self, request: Request, respond: Callable[[Response], Awaitable[None]]) -> bool:
        """Ask the exchange and carry its reaction out; False when the connection is to be dropped instead."""
        try:
            reaction = self.server.exchange.react(request)
        except Exception:
            # A bug in the exchange: answer 500 and keep serving (the request repr holds no headers).
            logger.error("the exchange failed on %r", request, exc_info=True)
            await respond(_json_response(500, "Internal Server Error"))
            return True
        self.server.running.requests_served += 1
        if reaction.delay > 0:
            await anyio.sleep(reaction.delay)
        if reaction.response is None:
            return False  # the fault asked for a dropped connection
        await respond(reaction.response)
        return True

    async def _plain(self) -> Optional[bool]:
        """Wait for the next request and serve it without h11 when it is plain and all there.

        True: served, the connection stays; False: the connection is to close (the client closed
        it or was too slow, or a refusal closes it); None: what came is h11's to read (it has it).
        Every check the h11 path makes is made here alike; a request one of them refuses is left
        to the h11 path (nothing is counted before then), except the exchange's own screening.
        """
        self.phase = _IDLE
        with anyio.CancelScope(deadline=self.waiting_since + self.limits.idle_timeout) as scope:
            try:
                data = await self.stream.receive(READ_SIZE)
            except anyio.EndOfStream:
                data = b""
        if scope.cancelled_caught:
            self.server.running.connections_timed_out += 1
            return False
        if not data:
            return False  # the client closed between requests
        self.phase = _HEAD
        plain = plain_request(data)  # the request's head, or None
        if plain is None:
            self.h11.receive_data(data)
            return None
        method, target, fields, start, size = plain
        path, _, query = target.decode("latin-1").partition("?")
        allowed = self.server.allowed_hosts
        running = self.server.running
        if (
            (path != API_PREFIX and not path.startswith(API_PREFIX + "/"))  # the pages: h11's path serves them
            or size > self.limits.max_body
            or running.buffered + size > self.limits.max_buffered
            or (allowed is not None and not self._answers_host(allowed, fields))
        ):
            self.h11.receive_data(data)  # refused or served there, as ever
            return None
        head = exchange_request(method, path, query, fields, None, self.client)
        end = start + size
        screen = getattr(self.server.exchange, "screen", None)
        if size and screen is not None:  # before the body is read, as on the h11 path
            refusal: Optional[Response] = screen(head)
            if refusal is not None:
                return await self._refuse_plain(refusal, data, end, size)
        if end > len(data):  # the body comes in a write of its own: read the rest of it here
            whole = await self._plain_body(data, end, size, reserve=True)
            if whole is None:
                return None  # the client closed mid-body: h11 has what came, and answers as it does
            if not whole:
                return False  # too slow: closed quietly, as on the h11 path
            data = whole
        if end < len(data):
            self.h11.receive_data(data[end:])  # pipelined: h11 reads what follows
        self.phase = _BUSY
        request = Request(head.method, head.path, head.query, head.headers, data[start:end] or None)
        return await self._carry_out(request, self._write)

    async def _refuse_plain(self, refusal: Response, data: bytes, end: int, size: int) -> bool:
        """Answer the exchange's refusal of a plain request and close, as the h11 path does.

        A small body is read (and dropped) first, so that one shorter than announced still earns
        its 400; a large one is not read at all. Always False: the connection closes.
        """
        if end > len(data) and size <= _DROP_AT_MOST:
            whole = await self._plain_body(data, end, size, reserve=False)
            if whole is None:
                refusal = _json_response(400, "malformed HTTP request")
            elif not whole:
                return False  # too slow: closed quietly
        self.phase = _BUSY
        await self._write(refusal, close=True)
        await self._linger()
        return False

    async def _plain_body(self, data: bytes, end: int, size: int, reserve: bool) -> Optional[bytes]:
        """``data`` read on until it holds ``end`` bytes, within the deadline of a ``size`` body.

        b"": the client was too slow (counted; the connection closes quietly, as on the h11
        path). None: the client closed first; with ``reserve`` what came and the close are then
        handed to h11. With ``reserve``, the body's size is held in the server's count of buffered
        bytes meanwhile, as on the h11 path (a refused body's is not).
        """
        self.phase = _BODY
        deadline = anyio.current_time() + self.limits.transfer_time(size, self.limits.body_timeout)
        running = self.server.running
        reserved = size if reserve else 0
        running.buffered += reserved  # the whole body, as the h11 path reserves it
        try:
            chunks = [data]
            have = len(data)
            while have < end:
                with anyio.CancelScope(deadline=deadline) as scope:
                    try:
                        part = await self.stream.receive(READ_SIZE)
                    except anyio.EndOfStream:
                        part = b""
                if scope.cancelled_caught:
                    running.connections_timed_out += 1
                    return b""
                if not part:
                    if reserve:
                        self.h11.receive_data(b"".join(chunks))
                        self.h11.receive_data(b"")
                    return None
                chunks.append(part)
                have += len(part)
            return b"".join(chunks)
        finally:
            running.buffered -= reserved

    def _answers_host(self, allowed: FrozenSet[str], fields: List[Tuple[bytes, bytes]]) -> bool:
        named = [value for name, value in fields if name == b"host"]  # one: a plain request has one
        if named[0] == self.host_answered:  # the host this connection named last, and was answered for
            return True
        try:
            self._check_host_names(allowed, [named[0].decode("latin-1")])
        except _Refused:
            return False
        self.host_answered = named[0]
        return True

    def _outside_api(self, event: h11.Request, body: bytes) -> Response:
        """A path outside the API prefix: the reactor's ``outside_api`` answers it (the sandbox's page), else 404."""
        outside = getattr(self.server.exchange, "outside_api", None)
        if outside is None:
            return _json_response(404, "Not Found")
        try:
            response: Response = outside(to_request(event, body, self.client, prefix=""))
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
