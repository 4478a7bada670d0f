"""The overall deadline holds against a server that trickles its answer.

Per-read timeouts alone never fire when a byte arrives every few hundred
milliseconds; the call must still end when its ``timeout`` is spent, in the
deadline's error (a call without a deadline would end 25 s later, answered).
"""

from __future__ import annotations

import socket
import threading
from typing import Iterator

import pytest

from gameproto import NetworkTimeoutError, OutcomeUnknownError
from tests.support.common import future_order
from tests.support.harness import Harness, every_driver
from tests.support.tcp import accept_loop

TOKEN_ANSWER = b'{"access_token": "trickle-access", "expires_in": 3600}'
#: Set: the server closes the connection after the token's answer, so the trickled one is a new connection's first.
FRESH = threading.Event()


def _answer(body: bytes, close: bool = False) -> bytes:
    # "connection: close" said, so that no client sends its next request on a connection about to close.
    extra = b"connection: close\r\n" if close else b""
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n%scontent-length: %d\r\n\r\n%s" % (
        extra,
        len(body),
        body,
    )


def _serve(listener: socket.socket, stop: threading.Event) -> None:
    """Answer the token exchange at once, then trickle every other answer a byte at a time."""
    listener.settimeout(0.1)
    accept_loop(listener, stop.is_set, lambda connection: _converse(connection, stop))


def _converse(connection: socket.socket, stop: threading.Event) -> None:
    with connection:
        connection.settimeout(5)
        try:
            while not stop.is_set():
                request = connection.recv(65536)
                if not request:
                    return
                if b"/auth/token" in request.split(b"\r\n", 1)[0]:
                    connection.sendall(_answer(TOKEN_ANSWER, close=FRESH.is_set()))
                    if FRESH.is_set():  # the next request comes on a connection of its own
                        return
                    continue
                for byte in _answer(b'{"status": "healthy"}' + b" " * 200):
                    if stop.wait(0.1):
                        return
                    connection.sendall(bytes([byte]))
        except OSError:
            return


@pytest.fixture
def trickling_url() -> Iterator[str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(listener, stop), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        listener.close()


@every_driver(timeout=1.5, read_timeout=1.0, max_retries=0)
async def test_a_trickled_get_ends_at_its_deadline(h: Harness, trickling_url: str) -> None:
    # The answer takes 25 s and every byte comes within the read timeout: only the deadline ends the call.
    api = h.client(trickling_url, token="personal")
    with pytest.raises(NetworkTimeoutError) as caught:
        await api.get_status()
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert "deadline" in str(caught.value)


@every_driver(timeout=1.5, read_timeout=1.0, max_retries=0)
async def test_a_trickled_answer_on_a_new_connection_ends_at_its_deadline(h: Harness, trickling_url: str) -> None:
    # The first answer of a connection: its socket is new to the client when the trickle starts.
    h.transport.skip_unless("deadline_before_first_headers")
    FRESH.set()
    try:
        api = h.client(trickling_url, token="personal")
        with pytest.raises(NetworkTimeoutError) as caught:
            await api.get_status()
    finally:
        FRESH.clear()
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert "deadline" in str(caught.value)


@every_driver(timeout=1.5, read_timeout=1.0, max_retries=0)
async def test_a_trickled_answer_to_an_order_on_a_new_connection_is_outcome_unknown(
    h: Harness, trickling_url: str
) -> None:
    # Cut short at the deadline, whatever part of the answer came: the order may have been placed.
    FRESH.set()
    try:
        api = h.client(trickling_url, token="personal")
        with pytest.raises(OutcomeUnknownError):
            await api.create_order(future_order())
    finally:
        FRESH.clear()
