"""The plain request the server reads without h11: only what h11 accepts, read the same way."""

from __future__ import annotations

import json
import socket
import time
from typing import Any, Iterator, List, Optional, Tuple

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gameproto.simulator.exchange import Exchange
from gameproto_exchange import ServerThread
from gameproto_exchange._reading import plain_request
from tests.support import hostile_clients as hostile
from tests.support.common import TOKEN

_NAMES = st.one_of(
    st.sampled_from([b"content-type", b"Authorization", b"accept", b"X-Odd_Name!", b"X-Gameproto-Client"]),
    st.sampled_from([b"content-type", b"Authorization", b"accept", b"X-Odd_Name!", b"X-Gameproto-Client"]),
    st.sampled_from([b"Host", b"Content-Length", b"Connection", b"Expect", b"Transfer-Encoding", b"TE", b"Upgrade"]),
    st.binary(min_size=0, max_size=6),
)
_VALUES = st.one_of(
    st.sampled_from(
        [b"127.0.0.1:8000", b"application/json", b"Bearer abc", b"0", b"12", b"close", b"chunked", b"", b"a  b"]
    ),
    st.binary(max_size=8),
)


def _mostly(usual: List[bytes], odd: List[bytes]) -> Any:
    """The usual pieces most of the time, odd ones (and any bytes) now and then: plain requests and near misses."""
    return st.one_of(st.sampled_from(usual), st.sampled_from(usual), st.sampled_from(usual), st.sampled_from(odd))


@st.composite
def requests(draw: Any) -> bytes:
    method = draw(_mostly([b"GET", b"POST", b"DELETE"], [b"HEAD", b"PUT", b"get", b"POST ", b""]))
    usual_targets = [b"/api/v1/orders", b"/api/v1/orders?direction=buy", b"/x"]
    target = draw(st.one_of(_mostly(usual_targets, [b"*", b"", b"/a b", b"/\xe9"]), st.sampled_from(usual_targets)))
    if not draw(st.integers(0, 9)):
        target = draw(st.binary(max_size=6))
    version = draw(_mostly([b"HTTP/1.1"], [b"HTTP/1.0", b"HTTP/2.0", b"http/1.1", b"HTTP/1.1 "]))
    fields: List[Tuple[bytes, bytes]] = draw(st.lists(st.tuples(_NAMES, _VALUES), max_size=3))
    if draw(st.integers(0, 9)):
        fields.insert(draw(st.integers(0, len(fields))), (b"Host", b"localhost"))
    body = draw(st.binary(max_size=20))
    if draw(st.booleans()):
        fields.append((b"Content-Length", str(len(body)).encode()))
    separator = draw(_mostly([b": ", b":"], [b":  ", b" : ", b":\t", b": \t"]))
    ending = draw(_mostly([b"\r\n"], [b"\n", b"\r"]))
    head = method + b" " + target + b" " + version + ending
    head += b"".join(name + separator + value + draw(_mostly([b""], [b" ", b"\t"])) + ending for name, value in fields)
    return head + ending + body + draw(st.sampled_from([b"", b"GET / HTTP/1.1\r\n"]))


def _h11_reads(data: bytes) -> Tuple[h11.Request, bytes]:
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(data)
    event = connection.next_event()
    assert isinstance(event, h11.Request)
    body = b""
    while True:
        part = connection.next_event()
        if isinstance(part, h11.Data):
            body += part.data
        else:
            assert isinstance(part, h11.EndOfMessage)
            return event, body


@settings(max_examples=1500, deadline=None)
@given(requests())
def test_a_plain_request_is_read_as_h11_reads_it(data: bytes) -> None:
    plain = plain_request(data)
    if plain is None:
        return
    method, target, headers, start, size = plain
    if len(data) < start + size:  # the server reads on until the body is all there
        data += bytes(start + size - len(data))
    event, body = _h11_reads(data)
    assert (event.method, event.target, event.http_version) == (method, target, b"1.1")
    assert list(event.headers) == headers
    assert data[start : start + size] == body


@pytest.mark.parametrize(
    "data",
    [
        b"POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Length: 2\r\n\r\n{}",
        b"GET /api/v1/orders?direction=buy HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer a b\r\n\r\n",
        b"DELETE /api/v1/orders/ord_3 HTTP/1.1\r\nHost: localhost\r\nX-Empty:\r\n\r\nGET / HTTP/1.1\r\n",
    ],
)
def test_the_usual_requests_are_plain(data: bytes) -> None:
    plain = plain_request(data)
    assert plain is not None
    event, body = _h11_reads(data)
    assert plain[0] == event.method and plain[2] == list(event.headers)
    assert data[plain[3] : plain[3] + plain[4]] == body


@pytest.mark.parametrize(
    "data",
    [
        b"POST /api/v1/orders HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",  # no Host
        b"POST /api/v1/orders HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",  # two
        b"POST /api/v1/orders HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /api/v1/orders HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        b"GET /api/v1/orders HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"GET /api/v1/orders HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
        b"GET /api/v1/orders HTTP/1.0\r\nHost: a\r\n\r\n",
        b"HEAD /api/v1/orders HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /api/v1/orders HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        b"GET /api/v1/orders HTTP/1.1\nHost: a\n\n",
        b"GET /api/v1/orders HTTP/1.1\r\nHost: \xe9\r\n\r\n",
        b"GET /api/v1/orders HTTP/1.1\r\nHost: a\r\n",  # the head not all there
    ],
)
def test_anything_else_is_left_to_h11(data: bytes) -> None:
    assert plain_request(data) is None


# -- over a real socket: the plain path answers as the h11 path does ---------------------------------


@pytest.fixture(params=["asyncio", "trio"])
def plain_server(request: Any) -> Iterator[Tuple[int, str]]:
    exchange = Exchange(tokens={TOKEN: "alice"}, seed=7)
    with ServerThread(exchange, backend=request.param) as running:
        yield running.port, hostile.access_token("127.0.0.1", running.port, TOKEN)


def _order_request(token: str, body: bytes, length: Optional[int] = None, extra: bytes = b"") -> Tuple[bytes, bytes]:
    head = (
        b"POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer "
        + token.encode()
        + b"\r\n"
        + extra
        + b"Content-Length: %d\r\n\r\n" % (len(body) if length is None else length)
    )
    return head, body


def _received_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return received
        received += chunk


def test_a_body_sent_apart_from_its_head_is_read_on(plain_server: Tuple[int, str]) -> None:
    port, token = plain_server
    head, body = _order_request(token, json.dumps(hostile.future_order()).encode())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        time.sleep(0.05)  # the head alone first (no assertion rides on the pause)
        sock.sendall(body)
        answer = hostile.read_answer(sock)
    assert answer is not None and answer[0] == 200
    assert json.loads(answer[2])["order_id"].startswith("ord_")


def test_pipelined_requests_are_each_answered_in_turn(plain_server: Tuple[int, str]) -> None:
    port, token = plain_server
    first = b"".join(_order_request(token, json.dumps(hostile.future_order(price=41.0)).encode()))
    second = b"".join(
        _order_request(token, json.dumps(hostile.future_order(price=42.0)).encode(), extra=b"Connection: close\r\n")
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(first + second)
        received = _received_until_closed(sock)
    assert received.count(b"HTTP/1.1 200 ") == 2
    assert b'"price":41' in received and b'"price":42' in received


def test_a_body_cut_short_by_the_client_earns_400(plain_server: Tuple[int, str]) -> None:
    port, token = plain_server
    head, body = _order_request(token, b'{"side":', length=100)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        received = _received_until_closed(sock)
    assert received.startswith(b"HTTP/1.1 400 ")
