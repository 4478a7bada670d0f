"""``game``: argument parsing, dispatch, and one exit-status policy for every command.

Exit status: 0 success, 2 the input was wrong (bad flags, a missing file, an
invalid order, a bad id), 1 the exchange or the network failed. An error is
one line on stderr saying what failed, against which server and what to try;
``--verbose`` adds the detail, and no traceback ever reaches the terminal.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import NoReturn, Optional, Sequence

from gameproto import __version__ as VERSION

from .failures import details, explain

__all__ = ["build_parser", "main", "COMMAND_MODULES", "Parser"]

#: Each module has ``add_parsers(subparsers)``, setting ``handler`` on its parsers.
COMMAND_MODULES = (
    "gameproto_cli.read",
    "gameproto_cli.order",
    "gameproto_cli.bulk",
    "gameproto_cli.serve",
    "gameproto_cli.demo",
    "gameproto_cli.watch",
    "gameproto_cli.journal",
    "gameproto_cli.risk",  # positions, cancel-all (issue 23)
    "gameproto_cli.sandbox",  # the sandbox's clock and reset (issue 24)
    "gameproto_cli.record",  # record a market, replay it, report a backtest (issue 32)
    "gameproto_cli.replay",
)

EXAMPLES = """examples:
  game demo                                  # try everything against a local exchange
  game serve --port 8765                     # run the embedded exchange
  game status --token-file ~/.game-token     # any GAME server (or set GAME_API_URL/GAME_API_TOKEN)
  game order create --side buy --price 95 --volume 1 --start 14:00 --date 2030-01-15 --tz 1
"""


class Parser(argparse.ArgumentParser):
    """argparse, with its refusals on one line like every other error of ``game``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="game",
        description="Trade on a GAME intraday power exchange, or run the embedded one.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gameproto {VERSION}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        adder = getattr(module, "add_parsers", None) or module.add_parser
        adder(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    handler = getattr(args, "handler", None)
    if handler is None:
        print("game: say which command (game --help lists them)", file=sys.stderr)
        return 2
    verbose = bool(getattr(args, "verbose", False))
    if verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    else:
        # The libraries' warnings (TLS verification off, a clamped time zone) in the command's voice.
        logging.basicConfig(level=logging.WARNING, format="game: warning: %(message)s")
    try:
        return int(handler(args) or 0)
    except BrokenPipeError:
        # ``game orders | head``: the reader left; say nothing more, as Unix tools do.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 141
    except KeyboardInterrupt:
        print("game: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        # The server the command talked to, as the command resolved it (see options.open_client).
        code, line = explain(error, getattr(args, "resolved_url", None))
        print(f"game: {line}", file=sys.stderr)
        if verbose:
            for detail in details(error):
                print(f"  {detail}", file=sys.stderr)
        return code
