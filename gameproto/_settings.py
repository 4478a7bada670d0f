"""A client's settings: its constructor's arguments checked once, and the environment.

Both clients turn their arguments into one ``ClientSettings``; ``from_env``
reads ``GAME_API_TOKEN``, ``GAME_API_URL`` and ``GAME_API_VERIFY_SSL`` (and a
``.env`` file) as the published client does.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Union
from urllib.parse import urlsplit

from . import _constants
from ._budget import RequestBudget
from ._bulk import OrderPlan, plan_orders
from ._flow import Attempt, Session
from ._retry import RetryPolicy

__all__ = [
    "ClientSettings",
    "check_personal_token",
    "api_url",
    "check_verify",
    "Settings",
    "settings_from_env",
    "parse_verify",
    "read_dotenv",
]

logger = logging.getLogger("gameproto")


def api_url(base_url: str) -> str:
    """The URL every path is relative to: ``base_url`` plus ``/api/v1``, once."""
    if not isinstance(base_url, str):
        raise ValueError(f"base_url must be a URL string, got {type(base_url).__name__}")
    text = base_url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http:// or https:// URL with a host, got {base_url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("base_url must not carry a query, a fragment or credentials")
    if not text.endswith(_constants.API_PREFIX):
        text += _constants.API_PREFIX
    return text


def check_verify(verify_ssl: Any) -> Union[bool, str]:
    """``verify_ssl`` checked: True, False, or the path of a CA bundle."""
    if isinstance(verify_ssl, bool):
        return verify_ssl
    if isinstance(verify_ssl, str) and verify_ssl:
        return verify_ssl
    if hasattr(verify_ssl, "__fspath__"):
        return str(verify_ssl.__fspath__())
    raise ValueError(f"verify_ssl must be True, False or a CA bundle path, got {verify_ssl!r}")


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value != value:
        raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}")
    return float(value)


def _count(name: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
    return value


@dataclass(frozen=True)
class ClientSettings:
    """Everything one client is configured with, checked once when it is made.

    Both clients take the same constructor arguments and turn them into this
    one value; the transport, the session and the surface read it, so a new
    option is added here and nowhere else. The personal token is kept out of
    the ``repr``.
    """

    token: str = field(repr=False)
    base_url: str
    api_url: str
    verify_ssl: Union[bool, str]
    timeout: float
    max_retries: int
    connect_timeout: float
    read_timeout: float
    on_attempt: Optional[Callable[[Attempt], None]]
    allow_non_positive_price: bool
    max_connections: int
    retry_policy: RetryPolicy
    requests_per_minute: Union[int, str, None] = "auto"

    @classmethod
    def from_arguments(
        cls,
        token: str,
        base_url: str = _constants.DEFAULT_BASE_URL,
        verify_ssl: Any = True,
        timeout: float = _constants.DEFAULT_TIMEOUT,
        max_retries: int = _constants.DEFAULT_MAX_RETRIES,
        *,
        connect_timeout: float = _constants.DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = _constants.DEFAULT_READ_TIMEOUT,
        on_attempt: Optional[Callable[[Attempt], None]] = None,
        allow_non_positive_price: bool = False,
        max_connections: int = _constants.POOL_MAX_CONNECTIONS,
        retry_policy: Optional[RetryPolicy] = None,
        requests_per_minute: Union[int, str, None] = "auto",
    ) -> ClientSettings:
        """The settings of ``GameAPI(...)``'s arguments; ``ValueError`` naming the first bad one."""
        check_personal_token(token)
        RequestBudget(requests_per_minute)  # ValueError naming requests_per_minute when it is not a limit
        url = api_url(base_url)
        timeout = _seconds("timeout", timeout)
        if retry_policy is None:
            retry_policy = RetryPolicy(max_retries=_count("max_retries", max_retries, 0))
        elif not isinstance(retry_policy, RetryPolicy):
            raise ValueError(f"retry_policy must be a RetryPolicy, got {type(retry_policy).__name__}")
        if on_attempt is not None and not callable(on_attempt):
            raise ValueError(f"on_attempt must be callable, got {type(on_attempt).__name__}")
        settings = cls(
            token=token,
            base_url=url[: -len(_constants.API_PREFIX)],
            api_url=url,
            verify_ssl=check_verify(verify_ssl),
            timeout=timeout,
            max_retries=retry_policy.max_retries,
            # A step never outlasts the whole call.
            connect_timeout=min(_seconds("connect_timeout", connect_timeout), timeout),
            read_timeout=min(_seconds("read_timeout", read_timeout), timeout),
            on_attempt=on_attempt,
            allow_non_positive_price=bool(allow_non_positive_price),
            max_connections=_count("max_connections", max_connections, 1),
            retry_policy=retry_policy,
            requests_per_minute=requests_per_minute,
        )
        if settings.verify_ssl is False and settings.is_https:
            logger.warning(
                "TLS certificate verification is OFF for %s: anyone on the path can read and change "
                "orders and tokens. Pass verify_ssl=True or a CA bundle path in production.",
                settings.api_url,
            )
        return settings

    @property
    def is_https(self) -> bool:
        return self.api_url.startswith("https://")

    def session(self, **clocks: Any) -> Session:
        """A new session (token, retries, deadline) with these settings; ``clocks`` for tests."""
        return Session(
            self.token,
            retry_policy=self.retry_policy,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            on_attempt=self.on_attempt,
            budget=RequestBudget(self.requests_per_minute, window=_constants.BUDGET_WINDOW),
            **clocks,
        )

    def plan_orders(self, order_data: Any, now: Optional[dt.datetime] = None, skip_invalid: bool = False) -> OrderPlan:
        """Validate and plan ``create_order``'s requests; nothing is sent."""
        return plan_orders(
            order_data, now=now, allow_non_positive_price=self.allow_non_positive_price, skip_invalid=skip_invalid
        )


