"""What every command that talks to a server shares: where, as whom, and how to speak.

Configuration comes from flags, then the environment (``GAME_API_URL``,
``GAME_API_TOKEN``, ``GAME_API_VERIFY_SSL``), then a ``.env`` file. Tokens are
read, never printed.

TLS: ``--insecure`` and ``--ca-bundle`` win, then ``GAME_API_VERIFY_SSL``;
with neither, the clients' default applies (verify against the trust store
the client finds, including what ``SSL_CERT_FILE``, ``SSL_CERT_DIR`` and
``REQUESTS_CA_BUNDLE`` name), so the command never overrides that rule.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from typing import TYPE_CHECKING, Any, Tuple, Union

from gameproto._constants import DEFAULT_BASE_URL
from gameproto._settings import settings_from_env

from .failures import UsageError

if TYPE_CHECKING:
    from gameproto_sync import GameAPI

__all__ = [
    "UsageError",
    "output_parent",
    "connection_parent",
    "resolve",
    "open_client",
    "read_token_file",
    "bad_url",
    "seconds_arg",
    "offset_arg",
]


def _number_of_seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")


def seconds_arg(text: str) -> float:
    """A flag's number of seconds: above 0 and finite (an interval, a timeout)."""
    value = _number_of_seconds(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text}")
    return value


def offset_arg(text: str) -> float:
    """A flag's clock offset in seconds: any finite number, negative meaning behind."""
    value = _number_of_seconds(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, not {text!r}")
    return value


def output_parent() -> argparse.ArgumentParser:
    """``--json`` and ``--verbose``, for every command."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")
    parent.add_argument("-v", "--verbose", action="store_true", help="show the full detail of an error")
    return parent


def connection_parent() -> argparse.ArgumentParser:
    """Flags naming the server and the personal token."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection (flags, then GAME_API_* variables, then .env)")
    group.add_argument("--url", help=f"server base URL (default: GAME_API_URL, else {DEFAULT_BASE_URL})")
    group.add_argument("--token", help="personal token (visible in shell history: prefer --token-file)")
    group.add_argument("--token-file", metavar="PATH", help="read the personal token from this file")
    group.add_argument(
        "--ca-bundle",
        metavar="PATH",
        help="verify TLS with this CA bundle (default: GAME_API_VERIFY_SSL, else the system's trust store "
        "or SSL_CERT_FILE / REQUESTS_CA_BUNDLE)",
    )
    group.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate (warns)")
    group.add_argument("--timeout", type=float, default=None, help="overall seconds per call (default 30)")
    return parent


def read_token_file(path: str) -> str:
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as source:
            token = source.read().strip()
    except OSError as error:
        raise UsageError(f"cannot read the token file {path}: {error.strerror or error}") from None
    if not token:
        raise UsageError(f"the token file {path} is empty")
    return token


def _ca_bundle(path: str, source: str) -> str:
    if not os.path.exists(os.path.expanduser(path)):
        raise UsageError(f"{source} names {path}, which does not exist; give the path of your CA bundle (PEM)")
    return os.path.expanduser(path)


def _url_source(args: argparse.Namespace) -> str:
    if getattr(args, "url", None):
        return "--url"
    return "GAME_API_URL" if os.environ.get("GAME_API_URL") else "GAME_API_URL in .env, or the default"


def resolve(args: argparse.Namespace) -> Tuple[str, str, Union[bool, str]]:
    """Base URL, personal token and TLS verification for ``args``."""
    settings = settings_from_env()
    token = getattr(args, "token", None)
    if getattr(args, "token_file", None):
        token = read_token_file(args.token_file)
    token = token or settings.token
    if not token:
        raise UsageError("no token: pass --token-file PATH (or --token), or set GAME_API_TOKEN")
    verify: Union[bool, str] = settings.verify_ssl  # True when GAME_API_VERIFY_SSL is not set
    if isinstance(verify, str):
        verify = _ca_bundle(verify, "GAME_API_VERIFY_SSL")
    if getattr(args, "ca_bundle", None):
        verify = _ca_bundle(args.ca_bundle, "--ca-bundle")
    if getattr(args, "insecure", False):
        verify = False
    url = getattr(args, "url", None) or settings.base_url
    return url, token, verify


def open_client(args: argparse.Namespace, **options: Any) -> GameAPI:
    """A blocking client configured from ``args``; the caller closes it.

    Leaves the server's address on ``args.resolved_url``, for the error line.
    """
    from gameproto_sync import GameAPI

    url, token, verify = resolve(args)
    args.resolved_url = url
    if getattr(args, "timeout", None) is not None:
        if not args.timeout > 0:
            raise UsageError(f"--timeout must be a number of seconds above 0, got {args.timeout:g}")
        options.setdefault("timeout", args.timeout)
    try:
        return GameAPI(token, url, verify_ssl=verify, **options)
    except ValueError as error:
        # The constructor checks the URL: a typo there is the caller's input.
        raise bad_url(url, _url_source(args), error) from None


def bad_url(url: str, source: str, error: ValueError) -> UsageError:
    """The usage error for a URL the clients refused, in words, naming where it came from."""
    text = str(error)
    if not text.startswith("base_url"):
        return UsageError(text)
    reason = re.sub(r", got .*$", "", text[len("base_url ") :])
    shown = "the URL" if "@" in url else repr(url)  # user:password@host is never printed
    return UsageError(f"{shown} (from {source}) is not a server address: it {reason}; give one like {DEFAULT_BASE_URL}")
