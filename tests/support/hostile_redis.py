"""Things at ``budget_url`` that are not a well-behaved Redis, written byte by byte on loopback sockets.

A ``RedisImpostor`` accepts connections and hands each to a *case*: one
function that reads the client's commands and writes whatever it likes
back (an answer that never ends, ``+OK`` to everything, garbage, the answer
of a poisoned script). A new case is one function.

Everything is bounded: each connection lives at most ``lifetime`` seconds,
and ``lifetime_reached`` says whether one ever did: a test's generous outer
guard (a client that keeps its deadline closes its connection long before).
``__exit__`` closes every socket and joins every thread.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Callable, List, Optional

from tests.support.tcp import accept_loop

__all__ = [
    "Peer",
    "Case",
    "RedisImpostor",
    "commands_in",
    "dribble",
    "always_ok",
    "garbage",
    "overflowing_script",
    "NOT_REDIS",
]


def commands_in(buffer: bytearray) -> List[List[bytes]]:
    """The complete RESP commands at the start of ``buffer``, taken off it (inline commands as one word list)."""
    commands: List[List[bytes]] = []
    while buffer:
        if buffer[:1] != b"*":
            end = buffer.find(b"\r\n")
            if end < 0:
                break
            commands.append(bytes(buffer[:end]).split())
            del buffer[: end + 2]
            continue
        position = 0
        end = buffer.find(b"\r\n", position)
        if end < 0:
            break
        count = int(buffer[1:end])
        position = end + 2
        words: List[bytes] = []
        for _ in range(count):
            end = buffer.find(b"\r\n", position)
            if end < 0 or buffer[position : position + 1] != b"$":
                break
            length = int(buffer[position + 1 : end])
            start = end + 2
            if len(buffer) < start + length + 2:
                break
            words.append(bytes(buffer[start : start + length]))
            position = start + length + 2
        if len(words) < count:
            break
        commands.append(words)
        del buffer[:position]
    return commands


class Peer:
    """One client connection, as a case sees it: the commands it sent, and the means to answer."""

    def __init__(self, connection: socket.socket, ends_at: float, stopping: threading.Event) -> None:
        self.connection = connection
        self.ends_at = ends_at
        self.stopping = stopping
        self.buffer = bytearray()
        self.closed = False

    @property
    def alive(self) -> bool:
        return not self.closed and not self.stopping.is_set() and time.monotonic() < self.ends_at

    def commands(self, wait: float = 0.05) -> List[List[bytes]]:
        """The commands that arrived within ``wait`` seconds (none when the client closed)."""
        self.connection.settimeout(wait)
        try:
            data = self.connection.recv(65536)
        except socket.timeout:
            return commands_in(self.buffer)
        except OSError:
            data = b""
        if not data:
            self.closed = True
        self.buffer += data
        return commands_in(self.buffer)

    def send(self, data: bytes) -> None:
        try:
            self.connection.sendall(data)
        except OSError:
            self.closed = True


Case = Callable[[Peer], None]


def answer_each(reply: Callable[[List[bytes]], bytes]) -> Case:
    """A case that answers every command with ``reply(command)``, until the client goes."""

    def case(peer: Peer) -> None:
        while peer.alive:
            for command in peer.commands():
                peer.send(reply(command))

    return case


def dribble(peer: Peer) -> None:
    """An answer that never ends, one byte every 0.15 s (always inside a socket timeout)."""
    while peer.alive and not peer.commands(0.05):
        pass
    peer.send(b"+")
    while peer.alive:
        peer.send(b"O")
        peer.commands(0.15)  # notices the client closing


#: ``+OK`` to everything, HELLO and EVALSHA included.
always_ok = answer_each(lambda command: b"+OK\r\n")
#: Bytes that are not RESP at all.
garbage = answer_each(lambda command: b"\x00\xffHTTP/1.1 400 Bad Request\r\n\r\n")


def _overflowing(command: List[bytes]) -> bytes:
    if command and command[0].upper() in (b"EVALSHA", b"EVAL"):
        # What the script answered before it clamped a pause of inf: an int64 overflow.
        return b"*5\r\n:-9223372036854775808\r\n:0\r\n:3\r\n:1\r\n:1\r\n"
    if command and command[0].upper() == b"HELLO":
        return b"%1\r\n$5\r\nproto\r\n:" + (command[1] if len(command) > 1 else b"2") + b"\r\n"
    return b"+OK\r\n"


#: A Redis-like server whose budget script answers a negative wait (a pause of inf, overflowed).
overflowing_script = answer_each(_overflowing)

#: The cases of something at ``budget_url`` that answers, but not as Redis with the script would.
NOT_REDIS = {"always_ok": always_ok, "garbage": garbage, "overflowing_script": overflowing_script}


class RedisImpostor:
    """A server on 127.0.0.1 that plays ``case`` on every connection; ``with`` it, then use ``url``."""

    def __init__(self, case: Case, *, lifetime: float = 20.0) -> None:
        self.case = case
        self.lifetime = lifetime
        self.connections = 0
        self.lifetime_reached = False
        self._listener: Optional[socket.socket] = None
        self._threads: List[threading.Thread] = []
        self._sockets: List[socket.socket] = []
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        assert self._listener is not None
        return f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"

    def __enter__(self) -> RedisImpostor:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        accepting = threading.Thread(target=self._accept, daemon=True)
        accepting.start()
        self._threads.append(accepting)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        for thread in list(self._threads):
            thread.join(timeout=self.lifetime + 5)
        assert self._listener is not None
        self._listener.close()

    def _accept(self) -> None:
        assert self._listener is not None
        accept_loop(self._listener, self._stopping.is_set, self._serve, self._threads, self._count)

    def _count(self, connection: socket.socket) -> bool:
        self.connections += 1
        return True

    def _serve(self, connection: socket.socket) -> None:
        peer = Peer(connection, time.monotonic() + self.lifetime, self._stopping)
        try:
            self.case(peer)
        except (OSError, ValueError):
            pass
        finally:
            if not peer.closed and not self._stopping.is_set() and time.monotonic() >= peer.ends_at:
                self.lifetime_reached = True
            connection.close()
