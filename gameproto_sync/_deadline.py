"""A call's overall deadline, enforced on every socket wait of the blocking client.

requests (urllib3) bounds each read, so a server that trickles a byte
every few seconds could hold a call for ever. The connections made here
carry sockets whose reads and writes wait at most until the deadline of the
call the current thread is making; the client sets it per call in a
thread-local. Nothing else changes: urllib3 still sets its own timeouts,
and a wait the deadline cuts short surfaces as an ordinary read timeout.
"""

from __future__ import annotations

import http.client
import math
import socket
import ssl
import threading
import time
from typing import Any, Optional

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

__all__ = ["DeadlineAdapter", "set_deadline", "clear_deadline", "time_left", "adopt"]


class _Deadline(threading.local):
    at: float = math.inf


_DEADLINE = _Deadline()


def set_deadline(seconds_from_now: float) -> None:
    """Bound every socket wait of this thread's next request to ``seconds_from_now``."""
    _DEADLINE.at = time.monotonic() + seconds_from_now


def clear_deadline() -> None:
    """No deadline for this thread's next socket waits: a borrowed client's own requests are the application's."""
    _DEADLINE.at = math.inf


def time_left() -> Optional[float]:
    """Seconds left of this thread's call (None: no deadline set)."""
    if _DEADLINE.at == math.inf:
        return None
    return max(0.0, _DEADLINE.at - time.monotonic())


def _shorten(sock: socket.socket) -> None:
    """Lower the socket's timeout to what is left of the call, if that is less."""
    left = _DEADLINE.at - time.monotonic()
    if left == math.inf:
        return
    if left <= 0:
        raise socket.timeout("the call's overall deadline has passed")
    current = sock.gettimeout()
    if current is None or current > left:
        sock.settimeout(left)


class _DeadlineSocket(socket.socket):
    __slots__ = ()  # the same layout as socket.socket, so a socket can become one

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        _shorten(self)
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        _shorten(self)
        return super().recv(bufsize, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        _shorten(self)
        super().sendall(data, flags)


class _DeadlineSSLSocket(ssl.SSLSocket):
    __slots__ = ()

    def recv_into(self, buffer: Any, nbytes: Optional[int] = None, flags: int = 0) -> int:
        _shorten(self)
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        _shorten(self)
        return super().recv(buflen, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        _shorten(self)
        super().sendall(data, flags)


def adopt(sock: Any) -> None:
    """Make ``sock`` respect the deadline of the call its thread is making (none when no call is)."""
    _adopt(sock)


def _adopt(sock: Any) -> None:
    # Only the classes we know the layout of: anything else (a proxy's
    # TLS-in-TLS wrapper, say) keeps the per-read timeouts alone.
    if type(sock) is socket.socket:
        sock.__class__ = _DeadlineSocket
    elif type(sock) is ssl.SSLSocket:
        sock.__class__ = _DeadlineSSLSocket


#: Informational answers skipped before the final one; more is a hostile server.
_MOST_INFORMATIONAL = 32
_MOST_HEADER_LINES = 200


class _FinalResponse(http.client.HTTPResponse):
    """http.client's response, skipping every 1xx answer (it skips only 100).

    A ``103 Early Hints`` before the ``200`` to a POST must not hide the
    final answer, which says whether the orders were placed.
    """

    def _read_status(self) -> Any:
        for _ in range(_MOST_INFORMATIONAL):
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not (100 < status < 200) or status == 101:
                return version, status, reason
            for _ in range(_MOST_HEADER_LINES):
                line = self.fp.readline(65537)
                if len(line) > 65536:
                    raise http.client.LineTooLong("header line")
                if line in (b"\r\n", b"\n", b""):
                    break
            else:
                raise http.client.HTTPException("an informational answer with too many header lines")
        raise http.client.HTTPException(f"more than {_MOST_INFORMATIONAL} informational answers")


class _Connection(HTTPConnection):
    response_class = _FinalResponse

    def connect(self) -> None:
        super().connect()
        _adopt(self.sock)


class _TLSConnection(HTTPSConnection):
    response_class = _FinalResponse

    def connect(self) -> None:
        super().connect()
        _adopt(self.sock)


def _pool_wait(timeout: Optional[float]) -> Optional[float]:
    # The wait for a free connection is part of the call: at most its time left.
    left = time_left()
    if left is None:
        return timeout
    return left if timeout is None else min(timeout, left)


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection

    def _get_conn(self, timeout: Optional[float] = None) -> Any:
        return super()._get_conn(_pool_wait(timeout))


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection

    def _get_conn(self, timeout: Optional[float] = None) -> Any:
        return super()._get_conn(_pool_wait(timeout))


_POOLS = {"http": _Pool, "https": _TLSPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter, with connections that respect the call's deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager
