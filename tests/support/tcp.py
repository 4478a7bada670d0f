"""The one threaded accept loop of the tests' own TCP servers (raw HTTP, proxies, a hostile Redis).

``accept_loop(listener, stopped, serve)`` accepts connections on a loopback
listener until ``stopped()`` or the listener is closed, and serves each in a
daemon thread of its own; ``admit(connection)`` may count, track or refuse
a connection first (a refused one is its own to close). A listener with a
timeout lets the loop see ``stopped()`` between connections.
"""

from __future__ import annotations

import socket
import threading
from typing import Callable, List, Optional

__all__ = ["accept_loop", "loopback_listener"]


def loopback_listener(backlog: int = 16, timeout: Optional[float] = 0.05) -> socket.socket:
    """A listening TCP socket on 127.0.0.1 and a free port; ``timeout`` bounds each ``accept``."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(backlog)
    listener.settimeout(timeout)
    return listener


def accept_loop(
    listener: socket.socket,
    stopped: Callable[[], bool],
    serve: Callable[[socket.socket], None],
    threads: Optional[List[threading.Thread]] = None,
    admit: Optional[Callable[[socket.socket], bool]] = None,
) -> None:
    """Serve each accepted connection in a thread (kept in ``threads`` for joining) until stopped or closed."""
    while not stopped():
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            continue
        except OSError:  # the listener closed: the server is stopping
            return
        if admit is not None and not admit(connection):
            continue
        thread = threading.Thread(target=serve, args=(connection,), daemon=True)
        if threads is not None:
            threads.append(thread)
        thread.start()
