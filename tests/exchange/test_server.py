"""The embedded exchange's HTTP server: h11 over real loopback sockets, on asyncio and trio.

Most tests serve ``Echo``, a stand-in that answers with what the server made of
the request, so the translation HTTP -> Request is checked exactly. The rest
serve the real exchange, its fault plan included.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from typing import Any, AsyncIterator, Dict, Iterator, List, Optional, Sequence, Tuple

import anyio
import h11
import pytest
from anyio.abc import ByteStream

from gameproto._boundary import Request, Response
from gameproto.simulator.exchange import Exchange
from gameproto.simulator.faults import Fault, Reaction
from gameproto_exchange import RunningServer, ServerThread, serve_exchange
from tests.support.common import TOKEN, future_order

Answer = Tuple[int, Dict[str, str], bytes]


class Echo:
    """A stand-in exchange: answers 200 with the Request it was given, or a set Reaction."""

    def __init__(self) -> None:
        self.seen: List[Request] = []
        self.reactions: Dict[str, Reaction] = {}

    def react(self, request: Request) -> Reaction:
        self.seen.append(request)
        if request.path in self.reactions:
            return self.reactions[request.path]
        if request.path == "/boom":
            raise RuntimeError("a bug in the exchange")
        seen = {
            "method": request.method,
            "path": request.path,
            "query": [list(pair) for pair in request.query],
            "body": None if request.body is None else request.body.decode("latin-1"),
        }
        return Reaction(Response(200, {"content-type": "application/json"}, json.dumps(seen).encode()))


@pytest.fixture
def echo() -> Echo:
    return Echo()


@pytest.fixture
async def echo_server(echo: Echo) -> AsyncIterator[RunningServer[Echo]]:
    async with serve_exchange(echo, idle_timeout=2.0, max_body=1000) as running:
        yield running


@pytest.fixture
def echo_thread(echo: Echo) -> Iterator[RunningServer[Echo]]:
    with ServerThread(echo, max_body=1000) as running:
        yield running


class RawClient:
    """A minimal HTTP/1.1 client: h11 over an anyio stream, so it runs on both backends."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)

    async def request(
        self,
        method: str,
        target: str,
        body: Optional[bytes] = None,
        headers: Sequence[Tuple[str, str]] = (),
        chunks: Sequence[bytes] = (),
    ) -> Answer:
        if self.h11.our_state is h11.DONE:
            self.h11.start_next_cycle()
        all_headers = [("host", "127.0.0.1"), *headers]
        if body is not None:
            all_headers.append(("content-length", str(len(body))))
        elif chunks:
            all_headers.append(("transfer-encoding", "chunked"))
        await self.stream.send(self.h11.send(h11.Request(method=method, target=target, headers=all_headers)) or b"")
        for part in [body] if body is not None else chunks:
            await self.stream.send(self.h11.send(h11.Data(data=part)) or b"")
        await self.stream.send(self.h11.send(h11.EndOfMessage()) or b"")
        status, answer_headers, received = 0, {}, b""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as error:  # the server closed mid-answer or before it
                raise ConnectionError(str(error)) from error
            if event is h11.NEED_DATA:
                try:
                    self.h11.receive_data(await self.stream.receive())
                except anyio.EndOfStream:
                    self.h11.receive_data(b"")
            elif isinstance(event, h11.Response):
                status = event.status_code
                answer_headers = {name.decode(): value.decode() for name, value in event.headers}
            elif isinstance(event, h11.Data):
                received += event.data
            elif isinstance(event, h11.EndOfMessage):
                return status, answer_headers, received
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("closed without an answer")


async def read_all(stream: ByteStream) -> bytes:
    """Everything the server sends until it closes."""
    received = b""
    try:
        while True:
            received += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return received


def json_of(answer: Answer) -> Any:
    return json.loads(answer[2])


# --- translating HTTP into Requests -------------------------------------------------------------


@pytest.mark.anyio
async def test_a_request_reaches_the_exchange_as_the_core_would_build_it(
    echo_server: RunningServer[Echo], echo: Echo
) -> None:
    async with await anyio.connect_tcp("127.0.0.1", echo_server.port) as stream:
        client = RawClient(stream)
        status, headers, _ = await client.request(
            "GET", "/api/v1/market?direction=buy&empty=&zone=10YCH%2DSWISSGRIDZ&x=a+b%26c", headers=[("X-Mixed", "V")]
        )
    assert status == 200 and headers["server"] == "gameproto"
    assert headers["content-type"] == "application/json" and "content-length" in headers
    request = echo.seen[0]
    assert (request.method, request.path, request.body) == ("GET", "/market", None)
    assert request.query == (("direction", "buy"), ("empty", ""), ("zone", "10YCH-SWISSGRIDZ"), ("x", "a b&c"))
    assert ("x-mixed", "V") in request.headers and request.header("host") == "127.0.0.1"
    assert echo_server.requests_served == 1


