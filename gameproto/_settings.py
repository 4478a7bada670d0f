"""A client's settings: its constructor's arguments checked once, and the environment.

Both clients turn their arguments into one ``ClientSettings``, from which
the ``Session`` and the transport are made; ``from_env`` reads
``GAME_API_TOKEN``, ``GAME_API_URL`` and ``GAME_API_VERIFY_SSL`` (and a
``.env`` file) as the published client does. A leaf of the core: values and
their checks only, nothing of the flow.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

from . import _constants
from ._arguments import is_number
from ._attempt import Attempt
from ._budget import check_limit
from ._order_life import LATE_REQUEST_GRACE, check_grace
from ._retry import RetryPolicy
from ._risk import RiskLimits

__all__ = [
    "ClientSettings",
    "check_risk",
    "check_journal",
    "check_personal_token",
    "api_url",
    "check_verify",
    "Settings",
    "settings_from_env",
    "parse_verify",
    "read_dotenv",
    "proxy_from_environment",
    "ca_from_environment",
    "bypasses_proxy",
    "CA_VARIABLES",
]

logger = logging.getLogger("gameproto")


def api_url(base_url: str) -> str:
    """The URL every path is relative to: ``base_url`` plus ``/api/v1``, once.

    The host is kept in its ASCII (IDNA) form, so both clients put the same
    bytes on the wire; anything that could never be sent is refused here.
    """
    if not isinstance(base_url, str):
        raise ValueError(f"base_url must be a URL string, got {type(base_url).__name__}")
    text = base_url.strip().rstrip("/")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise ValueError(f"base_url must not contain spaces, line breaks or control characters, got {base_url!r}")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must be an http:// or https:// URL with a host, got {base_url!r}")
    if parts.query or parts.fragment or parts.username or parts.password or "@" in parts.netloc:
        raise ValueError("base_url must not carry a query, a fragment or credentials")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"base_url has an invalid port, got {base_url!r}") from None
    host = parts.hostname
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"base_url has a host name that cannot be encoded (IDNA), got {base_url!r}") from None
    if not parts.path.isascii():
        raise ValueError(f"base_url's path must be ASCII (percent-encode it), got {base_url!r}")
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets
    text = f"{parts.scheme}://{host}{f':{port}' if port is not None else ''}{parts.path}"
    if not text.endswith(_constants.API_PREFIX):
        text += _constants.API_PREFIX
    return text


def check_verify(verify_ssl: Any, name: str = "verify_ssl") -> Union[bool, str]:
    """``verify_ssl`` checked: True, False, or the path of a CA bundle (a file or a directory) that exists."""
    if isinstance(verify_ssl, bool):
        return verify_ssl
    if hasattr(verify_ssl, "__fspath__"):
        verify_ssl = verify_ssl.__fspath__()
    if isinstance(verify_ssl, str) and verify_ssl:
        if not os.path.exists(verify_ssl):
            raise ValueError(f"{name}: no CA bundle at {verify_ssl!r} (no such file or directory)")
        return verify_ssl
    raise ValueError(f"{name} must be True, False or a CA bundle path, got {verify_ssl!r}")


def _seconds(name: str, value: Any) -> float:
    if not is_number(value, above=0):
        raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}")
    return float(value)


def _count(name: str, value: Any, least: int) -> int:
    if not is_number(value, whole=True, least=least):
        raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
    return int(value)


def _check_callable(name: str, value: Any) -> None:
    if value is not None and not callable(value):
        raise ValueError(f"{name} must be callable, got {type(value).__name__}")


def _retry_policy(retry_policy: Any, max_retries: Any) -> RetryPolicy:
    """The policy given, or the default one with ``max_retries`` (which it checks)."""
    if retry_policy is None:
        return RetryPolicy(max_retries=max_retries)
    if not isinstance(retry_policy, RetryPolicy):
        raise ValueError(f"retry_policy must be a RetryPolicy, got {type(retry_policy).__name__}")
    return retry_policy


_UNVERIFIED = (
    "TLS certificate verification is OFF for %s: anyone on the path can read and change "
    "orders and tokens. Pass verify_ssl=True or a CA bundle path in production."
)


def _from_environment(
    url: str, verify: Union[bool, str], trust_env: Any, environ: Optional[Mapping[str, str]]
) -> Tuple[Optional[str], Union[bool, str]]:
    """The proxy for ``url`` and the verification, read from the environment when ``trust_env``."""
    if not isinstance(trust_env, bool):
        raise ValueError(f"trust_env must be True or False, got {trust_env!r}")
    if not trust_env:
        return None, verify
    environment = os.environ if environ is None else environ
    proxy = proxy_from_environment(url, environment)
    if verify is True:
        verify = ca_from_environment(environment) or True
    return proxy, verify


@dataclass(frozen=True)
class ClientSettings:
    """Everything one client is configured with, checked once when it is made.

    Both clients take the same constructor arguments and turn them into this
    one value; the transport, the session and the surface read it. A new
    option is a field here, checked in ``from_arguments``, and an argument of
    ``GameAPI.__init__`` (written once, in the async source) that passes it
    on. The personal token is kept out of the ``repr``.
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
    #: The longest answer read, in bytes; a longer one is a ProtocolError.
    max_response_bytes: int
    #: Whether the environment (proxies, CA bundle) was read.
    trust_env: bool
    #: The proxy to reach ``api_url`` through (may carry credentials), or None.
    proxy: Optional[str] = field(repr=False)
    #: The verification the transports apply: ``verify_ssl``, or the CA
    #: bundle the environment names when ``verify_ssl`` is True.
    verify: Union[bool, str]
    #: The request budget's limit: a number a minute, "auto" or None.
    requests_per_minute: Union[int, str, None] = "auto"
    #: The Redis that holds a budget shared with other processes, or None.
    budget_url: Optional[str] = field(default=None, repr=False)
    #: The shared budget's key; None: derived from the base URL and a hash of the token.
    budget_key: Optional[str] = None
    #: Seconds after a call's deadline its request may still land (the late-request window, ``_order_life``).
    late_request_grace: float = LATE_REQUEST_GRACE
    #: The pre-trade limits every order is held to (``RiskLimits``), or None.
    risk: Optional[RiskLimits] = None
    #: The order journal: a URL (``sqlite:///bot.db``), a ``JournalStore`` already open, or None.
    journal: Any = field(default=None, repr=False)

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
        max_response_bytes: int = _constants.DEFAULT_MAX_RESPONSE_BYTES,
        trust_env: bool = True,
        requests_per_minute: Union[int, str, None] = "auto",
        budget_url: Optional[str] = None,
        budget_key: Optional[str] = None,
        environ: Optional[Mapping[str, str]] = None,
        late_request_grace: float = LATE_REQUEST_GRACE,
        risk: Optional[RiskLimits] = None,
        journal: Any = None,  # checked here; opened by the Trading flows (``gameproto/_trading.py``)
    ) -> ClientSettings:
        """The settings of ``GameAPI(...)``'s arguments; ``ValueError`` naming the first bad one.

        With ``trust_env`` the environment (``environ``, default ``os.environ``) is read here, once:
        the proxy and CA bundle variables (``proxy_from_environment``, ``ca_from_environment``).
        """
        check_personal_token(token), check_limit(requests_per_minute)
        check_budget(budget_url, budget_key, requests_per_minute)
        url = api_url(base_url)
        timeout = _seconds("timeout", timeout)
        retry_policy = _retry_policy(retry_policy, max_retries)
        _check_callable("on_attempt", on_attempt)
        given = check_verify(verify_ssl)
        proxy, verify = _from_environment(url, given, trust_env, environ)
        settings = cls(
            token=token,
            base_url=url[: -len(_constants.API_PREFIX)],
            api_url=url,
            verify_ssl=given,  # as given: the environment's CA is in ``verify``
            timeout=timeout,
            max_retries=retry_policy.max_retries,
            # A step never outlasts the whole call.
            connect_timeout=min(_seconds("connect_timeout", connect_timeout), timeout),
            read_timeout=min(_seconds("read_timeout", read_timeout), timeout),
            on_attempt=on_attempt,
            allow_non_positive_price=bool(allow_non_positive_price),
            max_connections=_count("max_connections", max_connections, 1),
            retry_policy=retry_policy,
            max_response_bytes=_count("max_response_bytes", max_response_bytes, 1),
            trust_env=trust_env,
            proxy=proxy,
            verify=verify,
            requests_per_minute=requests_per_minute,
            budget_url=budget_url,
            budget_key=budget_key,
            late_request_grace=check_grace(late_request_grace),
            risk=check_risk(risk),
            journal=check_journal(journal),
        )
        if settings.verify_ssl is False and settings.is_https:
            logger.warning(_UNVERIFIED, settings.api_url)
        return settings

    @property
    def is_https(self) -> bool:
        return self.api_url.startswith("https://")


