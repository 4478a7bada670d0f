"""A loopback HTTP/1.1 proxy that can hold an answer: the moment "sent, answer not yet back" made certain.

Each client connection gets its own connection to the upstream server; a
request is read whole (head and ``Content-Length`` body), passed on, and
its answer read whole. When the proxy is told to ``hold_next(method)``, the
next such request is passed on (the exchange carries it out) and its answer
kept from the client; ``held`` is set, so the test can kill the client at
that very moment. ``on_request`` sees every request before it is passed on.
"""

from __future__ import annotations

import http.client
import socket
import threading
from typing import Callable, List, Optional, Tuple

from tests.support.tcp import accept_loop

__all__ = ["HoldingProxy"]


def _read_request(stream: socket.socket, buffer: bytearray) -> Optional[Tuple[bytes, List[Tuple[str, str]], bytes]]:
    while b"\r\n\r\n" not in buffer:
        chunk = stream.recv(65536)
        if not chunk:
            return None
        buffer.extend(chunk)
    end = buffer.index(b"\r\n\r\n")
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    del buffer[: end + 4]
    request_line = head[0].encode("latin-1")
    headers = []
    length = 0
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(buffer) < length:
        chunk = stream.recv(65536)
        if not chunk:
            return None
        buffer.extend(chunk)
    body = bytes(buffer[:length])
    del buffer[:length]
    return request_line, headers, body


class HoldingProxy:
    """``with HoldingProxy(upstream_host, upstream_port) as proxy:`` then ``proxy.url``."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.held = threading.Event()
        self._hold: Optional[str] = None
        self._lock = threading.Lock()
        self._closed = False
        self._sockets: List[socket.socket] = []
        #: Called with (method, target) before a request is passed on; True drops it (the connection closes).
        self.on_request: Optional[Callable[[str, str], bool]] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hold_next(self, method: str) -> None:
        """Keep the answer to the next ``method`` request (passed on to the exchange all the same)."""
        with self._lock:
            self.held.clear()
            self._hold = method

    def cancel_hold(self) -> None:
        with self._lock:
            self._hold = None

    def __enter__(self) -> HoldingProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closed = True
        self._listener.close()
        for client in list(self._sockets):
            try:
                client.close()
            except OSError:
                pass

    def _accept(self) -> None:
        accept_loop(self._listener, lambda: self._closed, self._serve, admit=self._track)

    def _track(self, client: socket.socket) -> bool:
        self._sockets.append(client)
        return True

    def _serve(self, client: socket.socket) -> None:
        upstream = http.client.HTTPConnection(*self.upstream, timeout=30)
        buffer = bytearray()
        try:
            while True:
                request = _read_request(client, buffer)
                if request is None:
                    return
                line, headers, body = request
                method, target, _ = line.decode("latin-1").split(" ", 2)
                if self.on_request is not None and self.on_request(method, target):
                    return
                upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    upstream.putheader(name, value)
                upstream.endheaders(body or None)
                answer = upstream.getresponse()
                payload = answer.read()
                with self._lock:
                    hold = self._hold is not None and self._hold == method
                    if hold:
                        self._hold = None
                if hold:
                    self.held.set()
                    client.recv(1)  # until the client is killed (its socket closes)
                    return
                out = [f"HTTP/1.1 {answer.status} {answer.reason}".encode("latin-1")]
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                        out.append(f"{name}: {value}".encode("latin-1"))
                out.append(f"Content-Length: {len(payload)}".encode("latin-1"))
                client.sendall(b"\r\n".join(out) + b"\r\n\r\n" + payload)
        except OSError:
            return
        finally:
            upstream.close()
            try:
                client.close()
            except OSError:
                pass
            if client in self._sockets:
                self._sockets.remove(client)
