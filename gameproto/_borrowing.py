"""What a client borrowed from the application (``GameAPI(..., http_client=...)``) may bring along.

Its connections, TLS and proxies are borrowed; gameproto's own headers,
timeouts, size cap and retries are not given up. The decisions that every
borrowed transport shares live here: which of gameproto's own connection
settings cannot go with a borrowed client, which default header clashes with
gameproto's, which library a client object comes from (read off its type,
never by importing the library), and when an answer is too long.
"""

from __future__ import annotations

from typing import Any, Optional

from . import _constants
from ._errors import InvalidArgumentError
from ._settings import ClientSettings

__all__ = ["TooLarge", "library_of", "refuse_own_settings", "refuse_header", "check_length", "declared_length"]

#: The libraries a client may be borrowed from.
LIBRARIES = ("httpx", "aiohttp", "requests")
#: Default headers of a borrowed client that clash with gameproto's own credentials.
CLASHING_HEADERS = ("Authorization", "Cookie")


class TooLarge(Exception):
    """The answer is longer than the client reads."""


def library_of(http_client: object) -> str:
    """The top-level package that defines ``http_client``'s type (or a base of it): "httpx", "aiohttp", ..."""
    for kind in type(http_client).__mro__:
        name = kind.__module__.partition(".")[0]
        if name in LIBRARIES:
            return name
    return type(http_client).__module__.partition(".")[0]


def refuse_own_settings(settings: ClientSettings) -> None:
    """gameproto's connection settings given with a borrowed client: which would win is unclear, so refuse."""
    chosen = []
    if settings.verify_ssl is not True:
        chosen.append(f"verify_ssl={settings.verify_ssl!r}")
    if not settings.trust_env:
        chosen.append("trust_env=False")
    if settings.max_connections != _constants.POOL_MAX_CONNECTIONS:
        chosen.append(f"max_connections={settings.max_connections!r}")
    if chosen:
        raise InvalidArgumentError(
            f"{', '.join(chosen)}: with http_client=, connections, TLS and proxies are the borrowed client's; "
            "set them on it instead"
        )


def refuse_header(headers: Any) -> None:
    """A borrowed client's default header that would clash with gameproto's credentials is refused."""
    for name in CLASHING_HEADERS:
        if headers is not None and name in headers:
            raise InvalidArgumentError(
                f"http_client: its default {name} header would clash with gameproto's own credentials"
            )


def check_length(length: int, max_bytes: int, declared: bool = False) -> None:
    """``TooLarge`` when an answer of ``length`` bytes (so far, or as ``declared``) is longer than the cap."""
    if length > max_bytes:
        if declared:
            raise TooLarge(f"answer of {length} bytes is longer than max_response_bytes={max_bytes}")
        raise TooLarge(f"answer longer than max_response_bytes={max_bytes}; reading stopped there")


def declared_length(value: Optional[str]) -> int:
    """The Content-Length an answer declares, or -1."""
    if value is not None and value.strip().isdigit():
        return int(value)
    return -1
