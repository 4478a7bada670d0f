"""Every failure of a ``game`` command as one line in a trader's words, and its exit status.

The line says what failed, against which server, and what to try; ``--verbose``
adds the detail below it (the error's class, the call, the server's answer,
what caused it). No traceback ever reaches the terminal: a trader cannot act
on one, and a token could hide in it.
"""

from __future__ import annotations

import importlib
import re
from typing import List, Optional, Tuple
from urllib.parse import urlsplit

from gameproto import (
    APIStatusError,
    AuthenticationError,
    GameAPIError,
    InvalidArgumentError,
    NetworkError,
    NotFoundError,
    OrderValidationError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitError,
    ServerError,
    ServerValidationError,
)
from gameproto._extras import install_hint

#: The problems of an invalid order named on the error's one line; the rest are counted.
PROBLEMS_ON_THE_LINE = 5

__all__ = [
    "UsageError", "CommandFailed", "explain", "details", "require_backend", "cannot_connect", "TRIO_HINT", "USAGE",
    "FAILED",
]  # fmt: skip

#: Exit statuses, as the README gives them.
USAGE = 2  # the input was wrong: nothing was sent
FAILED = 1  # the exchange or the network failed

TRIO_HINT = install_hint("trio")

#: The names the core gives transport failures, first word of a NetworkError's message.
_KIND = re.compile(r"(connect|connect_timeout|tls|read|read_timeout|deadline)\b")
_ORDER_PATH = re.compile(r"/orders/([0-9]+)")
_UNKNOWN_HOST = (
    "Name or service not known",
    "nodename nor servname",
    "Temporary failure in name resolution",
    "getaddrinfo failed",
    "No address associated",
)
_REFUSED = (
    "Connection refused",
    "Errno 111",
    "ConnectionRefusedError",
    "actively refused",
    "All connection attempts failed",  # anyio, when every address of the host refused
)
#: What OpenSSL says when an https:// client meets a plain HTTP server.
_NOT_TLS = ("wrong version number", "record layer failure", "packet length too long")
CHECK_URL = "check --url (or GAME_API_URL)"


class UsageError(Exception):
    """The command line or its input is wrong: exit status 2, like argparse's own errors."""


class CommandFailed(Exception):
    """Something outside the input failed, already said in words (a port taken): exit status 1."""


def _leaf(error: BaseException) -> BaseException:
    """The error inside a task group's exception group: the one that says what happened."""
    inner = getattr(error, "exceptions", None)
    while isinstance(inner, (list, tuple)) and inner:
        error = next((item for item in inner if isinstance(item, GameAPIError)), inner[0])
        inner = getattr(error, "exceptions", None)
    return error


def require_backend(backend: str) -> None:
    """Refuse, before anything runs, an event loop whose library is not installed."""
    if backend != "trio":
        return
    try:
        importlib.import_module("trio")
    except ImportError:
        raise UsageError(
            f"--backend trio needs the trio package, which is not installed: {TRIO_HINT} (or use --backend asyncio)"
        ) from None


def _where(url: Optional[str]) -> str:
    return url or "the exchange"


def _host(url: Optional[str]) -> str:
    try:
        return urlsplit(url or "").hostname or "the host"
    except ValueError:
        return "the host"


#: The embedded exchange's 404 for an order of yours with nothing left to cancel.
_NOTHING_LEFT = re.compile(r"Order \d+ (is fully executed|expired at its delivery start|was deleted already): nothing")


def _order_name(path: Optional[str]) -> Optional[str]:
    match = _ORDER_PATH.fullmatch(path or "")
    return f"ord_{match.group(1)}" if match else None


def cannot_connect(where: str, url: Optional[str], text: str, running: str = "the exchange") -> str:
    """What to try when a connection to ``where`` failed with ``text`` (unknown host, refused, other)."""
    if any(sign in text for sign in _UNKNOWN_HOST):
        return f"cannot connect to {where}: the host {_host(url)!r} is not known; {CHECK_URL} for a typo"
    if any(sign in text for sign in _REFUSED):
        return (
            f"cannot connect to {where}: connection refused (nothing listens there); is {running} running? {CHECK_URL}"
        )
    return f"cannot connect to {where}; {CHECK_URL} and your network"


def _network(error: NetworkError, url: Optional[str]) -> str:
    where = _where(url)
    text = error.message
    match = _KIND.match(text)
    kind = match.group(1) if match else ("deadline" if text.startswith("deadline") else "")
    if isinstance(error, OutcomeUnknownError):
        return (
            f"no answer from {where} after the order was sent: it may or may not exist; "
            "check with `game orders` before sending it again"
        )
    if kind == "connect":
        return cannot_connect(where, url, text)
    if kind == "connect_timeout":
        return f"cannot connect to {where}: no answer to the connection in time; {CHECK_URL} and your network"
    if kind == "tls" or "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return (
            f"the TLS certificate of {where} is not trusted; pass --ca-bundle PATH "
            "(or set SSL_CERT_FILE or REQUESTS_CA_BUNDLE to your CA bundle)"
        )
    if any(sign in text.lower() for sign in _NOT_TLS):
        return f"{where} does not speak TLS; try http:// instead of https://"
    if kind == "deadline":
        return f"{where} did not answer within the call's deadline; try again, or give it longer with --timeout"
    if kind == "read_timeout":
        return f"{where} stopped answering (read timeout); try again, or give it longer with --timeout"
    if (url or "").startswith("http://") and "closed connection without response" in text:
        # What a TLS server does to a plain-HTTP request: it hangs up without a word.
        return f"{where} closed the connection without an answer; if it serves HTTPS, try https://"
    return f"the connection to {where} was lost; try again"


