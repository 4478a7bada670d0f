"""The values that cross the boundary between the core and a driver.

A driver receives ``Request`` values and answers each with a ``Response`` or
a ``TransportFailure`` (named by the step at which the request got no answer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

__all__ = ["Request", "Response", "TransportFailure", "NOT_SENT_KINDS", "FAILURE_KINDS"]

Headers = Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class Request:
    """An HTTP request the core wants sent.

    ``path`` is relative to ``{base_url}/api/v1`` and already safe to put in a
    URL: every piece that came from a caller has been checked by the builder.
    ``query`` holds only the parameters that are set, in a stable order.
    """

    method: str
    path: str
    query: Tuple[Tuple[str, str], ...] = ()
    headers: Headers = ()
    body: Optional[bytes] = None

    @property
    def target(self) -> str:
        """The path with its encoded query string, as it goes on the wire."""
        if not self.query:
            return self.path
        from urllib.parse import urlencode

        return self.path + "?" + urlencode(self.query)

    def header(self, name: str) -> Optional[str]:
        """The first value of a header, matched without regard to case."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def __repr__(self) -> str:
        # Headers are left out on purpose: they carry the bearer token.
        return f"Request(method={self.method!r}, path={self.path!r}, query={self.query!r})"


@dataclass(frozen=True)
class Response:
    """An HTTP answer as a driver received it: status, headers and raw body."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> Optional[str]:
        """The value of a header, matched without regard to case."""
        value = self.headers.get(name)
        if value is not None:
            return value
        wanted = name.lower()
        for key, candidate in self.headers.items():
            if key.lower() == wanted:
                return candidate
        return None


#: Failures that happen before a single byte of the request left: the
#: exchange cannot have carried it out, so even an order may be sent again.
NOT_SENT_KINDS = frozenset({"connect", "connect_timeout", "tls", "pool_timeout"})
#: Failures after (part of) the request may have reached the exchange.
SENT_KINDS = frozenset({"write", "write_timeout", "read", "read_timeout", "closed", "protocol", "deadline"})
FAILURE_KINDS = NOT_SENT_KINDS | SENT_KINDS


@dataclass(frozen=True)
class TransportFailure:
    """A request that got no answer: ``kind`` says at which step, ``detail`` what happened.

    ``detail`` is the library's message with nothing secret in it (drivers
    never put headers in it).
    """

    kind: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FAILURE_KINDS:
            raise ValueError(f"unknown transport failure kind {self.kind!r}")

    @property
    def may_have_been_sent(self) -> bool:
        """Whether the exchange may have received, and carried out, the request."""
        return self.kind not in NOT_SENT_KINDS

    @property
    def is_timeout(self) -> bool:
        return self.kind.endswith("timeout") or self.kind == "deadline"
