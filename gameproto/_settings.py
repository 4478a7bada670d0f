"""What both drivers share before any byte moves: settings, checks, the session.

A driver builds one ``ClientState`` from its constructor's arguments and
keeps nothing else but its connection pool and a lock.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Union
from urllib.parse import urlsplit

from . import _constants
from ._bulk import OrderPlan, plan_orders
from ._flow import Attempt, Session
from ._retry import RetryPolicy

__all__ = ["ClientState", "api_url", "check_verify", "Settings", "settings_from_env", "parse_verify", "read_dotenv"]

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


class ClientState:
    """The settings and the pure session of one client."""

    def __init__(
        self,
        token: str,
        base_url: str,
        verify_ssl: Any,
        timeout: float,
        max_retries: int,
        *,
        connect_timeout: float = _constants.DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = _constants.DEFAULT_READ_TIMEOUT,
        on_attempt: Optional[Callable[[Attempt], None]] = None,
        allow_non_positive_price: bool = False,
        retry_policy: Optional[RetryPolicy] = None,
    ) -> None:
        self.api_url = api_url(base_url)
        self.verify = check_verify(verify_ssl)
        self.session = Session(
            token,
            max_retries=max_retries,
            timeout=timeout,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            on_attempt=on_attempt,
            retry_policy=retry_policy,
        )
        self.allow_non_positive_price = bool(allow_non_positive_price)
        self.is_https = self.api_url.startswith("https://")
        if self.verify is False and self.is_https:
            logger.warning(
                "TLS certificate verification is OFF for %s: anyone on the path can read and change "
                "orders and tokens. Pass verify_ssl=True or a CA bundle path in production.",
                self.api_url,
            )

    def plan_orders(self, order_data: Any, now: Optional[dt.datetime] = None) -> OrderPlan:
        """Validate and plan ``create_order``'s requests; nothing is sent."""
        return plan_orders(order_data, now=now, allow_non_positive_price=self.allow_non_positive_price)

    def describe(self, driver: str) -> str:
        return f"<{driver} url={self.api_url!r} {self.session!r}>"


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