# -- the environment, read once for both clients ------------------------------------

#: Where a CA bundle may be named, first found wins: requests' own variable
#: (which users of the published client have set), then OpenSSL's.
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


def _variable(environ: Mapping[str, str], name: str) -> Tuple[str, Optional[str]]:
    """The lower-case spelling of a proxy variable wins over the upper-case one (as curl and urllib read them)."""
    for spelling in (name.lower(), name.upper()):
        value = environ.get(spelling)
        if value is not None and value.strip():
            return spelling, value.strip()
    return name, None


def bypasses_proxy(host: str, port: Optional[int], no_proxy: str) -> bool:
    """Whether ``NO_PROXY``'s list names ``host``: ``*``, the host, a parent domain, or an IPv4/IPv6 network."""
    import ipaddress

    host = host.lower().strip("[]")
    try:
        address: Any = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in no_proxy.replace(" ", ",").split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and not (entry_port.isdigit() and port is not None and int(entry_port) == port):
            continue
        name = name.strip("[]")
        if address is not None and "/" in name:
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = name.lstrip("*").lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def proxy_from_environment(url: str, environ: Mapping[str, str]) -> Optional[str]:
    """The proxy URL the environment names for ``url``, or None to connect directly.

    ``https_proxy`` for an https URL, ``http_proxy`` for an http one, else
    ``all_proxy``; ``no_proxy`` names the hosts reached directly. An https URL
    always goes through a CONNECT tunnel (the drivers never forward it), so
    no token crosses a proxy in clear.
    """
    parts = urlsplit(url)
    spelling, no_proxy = _variable(environ, "no_proxy")
    if no_proxy and bypasses_proxy(parts.hostname or "", parts.port, no_proxy):
        return None
    spelling, proxy = _variable(environ, f"{parts.scheme}_proxy")
    if proxy is not None and parts.scheme == "http" and spelling == "HTTP_PROXY" and "REQUEST_METHOD" in environ:
        # Under CGI, HTTP_PROXY is the request's "Proxy:" header (httpoxy).
        proxy = None
    if proxy is None:
        spelling, proxy = _variable(environ, "all_proxy")
    if proxy is None:
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy  # "proxy:3128", as curl reads it
    proxy_parts = urlsplit(proxy)
    if proxy_parts.scheme not in ("http", "https"):
        raise ValueError(
            f"{spelling}: only http:// and https:// proxies are supported, got a {proxy_parts.scheme}:// proxy "
            "(pass trust_env=False to ignore the environment)"
        )
    try:
        proxy_port = proxy_parts.port
    except ValueError:
        proxy_port = 0
    if proxy_port == 0:
        raise ValueError(f"{spelling}: the proxy URL has an invalid port")
    if not proxy_parts.hostname or any(ch.isspace() or ord(ch) < 0x20 for ch in proxy) or not proxy.isascii():
        raise ValueError(f"{spelling}: the proxy URL must be an ASCII URL with a host")
    return proxy


