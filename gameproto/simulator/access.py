"""Who may trade: personal tokens, the access tokens exchanged for them, and the rate limits.

Three limits live here: each trader's requests per fixed minute, refused
token exchanges per client address and minute, and the live access tokens
one personal token holds (so that a loop of valid exchanges cannot grow
them for good).
"""

from __future__ import annotations

import collections
import ipaddress
import math
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, Iterable, Mapping, Optional, Tuple, Union

from .. import _constants
from .._boundary import Request, Response
from .answers import Context, Refused, answer, error, invalid, json_body

__all__ = ["Access", "bearer", "guesser"]

#: Live access tokens one personal token holds; a new exchange beyond that drops the oldest.
_ACCESS_TOKENS_PER_TOKEN = 1000
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
#: Client addresses whose refusals are remembered before past minutes are swept out.
_REFUSAL_ADDRESSES = 1024


@dataclass
class _Token:
    trader: str
    personal: str
    expires: float


#: The headers last read and the bearer token in them: a request's token is asked for up to
#: three times (screening, counting, handling), each time of the same headers.
_LAST_READ: Tuple[Any, str] = ((), "")


def bearer(request: Request) -> str:
    """The bearer token a request carries, or ""."""
    global _LAST_READ
    headers = request.headers
    last = _LAST_READ
    if last[0] is headers:
        return last[1]
    scheme, _, value = (request.header("Authorization") or "").strip().partition(" ")
    token = value.strip() if scheme.lower() == "bearer" else ""
    _LAST_READ = (headers, token)
    return token


def _wait(window: int, now: float) -> str:
    """Seconds to the next one-minute window, for ``Retry-After``."""
    return str(max(1, math.ceil((window + 1) * 60 - now)))


