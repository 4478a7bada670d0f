"""The error family, and the choice of error from an HTTP answer.

    GameAPIError
    ├── OrderValidationError            orders refused before sending (also ValueError)
    ├── InvalidArgumentError            an argument refused before sending (also ValueError)
    ├── RiskLimitError                  orders past the client's risk limits, nothing sent
    ├── APIStatusError                  the exchange answered an error status
    │   ├── AuthenticationError         401, 403, a refused token exchange
    │   ├── NotFoundError               404
    │   ├── RateLimitError              429 after the client's own waits
    │   ├── ServerValidationError       400, 422
    │   └── ServerError                 5xx to a request that places nothing
    ├── ProtocolError                   an answer that cannot be read
    ├── NetworkError                    no answer: connect, TLS, reset
    │   └── NetworkTimeoutError         no answer in time
    └── OutcomeUnknownError             an order request that may or may not have been carried out
        ├── OrderOutcomeUnknownNoAnswerError   sent, then no answer
        ├── OrderOutcomeUnknownServerError     answered 5xx
        └── OrderOutcomeUnknownProtocolError   answered with something unreadable

Misuse of the library raises the standard exception: ``RuntimeError`` for a
closed client, ``TypeError``/``ValueError`` for a bad constructor argument.

Every error carries the method, path and status of the call where they are
known. None of them ever holds a token: texts taken from a server's answer go
through ``redact`` before they are kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, List, Optional, Sequence

from ._boundary import Request, Response, TransportFailure
from ._constants import ORDER_PROBLEMS_SHOWN
from ._http_dates import parse_retry_after

__all__ = [
    "GameAPIError",
    "OrderProblem",
    "OrderValidationError",
    "AuthenticationError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "APIStatusError",
    "ServerValidationError",
    "ProtocolError",
    "NetworkError",
    "NetworkTimeoutError",
    "InvalidArgumentError",
    "RiskBreach",
    "RiskLimitError",
    "OutcomeUnknownError",
    "OrderOutcomeUnknownNoAnswerError",
    "OrderOutcomeUnknownServerError",
    "OrderOutcomeUnknownProtocolError",
    "UNKNOWN_OUTCOME_HINT",
    "error_from_response",
    "error_for_answer",
    "error_for_unreadable",
    "error_for_encoding",
    "error_for_failure",
    "error_for_deadline",
    "error_for_token_exchange",
    "error_for_no_token",
    "readable_detail",
    "excerpt",
    "redact",
    "JournalError",
]

EXCERPT_LENGTH = 200


class GameAPIError(Exception):
    """The base of every error the project raises."""

    def __init__(
        self,
        message: str,
        *,
        method: Optional[str] = None,
        path: Optional[str] = None,
        status_code: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.status_code = status_code
        # Set on a bulk split in parts when a later part fails: what the
        # earlier parts did, so that nothing the exchange accepted is lost.
        self.partial_result: Any = None

    def __str__(self) -> str:
        where = " ".join(part for part in (self.method, self.path) if part)
        if self.status_code is not None:
            where = f"{where} -> {self.status_code}" if where else f"HTTP {self.status_code}"
        return f"{self.message} ({where})" if where else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


@dataclass(frozen=True)
class OrderProblem:
    """One thing wrong with one order: which order, which field, and why.

    ``index`` is the order's place in a bulk (None for a single order).
    """

    index: Optional[int]
    field: str
    reason: str

    def __iter__(self) -> Iterator[Any]:
        # Lets ``index, field, reason = problem`` work like a tuple.
        return iter((self.index, self.field, self.reason))

    def __str__(self) -> str:
        where = self.field if self.index is None else f"orders[{self.index}].{self.field}"
        return f"{where}: {self.reason}"


class OrderValidationError(GameAPIError, ValueError):
    """Orders that break the rules, found before anything was sent.

    ``errors`` lists every problem found, across every order of a bulk.
    """

    def __init__(self, errors: Sequence[OrderProblem], *, omitted: int = 0) -> None:
        self.errors: List[OrderProblem] = list(errors)
        #: Problems found but not listed in ``errors`` (an order of 60,000 unknown fields lists a few).
        self.omitted = omitted
        count = len(self.errors) + omitted
        shown = self.errors[:ORDER_PROBLEMS_SHOWN]
        lines = "; ".join(str(problem) for problem in shown)
        more = count - len(shown)
        if more > 0:
            lines += f"; ... and {more:,} more problem{'s' if more != 1 else ''}"
        super().__init__(f"invalid order ({count:,} problem{'s' if count != 1 else ''}): {lines}")

    @property
    def indices(self) -> List[int]:
        """The bulk indices of the orders that were refused, each once, in order."""
        return sorted({problem.index for problem in self.errors if problem.index is not None})


# -- risk limits (issue 23): the breaches of RiskLimits, found before sending ----


@dataclass(frozen=True)
class RiskBreach:
    """One order past one limit: the order's index, the limit's name, the value reached and the limit."""

    index: int
    limit: str
    value: Any
    allowed: Any
    reason: str

    def __str__(self) -> str:
        return f"orders[{self.index}]: {self.limit}: {self.reason}"


class RiskLimitError(GameAPIError):
    """Orders refused by the client's ``RiskLimits`` before anything was sent.

    ``breaches`` lists every limit each order would cross (``index``,
    ``limit``, ``value``, ``allowed``).
    """

    def __init__(self, breaches: Sequence[RiskBreach]) -> None:
        self.breaches: List[RiskBreach] = list(breaches)
        shown = self.breaches[:ORDER_PROBLEMS_SHOWN]
        lines = "; ".join(str(breach) for breach in shown)
        more = len(self.breaches) - len(shown)
        if more > 0:
            lines += f"; ... and {more:,} more"
        count = len(self.breaches)
        super().__init__(f"risk limit{'s' if count != 1 else ''} breached, nothing sent: {lines}")

    @property
    def limits(self) -> List[str]:
        """The names of the limits breached, each once, in order."""
        return sorted({breach.limit for breach in self.breaches})

    @property
    def indices(self) -> List[int]:
        """The indices of the refused orders, each once, in order."""
        return sorted({breach.index for breach in self.breaches})


class InvalidArgumentError(GameAPIError, ValueError):
    """An argument the client refuses before sending anything (also a ``ValueError``)."""


class APIStatusError(GameAPIError):
    """The exchange answered with an error status; the parent of every such error.

    ``status_code`` is the HTTP status, ``detail`` the server's explanation
    made readable (secrets redacted).
    """

    def __init__(self, message: str, *, detail: str = "", **where: Any) -> None:
        super().__init__(message, **where)
        self.detail = detail


class AuthenticationError(APIStatusError):
    """The token exchange was refused, or the exchange refused the access token (401, 403)."""


class NotFoundError(APIStatusError):
    """The exchange has no such thing (404)."""


class RateLimitError(APIStatusError):
    """The exchange asked us to slow down (429) and our retries are spent.

    ``retry_after`` is the wait the server asked for, in seconds, when it said.
    """

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **where: Any) -> None:
        super().__init__(message, **where)
        self.retry_after = retry_after


class ServerValidationError(APIStatusError):
    """The exchange refused the request's content (400 or 422)."""


