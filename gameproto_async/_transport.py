"""The async client's bytes: a ``Send`` in, a ``Response`` or a ``TransportFailure`` out.

Everything that knows httpcore is here: the connection pool, the call's
deadline on every socket wait, and the one place where httpcore's exceptions
are named in the core's terms. asyncio and trio alike (httpcore picks the
backend of the running loop).
"""

from __future__ import annotations

import ssl
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

import httpcore

from gameproto import _constants
from gameproto._boundary import Response, Send, TransportFailure
from gameproto._settings import ClientSettings

from ._deadline import DeadlineBackend, set_deadline

__all__ = ["AsyncTransport"]

# httpcore's exceptions, by the step they happened at; mapped at this one place.
_FAILURE_KINDS = (
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


class _RawHeaders(Mapping[str, str]):
    """An answer's headers as the core reads them, decoded only when asked for.

    Most answers are read for their body alone; decoding every header of
    every answer would be wasted work on the hot path.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: List[Tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def __getitem__(self, name: str) -> str:
        wanted = name.lower().encode("latin-1")
        for key, value in self._raw:
            if key.lower() == wanted:
                return value.decode("latin-1")
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (key.decode("latin-1").lower() for key, _ in self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class AsyncTransport:
    """A pool of connections to one exchange, used by many tasks of one event loop."""

    def __init__(self, settings: ClientSettings) -> None:
        self._api_url = settings.api_url
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(settings.verify_ssl) if settings.is_https else None,
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
            keepalive_expiry=_constants.KEEPALIVE_EXPIRY,
            retries=0,
            network_backend=DeadlineBackend(),
        )
        self._prepared: Dict[Any, httpcore.Request] = {}
        self._host = urlsplit(settings.api_url).netloc.rpartition("@")[2].encode("idna")

    async def send(self, action: Send) -> Union[Response, TransportFailure]:
        """The answer to ``action.request``, or what kept it from coming."""
        # The overall deadline bounds every socket wait, even against a
        # server that trickles bytes just fast enough to beat the read
        # timeout (see _deadline.py).
        set_deadline(action.time_left)
        try:
            answer = await self._exchange(self._prepare(action))
        except _TRANSPORT_ERRORS as error:
            return _failure(error)
        return Response(answer.status, _RawHeaders(answer.headers), answer.content)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._pool.aclose()

    def _prepare(self, action: Send) -> httpcore.Request:
        """The httpcore request for ``action``; a bodiless one is built once and reused.

        Building a request (URL parsing, header checks) costs as much as the
        rest of a call's bookkeeping, and a trading process asks for the same
        few reads all day with the same token and timeouts. httpcore only
        reads a request, so one object can serve calls in turn or at once.
        """
        request = action.request
        key = (request.method, request.target, request.headers, action.connect_timeout, action.read_timeout)
        if request.body is None:
            prepared = self._prepared.get(key)
            if prepared is not None:
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
        return prepared

    async def _exchange(self, prepared: httpcore.Request) -> httpcore.Response:
        # What AsyncConnectionPool.request does, for a request we built ourselves.
        answer = await self._pool.handle_async_request(prepared)
        try:
            await answer.aread()
        finally:
            await answer.aclose()
        return answer