class Access:
    """The traders' tokens and request windows."""

    def __init__(
        self,
        tokens: Union[Iterable[str], Mapping[str, str]],
        *,
        token_lifetime: int,
        rate_limit_per_minute: int,
        auth_refusals_per_minute: int,
    ) -> None:
        if isinstance(tokens, str):  # one token, not its characters
            tokens = (tokens,)
        if isinstance(tokens, Mapping):
            self.traders: Dict[str, str] = {str(token): str(name) for token, name in tokens.items()}
        else:
            self.traders = {token: f"trader-{number}" for number, token in enumerate(tokens, 1)}
        self.token_lifetime = token_lifetime
        self.rate_limit_per_minute = rate_limit_per_minute
        self.auth_refusals_per_minute = auth_refusals_per_minute
        #: The clock of the one-minute windows, when it is not the exchange's: a sandbox's manual
        #: clock stands still, and a window on it would never end (``Retry-After`` would lie).
        self.window_clock: Optional[Callable[[], float]] = None
        #: Successful token exchanges so far.
        self.exchanges = 0
        self.tokens: Dict[str, _Token] = {}
        # Access tokens of each personal token, oldest first.
        self._issued: Dict[str, Deque[str]] = {}
        # Each trader's (minute window, requests in it).
        self._windows: Dict[str, Tuple[int, int]] = {}
        # Refused token exchanges per client address: (minute window, refusals in it).
        self._refusals: Dict[str, Tuple[int, int]] = {}

    # -- the token exchange ---------------------------------------------------

    def exchange_token(self, context: Context) -> Response:
        """``POST /auth/token``: an access token for a personal token."""
        body = json_body(context.request)
        token = body.get("token") if isinstance(body, dict) else None
        if type(token) is not str:
            raise invalid(["body", "token"], "field required (a string)", "value_error.missing")
        trader = self.traders.get(token)
        if trader is None:
            return self._refused_exchange(context)
        access = secrets.token_urlsafe(32)
        self.tokens[access] = _Token(trader, token, context.now + self.token_lifetime)
        issued = self._issued.setdefault(token, collections.deque())
        issued.append(access)
        self._purge(issued, context.now)
        self.exchanges += 1
        return answer(200, {"access_token": access, "token_type": "bearer", "expires_in": self.token_lifetime})

    def _purge(self, issued: Deque[str], now: float) -> None:
        """Forget a personal token's access tokens expired a while ago, and the oldest beyond the cap."""
        while issued:
            access = self.tokens.get(issued[0])
            stale = access is None or access.expires + _constants.ACCESS_TOKEN_PURGE_AFTER <= now
            if not stale and len(issued) <= _ACCESS_TOKENS_PER_TOKEN:
                break
            self.tokens.pop(issued.popleft(), None)

    def _refused_exchange(self, context: Context) -> Response:
        """401 for a wrong personal token; 429 once the address made too many this minute."""
        client = context.client
        if client is None:
            return error(401, "Invalid token")
        wait = self.refusal_wait(client, context.now)
        if wait is not None:
            return error(429, "Too many refused token exchanges", {"Retry-After": wait})
        self.note_refusal(client, context.now)
        return error(401, "Invalid token")

    def _window_now(self, now: float) -> float:
        return self.window_clock() if self.window_clock is not None else now

    def refusal_wait(self, client: str, now: float) -> Optional[str]:
        """``Retry-After`` for an address that made its refused attempts this minute, None while it may try.

        The one rule for every secret guessed over the wire: personal tokens
        here, the sandbox's admin token too.
        """
        moment = self._window_now(now)
        window = math.floor(moment / 60)
        start, used = self._refusals.get(guesser(client), (window, 0))
        if start == window and used >= self.auth_refusals_per_minute:
            return _wait(window, moment)
        return None

    def note_refusal(self, client: str, now: float) -> None:
        """Count one refused attempt of ``client`` (its ``guesser``) in its current minute."""
        client = guesser(client)
        window = math.floor(self._window_now(now) / 60)
        start, used = self._refusals.get(client, (window, 0))
        if start != window:
            used = 0
        if client not in self._refusals and len(self._refusals) >= _REFUSAL_ADDRESSES:
            # Addresses of past minutes hold nothing worth keeping: the table stays small.
            self._refusals = {key: kept for key, kept in self._refusals.items() if kept[0] == window}
        self._refusals[client] = (window, used + 1)

    # -- every other call ------------------------------------------------------

    def knows(self, request: Request) -> bool:
        """Whether the request carries an access token issued here (live or recently expired)."""
        return bearer(request) in self.tokens

    def authenticate(self, request: Request, now: float) -> str:
        """The trader an access token belongs to; 401 when it is missing, unknown or expired."""
        access = self.tokens.get(bearer(request))
        if access is None:
            raise Refused(error(401, "Not authenticated", _CHALLENGE))
        if now >= access.expires:
            raise Refused(error(401, "Token expired", _CHALLENGE))
        return access.trader

    def count_request(self, trader: str, now: float) -> None:
        """Count one request in the trader's fixed one-minute window; 429 beyond the limit."""
        now = self._window_now(now)
        window = math.floor(now / 60)
        start, used = self._windows.get(trader, (window, 0))
        if start != window:
            used = 0
        if used >= self.rate_limit_per_minute:
            raise Refused(error(429, "Rate limit exceeded", {"Retry-After": _wait(window, now)}))
        self._windows[trader] = (window, used + 1)

    def window(self, trader: str, now: float) -> Tuple[int, int]:
        """The trader's current (minute window, requests used in it), as ``/status`` tells it."""
        window = math.floor(self._window_now(now) / 60)
        start, used = self._windows.get(trader, (window, 0))
        return window, (used if start == window else 0)

    def until_next_window(self, now: float) -> float:
        """Seconds from ``now`` until the next one-minute window starts, on the windows' clock."""
        moment = self._window_now(now)
        return (math.floor(moment / 60) + 1) * 60 - moment

    # -- administration ----------------------------------------------------------

    def expire_all(self, now: float) -> None:
        """Every access token issued so far is expired from ``now`` on."""
        for access in self.tokens.values():
            access.expires = min(access.expires, now)

    def revoke(self, personal_token: str) -> None:
        """No more exchanges for ``personal_token``; its access tokens stop working."""
        self.traders.pop(personal_token, None)
        for key in self._issued.pop(personal_token, ()):
            self.tokens.pop(key, None)


def guesser(client: str) -> str:
    """Whom the refused attempts of the address ``client`` are counted against.

    One who can use many addresses counts as one: every loopback address is
    the one machine (any local user may send from any of 127.0.0.0/8), an
    IPv6 address its /64 (one host is given a whole /64), an IPv4-mapped
    address its IPv4 address. Anything else (no IP address) as it is.
    """
    try:
        address = ipaddress.ip_address(client.partition("%")[0])  # without an IPv6 zone ("fe80::1%eth0")
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)
