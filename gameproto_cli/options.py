"""What every command that talks to a server shares: where, as whom, and how to speak.

Configuration comes from flags, then the environment (``GAME_API_URL``,
``GAME_API_TOKEN``, ``GAME_API_VERIFY_SSL``), then a ``.env`` file. Tokens are
read, never printed.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any, Union

from gameproto._settings import settings_from_env

if TYPE_CHECKING:
    from gameproto_sync import GameAPI

__all__ = ["UsageError", "output_parent", "connection_parent", "resolve", "open_client", "read_token_file"]


class UsageError(Exception):
    """The command line itself is wrong: exit status 2, like argparse's own errors."""


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
    group.add_argument("--url", help="server base URL (default: GAME_API_URL, else http://127.0.0.1:8765)")
    group.add_argument("--token", help="personal token (visible in shell history: prefer --token-file)")
    group.add_argument("--token-file", metavar="PATH", help="read the personal token from this file")
    group.add_argument("--ca-bundle", metavar="PATH", help="verify TLS with this CA bundle")
    group.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate (warns)")
    group.add_argument("--timeout", type=float, default=None, help="overall seconds per call (default 30)")
    return parent


def read_token_file(path: str) -> str:
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as source:
            token = source.read().strip()
    except OSError as error:
        raise UsageError(f"cannot read the token file {path!r}: {error.strerror or error}") from None
    if not token:
        raise UsageError(f"the token file {path!r} is empty")
    return token


def resolve(args: argparse.Namespace) -> tuple[str, str, Union[bool, str]]:
    """Base URL, personal token and TLS verification for ``args``."""
    settings = settings_from_env()
    token = getattr(args, "token", None)
    if getattr(args, "token_file", None):
        token = read_token_file(args.token_file)
    token = token or settings.token
    if not token:
        raise UsageError("no token: pass --token-file PATH (or --token), or set GAME_API_TOKEN")
    verify: Union[bool, str] = settings.verify_ssl
    if getattr(args, "ca_bundle", None):
        verify = args.ca_bundle
    if getattr(args, "insecure", False):
        verify = False
    url = getattr(args, "url", None) or settings.base_url
    return url, token, verify


def open_client(args: argparse.Namespace, **options: Any) -> GameAPI:
    """A blocking client configured from ``args``; the caller closes it."""
    from gameproto_sync import GameAPI

    url, token, verify = resolve(args)
    if getattr(args, "timeout", None) is not None:
        options.setdefault("timeout", args.timeout)
    return GameAPI(token, url, verify_ssl=verify, **options)