def check_personal_token(token: Any) -> str:
    """``token`` if it can be a personal token: a non-empty string without line breaks or NUL."""
    if not isinstance(token, str) or not token.strip():
        raise ValueError("token: a personal token (a non-empty string) is required")
    if any(ch in token for ch in "\r\n\x00"):
        raise ValueError("token: the personal token has a line break or NUL in it")
    return token


@dataclass(frozen=True)
class Settings:
    token: Optional[str]
    base_url: str
    verify_ssl: Union[bool, str]

    def __repr__(self) -> str:
        token = "***" if self.token else None
        return f"Settings(token={token}, base_url={self.base_url!r}, verify_ssl={self.verify_ssl!r})"


def parse_verify(value: Optional[str]) -> Union[bool, str]:
    """``GAME_API_VERIFY_SSL`` as the clients take it: a bool, or a CA bundle path."""
    if value is None or not value.strip():
        return True
    text = value.strip()
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    return text


def read_dotenv(path: str) -> Dict[str, str]:
    """The variables of a ``.env`` file, as python-dotenv reads them (quotes, ``export``, inline comments)."""
    if not os.path.isfile(path):
        return {}
    # Imported here, not at the top: the core stays free of third-party imports until a .env is read.
    from dotenv import dotenv_values

    return {name: value for name, value in dotenv_values(path).items() if value is not None}


def settings_from_env(environ: Optional[Mapping[str, str]] = None, dotenv_path: Optional[str] = ".env") -> Settings:
    """The settings from ``environ`` (default ``os.environ``) over a ``.env`` file."""
    merged: Dict[str, str] = dict(read_dotenv(dotenv_path)) if dotenv_path else {}
    merged.update(os.environ if environ is None else environ)
    return Settings(
        token=merged.get("GAME_API_TOKEN") or None,
        base_url=merged.get("GAME_API_URL") or _constants.DEFAULT_BASE_URL,
        verify_ssl=parse_verify(merged.get("GAME_API_VERIFY_SSL")),
    )