def ca_from_environment(environ: Mapping[str, str]) -> Optional[str]:
    """The CA bundle (file or directory) the environment names, or None; one that does not exist is refused."""
    for name in CA_VARIABLES:
        value = environ.get(name)
        if value:
            return str(check_verify(value, name))
    return None


def check_budget(budget_url: Any, budget_key: Any, requests_per_minute: Any) -> None:
    """A shared budget's settings checked: a Redis URL, an optional key, and a limit to share."""
    if budget_url is None:
        if budget_key is not None:
            raise ValueError("budget_key needs a budget_url (the Redis that holds the shared budget)")
        return
    if not isinstance(budget_url, str) or urlsplit(budget_url).scheme not in ("redis", "rediss", "unix"):
        shown = "a URL" if isinstance(budget_url, str) else type(budget_url).__name__
        raise ValueError(f"budget_url must be a redis://, rediss:// or unix:// URL, got {shown}")
    if any(ch in budget_url for ch in "\r\n\x00 "):
        raise ValueError("budget_url has a space, a line break or NUL in it")
    if budget_key is not None and (not isinstance(budget_key, str) or not budget_key.strip()):
        raise ValueError(f"budget_key must be a non-empty string, got {type(budget_key).__name__}")
    if requests_per_minute is None:
        raise ValueError("budget_url with requests_per_minute=None: there is no limit to share")


def check_risk(risk: Any) -> Optional[RiskLimits]:
    """``risk``: None or a ``RiskLimits``; ``ValueError`` naming it otherwise."""
    if risk is not None and not isinstance(risk, RiskLimits):
        raise ValueError(f"risk must be a RiskLimits, got {type(risk).__name__}")
    return risk


def check_journal(journal: Any) -> Any:
    """``journal``: None, a journal URL, or a store already open (a ``JournalStore``); ``ValueError`` otherwise."""
    if journal is None or isinstance(journal, str):
        return journal
    if not all(callable(getattr(journal, name, None)) for name in ("add_intents", "settle", "close")):
        raise ValueError(f"journal must be a journal URL or a JournalStore, got {type(journal).__name__}")
    return journal


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
