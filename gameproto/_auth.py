"""The access token's life: the exchange request, its answer, when to refresh.

The personal token (issued by the platform's identity provider) is traded
for an access token that expires. One exchange serves every call until
``refresh_margin`` seconds before expiry. Neither token ever shows in a
``repr``.
"""

from __future__ import annotations

import json
from typing import Any, Optional, Tuple

from . import _constants
from ._arguments import is_number
from ._boundary import Request, Response
from ._errors import AuthenticationError, GameAPIError, ProtocolError, error_from_response, excerpt

_LONGEST_LIFETIME = 10 * 365 * 86400

__all__ = ["TokenState", "TOKEN_PATH", "unsendable", "secrets_in_answer"]

TOKEN_PATH = "/auth/token"


def unsendable(access_token: str) -> Optional[str]:
    """Why ``access_token`` cannot go in an ``Authorization: Bearer`` header, or None.

    A header value is bytes: visible ASCII only. A space would split the
    header's meaning; a control byte or a line break would break the request.
    """
    for character in access_token:
        code = ord(character)
        if code < 0x20 or code == 0x7F:
            return "it has a control character"
        if code > 0x7F:
            return "it has a character outside ASCII"
        if code == 0x20:
            return "it has a space"
    return None


def secrets_in_answer(body: bytes) -> Tuple[str, ...]:
    """The access token an exchange's answer carries, if any: to redact from an excerpt of it."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return ()
    token = payload.get("access_token") if isinstance(payload, dict) else None
    return (token,) if isinstance(token, str) and token else ()


class TokenState:
    """The personal token, and the access token traded for it while it is fresh.

    Times are seconds on the caller's monotonic clock. ``generation`` grows
    with every exchange that ends (or loss of the token), so that a call
    that waited for the token lock can tell that another call's exchange
    ended meanwhile, and share its outcome rather than exchange again.
    """

    __slots__ = ("_access", "_personal", "_refresh_at", "generation", "last_failure", "refresh_margin")

    def __init__(self, personal_token: str, *, refresh_margin: float = _constants.TOKEN_REFRESH_MARGIN) -> None:
        if not isinstance(personal_token, str) or not personal_token.strip():
            raise ValueError("a personal token (a non-empty string) is required")
        if any(ch in personal_token for ch in "\r\n\x00"):
            raise ValueError("the personal token has a line break or NUL in it")
        self._personal = personal_token
        self._access: Optional[str] = None
        self._refresh_at = 0.0
        self.refresh_margin = refresh_margin
        self.generation = 0
        #: Why the latest exchange failed (None after a success or a loss of
        #: the token): calls that waited for that exchange share its outcome.
        self.last_failure: Optional[GameAPIError] = None

    def __repr__(self) -> str:
        state = "fresh" if self._access else "none"
        return f"<TokenState access={state} generation={self.generation}>"

    @property
    def secrets(self) -> Tuple[str, ...]:
        """Every token this state holds, for redaction from texts we keep."""
        return (self._personal, self._access) if self._access else (self._personal,)

    def current(self, now: float) -> Optional[str]:
        """The access token to use at ``now``, or None when an exchange is due."""
        if self._access is not None and now < self._refresh_at:
            return self._access
        return None

    def failed(self, error: GameAPIError) -> None:
        """Record a failed exchange, for the calls that waited for it."""
        self.last_failure = error
        self.generation += 1

    def exchange_request(self) -> Request:
        """The request that trades the personal token for an access token."""
        body = json.dumps({"token": self._personal}).encode()
        return Request(
            "POST",
            TOKEN_PATH,
            headers=(
                ("Content-Type", "application/json"),
                ("Accept", "application/json"),
                ("User-Agent", _constants.USER_AGENT),
            ),
            body=body,
        )

    def accept(self, response: Response, now: float) -> str:
        """Take the exchange's answer; return the access token or raise why not."""
        where: Any = {"method": "POST", "path": TOKEN_PATH}
        if response.status != 200:
            error = error_from_response(response, secrets=self.secrets, **where)
            if isinstance(error, AuthenticationError) or (400 <= response.status < 500 and response.status != 429):
                raise AuthenticationError(
                    f"token exchange refused: {error.message}", status_code=response.status, **where
                )
            raise error
        try:
            payload = json.loads(response.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            payload = None
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise ProtocolError(
                "token exchange answer has no usable access_token",
                excerpt=excerpt(response.body, self.secrets + ((token,) if isinstance(token, str) else ())),
                status_code=response.status,
                **where,
            )
        problem = unsendable(token)
        if problem is not None:
            # Refused here, once, rather than failing (or, worse, being sent
            # raw) on every later call. The text names the problem, never the token.
            raise AuthenticationError(
                f"the access_token issued cannot be sent: {problem}",
                status_code=response.status,
                **where,
            )
        lifetime: Any = payload.get("expires_in") if isinstance(payload, dict) else None
        if lifetime is None:
            lifetime = _constants.DEFAULT_TOKEN_LIFETIME
        elif isinstance(lifetime, str) and lifetime.strip().isascii() and lifetime.strip().isdigit():
            lifetime = int(lifetime.strip()[:12])  # "3600": some servers quote it; the meaning is plain
        if not is_number(lifetime, above=0):
            raise ProtocolError(
                "token exchange answer has an unusable expires_in",
                excerpt=excerpt(response.body, (*self.secrets, token)),
                status_code=response.status,
                **where,
            )
        # Capped before float(): an int of 400 digits is valid JSON and no float.
        # At least a second: a token that expires at once would be traded on every call.
        lifetime = max(1.0, float(min(lifetime, _LONGEST_LIFETIME)))
        # A token that lives less than twice the margin is refreshed halfway,
        # not at once: otherwise every call would trade a new one.
        margin = min(self.refresh_margin, lifetime / 2.0)
        self._access = token
        self._refresh_at = now + lifetime - margin
        self.last_failure = None
        self.generation += 1
        return token

    def invalidate(self, access_token: Optional[str]) -> None:
        """Forget ``access_token`` after the exchange refused it (401).

        Only that token: if another call already traded a new one, keep it.
        """
        if access_token is not None and access_token == self._access:
            self._access = None
            self.last_failure = None
            self.generation += 1
