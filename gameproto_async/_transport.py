"""The async client's bytes: a ``Send`` in, a ``Response`` or a ``TransportFailure`` out.

Everything that knows httpcore is here: the connection pool, the call's
deadline on every socket wait, and the one place where httpcore's exceptions
are named in the core's terms. asyncio and trio alike (httpcore picks the
backend of the running loop).
"""

from __future__ import annotations

import ssl
from typing import Any, AsyncIterable, Dict, List, Optional, Tuple, Type, Union, cast
from urllib.parse import unquote, urlsplit

import httpcore

from gameproto import ClientSettings, FailureKind, Request, Response, Send, TransportFailure
from gameproto.driver import FoldedHeaders
from gameproto.driver import defaults as _constants

from ._concurrency import current_loop
from ._deadline import DeadlineBackend, set_deadline

__all__ = ["AsyncTransport"]

# httpcore's exceptions, by the step they happened at; mapped at this one place.
_FAILURE_KINDS: Tuple[Tuple[Type[Exception], FailureKind], ...] = (
    (httpcore.ConnectTimeout, "connect_timeout"),
    (httpcore.PoolTimeout, "pool_timeout"),
    (httpcore.ConnectError, "connect"),
    (httpcore.ProxyError, "connect"),
    (httpcore.WriteTimeout, "write_timeout"),
    (httpcore.WriteError, "write"),
    (httpcore.ReadTimeout, "read_timeout"),
    (httpcore.ReadError, "read"),
    (httpcore.RemoteProtocolError, "closed"),
    (httpcore.LocalProtocolError, "protocol"),
)


def _tls_cause(error: BaseException) -> Optional[ssl.SSLError]:
    """The TLS error behind ``error``, however deep (trio wraps it twice)."""
    seen = 0
    cause: Optional[BaseException] = error
    while cause is not None and seen < 10:
        if isinstance(cause, ssl.SSLError):
            return cause
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return None


def _failure(error: Exception) -> TransportFailure:
    detail = f"{type(error).__name__}: {error}"
    tls = _tls_cause(error)
    if tls is not None:
        detail = f"{detail} ({type(tls).__name__}: {tls})"
        if isinstance(error, httpcore.ConnectError):
            # The handshake is part of connecting: nothing was sent. A TLS
            # error later on keeps its kind (a read may follow a sent POST).
            return TransportFailure("tls", detail)
    for kind_of_error, kind in _FAILURE_KINDS:
        if isinstance(error, kind_of_error):
            return TransportFailure(kind, detail)
    return TransportFailure("read", detail)


def _ssl_context(verify: Union[bool, str]) -> Optional[ssl.SSLContext]:
    if verify is True:
        return None  # httpcore's default: verified, with certifi's CA bundle
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    import os

    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    try:
        return ssl.create_default_context(cafile=verify)
    except (OSError, ssl.SSLError) as error:
        raise ValueError(f"verify_ssl: cannot load the CA bundle {verify!r}: {error}") from None


_CACHE_LIMIT = 256
_TRANSPORT_ERRORS = (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError, httpcore.ProxyError)
_METHODS = {"GET": b"GET", "POST": b"POST", "DELETE": b"DELETE"}


class _TooLarge(Exception):
    """The answer is longer than the client reads."""


def _proxy(url: Optional[str], verify: Union[bool, str]) -> Optional[httpcore.Proxy]:
    """httpcore's proxy for the URL the settings chose; its credentials go in Proxy-Authorization."""
    if url is None:
        return None
    parts = urlsplit(url)
    auth = None
    if parts.username is not None:
        auth = (unquote(parts.username), unquote(parts.password or ""))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    tls = _ssl_context(verify) if parts.scheme == "https" else None
    return httpcore.Proxy(f"{parts.scheme}://{host}{port}", auth=auth, ssl_context=tls)


