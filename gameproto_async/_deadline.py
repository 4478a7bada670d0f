"""A call's overall deadline, enforced on every socket operation.

httpcore's timeouts bound each read and write, so a server that trickles a
byte every few seconds could hold a call for ever. Wrapping the network
backend lets each operation wait at most until the call's deadline, which
the client sets per call in a context variable (httpcore does a request's
I/O in the caller's own task, so the variable is visible there).

A cancel scope per call would do the same, but costs several times more
CPU on every call than the bookkeeping below, on asyncio and on trio.
"""

from __future__ import annotations

import contextvars
import math
import select
import sys
import time
from typing import Any, Awaitable, Iterable, Optional

import anyio
import httpcore

__all__ = ["DeadlineBackend", "set_deadline"]

_DEADLINE: contextvars.ContextVar[float] = contextvars.ContextVar("gameproto_deadline", default=math.inf)


class _DeadlineExceeded(httpcore.ReadTimeout):
    """The call's overall deadline came before the server's answer did."""


class _NoTimeToConnect(httpcore.ConnectTimeout):
    """The deadline passed before a connection was made: nothing was sent."""


def set_deadline(seconds_from_now: float) -> None:
    """Bound every socket operation of this task's next request to ``seconds_from_now``."""
    _DEADLINE.set(time.monotonic() + seconds_from_now)


def _running_trio() -> bool:
    if "trio" not in sys.modules:
        return False
    try:
        import sniffio
    except ImportError:  # pragma: no cover - trio itself depends on sniffio
        return False
    try:
        return bool(sniffio.current_async_library() == "trio")
    except sniffio.AsyncLibraryNotFoundError:
        return False


def _bounded(timeout: Optional[float], connecting: bool = False) -> float:
    left = _DEADLINE.get() - time.monotonic()
    if left <= 0:
        if connecting:
            raise _NoTimeToConnect("the call's overall deadline passed before connecting")
        raise _DeadlineExceeded("the call's overall deadline has passed")
    return left if timeout is None or timeout > left else timeout


