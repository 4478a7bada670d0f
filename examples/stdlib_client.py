"""A third driver for the gameproto core, on http.client: the whole driver contract.

Answer ``Send`` with a Response or a TransportFailure, ``Sleep`` by sleeping,
run a ``RunLocked`` flow holding the one token lock and a ``RunAll``'s flows
one after another. The rest is the core's: the limits (``risk=``), the journal
(``journal=``), the kill switch and positions are ``Trading``'s flows.
Run: python examples/stdlib_client.py http://127.0.0.1:8765 demo-token
"""

from __future__ import annotations

import http.client
import socket
import sys
import threading
import time
from typing import Any, Optional, Union
from urllib.parse import urlsplit

from gameproto import (
    Blocking,
    Call,
    ClientSettings,
    Flow,
    Response,
    RiskLimits,
    RunAll,
    Send,
    Session,
    Sleep,
    TransportFailure,
    calls,
)
from gameproto.driver import Trading
from gameproto.journal import JournalStore
from gameproto.risk import CancelAllResult, Positions


class StdlibGameAPI:
    """The smallest blocking GAME client: one http.client connection, reopened when lost."""

    def __init__(
        self,
        token: str,
        base_url: str,
        *,
        risk: Optional[RiskLimits] = None,
        journal: Union[str, JournalStore, None] = None,
    ) -> None:
        # Every argument checked, as GameAPI's; the limits and the journal are the core's flows.
        settings = ClientSettings.from_arguments(token, base_url, risk=risk, journal=journal)
        self.session, self.lock, self.url = Session(settings), threading.Lock(), urlsplit(settings.api_url)
        self.trading = Trading(self.session)
        self.kind = http.client.HTTPSConnection if self.url.scheme == "https" else http.client.HTTPConnection
        self.conn: Optional[http.client.HTTPConnection] = None

    def send(self, send: Send) -> Union[Response, TransportFailure]:
        try:
            if self.conn is None:
                self.conn = self.kind(self.url.hostname or "", self.url.port, timeout=send.connect_timeout)
                self.conn.connect()
        except OSError as error:  # ssl.SSLError included: nothing was sent either way
            self.conn = None
            return TransportFailure("connect", type(error).__name__)
        try:
            self.conn.sock.settimeout(min(send.read_timeout, send.time_left))
            request = send.request
            self.conn.request(request.method, self.url.path + request.target, request.body, dict(request.headers))
            answer = self.conn.getresponse()
            return Response(answer.status, dict(answer.getheaders()), answer.read())
        except (OSError, http.client.HTTPException) as error:
            self.conn.close()
            self.conn = None
            timed_out = isinstance(error, socket.timeout)
            return TransportFailure("read_timeout" if timed_out else "read", type(error).__name__)

    def drive(self, flow: Flow[Any]) -> Any:
        reply: Any = None
        try:
            while True:
                action = flow.send(reply)
                if isinstance(action, Send):
                    reply = self.send(action)
                elif isinstance(action, Sleep):
                    reply = time.sleep(action.seconds)  # type: ignore[func-returns-value]
                elif isinstance(action, Blocking):  # a budget shared through Redis, the journal's store
                    reply = action.function(action.time_left)
                elif isinstance(action, RunAll):  # a bulk's parts, the kill switch's deletes: in turn
                    reply = [self.drive(each) for each in action.flows]
                elif self.lock.acquire(timeout=action.wait):  # a RunLocked
                    try:
                        reply = self.drive(action.flow)
                    finally:
                        self.lock.release()
                else:
                    reply = None  # the lock was not had in time: the flow says what that means
        except StopIteration as done:
            return done.value
        finally:
            flow.close()

    def call(self, call: Call[Any]) -> Any:  # any call built by gameproto.calls
        return self.drive(self.session.run(call))

    def create_order(self, order_data: Any, skip_invalid: bool = False) -> Any:  # under the limits, journaled
        return self.drive(self.trading.create_order(order_data, skip_invalid))

    def delete_order(self, order_id: Union[int, str]) -> Any:
        return self.drive(self.trading.delete_order(order_id))

    def cancel_all_orders(self, contract: Any = None, side: Optional[str] = None) -> CancelAllResult:
        return self.drive(self.trading.cancel_all(contract, side))  # type: ignore[no-any-return]

    def positions(self) -> Positions:
        return self.drive(self.trading.positions())  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.trading.journal is not None:
            self.trading.journal.store.close()
        if self.conn is not None:
            self.conn.close()


if __name__ == "__main__":
    print(StdlibGameAPI(sys.argv[2], sys.argv[1]).call(calls.get_status())["status"])
