"""``game``: argument parsing, dispatch, and one exit-status policy for every command.

Exit status: 0 success, 2 the input was wrong (bad flags, an invalid order, a
bad id), 1 the API or the network failed. Errors are one line on stderr; the
full detail (the server's answer, the attempts) only under ``--verbose``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import List, Optional, Sequence

from gameproto._constants import VERSION
from gameproto._errors import GameAPIError, OrderValidationError, ServerValidationError

from .options import UsageError

__all__ = ["build_parser", "main", "COMMAND_MODULES"]

#: Each module has ``add_parsers(subparsers)``, setting ``handler`` on its parsers.
COMMAND_MODULES = (
    "gameproto_cli.read",
    "gameproto_cli.order",
    "gameproto_cli.bulk",
    "gameproto_cli.serve",
    "gameproto_cli.demo",
    "gameproto_cli.watch",
)

EXAMPLES = """examples:
  game demo                                  # try everything against a local exchange
  game serve --port 8765                     # run the embedded exchange
  game status --token-file ~/.game-token     # any GAME server (or set GAME_API_URL/GAME_API_TOKEN)
  game order create --side buy --price 95 --volume 1 --start 14:00 --date 2026-12-01
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="game",
        description="Trade on a GAME intraday power exchange, or run the embedded one.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gameproto {VERSION}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:  # a real import problem inside the module, not a missing command
                raise
            continue
        adder = getattr(module, "add_parsers", None) or module.add_parser
        adder(subparsers)
    return parser


def _one_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    first = text.splitlines()[0]
    return first if len(first) <= 300 else first[:297] + "..."


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    verbose = bool(getattr(args, "verbose", False))
    if verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    try:
        return int(handler(args) or 0)
    except (UsageError, OrderValidationError, ServerValidationError, ValueError) as error:
        # InvalidArgumentError is a ValueError: a bad id or filter is the caller's input too;
        # a 422 from the server is an order it refused, the same kind of mistake.
        _report(error, verbose)
        return 2
    except GameAPIError as error:
        _report(error, verbose)
        return 1
    except BrokenPipeError:
        # ``game orders | head``: the reader left; say nothing more, as Unix tools do.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 141
    except OSError as error:
        _report(error, verbose)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _report(error: BaseException, verbose: bool) -> None:
    name = type(error).__name__
    if isinstance(error, OrderValidationError) and not verbose:
        lines: List[str] = [str(problem) for problem in error.errors]
        more = f" (and {len(lines) - 1} more; --verbose lists all)" if len(lines) > 1 else ""
        print(f"game: invalid order: {lines[0] if lines else error}{more}", file=sys.stderr)
        return
    print(f"game: {name}: {_one_line(error)}", file=sys.stderr)
    if verbose:
        if isinstance(error, OrderValidationError):
            for problem in error.errors:
                print(f"  {problem}", file=sys.stderr)
        detail = getattr(error, "detail", None)
        if detail:
            print(f"  server detail: {detail}", file=sys.stderr)
        partial = getattr(error, "partial_result", None)
        if partial:
            print(f"  partial result: {partial}", file=sys.stderr)