class _DeadlineStream(httpcore.AsyncNetworkStream):
    __slots__ = ("_stream",)

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    # Plain functions handing back the inner stream's coroutine: the caller
    # awaits it directly, without one more coroutine frame per read and write.
    def read(self, max_bytes: int, timeout: Optional[float] = None) -> Awaitable[bytes]:  # type: ignore[override]
        return self._stream.read(max_bytes, _bounded(timeout))

    def write(self, buffer: bytes, timeout: Optional[float] = None) -> Awaitable[None]:  # type: ignore[override]
        if not buffer:  # h11's end of a bodiless request: nothing is written, nothing waits
            return self._stream.write(buffer, timeout)
        return self._stream.write(buffer, _bounded(timeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: Optional[str] = None, timeout: Optional[float] = None
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._stream.start_tls(ssl_context, server_hostname, _bounded(timeout))
        return _deadline_stream(stream)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


def _readable(sock: Any) -> bool:
    """httpcore's test of a kept connection: data (or its end) waiting on the socket, or no socket left."""
    descriptor = sock.fileno()
    if descriptor < 0:
        return True
    if sys.platform == "win32" or getattr(select, "poll", None) is None:
        ready, _, _ = select.select([descriptor], [], [], 0)
        return bool(ready)
    poll = select.poll()
    poll.register(descriptor, select.POLLIN)
    return bool(poll.poll(0))


class _KnownStream(_DeadlineStream):
    """One of httpcore's own streams: its socket, found once, answers httpcore's "is it readable?".

    httpcore asks before every request on a kept connection; anyio's answer
    builds a dict of attribute lookups (and calls getpeername) each time.
    """

    __slots__ = ("_inner", "_socket")

    def __init__(self, stream: httpcore.AsyncNetworkStream, inner: Any) -> None:
        super().__init__(stream)
        self._inner = inner
        self._socket: Any = None

    def get_extra_info(self, info: str) -> Any:
        if info != "is_readable":
            return self._stream.get_extra_info(info)
        sock = self._socket
        if sock is None:
            sock = self._socket = self._stream.get_extra_info("socket")
            if sock is None:
                return self._stream.get_extra_info(info)
        return _readable(sock)


class _AnyIODeadlineStream(_KnownStream):
    """httpcore's anyio stream, its reads and writes done here on the anyio stream inside it.

    The same waits with the same errors as httpcore's own, one layer fewer,
    and a cancel scope with the wait's deadline where httpcore's ``fail_after``
    nests two generator context managers around one: on every read and write,
    the hot path of a call. Only this scope's deadline cancels it, so a scope
    that caught a cancellation is a timeout.
    """

    async def read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        scope = anyio.CancelScope(deadline=anyio.current_time() + _bounded(timeout))
        try:
            with scope:
                return await self._inner.receive(max_bytes)  # type: ignore[no-any-return]
        except anyio.EndOfStream:
            return b""
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as error:
            raise httpcore.ReadError(error) from error
        raise httpcore.ReadTimeout("timed out reading")  # the scope's deadline ended the read

    async def write(self, buffer: bytes, timeout: Optional[float] = None) -> None:
        if not buffer:
            return
        scope = anyio.CancelScope(deadline=anyio.current_time() + _bounded(timeout))
        try:
            with scope:
                await self._inner.send(buffer)
                return
        except (anyio.BrokenResourceError, anyio.ClosedResourceError) as error:
            raise httpcore.WriteError(error) from error
        raise httpcore.WriteTimeout("timed out writing")


class _TrioDeadlineStream(_KnownStream):
    """httpcore's trio stream, its reads and writes done here on the trio stream inside it (as for anyio)."""

    async def read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        import trio

        scope = trio.CancelScope(deadline=trio.current_time() + _bounded(timeout))
        try:
            with scope:
                return await self._inner.receive_some(max_bytes)  # type: ignore[no-any-return]
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            raise httpcore.ReadError(error) from error
        raise httpcore.ReadTimeout("timed out reading")

    async def write(self, buffer: bytes, timeout: Optional[float] = None) -> None:
        import trio

        if not buffer:
            return
        scope = trio.CancelScope(deadline=trio.current_time() + _bounded(timeout))
        try:
            with scope:
                await self._inner.send_all(buffer)
                return
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            raise httpcore.WriteError(error) from error
        raise httpcore.WriteTimeout("timed out writing")


def _deadline_stream(stream: httpcore.AsyncNetworkStream) -> _DeadlineStream:
    """``stream`` bounded by the call's deadline; read and written directly when it is one of httpcore's own."""
    inner = getattr(stream, "_stream", None)
    if inner is not None:
        kind = type(stream).__module__
        if kind == "httpcore._backends.anyio" and type(stream).__name__ == "AnyIOStream":
            return _AnyIODeadlineStream(stream, inner)
        if kind == "httpcore._backends.trio" and type(stream).__name__ == "TrioStream":
            return _TrioDeadlineStream(stream, inner)
    return _DeadlineStream(stream)


class DeadlineBackend(httpcore.AsyncNetworkBackend):
    """httpcore's own backend choice (asyncio or trio), with every wait bounded by the call's deadline."""

    def __init__(self, backend: Optional[httpcore.AsyncNetworkBackend] = None) -> None:
        self._chosen = backend

    @property
    def _backend(self) -> httpcore.AsyncNetworkBackend:
        # Chosen on first use, as httpcore's default does: trio's own backend
        # under trio, anyio's under asyncio.
        if self._chosen is None:
            self._chosen = httpcore.TrioBackend() if _running_trio() else httpcore.AnyIOBackend()
        return self._chosen

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: Optional[float] = None,
        local_address: Optional[str] = None,
        socket_options: Optional[Iterable[Any]] = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(
            host,
            port,
            timeout=_bounded(timeout, connecting=True),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _deadline_stream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: Optional[float] = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(
            path, timeout=_bounded(timeout, connecting=True), socket_options=socket_options
        )
        return _deadline_stream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)
