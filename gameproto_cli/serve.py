"""``game serve``: run the embedded GAME exchange over HTTP until Ctrl-C.

It listens on the loopback interface unless told otherwise. With no token
given it accepts the sandbox's own ``demo-token`` and prints it (a public
token of a local test exchange, printed so that clients can be pointed at
it); tokens you give are never printed.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import math
import os
import signal
import ssl
import stat
import sys
import time
from typing import Any, Iterator, List, Optional, Tuple

from gameproto._constants import (
    API_PREFIX,
    AUTH_REFUSALS_PER_MINUTE,
    MAX_RESTING_ORDERS,
    RATE_LIMIT_PER_MINUTE,
    SERVER_BODY_TIMEOUT,
    SERVER_HEAD_TIMEOUT,
    SERVER_IDLE_TIMEOUT,
    SERVER_MAX_CONNECTIONS,
    SERVER_MAX_CONNECTIONS_PER_ADDRESS,
    SERVER_MIN_RATE,
)

from .failures import CommandFailed, UsageError, require_backend
from .options import offset_arg, seconds_arg

__all__ = ["add_parsers", "run", "DEMO_TOKEN"]

DEMO_TOKEN = "demo-token"
DEFAULT_PORT = 8765
#: The environment variable the admin token may come from (read by game sandbox too).
ADMIN_TOKEN_ENV = "GAME_ADMIN_TOKEN"

DESCRIPTION = """Run the embedded GAME exchange (a local test server) over HTTP until Ctrl-C.

It listens on the loopback interface unless told otherwise. With no token given
it accepts only the sandbox's own public token, demo-token, and prints it so that
clients can be pointed at it; tokens you give (--token, --token-file) are never
printed."""

EXAMPLES = """examples:
  game serve                                   # http://127.0.0.1:8765, token demo-token
  game serve --port 0 --seed-market            # a free port, with a live order book
  game serve --token-file alice.token --token-file bob.token   # your own tokens, kept out of history
  game serve --tls-cert cert.pem --tls-key key.pem --backend trio
  game serve --clock-offset 300                # the exchange's clock 5 minutes ahead of yours
  game serve --seed-market --clock manual --admin-token-file admin.token --state sandbox.db   # a team's sandbox
  game serve --host 0.0.0.0 --allowed-host sandbox.team.example --token-file alice.token   # reached by name
  game status --url http://127.0.0.1:8765 --token demo-token   # then talk to it
