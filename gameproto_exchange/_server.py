"""The embedded exchange over HTTP/1.1: h11 on anyio sockets (asyncio and trio).

The server only moves bytes. It turns each HTTP request under ``/api/v1`` into a
:class:`~gameproto._boundary.Request`, asks the exchange how to react, and carries
the :class:`~gameproto.simulator.faults.Reaction` out: wait, then answer or
close without a word. Everything the exchange decides stays in the exchange.
"""

from __future__ import annotations

import logging
import ssl
import sys
import time
import types
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import (
    Any,
    AsyncIterator,
    Callable,
    ContextManager,
    Dict,
    FrozenSet,
    Generic,
    Iterable,
    Optional,
    Type,
)

import anyio
import anyio.from_thread
from anyio.abc import ByteStream, SocketAttribute, SocketListener, TaskGroup
from anyio.streams.tls import TLSStream

from gameproto._constants import API_PREFIX

from ._connection import _BUSY, _CLOSING, _Connection
from ._hosts import allowed_hosts, host_name
from ._limits import ExchangeT, Limits, Reactor

__all__ = ["Limits", "Reactor", "RunningServer", "ServerThread", "serve_exchange", "allowed_hosts", "host_name"]

logger = logging.getLogger("gameproto.server")


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


def _address(stream: ByteStream) -> str:
    try:
        remote = stream.extra(SocketAttribute.remote_address)
    except Exception:  # not a socket (a test's memory stream): one address for all
        return ""
    return str(remote[0]) if isinstance(remote, tuple) else str(remote)


class _Server:
    """The serving machinery behind a :class:`RunningServer`."""

    def __init__(
        self,
        running: RunningServer[Any],
        ssl_context: Optional[ssl.SSLContext],
        limits: Limits,
        allowed_hosts: Optional[FrozenSet[str]] = None,
    ) -> None:
        self.running = running
        #: The ``Host`` names answered besides loopback ones; None: any (see ``allowed_hosts``).
        self.allowed_hosts = allowed_hosts
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
            # Closed, then let go of: once ``connections_open`` counts it out, its socket is shut (the client's
            # side sees the end), which is what a caller waiting on the count waits for.
            try:
                await anyio.aclose_forcefully(stream)
            finally:
                self._forget(connection)


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
    hosts: Optional[Iterable[str]] = None,
) -> AsyncIterator[RunningServer[ExchangeT]]:
    """Serve ``exchange`` while the block runs; yields the :class:`RunningServer` (port 0: a free port).

    ``limits`` sets the connection discipline (``idle_timeout`` and ``max_body``,
    when given, override its fields). ``hosts``, when given, are the ``Host``
    names answered besides loopback ones (``allowed_hosts`` says which for a
    bound address); any other is refused (421) on every path. Without it, an
    exchange that serves pages (a :class:`Sandbox`: it has ``outside_api``)
    answers by the rule of ``allowed_hosts(host)``, so that a page of another
    site cannot read it by DNS rebinding; a bare exchange answers any name.
    Leaving the block stops listening and closes every connection at once.
    """
    chosen = _limits(limits, idle_timeout, max_body)
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    try:
        # Every backend's TCP listeners are SocketListeners; the filter is for the type checker.
        sockets = [one for one in listener.listeners if isinstance(one, SocketListener)]
        real_port = int(sockets[0].extra(SocketAttribute.local_port))
        running = RunningServer(exchange, host, real_port, "https" if ssl_context is not None else "http")
        if hosts is not None:
            answered: Optional[FrozenSet[str]] = frozenset(map(host_name, hosts))
        else:
            answered = allowed_hosts(host) if hasattr(exchange, "outside_api") else None
        server = _Server(running, ssl_context, chosen, answered)
        async with anyio.create_task_group() as task_group:
            for one in sockets:
                task_group.start_soon(server.accept_loop, one, task_group)
            # Work of the reactor's own between requests (a replay playing its recording on time) runs beside them.
            background = getattr(exchange, "background", None)
            if callable(background):
                task_group.start_soon(background)
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
        hosts: Optional[Iterable[str]] = None,
    ) -> None:
        self.exchange = exchange
        self.hosts = None if hosts is None else tuple(hosts)
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
                    hosts=self.hosts,
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
