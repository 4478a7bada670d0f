"""A request as the exchange reads it: from h11's event, or from the bytes of a plain request read without h11.

The connection (``_connection``) drives the socket and h11; this turns what
came into the exchange's ``Request`` and says which heads are plain enough to
read without h11 (tests/exchange/test_plain_requests.py holds the two readings
together).
"""

from __future__ import annotations

import re
from typing import Iterable, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

import h11

from gameproto._boundary import Request
from gameproto._constants import API_PREFIX, SERVER_CLIENT_HEADER

__all__ = ["to_request", "exchange_request", "plain_request", "PlainRequest", "CLIENT_HEADER"]

#: The header the client's address rides in; one the client sent is dropped.
CLIENT_HEADER = SERVER_CLIENT_HEADER.encode("ascii")


def to_request(event: h11.Request, body: bytes, client: str, prefix: str = API_PREFIX) -> Optional[Request]:
    """The exchange's view of an HTTP request, or None when it is not under ``prefix``.

    The client's address rides in a header of its own; one the client sent is dropped.
    """
    target = event.target.decode("latin-1")
    if target.startswith(("http://", "https://")):  # absolute form, as sent to a proxy
        parts = urlsplit(target)
        path, query = parts.path or "/", parts.query
    else:
        path, _, query = target.partition("?")
    if prefix and path != prefix and not path.startswith(prefix + "/"):
        return None
    return exchange_request(event.method, path, query, event.headers, body, client, prefix)


def exchange_request(
    method: bytes,
    path: str,
    query: str,
    fields: Iterable[Tuple[bytes, bytes]],
    body: Optional[bytes],
    client: str,
    prefix: str = API_PREFIX,
) -> Request:
    """The exchange's ``Request`` of a request under ``prefix``, however its head was read (h11 or plain).

    The client's address rides in a header of its own; one the client sent is dropped.
    """
    sent = [
        (name.decode("latin-1").lower(), value.decode("latin-1"))
        for name, value in fields
        if name.lower() != CLIENT_HEADER
    ]
    return Request(
        method=method.decode("ascii", "replace"),
        # The path stays percent-encoded, as Request.path is on the client side.
        path=path[len(prefix) :] or "/",
        query=tuple(parse_qsl(query, keep_blank_values=True)),
        headers=(*sent, (SERVER_CLIENT_HEADER, client)),
        body=body or None,
    )


# The plain request, read without h11: the one shape clients send over and over. Only what h11
# itself accepts, and reads the same way, fits these (tests/exchange/test_plain_requests.py holds
# the two together); anything else (another method or version, obs-text, a folded or odd line, a
# head or body not all there yet, framing or connection headers) is handed to h11 whole.
_PLAIN_LINE = re.compile(rb"(GET|POST|DELETE) (/[\x21-\x7e]*) HTTP/1\.1")
_PLAIN_FIELD = re.compile(rb"([-!#$%&'*+.^_`|~0-9A-Za-z]+):[ \t]*((?:[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*)?)[ \t]*")
#: Headers whose meaning h11 carries out (framing, the connection's life, 100-continue, upgrades).
_LEFT_TO_H11 = frozenset({b"transfer-encoding", b"connection", b"expect", b"upgrade", b"te"})
#: A plain head is at most this long (h11 takes heads up to 16 KiB).
_PLAIN_HEAD_MAX = 8 * 1024

PlainRequest = Tuple[bytes, bytes, List[Tuple[bytes, bytes]], int, int]


def plain_request(data: bytes) -> Optional[PlainRequest]:
    """(method, target, headers with lower-case names, where the body starts, its length) of the plain
    request whose head starts ``data`` (its body may not be all there yet); None for anything h11 is to read."""
    end = data.find(b"\r\n\r\n", 0, _PLAIN_HEAD_MAX)
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    first = _PLAIN_LINE.fullmatch(lines[0])
    if first is None:
        return None
    headers: List[Tuple[bytes, bytes]] = []
    hosts = 0
    length: Optional[int] = None
    for line in lines[1:]:
        field = _PLAIN_FIELD.fullmatch(line)
        if field is None:
            return None
        name, value = field.group(1).lower(), field.group(2)
        if name in _LEFT_TO_H11:
            return None
        if name == b"host":
            hosts += 1
        elif name == b"content-length":
            if length is not None or not value.isdigit() or len(value) > 9:
                return None
            length = int(value)
        headers.append((name, value))
    if hosts != 1:
        return None
    return first.group(1), first.group(2), headers, end + 4, length or 0