"""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {value}")
    return value


def _host(text: str) -> str:
    """An ``--allowed-host`` NAME: a host name or address, any port, without a scheme or a path."""
    name = text.strip()
    if not name or any(char in name for char in "/?#@ \t"):
        raise argparse.ArgumentTypeError(f"not a host name: {text!r} (give it without a scheme or path)")
    return name


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def add_parsers(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run the embedded GAME exchange (a local test server)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1, loopback)")
    parser.add_argument(
        "--allowed-host",
        action="append",
        type=_host,
        default=[],
        metavar="NAME",
        help="answer requests naming this Host too (repeatable). On a loopback address only loopback names "
        "(localhost, 127.0.0.1, [::1]) are answered otherwise, so that no web page can reach the server by "
        "DNS rebinding; on another address any name is, unless some are given",
    )
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="TOKEN",
        help="accept this personal token (repeatable; visible in shell history: prefer --token-file)",
    )
    parser.add_argument(
        "--token-file",
        action="append",
        default=[],
        metavar="PATH",
        help="accept the personal tokens in this file, one a line (repeatable)",
    )
    parser.add_argument("--seed-market", action="store_true", help="start with resting orders and trades")
    parser.add_argument(
        "--rate-limit",
        type=_positive,
        default=RATE_LIMIT_PER_MINUTE,
        metavar="N",
        help=f"requests per minute and token (default {RATE_LIMIT_PER_MINUTE})",
    )
    parser.add_argument(
        "--max-resting-orders",
        type=_positive,
        default=MAX_RESTING_ORDERS,
        metavar="N",
        help=f"resting orders one trader may hold at once; past it, orders are refused with a 422 "
        f"(default {MAX_RESTING_ORDERS:,})",
    )
    parser.add_argument(
        "--clock-offset",
        type=offset_arg,
        default=0.0,
        metavar="SECONDS",
        help="run the exchange's clock this far ahead of this host's (negative: behind); default 0",
    )
    limits = parser.add_argument_group("connection limits (one client must not stop the others being served)")
    limits.add_argument(
        "--max-connections",
        type=_positive,
        default=SERVER_MAX_CONNECTIONS,
        metavar="N",
        help=f"connections held at once; when full, a new one closes the stalest idle or incomplete one "
        f"(default {SERVER_MAX_CONNECTIONS})",
    )
    limits.add_argument(
        "--max-connections-per-address",
        type=_positive,
        default=SERVER_MAX_CONNECTIONS_PER_ADDRESS,
        metavar="N",
        help=f"connections one client address holds at once (default {SERVER_MAX_CONNECTIONS_PER_ADDRESS})",
    )
    limits.add_argument(
        "--idle-timeout",
        type=seconds_arg,
        default=SERVER_IDLE_TIMEOUT,
        metavar="SECONDS",
        help=f"close a connection that starts no request for this long (default {SERVER_IDLE_TIMEOUT:g})",
    )
    limits.add_argument(
        "--head-timeout",
        type=seconds_arg,
        default=SERVER_HEAD_TIMEOUT,
        metavar="SECONDS",
        help=f"the whole request head must arrive within this (default {SERVER_HEAD_TIMEOUT:g})",
    )
    limits.add_argument(
        "--body-timeout",
        type=seconds_arg,
        default=SERVER_BODY_TIMEOUT,
        metavar="SECONDS",
        help=f"the whole request body must arrive within this (default {SERVER_BODY_TIMEOUT:g})",
    )
    limits.add_argument(
        "--min-rate",
        type=_positive,
        default=SERVER_MIN_RATE,
        metavar="BYTES",
        help=f"bytes a second a body or an answer must move at, after a grace of --head-timeout "
        f"(default {SERVER_MIN_RATE})",
    )
    limits.add_argument(
        "--auth-refusals",
        type=_positive,
        default=AUTH_REFUSALS_PER_MINUTE,
        metavar="N",
        help=f"wrong personal tokens one address may try a minute before 429; valid ones are never limited "
        f"(default {AUTH_REFUSALS_PER_MINUTE})",
    )
    sandbox = parser.add_argument_group("sandbox (a web view at /, a test clock, state on disk, moving makers)")
    sandbox.add_argument(
        "--clock",
        choices=("real", "manual"),
        default="real",
        help="real: the host's time (default); manual: starts at the host's time and moves only when told "
        "(game sandbox clock advance 15m)",
    )
    sandbox.add_argument(
        "--admin-token",
        metavar="TOKEN",
        help="enables the /_sandbox/ endpoints (clock, reset) and the web view's admin mode (/#admin=TOKEN); "
        f"visible in the process list: prefer --admin-token-file or {ADMIN_TOKEN_ENV}",
    )
    sandbox.add_argument(
        "--admin-token-file",
        metavar="PATH",
        help="read the admin token from this file (kept out of shell history and the process list; chmod 600 it)",
    )
    sandbox.add_argument(
        "--state",
        metavar="PATH",
        help="keep orders, trades, trader names and the clock in this SQLite file across restarts",
    )
    sandbox.add_argument(
        "--scenario",
        metavar="PATH",
        help="market makers that keep quoting, described in this TOML file (see docs/sandbox.md)",
    )
    sandbox.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed of the prices and the makers' draws (default 0)"
    )
    replay = parser.add_argument_group("replay (a recording made by game record, played back: docs/backtesting.md)")
    replay.add_argument("--replay", metavar="RECORDING", help="play this recording: its book, trades and clock")
    replay.add_argument(
        "--speed",
        type=float,
        metavar="X",
        help="the replayed clock runs X times as fast as this host's (default 1; --clock manual: it moves when told)",
    )
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio", help="event loop to run on")
    parser.add_argument("--tls-cert", metavar="PATH", help="serve HTTPS with this certificate chain (PEM)")
    parser.add_argument("--tls-key", metavar="PATH", help="private key of --tls-cert, if not in the same file")
    parser.add_argument("-v", "--verbose", action="store_true", help="log connection errors (never tokens)")
    parser.set_defaults(handler=run)
    return parser


def _read_tokens(path: str) -> List[str]:
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as source:
            tokens = [line.strip() for line in source]
    except OSError as error:
        raise UsageError(f"cannot read the token file {path!r}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise UsageError(f"the token file {path!r} is not UTF-8 text") from None
    tokens = [token for token in tokens if token and not token.startswith("#")]
    if not tokens:
        raise UsageError(f"the token file {path!r} holds no token")
    return tokens


def _warn_if_others_read(path: str) -> None:
    """Say so when a secret's file may be read by other local users (POSIX modes only)."""
    try:
        mode = os.stat(os.path.expanduser(path)).st_mode
    except OSError:
        return
    if os.name == "posix" and mode & 0o077:
        print(
            f"warning: {path} can be read by other local users (mode {stat.S_IMODE(mode):o}): chmod 600 {path}",
            file=sys.stderr,
            flush=True,
        )


