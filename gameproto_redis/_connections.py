"""The Redis connections of a shared budget, each exchange ended by its deadline.

Split from ``_shared.py`` (the budget's rule and its fallback): a pool of connections whose every
exchange is bounded by a deadline, and the one watchdog thread that shuts the socket of an exchange
still running at its deadline (a server that dribbles a byte at a time never reaches a socket timeout).
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from typing import Any, Dict, List, Sequence, Set, Tuple

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError
from redis.retry import Retry

from gameproto.driver import signals_to_the_main_thread

__all__ = ["_Connections"]


class _Watchdog:
    """One daemon thread for the process: it shuts the socket of a Redis exchange still running at its deadline.

    A socket timeout bounds each read, not the exchange: a server that sends a
    byte every 0.15 s never reaches one. Shutting the socket down ends the
    read at once (the reader sees the connection closed), in whatever thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._watched: Dict[int, Tuple[float, Any]] = {}
        self._deadlines: List[Tuple[float, int]] = []  # a heap of (deadline, token)
        self._fired: Set[int] = set()
        self._tokens = itertools.count()
        self._pid = -1

    def watch(self, deadline: float, connection: Any) -> int:
        """Watch ``connection`` until ``done``; at ``deadline`` (monotonic) its socket is shut."""
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked child: the thread is its own
                self._pid = os.getpid()
                self._watched.clear()
                self._deadlines.clear()
                self._fired.clear()
                threading.Thread(target=self._run, name="gameproto-redis-watchdog", daemon=True).start()
            token = next(self._tokens)
            self._watched[token] = (deadline, connection)
            heapq.heappush(self._deadlines, (deadline, token))
            if self._deadlines[0][1] == token:
                self._lock.notify()
            return token

    def done(self, token: int) -> bool:
        """Stop watching; whether the deadline came first (the socket was shut)."""
        with self._lock:
            self._watched.pop(token, None)
            if token in self._fired:
                self._fired.discard(token)
                return True
            return False

    def _run(self) -> None:
        signals_to_the_main_thread()
        with self._lock:
            while True:
                now = time.monotonic()
                while self._deadlines and (self._deadlines[0][0] <= now or self._deadlines[0][1] not in self._watched):
                    _, token = heapq.heappop(self._deadlines)
                    watched = self._watched.pop(token, None)
                    if watched is not None:
                        self._fired.add(token)
                        sock = getattr(watched[1], "_sock", None)
                        if sock is not None:
                            try:
                                sock.shutdown(socket.SHUT_RDWR)
                            except OSError:
                                pass
                self._lock.wait(self._deadlines[0][0] - now if self._deadlines else None)


_WATCHDOG = _Watchdog()


class _Connections:
    """The budget's own connections to Redis, one per exchange at a time, each exchange bounded by a deadline.

    redis-py's pool and retries are left aside: an exchange must end by its
    deadline, and the watchdog must know which socket to shut.
    """

    def __init__(self, url: str, connect_timeout: float, read_timeout: float) -> None:
        self._pool = redis.ConnectionPool.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=read_timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_timeout=False,
        )
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: List[Any] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False

    def call(self, deadline: float, *command: Any) -> Any:
        """Send ``command`` and read its answer, by ``deadline`` (monotonic); one new connection when a kept one
        turns out stale (Redis restarted). Raises whatever went wrong, RedisError or not."""
        connection, kept = self._take()
        try:
            return self._exchange(connection, deadline, command)
        except redis.ConnectionError:
            if not kept or time.monotonic() >= deadline:
                raise
        connection, _ = self._take(fresh=True)
        return self._exchange(connection, deadline, command)

    def _exchange(self, connection: Any, deadline: float, command: Sequence[Any]) -> Any:
        token = _WATCHDOG.watch(deadline, connection)
        sound = False
        try:
            left = deadline - time.monotonic()
            if left <= 0:
                raise redis.TimeoutError("no time left for Redis")
            # Each socket wait ends by the deadline too (the connection's own timeouts, or less).
            connection.socket_connect_timeout = min(self._connect_timeout, left)
            connection.socket_timeout = min(self._read_timeout, left)
            sock = getattr(connection, "_sock", None)
            if sock is not None:
                sock.settimeout(connection.socket_timeout)
            connection.send_command(*command)
            try:
                reply = connection.read_response()
            except ResponseError:
                sound = True  # an error answer leaves the connection in step
                raise
            sound = True
            return reply
        finally:
            if _WATCHDOG.done(token):
                sound = False
            self._give_back(connection, sound)

    def _take(self, fresh: bool = False) -> Tuple[Any, bool]:
        with self._lock:
            if self._pid != os.getpid():  # a forked child shares no socket with its parent
                self._pid = os.getpid()
                self._idle.clear()
            if self._idle and not fresh:
                return self._idle.pop(), True
        return self._pool.connection_class(**self._pool.connection_kwargs), False

    def _give_back(self, connection: Any, sound: bool) -> None:
        with self._lock:
            if sound and not self._closed and self._pid == os.getpid():
                self._idle.append(connection)
                return
        try:
            connection.disconnect()
        except Exception:  # a connection that cannot even be closed is dropped
            pass

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            try:
                connection.disconnect()
            except Exception:
                pass