@pytest.mark.anyio
async def test_targets_outside_the_api_prefix_are_404(echo_server: RunningServer[Echo], echo: Echo) -> None:
    async with await anyio.connect_tcp("127.0.0.1", echo_server.port) as stream:
        client = RawClient(stream)
        for target in ("/status", "/api/v10/status", "/", "/api"):
            status, headers, body = await client.request("GET", target)
            assert (status, json.loads(body)) == (404, {"detail": "Not Found"})
            assert headers["content-type"] == "application/json"
        assert json_of(await client.request("GET", "/api/v1/status"))["path"] == "/status"
    assert [request.path for request in echo.seen] == ["/status"]


@pytest.mark.anyio
async def test_a_chunked_body_arrives_whole(echo_server: RunningServer[Echo]) -> None:
    async with await anyio.connect_tcp("127.0.0.1", echo_server.port) as stream:
        client = RawClient(stream)
        answer = await client.request("POST", "/api/v1/orders", chunks=[b'{"side": ', b'"buy"', b"}"])
        assert json_of(answer)["body"] == '{"side": "buy"}'
        # and the connection stays usable after it
        assert json_of(await client.request("POST", "/api/v1/orders", body=b"{}"))["body"] == "{}"
    assert echo_server.connections_accepted == 1


@pytest.mark.anyio
async def test_expect_100_continue_gets_its_interim_answer(echo_server: RunningServer[Echo]) -> None:
    async with await anyio.connect_tcp("127.0.0.1", echo_server.port) as stream:
        head = b"POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        await stream.send(head)
        assert (await stream.receive()).startswith(b"HTTP/1.1 100 ")
        await stream.send(b"{}")
        assert b'"body": "{}"' in await stream.receive()


# --- keep-alive, concurrency, closing ----------------------------------------------------------