def _tokens(args: argparse.Namespace) -> Tuple[List[str], bool]:
    """The accepted tokens, and whether they are the built-in demo token (the only one printed)."""
    tokens: List[str] = [token.strip() for token in args.token if token.strip()]
    for path in args.token_file:
        tokens.extend(_read_tokens(path))
    if args.token and len(tokens) < len(args.token):
        raise UsageError("--token needs a non-empty value")
    if not tokens:
        return [DEMO_TOKEN], True
    return list(dict.fromkeys(tokens)), False  # duplicates removed, order kept


def _tls_context(args: argparse.Namespace) -> Optional[ssl.SSLContext]:
    if not args.tls_cert:
        if args.tls_key:
            raise UsageError("--tls-key needs --tls-cert")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as error:
        raise UsageError(f"cannot load the TLS certificate: {error}") from None
    return context


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def _stop_signals() -> Iterator[Optional[Any]]:
    """Receiver of SIGINT and SIGTERM, or None where the loop cannot watch signals (Windows)."""
    import anyio

    wanted = [signal.SIGINT, signal.SIGTERM]
    try:
        receiver = anyio.open_signal_receiver(*wanted)
        signals = receiver.__enter__()
    except (NotImplementedError, ValueError, RuntimeError):
        yield None  # Ctrl-C then arrives as KeyboardInterrupt, which run() catches
        return
    try:
        yield signals
    finally:
        receiver.__exit__(None, None, None)


async def _serve(
    args: argparse.Namespace, exchange: Any, context: Optional[ssl.SSLContext], token_count: int, demo: bool
) -> None:
    import anyio

    from gameproto_exchange import Limits, allowed_hosts, serve_exchange

    limits = Limits(
        idle_timeout=args.idle_timeout,
        head_timeout=args.head_timeout,
        body_timeout=args.body_timeout,
        min_rate=args.min_rate,
        max_connections=args.max_connections,
        max_connections_per_address=args.max_connections_per_address,
    )

    # Watch the signals before saying we listen, so a signal right after the banner stops us cleanly.
    with _stop_signals() as signals:
        async with contextlib.AsyncExitStack() as stack:
            try:
                running = await stack.enter_async_context(
                    serve_exchange(
                        exchange,
                        args.host,
                        args.port,
                        ssl_context=context,
                        limits=limits,
                        hosts=allowed_hosts(args.host, args.allowed_host),
                    )
                )
            except OSError as error:  # the usual one: the port is taken
                where = f"{args.host}:{args.port}"
                hint = "" if args.port == 0 else " (--port 0 picks a free port)"
                raise CommandFailed(f"cannot listen on {where}: {error.strerror or error}{hint}") from None
            print(f"GAME exchange serving on {running.base_url} (API at {running.base_url}{API_PREFIX})", flush=True)
            print(f"web view: {running.base_url}/", flush=True)
            print(_sandbox_line(exchange), flush=True)
            if demo:
                print(f"personal token: {DEMO_TOKEN}", flush=True)
            else:
                print(f"personal tokens: {token_count} configured (not shown)", flush=True)
            if demo and not _is_loopback(args.host):
                print(
                    f"warning: listening on {args.host} with the public demo token: anyone who can reach "
                    "this port can trade; pass --token-file for a private token",
                    file=sys.stderr,
                    flush=True,
                )
            print("press Ctrl-C to stop", flush=True)
            if signals is None:
                await anyio.sleep_forever()
            else:
                async for number in signals:
                    print(f"stopping on {signal.Signals(number).name}", flush=True)
                    break
            served = f"{running.requests_served} requests on {running.connections_accepted} connections"
    print(f"stopped after {served}", flush=True)


