"""The values that cross the boundary between the core and a driver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

__all__ = ["Request", "Response"]

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