class ServerError(APIStatusError):
    """The exchange failed (5xx) on a request that places nothing."""


class ProtocolError(GameAPIError):
    """An answer that is not what the protocol says: not JSON, the wrong shape, an unexpected status."""

    def __init__(self, message: str, *, excerpt: str = "", **where: Any) -> None:
        super().__init__(message, **where)
        self.excerpt = excerpt


class JournalError(GameAPIError):
    """The order journal could not be written or read: an order whose intent was not committed was not sent."""


class NetworkError(GameAPIError):
    """No answer came: the connection, TLS or the deadline failed before one did."""


class NetworkTimeoutError(NetworkError):
    """No answer came in time: a connect or read timeout, or the call's deadline."""


class OutcomeUnknownError(GameAPIError):
    """A request that places orders may or may not have been carried out.

    Never a ``NetworkError`` or a ``ServerError``: a handler that retries
    those must not send an order again. The client never repeats such a
    request by itself: reconcile (``find_matching_orders``) before sending
    it again. ``status_code`` is the answer's status when there was one.
    """


class OrderOutcomeUnknownNoAnswerError(OutcomeUnknownError):
    """The order request was sent, then the connection was lost or no answer came in time."""


class OrderOutcomeUnknownServerError(OutcomeUnknownError):
    """The order request was answered 5xx: a server error can come after the order was written,
    and a gateway's 502 or 504 says nothing of what the exchange did."""


class OrderOutcomeUnknownProtocolError(OutcomeUnknownError):
    """The order request was answered with something unreadable: the exchange most likely
    placed the orders, but we cannot say which ids they got.

    ``excerpt`` is a short, redacted piece of the answer.
    """

    def __init__(self, message: str, *, excerpt: str = "", **where: Any) -> None:
        super().__init__(message, **where)
        self.excerpt = excerpt


UNKNOWN_OUTCOME_HINT = "the orders may or may not exist; reconcile (find_matching_orders) before sending again"


#: How much of a body is scanned for an excerpt, and the longest detail shown.
_EXCERPT_SCAN = 65536
DETAIL_LENGTH = 600