def _status(error: GameAPIError, url: Optional[str]) -> str:
    where = _where(url)
    status = error.status_code
    call = " ".join(part for part in (error.method, error.path) if part) or "the call"
    detail = str(getattr(error, "detail", "") or "").strip()
    if isinstance(error, AuthenticationError):
        if error.path == "/auth/token" and status == 404:
            return (
                f"{where} has no GAME API (its token exchange, POST /api/v1/auth/token, answered 404 not found): "
                "wrong URL? give the server's address, e.g. http://127.0.0.1:8765"
            )
        if error.path == "/auth/token" and status in (401, 403):
            return f"{where} refused your personal token (HTTP {status}); check --token-file (or GAME_API_TOKEN)"
        if status in (401, 403):
            return f"{where} refused access to {call} (HTTP {status}); check your token's rights"
        return f"the token exchange with {where} failed: {error.message}"
    if isinstance(error, NotFoundError):
        order = _order_name(error.path)
        if order:
            gone = _NOTHING_LEFT.search(error.message)
            if gone:  # the exchange said why: fully executed, expired or deleted already
                return f"{order} cannot be cancelled: it {gone.group(1)}, nothing is left of it in the book"
            return f"{where} has no order {order} of yours (deleted already?); `game orders` lists yours"
        return f"{where} answered 404 not found to {call}: wrong URL, or a server without this call?"
    if isinstance(error, RateLimitError):
        wait = f" in {error.retry_after:g} s" if error.retry_after is not None else " in a minute"
        return f"{where} is rate limiting your token; try again{wait}"
    if isinstance(error, ServerValidationError):
        return f"{where} refused {call}: {detail or error.message}"
    if isinstance(error, ServerError):
        return f"{where} failed (HTTP {status}) on {call}; try again later (-v shows its answer)"
    if isinstance(error, ProtocolError):
        return f"{where} answered {call} with something that is not a GAME API answer; wrong URL? (-v shows it)"
    if isinstance(error, APIStatusError):
        return f"{where} refused {call} (HTTP {status}): {detail or error.message}"
    return error.message


def _first_line(text: str) -> str:
    first = (text.strip().splitlines() or [""])[0]
    return first if len(first) <= 300 else first[:297] + "..."


def explain(error: BaseException, url: Optional[str] = None) -> Tuple[int, str]:
    """The exit status and the one line (without the ``game: `` prefix) that ``error`` stands for."""
    error = _leaf(error)
    if isinstance(error, UsageError):
        return USAGE, _first_line(str(error))
    if isinstance(error, CommandFailed):
        return FAILED, _first_line(str(error))
    if isinstance(error, InvalidArgumentError) and str(error).startswith("order_id "):
        return USAGE, f"bad order id, nothing was sent: {_first_line(str(error))}"
    if isinstance(error, OrderValidationError):
        # Every problem named, as the library names them; a long list (a bulk file) is cut, --verbose has it all.
        lines = [_first_line(str(problem)) for problem in error.errors] or [_first_line(error.message)]
        shown = lines[:PROBLEMS_ON_THE_LINE]
        more = f" (and {len(lines) - len(shown)} more; --verbose lists all)" if len(lines) > len(shown) else ""
        return USAGE, f"invalid order, nothing was sent: {'; '.join(shown)}{more}"
    if isinstance(error, ServerValidationError):
        return USAGE, _first_line(_status(error, url))
    if isinstance(error, NetworkError):
        return FAILED, _network(error, url)
    if isinstance(error, GameAPIError) and isinstance(error, ValueError):
        # A bad argument (a duration, a direction), refused before anything was sent.
        return USAGE, _first_line(error.message)
    if isinstance(error, GameAPIError):
        return FAILED, _first_line(_status(error, url))
    if isinstance(error, FileNotFoundError):
        return USAGE, f"no such file: {error.filename or error}"
    if isinstance(error, PermissionError):
        return USAGE, f"not allowed to open {error.filename or 'a file'}: permission denied"
    if isinstance(error, OSError):
        name = f" {error.filename}" if error.filename else ""
        return FAILED, _first_line(f"cannot use{name}: {error.strerror or error}")
    if isinstance(error, ValueError):
        # The libraries' answer to a wrong argument: the caller's input.
        return USAGE, _first_line(str(error) or type(error).__name__)
    return FAILED, _first_line(f"unexpected {type(error).__name__}: {error}; --verbose shows more")


def details(error: BaseException) -> List[str]:
    """What ``--verbose`` adds below the line: the error itself, the server's answer, the causes."""
    error = _leaf(error)
    lines = [f"{type(error).__name__}: {_first_line(str(error))}"]
    if isinstance(error, OrderValidationError):
        lines += [str(problem) for problem in error.errors]
    detail = getattr(error, "detail", None)
    if detail:
        lines.append(f"server detail: {detail}")
    excerpt = getattr(error, "excerpt", None)
    if excerpt:
        lines.append(f"answer: {excerpt}")
    partial = getattr(error, "partial_result", None)
    if partial:
        lines.append(f"partial result: {partial}")
    cause = _cause(error)
    seen = 0
    while cause is not None and seen < 5:
        lines.append(f"caused by {type(cause).__name__}: {_first_line(str(cause))}")
        cause = _cause(cause)
        seen += 1
    return lines


def _cause(error: BaseException) -> Optional[BaseException]:
    if error.__cause__ is not None:
        return error.__cause__
    return None if error.__suppress_context__ else error.__context__