class AsyncTransport:
    """A pool of connections to one exchange, used by many tasks of one event loop.

    A pool belongs to the event loop it was first used in. Used from a new
    loop (a second ``asyncio.run()``, or trio after asyncio), the transport
    drops the old loop's pool without touching it (its loop is gone, and
    awaiting its close there is impossible) and starts a new one.
    """

    def __init__(self, settings: ClientSettings) -> None:
        self._settings = settings
        self._api_url = settings.api_url
        self._max_bytes = settings.max_response_bytes
        self._ssl_context = _ssl_context(settings.verify) if settings.is_https else None
        self._proxy = _proxy(settings.proxy, settings.verify)
        self._pool = self._new_pool()
        self._loop: object = None
        self._prepared: Dict[Any, httpcore.Request] = {}
        self._by_identity: Dict[int, Tuple[Request, float, float, httpcore.Request]] = {}
        self._host = urlsplit(settings.api_url).netloc.rpartition("@")[2].encode("idna")

    def _new_pool(self) -> httpcore.AsyncConnectionPool:
        return httpcore.AsyncConnectionPool(
            ssl_context=self._ssl_context,
            proxy=self._proxy,
            max_connections=self._settings.max_connections,
            max_keepalive_connections=self._settings.max_connections,
            keepalive_expiry=_constants.KEEPALIVE_EXPIRY,
            retries=0,
            network_backend=DeadlineBackend(),
        )

    async def send(self, action: Send) -> Union[Response, TransportFailure]:
        """The answer to ``action.request``, or what kept it from coming."""
        loop = current_loop()
        if loop is not self._loop:
            if self._loop is not None:
                # Dropped, not closed: its connections die with their loop.
                self._pool = self._new_pool()
            self._loop = loop
        # The overall deadline bounds every socket wait, even against a
        # server that trickles bytes just fast enough to beat the read
        # timeout (see _deadline.py).
        set_deadline(action.time_left)
        try:
            # What AsyncConnectionPool.request does, for a request we built
            # ourselves, reading the body as it comes and no further than the cap
            # (here rather than in a coroutine of its own: one frame less on every resumption).
            answer = await self._pool.handle_async_request(self._prepare(action))
            try:
                # Folded once here: the core reads a few of them on every answer.
                headers = FoldedHeaders.of_lines(answer.headers)
                declared = headers.get("content-length")
                if declared is not None and declared.strip().isdigit():
                    if int(declared) > self._max_bytes:
                        raise _TooLarge(
                            f"answer of {int(declared)} bytes is longer than max_response_bytes={self._max_bytes}"
                        )
                    # h11 reads no further than a declared length: bounded, so read it whole (the fast path).
                    return Response(answer.status, headers, await answer.aread())
                body = await self._read_capped(answer)
            finally:
                # An answer left unread closes its connection (httpcore's rule).
                await answer.aclose()
            return Response(answer.status, headers, body)
        except _TRANSPORT_ERRORS as error:
            return _failure(error)
        except _TooLarge as error:
            return TransportFailure("too_large", str(error))

    async def aclose(self) -> None:
        """Close the pooled connections (those of a loop that has ended are only dropped)."""
        if self._loop is None or current_loop() is self._loop:
            await self._pool.aclose()
        else:
            self._pool = self._new_pool()

    def _prepare(self, action: Send) -> httpcore.Request:
        """The httpcore request for ``action``; a bodiless one is built once and reused.

        Building a request (URL parsing, header checks) costs as much as the
        rest of a call's bookkeeping, and a trading process asks for the same
        few reads all day with the same token and timeouts. httpcore only
        reads a request, so one object can serve calls in turn or at once.
        """
        request = action.request
        if request.body is None:
            # By the request itself first: the core hands the same one back while the token lasts
            # (held here, so its id is not reused while the entry lives).
            known = self._by_identity.get(id(request))
            if (
                known is not None
                and known[0] is request
                and known[1] == action.connect_timeout
                and known[2] == action.read_timeout
            ):
                return known[3]
        key = (request.method, request.target, request.headers, action.connect_timeout, action.read_timeout)
        if request.body is None:
            prepared = self._prepared.get(key)
            if prepared is not None:
                self._remember(request, action, prepared)
                return prepared
        headers = [(b"Host", self._host)]
        headers += [(name.encode("ascii"), value.encode("latin-1")) for name, value in request.headers]
        if request.body is not None:
            headers.append((b"Content-Length", str(len(request.body)).encode("ascii")))
        prepared = httpcore.Request(
            _METHODS.get(request.method) or request.method.encode("ascii"),
            self._api_url + request.target,
            headers=headers,
            content=request.body,
            extensions={
                "timeout": {
                    "connect": action.connect_timeout,
                    "read": action.read_timeout,
                    "write": action.read_timeout,
                    "pool": action.connect_timeout,
                }
            },
        )
        if request.body is None:
            if len(self._prepared) >= _CACHE_LIMIT:
                self._prepared.clear()
            self._prepared[key] = prepared
            self._remember(request, action, prepared)
        return prepared

    def _remember(self, request: Request, action: Send, prepared: httpcore.Request) -> None:
        if len(self._by_identity) >= _CACHE_LIMIT:
            self._by_identity.clear()
        self._by_identity[id(request)] = (request, action.connect_timeout, action.read_timeout, prepared)

    async def _read_capped(self, answer: httpcore.Response) -> bytes:
        """A body of no declared length, read as it comes and no further than the cap."""
        chunks: List[bytes] = []
        length = 0
        body = cast(AsyncIterable[bytes], answer.stream).__aiter__()
        try:
            async for chunk in body:
                length += len(chunk)
                if length > self._max_bytes:
                    raise _TooLarge(f"answer longer than max_response_bytes={self._max_bytes}; reading stopped there")
                chunks.append(chunk)
        finally:
            # httpcore's body is an async generator: finished here, in
            # this task, not by the garbage collector on some other one.
            closing = getattr(body, "aclose", None)
            if closing is not None:
                await closing()
        return b"".join(chunks)