def test_keep_alive_serves_many_requests_on_one_connection(echo_thread: RunningServer[Echo]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", echo_thread.port, timeout=5)
    try:
        for path in ("/status", "/orders"):
            connection.request("GET", "/api/v1" + path)
            answer = connection.getresponse()
            assert answer.status == 200 and json.loads(answer.read())["path"] == path
    finally:
        connection.close()
    assert echo_thread.connections_accepted == 1
    assert echo_thread.requests_served == 2


def test_connection_close_from_the_client_is_honoured(echo_thread: RunningServer[Echo]) -> None:
    with socket.create_connection(("127.0.0.1", echo_thread.port), timeout=5) as client:
        client.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        received = b""
        while True:
            data = client.recv(65536)
            if not data:
                break
            received += data
    assert received.startswith(b"HTTP/1.1 200 ") and b"connection: close" in received.lower()


@pytest.mark.anyio
async def test_many_clients_at_once(echo_server: RunningServer[Echo]) -> None:
    answers: List[Any] = []

    async def one_client(number: int) -> None:
        async with await anyio.connect_tcp("127.0.0.1", echo_server.port) as stream:
            client = RawClient(stream)
            for attempt in range(3):
                answers.append(json_of(await client.request("GET", f"/api/v1/c{number}?n={attempt}")))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            for number in range(30):
                group.start_soon(one_client, number)
    assert len(answers) == 90 and {answer["path"] for answer in answers} == {f"/c{n}" for n in range(30)}
    assert echo_server.connections_accepted == 30 and echo_server.requests_served == 90


@pytest.mark.anyio
async def test_slow_broken_and_delayed_clients_never_hold_up_the_others(
    echo_server: RunningServer[Echo], echo: Echo
) -> None:
    echo.reactions["/slow"] = Reaction(Response(200, {"content-type": "application/json"}, b"{}"), delay=2.0)
    port = echo_server.port
    async with await anyio.connect_tcp("127.0.0.1", port) as stalled, await anyio.connect_tcp(
        "127.0.0.1", port
    ) as delayed, await anyio.connect_tcp("127.0.0.1", port) as garbage:
        await stalled.send(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never finishes its head
        await delayed.send(b"GET /api/v1/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await garbage.send(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
        async with await anyio.connect_tcp("127.0.0.1", port) as healthy:
            answer = await RawClient(healthy).request("GET", "/api/v1/status")
        assert answer[0] == 200
        # Answered while the delayed answer is still to come: nobody waited for the others.
        with anyio.move_on_after(0.01) as waiting:
            early = await delayed.receive()
        assert waiting.cancelled_caught, early
        assert (await read_all(garbage)).startswith(b"HTTP/1.1 400 ")
        with anyio.fail_after(10):
            assert (await delayed.receive()).startswith(b"HTTP/1.1 200 ")


@pytest.mark.anyio
async def test_garbage_gets_400_and_the_connection_closed(echo_server: RunningServer[Echo]) -> None:
    async with await anyio.connect_tcp("127.0.0.1", echo_server.port) as stream:
        await stream.send(b"NOT HTTP AT ALL\r\n\r\n")
        with anyio.fail_after(10):
            received = await read_all(stream)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"connection: close" in head.lower()
    assert json.loads(body) == {"detail": "malformed HTTP request"}


@pytest.mark.anyio
async def test_an_oversized_body_is_refused_with_413(echo_server: RunningServer[Echo], echo: Echo) -> None:
    # Declared too big: refused before the body is read.
    async with await anyio.connect_tcp("127.0.0.1", echo_server.port) as stream:
        status, headers, body = await RawClient(stream).request("POST", "/api/v1/orders", body=b"x" * 1001)
        assert status == 413 and headers["connection"] == "close" and "detail" in json.loads(body)
        with anyio.fail_after(10):
            assert await read_all(stream) == b""
    # Chunked, and more keeps coming than max_body.
    async with await anyio.connect_tcp("127.0.0.1", echo_server.port) as stream:
        status, _, _ = await RawClient(stream).request("POST", "/api/v1/orders", chunks=[b"y" * 600] * 2)
        assert status == 413
    # Exactly max_body is fine.
    async with await anyio.connect_tcp("127.0.0.1", echo_server.port) as stream:
        assert (await RawClient(stream).request("POST", "/api/v1/orders", body=b"z" * 1000))[0] == 200
    assert len(echo.seen) == 1


def test_oversized_body_413_over_http_client(echo_thread: RunningServer[Echo]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", echo_thread.port, timeout=5)
    try:
        connection.request("POST", "/api/v1/orders", body=b"{" * 5000, headers={"content-type": "application/json"})
        answer = connection.getresponse()
        assert answer.status == 413 and answer.getheader("connection") == "close"
        answer.read()
    finally:
        connection.close()


@pytest.mark.anyio
async def test_an_idle_connection_is_closed_quietly(echo: Echo) -> None:
    async with serve_exchange(echo, idle_timeout=1.0) as running:
        async with await anyio.connect_tcp("127.0.0.1", running.port) as stream:
            client = RawClient(stream)
            assert (await client.request("GET", "/api/v1/status"))[0] == 200
            assert (await client.request("GET", "/api/v1/status"))[0] == 200  # kept alive while in use
            with anyio.fail_after(10):
                assert await read_all(stream) == b""  # then, idle, closed: no 408, just the close
        async with await anyio.connect_tcp("127.0.0.1", running.port) as silent:
            with anyio.fail_after(10):
                assert await read_all(silent) == b""


@pytest.mark.anyio
async def test_a_reaction_without_response_drops_the_connection(echo_server: RunningServer[Echo], echo: Echo) -> None:
    echo.reactions["/orders"] = Reaction(None, delay=0.05)
    async with await anyio.connect_tcp("127.0.0.1", echo_server.port) as stream:
        with pytest.raises(ConnectionError), anyio.fail_after(10):
            await RawClient(stream).request("POST", "/api/v1/orders", body=b"{}")
    assert echo_server.requests_served == 1


@pytest.mark.anyio
async def test_an_exchange_bug_answers_500_and_the_server_goes_on(echo_server: RunningServer[Echo]) -> None:
    async with await anyio.connect_tcp("127.0.0.1", echo_server.port) as stream:
        client = RawClient(stream)
        assert (await client.request("GET", "/api/v1/boom"))[0] == 500
        assert (await client.request("GET", "/api/v1/status"))[0] == 200


@pytest.mark.anyio
async def test_leaving_the_block_closes_every_connection_promptly(echo: Echo) -> None:
    async with serve_exchange(echo, idle_timeout=30) as running:
        stream = await anyio.connect_tcp("127.0.0.1", running.port)
        assert (await RawClient(stream).request("GET", "/api/v1/status"))[0] == 200
    with anyio.fail_after(10):  # long before the idle timeout of 30 s
        assert await read_all(stream) == b""
    await stream.aclose()
    with pytest.raises(OSError):
        await anyio.connect_tcp("127.0.0.1", running.port)


# --- in a thread, with TLS, and with the real exchange -------------------------------------------


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_server_thread_starts_and_stops(echo: Echo, backend: str) -> None:
    thread = ServerThread(echo, backend=backend)
    with thread as running:
        assert running.base_url == f"http://127.0.0.1:{running.port}" and running.port > 0
        assert running.exchange is echo and thread.running is running
        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=5)
        connection.request("GET", "/api/v1/status")
        assert connection.getresponse().status == 200
        # the client's connection stays open: stopping must not wait for it
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", running.port), timeout=1).close()
    connection.close()
    assert thread.running is None
    thread.stop()  # harmless twice


@pytest.fixture(scope="module")
def tls() -> Tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a throwaway CA's certificate, and a client context that trusts it."""
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    return server_context, client_context


def test_tls_and_a_failed_handshake_does_not_stop_the_server(
    echo: Echo, tls: Tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_context, client_context = tls
    with ServerThread(echo, ssl_context=server_context) as running:
        assert running.base_url.startswith("https://") and running.scheme == "https"
        # A client that does not trust the throwaway CA fails its handshake...
        untrusting = http.client.HTTPSConnection("127.0.0.1", running.port, timeout=5)
        with pytest.raises(ssl.SSLError):
            untrusting.request("GET", "/api/v1/status")
        untrusting.close()
        # ...and one speaking plain HTTP to the TLS port gets nowhere...
        with socket.create_connection(("127.0.0.1", running.port), timeout=5) as plain:
            plain.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert not plain.recv(65536).startswith(b"HTTP/1.1 200")
        # ...while a trusting one is served, with keep-alive.
        connection = http.client.HTTPSConnection("127.0.0.1", running.port, timeout=5, context=client_context)
        try:
            for path in ("/status", "/orders"):
                connection.request("GET", "/api/v1" + path)
                answer = connection.getresponse()
                assert answer.status == 200 and json.loads(answer.read())["path"] == path
        finally:
            connection.close()


def _call(
    connection: http.client.HTTPConnection, method: str, path: str, body: Any = None, access: str = ""
) -> Tuple[int, Any]:
    headers = {"content-type": "application/json"}
    if access:
        headers["authorization"] = f"Bearer {access}"
    connection.request(method, "/api/v1" + path, body=None if body is None else json.dumps(body), headers=headers)
    answer = connection.getresponse()
    return answer.status, json.loads(answer.read() or b"null")


def test_end_to_end_with_the_real_exchange(server: RunningServer[Exchange]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        status, token = _call(connection, "POST", "/auth/token", {"token": TOKEN})
        assert status == 200 and token["access_token"]
        access = token["access_token"]
        status, health = _call(connection, "GET", "/status", access=access)
        assert status == 200 and health["status"] == "healthy"
        status, created = _call(connection, "POST", "/orders", future_order("buy", 42.0, 1.5), access=access)
        assert status in (200, 201) and str(created["order_id"]).startswith("ord_")
        status, orders = _call(connection, "GET", "/orders?direction=buy", access=access)
        assert status == 200 and [order["price"] for order in orders] == [42.0]
        assert _call(connection, "GET", "/status")[0] == 401
    finally:
        connection.close()
    assert server.connections_accepted == 1
    assert server.exchange.attempts[("POST", "/orders")] == 1


def test_the_real_exchange_fault_plan_is_carried_out(server: RunningServer[Exchange]) -> None:
    server.exchange.faults.add(Fault("drop_before"), method="GET", path="/status")
    server.exchange.faults.add(Fault("status", status=503, headers=(("retry-after", "1"),)), path="/status")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            _call(connection, "GET", "/status")
        connection.close()
        connection.request("GET", "/api/v1/status")
        answer = connection.getresponse()
        assert answer.status == 503 and answer.getheader("retry-after") == "1"
        answer.read()
    finally:
        connection.close()


@pytest.mark.anyio
async def test_the_real_exchange_on_the_test_loop(aserver: RunningServer[Exchange]) -> None:
    async with await anyio.connect_tcp("127.0.0.1", aserver.port) as stream:
        client = RawClient(stream)
        status, _, body = await client.request("POST", "/api/v1/auth/token", body=json.dumps({"token": TOKEN}).encode())
        assert status == 200
        access = json.loads(body)["access_token"]
        status, _, body = await client.request("GET", "/api/v1/status", headers=[("authorization", f"Bearer {access}")])
        assert status == 200 and json.loads(body)["status"] == "healthy"
    assert isinstance(aserver.exchange, Exchange)