#: A secret this long or longer is redacted wherever it appears. A shorter one
#: (a test's "e", a broken issuer's "ab") would garble every word it occurs
#: in, so it is redacted only where it stands alone: not flanked by a
#: character a token is made of (RFC 6750's b64token alphabet, but for "=",
#: which in texts mostly joins a name to a value: ``token=e``).
WHOLE_WORD_BELOW = 8
_TOKEN_CHARACTERS = r"A-Za-z0-9\-._~+/"
_ALONE_BEFORE = "(?<![" + _TOKEN_CHARACTERS + "])"
_ALONE_AFTER = "(?![" + _TOKEN_CHARACTERS + "])"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***`` (short ones only where they stand alone)."""
    for secret in secrets:
        if not secret:
            continue
        if len(secret) >= WHOLE_WORD_BELOW:
            text = text.replace(secret, "***")
        elif secret in text:
            alone = _ALONE_BEFORE + re.escape(secret) + _ALONE_AFTER
            text = re.sub(alone, "***", text)
    return text


def excerpt(body: bytes, secrets: Iterable[str] = ()) -> str:
    """A short, printable excerpt of a body for an error message."""
    secrets = tuple(secrets)
    text = redact(body[:_EXCERPT_SCAN].decode("utf-8", errors="replace"), secrets)
    if len(body) > _EXCERPT_SCAN:
        # What the cut left of a token at the very end is no token to
        # redaction: drop as many characters as the longest token has.
        # (Whitespace is collapsed below, so text far into the body can
        # still reach the excerpt.)
        longest = max((len(secret) for secret in secrets if secret), default=0)
        text = text[: len(text) - longest]
    text = " ".join(text.split())
    if len(text) > EXCERPT_LENGTH:
        text = text[:EXCERPT_LENGTH] + "..."
    return text


def readable_detail(payload: Any, secrets: Iterable[str] = ()) -> str:
    """The ``detail`` of a FastAPI-style error body as one readable line, secrets redacted, bounded."""
    secrets = tuple(secrets)
    try:
        text = redact(_readable_detail(payload, secrets), secrets)
    except RecursionError:
        return "(a detail nested too deeply to show)"
    if len(text) > DETAIL_LENGTH:
        text = text[:DETAIL_LENGTH] + "..."
    return text


def _readable_detail(payload: Any, secrets: Iterable[str]) -> str:
    detail = payload.get("detail", payload) if isinstance(payload, dict) else payload
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = item.get("loc")
                msg = item.get("msg", "")
                if isinstance(loc, list) and loc:
                    # "body" is where every field lives; it says nothing.
                    names = [str(p) for p in loc if p != "body"]
                    where = ""
                    for name in names:
                        where += f"[{name}]" if name.isdigit() else (f".{name}" if where else name)
                    parts.append(f"{where}: {msg}" if where else str(msg))
                else:
                    parts.append(str(msg or item))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    # Redact before cutting: a token straddling the cut would leave its prefix.
    return redact(json.dumps(detail, default=str), secrets)[:EXCERPT_LENGTH]


def _retry_after_seconds(response: Response, now: Optional[float]) -> Optional[float]:
    return parse_retry_after(response.header("Retry-After"), now=now)


def error_from_response(
    response: Response,
    *,
    method: Optional[str] = None,
    path: Optional[str] = None,
    secrets: Iterable[str] = (),
    wall_now: Optional[float] = None,
) -> GameAPIError:
    """The error that an unsuccessful answer stands for."""
    secrets = tuple(secrets)
    where: Any = {"method": method, "path": path, "status_code": response.status}
    status = response.status
    try:
        payload: Any = json.loads(response.body) if response.body else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        payload = None
    if payload is not None:
        detail = readable_detail(payload, secrets)
    else:
        detail = excerpt(response.body, secrets)
    if status in (401, 403):
        return AuthenticationError(f"not authorised: {detail or 'no detail'}", **where)
    if status == 404:
        return NotFoundError(f"not found: {detail or 'no detail'}", **where)
    if status == 429:
        wait = _retry_after_seconds(response, wall_now)
        told = f", retry after {wait:g} s" if wait is not None else ""
        return RateLimitError(f"rate limited{told}: {detail or 'no detail'}", retry_after=wait, **where)
    if 500 <= status <= 599:
        return ServerError(f"server error: {detail or 'no detail'}", **where)
    if status in (400, 422):
        return ServerValidationError(f"refused by the exchange: {detail}", detail=detail, **where)
    if 300 <= status < 400:
        # A Location may carry a token (a hostile server's, or ours echoed).
        where_to = redact(response.header("Location") or "nowhere", secrets)
        if len(where_to) > EXCERPT_LENGTH:
            where_to = where_to[:EXCERPT_LENGTH] + "..."
        return ProtocolError(
            f"unexpected redirect to {where_to}",
            excerpt=detail,
            **where,
        )
    if 200 <= status < 300:
        return ProtocolError(f"unexpected answer: {detail}", excerpt=detail, **where)
    if 100 <= status < 200 or status > 599:
        return ProtocolError(f"unexpected status: {detail}", excerpt=detail, **where)
    return APIStatusError(f"request refused: {detail or 'no detail'}", detail=detail, **where)


# -- the error of a call: what the flow raises ---------------------------------------
#
# The flow knows which request a failure belongs to and whether it places
# orders (``creates``); these functions, and nothing else, choose the error.
# A request that places orders never fails with an error that invites a
# retry when the exchange may have carried it out: it is outcome-unknown.


def error_for_answer(
    request: Request, response: Response, *, creates: bool, secrets: Sequence[str], wall_now: Optional[float]
) -> GameAPIError:
    """The error an unsuccessful answer to ``request`` stands for (after the client's own retries)."""
    error = error_from_response(response, method=request.method, path=request.path, secrets=secrets, wall_now=wall_now)
    if creates and isinstance(error, ProtocolError):
        # 1xx, 3xx, a 2xx the call does not expect, a status beyond 599:
        # neither a success nor a refusal, so the orders may exist.
        return error_for_unreadable(request, response, error.message, creates=creates, secrets=secrets)
    if creates and isinstance(error, ServerError):
        # A 5xx does not prove the orders were refused.
        return OrderOutcomeUnknownServerError(
            f"{error.message}: {UNKNOWN_OUTCOME_HINT}",
            method=request.method,
            path=request.path,
            status_code=response.status,
        )
    return error


def error_for_unreadable(
    request: Request, response: Response, message: str, *, creates: bool, secrets: Sequence[str]
) -> GameAPIError:
    """The error for an answer the client cannot read: outcome-unknown for orders."""
    where: Any = {"method": request.method, "path": request.path, "status_code": response.status}
    shown = excerpt(response.body, secrets)
    if creates:
        return OrderOutcomeUnknownProtocolError(f"{message}: {UNKNOWN_OUTCOME_HINT}", excerpt=shown, **where)
    return ProtocolError(message, excerpt=shown, **where)


def error_for_encoding(
    request: Request, response: Response, *, creates: bool, secrets: Sequence[str]
) -> Optional[GameAPIError]:
    """The error for an answer with a content coding, None for an identity answer.

    We ask for identity and decode nothing: a compressed body could inflate
    a thousandfold past the size cap.
    """
    encoding = response.header("Content-Encoding")
    if encoding is None or encoding.strip(" \t").lower() in ("", "identity"):
        return None
    shown = redact(encoding, secrets)[:40]
    message = f"answer has Content-Encoding {shown!r}, not identity"
    return error_for_unreadable(request, response, message, creates=creates, secrets=secrets)


def error_for_failure(
    request: Request, failure: TransportFailure, *, creates: bool, secrets: Sequence[str], attempts: int
) -> GameAPIError:
    """The error for a request that got no answer, on its last attempt."""
    detail = redact(failure.detail, secrets) or failure.kind
    where: Any = {"method": request.method, "path": request.path}
    if failure.kind == "too_large":
        # An answer came, too long to read: unreadable rather than absent.
        if creates:
            return OrderOutcomeUnknownProtocolError(f"{detail}: {UNKNOWN_OUTCOME_HINT}", **where)
        return ProtocolError(detail, **where)
    if creates and failure.may_have_been_sent:
        return OrderOutcomeUnknownNoAnswerError(
            f"outcome unknown ({failure.kind}: {detail}): the request was sent but no answer came, "
            f"so {UNKNOWN_OUTCOME_HINT}",
            **where,
        )
    kind = NetworkTimeoutError if failure.timed_out else NetworkError
    tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
    return kind(f"{failure.kind}: {detail}{tries}", **where)


def error_for_deadline(request: Request, timeout: float, attempts: int) -> NetworkTimeoutError:
    """The error of a call whose deadline passed between attempts, ``attempts`` of them sent.

    It sent nothing more, so its outcome is what the earlier attempts left:
    for a request that creates orders those were never sent (or were answered).
    """
    return NetworkTimeoutError(
        f"deadline of {timeout:g} s exceeded after {attempts} attempt{'s' if attempts != 1 else ''}",
        method=request.method,
        path=request.path,
    )


def error_for_token_exchange(error: GameAPIError, path: str) -> GameAPIError:
    """The error of a failed token exchange: a refusal of the token is an ``AuthenticationError``."""
    if not isinstance(error, APIStatusError):
        return error
    status = error.status_code or 0
    if isinstance(error, AuthenticationError) or (400 <= status < 500 and status != 429):
        return AuthenticationError(
            f"token exchange refused: {error.message}", method="POST", path=path, status_code=status
        )
    return error


def error_for_no_token(request: Request) -> AuthenticationError:
    """The error of a call that found no access token even after a fresh exchange."""
    return AuthenticationError("no access token after the exchange", method=request.method, path=request.path)
