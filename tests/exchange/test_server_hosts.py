"""The ``Host`` check: a server bound to loopback answers only loopback names and the ones it was given.

A web page whose name was rebound to 127.0.0.1 (DNS rebinding) sends its own name
as ``Host``; refusing it on every path keeps the sandbox's view and API out of
that page's reach. Over a real socket, on both backends.
"""

from __future__ import annotations

import json
import socket
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

import pytest

from gameproto.simulator.exchange import Exchange
from gameproto_exchange import ManualClock, RunningServer, Sandbox, ServerThread
from tests.support.hostile_clients import read_answer
from tests.support.sandbox import ADMIN

PATHS = ["/", "/_view", "/sandbox.js", "/api/v1/market", "/api/v1/auth/token", "/_sandbox/clock", "/nowhere"]


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: Any) -> str:
    return str(request.param)


def _serve(backend: str, hosts: Optional[Sequence[str]] = None) -> ServerThread[Sandbox]:
    exchange = Exchange(tokens={"alice-token": "alice"}, clock=ManualClock(1_900_000_000.0))
    return ServerThread(Sandbox(exchange, admin_token=ADMIN), backend=backend, hosts=hosts)


@pytest.fixture
def served(backend: str) -> Iterator[RunningServer[Sandbox]]:
    with _serve(backend) as running:
        yield running


def _ask(port: int, path: str, host: Optional[str], method: str = "GET") -> Tuple[int, Dict[str, str], bytes, bool]:
    """One request with this ``Host`` (None: none, over HTTP/1.0): status, headers, body, and whether it was closed."""
    lines = [f"{method} {path} HTTP/1.1" if host is not None else f"{method} {path} HTTP/1.0"]
    if host is not None:
        lines.append(f"Host: {host}")
    body = b'{"token": "alice-token"}' if method == "POST" else b""
    lines.append(f"Content-Length: {len(body)}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        answer = read_answer(sock)
        assert answer is not None, (path, host)
        status, headers, data, _ = answer
        closed = headers.get("connection", "").lower() == "close"
    return status, headers, data, closed


@pytest.mark.parametrize("path", PATHS)
def test_a_rebound_name_is_refused_on_every_path(served: RunningServer[Sandbox], path: str) -> None:
    for method in ("GET", "POST"):
        status, _, body, closed = _ask(served.port, path, "attacker.example", method)
        assert status == 421 and closed, (method, path, status)
        assert "attacker.example" in json.loads(body)["detail"] and "--allowed-host" in json.loads(body)["detail"]
    assert served.exchange.exchange.ledger.book.orders == {}  # nothing was done for it


@pytest.mark.parametrize(
    "host",
    ["localhost", "LOCALHOST:8080", "localhost.", "127.0.0.1", "127.0.0.1:1", "127.1.2.3:80", "[::1]", "[::1]:9"],
)
def test_loopback_names_with_any_port_are_answered(served: RunningServer[Sandbox], host: str) -> None:
    assert _ask(served.port, "/_view", host)[0] == 200
    status, _, body, _ = _ask(served.port, "/api/v1/auth/token", host, "POST")
    assert status == 200 and "access_token" in json.loads(body)


def test_a_request_without_host_is_answered(served: RunningServer[Sandbox]) -> None:
    assert _ask(served.port, "/_view", None)[0] == 200  # HTTP/1.0: no browser, so no rebound page, sends that


@pytest.mark.parametrize(
    "host",
    ["attacker.example:80", "127.0.0.1.attacker.example", "localhost.attacker.example", "[::2]", "[::1", "a:b:c"],
)
def test_names_that_only_look_local_are_refused(served: RunningServer[Sandbox], host: str) -> None:
    assert _ask(served.port, "/_view", host)[0] == 421


def test_names_given_as_allowed_hosts_are_answered_with_any_port_and_case(backend: str) -> None:
    with _serve(backend, ["Trading.Example"]) as running:
        assert _ask(running.port, "/_view", "trading.example:8443")[0] == 200
        assert _ask(running.port, "/_view", "TRADING.EXAMPLE")[0] == 200
        assert _ask(running.port, "/_view", "localhost")[0] == 200
        assert _ask(running.port, "/_view", "other.example")[0] == 421
