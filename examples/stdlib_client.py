"""A third driver for the gameproto core, on the standard library's http.client.

It shows that the core embeds anywhere: the driver only sends a Request,
sleeps, and hands back a Response or a TransportFailure.

    python examples/stdlib_client.py http://127.0.0.1:8765 demo-token
"""

from __future__ import annotations

import http.client
import socket
import ssl
import sys
import time
from typing import Any, Optional, TypeVar, Union
from urllib.parse import urlsplit

from gameproto import Call, RefreshToken, Response, Send, Session, Sleep, TransportFailure, _calls

T = TypeVar("T")


class StdlibGameAPI:
    """The smallest blocking GAME client: one http.client connection, reopened when lost."""

    def __init__(self, token: str, base_url: str) -> None:
        self.session = Session(token)
        url = urlsplit(base_url)
        self.https, self.host, self.port = url.scheme == "https", url.hostname or "", url.port
        self.conn: Optional[http.client.HTTPConnection] = None

    def _send(self, send: Send) -> Union[Response, TransportFailure]:
        if self.conn is None:
            kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self.conn = kind(self.host, self.port, timeout=send.connect_timeout)
            try:
                self.conn.connect()
            except ssl.SSLError as error:
                self.conn = None
                return TransportFailure("tls", str(error))
            except OSError as error:
                self.conn = None
                return TransportFailure("connect", str(error))
        request = send.request
        try:
            self.conn.sock.settimeout(send.read_timeout)
            self.conn.request(request.method, "/api/v1" + request.target, request.body, dict(request.headers))
            answer = self.conn.getresponse()
            return Response(answer.status, dict(answer.getheaders()), answer.read())
        except (OSError, http.client.HTTPException) as error:
            self.conn.close()
            self.conn = None
            kind = "read_timeout" if isinstance(error, socket.timeout) else "read"
            return TransportFailure(kind, type(error).__name__)

    def _drive(self, flow: Any) -> Any:
        reply: Any = None
        try:
            while True:
                action = flow.send(reply)
                reply = None
                if isinstance(action, Send):
                    reply = self._send(action)
                elif isinstance(action, Sleep):
                    time.sleep(action.seconds)
                elif isinstance(action, RefreshToken):
                    self._drive(self.session.exchange_token())
        except StopIteration as done:
            return done.value

    def call(self, call: Call[T]) -> T:
        """The parsed answer of any call built by ``gameproto._calls``."""
        return self._drive(self.session.run(call))  # type: ignore[no-any-return]


if __name__ == "__main__":
    api = StdlibGameAPI(sys.argv[2], sys.argv[1])
    print(api.call(_calls.get_status())["status"])
