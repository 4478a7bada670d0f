"""``game record RECORDING``: poll an exchange and write what moved into a recording, for replays and backtests.

Each poll reads the public book (``/market``), the last traded prices and,
when they moved (and at least once a minute of polls), the public trades;
it writes the book's changes since the previous poll, the new trades and
the changed prices, with the exchange's time and this host's, in one
commit (docs/backtesting.md describes the file). The client paces the
requests within its budget and waits out what fails, as any client does.

Against a sandbox on a manual clock (``game serve --clock manual
--admin-token ...``), ``--drive-clock`` moves the clock itself by
``--every`` before each poll, so a day is recorded in minutes. Stop with
``--polls N`` or ``--duration 24h`` (by the exchange's clock), or Ctrl-C. Run it again on the same file to
resume: a recorder killed at any moment loses at most its last poll.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Callable

from gameproto import GameAPIError

from .failures import UsageError
from .options import connection_parent, open_client

__all__ = ["add_parsers", "run"]

EXAMPLES = """examples:
  game record day.sqlite --every 1 --duration 24h --token-file ~/.game-token      # a day of the platform
  game record day.sqlite --drive-clock --admin-token s3cret --every 1 --duration 24h --url http://127.0.0.1:8765
  game replay info day.sqlite                                                       # what it holds
"""


def add_parsers(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "record",
        help="record an exchange's book, trades and prices into a file (to replay and backtest)",
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else None,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[connection_parent()],
    )
    parser.add_argument("recording", metavar="RECORDING", help="the SQLite file to write (resumed if it exists)")
    parser.add_argument("--every", type=duration_arg, default=1.0, metavar="S", help="seconds between polls (1)")
    parser.add_argument("--polls", type=int, metavar="N", help="stop after N polls")
    parser.add_argument(
        "--duration", type=duration_arg, metavar="D", help="stop after D seconds of exchange time (15m, 24h, 3600)"
    )
    parser.add_argument(
        "--drive-clock",
        action="store_true",
        help="a sandbox on a manual clock: advance its clock by --every before each poll (needs the admin token)",
    )
    parser.add_argument("--admin-token", metavar="TOKEN", help="the sandbox's admin token (or GAME_ADMIN_TOKEN)")
    parser.add_argument("--admin-token-file", metavar="PATH", help="read the admin token from this file")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the full detail of an error")
    parser.set_defaults(handler=run)
    return parser


def duration_arg(text: str) -> float:
    """Seconds in ``15m``, ``24h``, ``1h30m``, ``90s``, ``2d`` or a plain number."""
    from gameproto_exchange import ClockRefused
    from gameproto_exchange._clock import parse_duration

    try:
        return parse_duration(text)
    except ClockRefused as wrong:
        raise argparse.ArgumentTypeError(str(wrong)) from None


def _admin_token(args: argparse.Namespace) -> str:
    if args.admin_token_file:
        try:
            with open(os.path.expanduser(args.admin_token_file), encoding="utf-8") as source:
                token = source.read().strip()
        except OSError as error:
            raise UsageError(f"cannot read the admin token file {args.admin_token_file!r}: {error.strerror}") from None
    else:
        token = (args.admin_token or os.environ.get("GAME_ADMIN_TOKEN") or "").strip()
    if not token:
        raise UsageError(
            "--drive-clock needs the sandbox's admin token: --admin-token, --admin-token-file or GAME_ADMIN_TOKEN"
        )
    return token


def run(args: argparse.Namespace) -> int:
    if args.polls is not None and args.polls <= 0:
        raise UsageError(f"--polls must be at least 1, got {args.polls}")
    from gameproto_exchange import RecordingError, SandboxClock, record

    driver = None
    say: Callable[[str], None] = (lambda line: None) if args.quiet else print
    with open_client(args) as api:
        if args.drive_clock:
            driver = SandboxClock(api.base_url, _admin_token(args))
        try:
            record(
                api, args.recording, every=args.every, polls=args.polls, duration=args.duration, driver=driver, say=say
            )
        except RecordingError as error:
            raise UsageError(str(error)) from None
        except KeyboardInterrupt:
            say(f"stopped; {args.recording} holds every poll made (run again to resume)")
        except GameAPIError:
            raise
        finally:
            if driver is not None:
                driver.close()
    return 0