def _sandbox_line(sandbox: Any) -> str:
    """One line on the sandbox's clock, state and admin endpoints (never the admin token)."""
    import datetime as dt

    now = dt.datetime.fromtimestamp(sandbox.now(), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = [f"clock: {'manual' if sandbox.clock is not None else 'real'} ({now})"]
    speed = getattr(sandbox.exchange, "speed", None)
    if getattr(sandbox.exchange, "tape", None) is not None:  # a replay: say what plays, and how fast
        parts[0] = f"clock: {'manual' if speed is None else f'replayed at {speed:g}x'} ({now})"
        parts.append(f"replaying {len(sandbox.exchange.tape)} recorded events")
    if sandbox.store is not None:
        parts.append(f"state: {sandbox.store.path} ({'restored' if sandbox.restored else 'new'})")
    parts.append("admin endpoints: " + ("on (/_sandbox/)" if sandbox.admin_token else "off (--admin-token-file)"))
    if sandbox.non_positive_prices:
        parts.append("prices at or below zero: allowed for every trader (the scenario's makers quote them)")
    return "; ".join(parts)


def _sandbox(args: argparse.Namespace, tokens: List[str]) -> Any:
    """The exchange wrapped in the sandbox the flags ask for."""
    from gameproto.simulator.exchange import Exchange
    from gameproto.simulator.makers import Scenario
    from gameproto_exchange import ManualClock, Sandbox, SaveFailed, ScenarioError, StateFileError, Store, load_scenario

    admin_token = args.admin_token
    if args.admin_token_file:
        if admin_token is not None:
            raise UsageError("give --admin-token or --admin-token-file, not both")
        admin_token = _read_tokens(args.admin_token_file)[0]
        _warn_if_others_read(args.admin_token_file)
    elif admin_token is None:
        admin_token = os.environ.get(ADMIN_TOKEN_ENV) or None  # kept out of the process list, as the file
    else:
        print(
            f"warning: --admin-token is in every local user's process list: use --admin-token-file or "
            f"{ADMIN_TOKEN_ENV}",
            file=sys.stderr,
            flush=True,
        )
    if admin_token is not None and not admin_token.strip():
        raise UsageError("--admin-token needs a non-empty value")
    if admin_token is not None:
        from gameproto_exchange._sandbox import admin_token_problem

        problem = admin_token_problem(admin_token.strip())
        if problem is not None:
            raise UsageError(problem)
    if getattr(args, "replay", None):
        return _replay(args, tokens, admin_token)
    if getattr(args, "speed", None) is not None:
        raise UsageError("--speed is the pace of a replay: give --replay RECORDING with it")
    scenario = None
    if args.scenario:
        try:
            scenario = load_scenario(args.scenario)
        except ScenarioError as problem:
            raise UsageError(str(problem)) from None
    elif args.seed_market:
        scenario = Scenario()
    clock = ManualClock() if args.clock == "manual" else None
    exchange = Exchange(
        clock=clock if clock is not None else time.time,
        tokens=tuple(tokens),
        rate_limit_per_minute=args.rate_limit,
        clock_offset=args.clock_offset,
        auth_refusals_per_minute=args.auth_refusals,
        max_resting_orders=args.max_resting_orders,
        seed=args.seed,
    )
    store = None
    if args.state:
        try:
            store = Store(args.state)
        except StateFileError as problem:
            raise UsageError(str(problem)) from None
    from gameproto_exchange._sandbox import stateless_first_number

    try:
        sandbox = Sandbox(
            exchange,
            clock=clock,
            admin_token=admin_token and admin_token.strip(),
            store=store,
            scenario=scenario,
            # Without a state file, ids start from the host's time: a restart never gives an id twice.
            first_number=0 if store is not None else stateless_first_number(time.time()),
        )
        if args.seed_market and not sandbox.restored:
            exchange.seed_market()
            sandbox.changed()
        sandbox.quote()
    except (StateFileError, SaveFailed) as problem:
        if store is not None:
            store.close()
        raise UsageError(str(problem)) from None
    if sandbox.restored:
        import gc

        # A restored history is long-lived: out of the collector's full walks, which would otherwise
        # pause every request for a walk over every order ever placed.
        gc.collect()
        gc.freeze()
    return sandbox


def _replay(args: argparse.Namespace, tokens: List[str], admin_token: Optional[str]) -> Any:
    """The sandbox replaying ``--replay`` (issue 32): a manual clock, or one at ``--speed``."""
    from gameproto_exchange import RecordingError
    from gameproto_exchange._replay import replay_sandbox

    for flag, given in (("--state", args.state), ("--scenario", args.scenario), ("--seed-market", args.seed_market)):
        if given:
            raise UsageError(f"{flag} does not go with --replay: the recording is the market")
    if args.clock == "manual" and args.speed is not None:
        raise UsageError("give --speed or --clock manual with --replay, not both")
    speed = None if args.clock == "manual" else (1.0 if args.speed is None else args.speed)
    if speed is not None and not (math.isfinite(speed) and speed > 0):
        raise UsageError(f"--speed must be a number above 0, got {args.speed}")
    try:
        return replay_sandbox(
            args.replay,
            tuple(tokens),
            speed=speed,
            admin_token=admin_token and admin_token.strip(),
            seed=args.seed,
            rate_limit_per_minute=args.rate_limit,
            auth_refusals_per_minute=args.auth_refusals,
            max_resting_orders=args.max_resting_orders,
        )
    except RecordingError as error:
        raise UsageError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; 0 when stopped that way."""
    import anyio

    require_backend(args.backend)  # before anything: a missing trio is one line, not a traceback
    tokens, demo = _tokens(args)
    context = _tls_context(args)
    exchange = _sandbox(args, tokens)
    try:
        anyio.run(_serve, args, exchange, context, len(tokens), demo, backend=args.backend)
    except KeyboardInterrupt:  # only where signals cannot be watched, or before they are
        print("stopped", flush=True)
    finally:
        if exchange.store is not None:
            exchange.store.close()
    return 0
