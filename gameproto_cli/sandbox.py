"""``game sandbox``: steer a ``game serve`` sandbox: its test clock, and a reset.

``game sandbox clock`` shows the exchange's time; ``clock advance 15m`` and
``clock set 2030-01-15T13:59Z`` move a manual clock (``game serve --clock
manual``); ``reset`` empties the book and the trades. Each needs the admin
token the server was started with (``--admin-token``, ``--admin-token-file``
or ``GAME_ADMIN_TOKEN``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
from typing import Any, Dict, Optional

from .failures import CommandFailed, UsageError, cannot_connect

__all__ = ["add_parsers", "run"]

DEFAULT_URL = "http://127.0.0.1:8765"

EXAMPLES = """examples:
  game serve --clock manual --admin-token-file admin.token --state sandbox.db --seed-market   # in one shell
  game sandbox clock --admin-token-file admin.token                        # the exchange's time
  game sandbox clock advance 15m --admin-token-file admin.token            # 15 minutes later
  game sandbox clock set 2030-01-15T13:59Z --admin-token-file admin.token  # a minute before the 14:00 gate closes
  game sandbox reset --admin-token-file admin.token                        # an empty book
"""


def add_parsers(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sandbox",
        help="steer a game serve sandbox: move its test clock, reset it",
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else None,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("clock", "reset"), help="clock: show or move it; reset: empty the book")
    parser.add_argument("move", nargs="?", choices=("advance", "set"), help="advance DURATION or set TIME")
    parser.add_argument("value", nargs="?", help="a duration (15m, 1h30m, 90s, 2d) or a time (2030-01-15T13:59Z)")
    parser.add_argument("--url", help=f"the sandbox (default: GAME_API_URL, else {DEFAULT_URL})")
    parser.add_argument("--admin-token", metavar="TOKEN", help="the sandbox's admin token (or GAME_ADMIN_TOKEN)")
    parser.add_argument("--admin-token-file", metavar="PATH", help="read the admin token from this file")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    # "advance -5m" is a value, not an option: the sandbox answers it (the clock only moves
    # forward), in the same words as over HTTP, instead of argparse calling it an unknown flag.
    parser._negative_number_matcher = re.compile(r"^-[0-9.][0-9.a-zA-Z]*$")
    parser.set_defaults(handler=run)
    return parser


def _admin_token(args: argparse.Namespace) -> str:
    if args.admin_token_file:
        try:
            with open(os.path.expanduser(args.admin_token_file), encoding="utf-8") as source:
                lines = [line.strip() for line in source]
        except OSError as error:
            raise UsageError(f"cannot read the admin token file {args.admin_token_file!r}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"the admin token file {args.admin_token_file!r} is not UTF-8 text") from None
        # Its first line that is no comment, as game serve reads the same file.
        token = next((line for line in lines if line and not line.startswith("#")), "")
    else:
        token = (args.admin_token or os.environ.get("GAME_ADMIN_TOKEN") or "").strip()
    if not token:
        raise UsageError("say the sandbox's admin token: --admin-token, --admin-token-file or GAME_ADMIN_TOKEN")
    from gameproto_exchange._sandbox import admin_token_problem

    problem = admin_token_problem(token)
    if problem is not None:  # it could not be sent: no sandbox can have started with it
        raise UsageError(problem)
    return token


def _call(args: argparse.Namespace, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
    from gameproto_exchange._admin import AdminRefused, AdminUnreachable, SandboxAdmin

    admin = SandboxAdmin(args.url or os.environ.get("GAME_API_URL") or DEFAULT_URL, _admin_token(args))
    where = f"the sandbox at {admin.root}"
    try:
        return admin.call(method, path, body)
    except AdminUnreachable as failure:
        if failure.connection:
            raise CommandFailed(cannot_connect(where, admin.root, failure.detail, running="game serve")) from None
        raise CommandFailed(f"cannot reach {where}: {failure.detail}; try again") from None
    except AdminRefused as refused:
        if refused.status == 401:  # a token was sent (none is refused before): it is the wrong one
            raise UsageError(
                f"{where} refused the admin token: it is not the one game serve was started with "
                "(check --admin-token, --admin-token-file or GAME_ADMIN_TOKEN)"
            ) from None
        raise (UsageError if refused.status in (404, 409, 422) else CommandFailed)(str(refused)) from None
    finally:
        admin.close()


def run(args: argparse.Namespace) -> int:
    if args.action == "reset":
        if args.move or args.value:
            raise UsageError("game sandbox reset takes no further argument")
        data = _call(args, "POST", "/_sandbox/reset")
        print(json.dumps(data) if args.json else f"reset: the book and the trades are empty (clock {data['now']})")
        return 0
    if args.move is None:
        data = _call(args, "GET", "/_sandbox/clock")
    elif args.value is None:
        raise UsageError(f"game sandbox clock {args.move} needs a value (15m, or 2030-01-15T13:59Z)")
    elif args.move == "advance":
        data = _call(args, "POST", "/_sandbox/clock/advance", {"by": args.value})
    else:
        data = _call(args, "POST", "/_sandbox/clock/set", {"to": args.value})
    print(json.dumps(data) if args.json else f"{data['now']} ({data['clock']} clock)")
    return 0
