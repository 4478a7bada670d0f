"""``game replay info|report RECORDING``: what a recording holds; how a bot did on its replay.

``info`` sums a recording up: its span by the exchange's clock, its polls,
book changes, trades and size on disk. ``report`` reads the account's
trades from an exchange replaying the recording (``game serve --replay``,
the connection flags as every command's) and prints each fill with its
slippage against the recorded mid at its time, the position and cash per
contract and per local delivery day (Europe/Zurich: 92, 96 or 100
quarter-hours), and the hash of the fill log: two runs of one bot on one
recording print the same hash. ``--plot FILE`` draws the day (needs
matplotlib, the ``plot`` extra).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from decimal import Decimal
from typing import Any, Dict, List, Optional

from gameproto._extras import install_hint

from .failures import UsageError
from .options import connection_parent, open_client

__all__ = ["add_parsers", "run", "print_report", "plot_report"]

EXAMPLES = """examples:
  game replay info day.sqlite
  game serve --replay day.sqlite --clock manual --admin-token s3cret --port 8766   # then run the bot on it
  game replay report day.sqlite --url http://127.0.0.1:8766 --token demo-token --plot day.png
"""


def add_parsers(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "replay",
        help="what a recording holds, and a bot's report on its replay",
        description=__doc__.split("\n\n", 1)[1].strip() if __doc__ else None,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[connection_parent()],
    )
    parser.add_argument("action", choices=("info", "report"), help="info: the recording; report: a bot's fills")
    parser.add_argument("recording", metavar="RECORDING", help="a file written by game record")
    parser.add_argument("--trader", action="append", metavar="NAME", help="report: the bot's trader name(s)")
    parser.add_argument("--plot", metavar="FILE", help="report: draw the day into this image (needs matplotlib)")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of text")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the full detail of an error")
    parser.set_defaults(handler=run)
    return parser


def _iso(moment: Optional[float]) -> str:
    if moment is None:
        return "-"
    return dt.datetime.fromtimestamp(moment, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value.normalize()) if value == value.to_integral_value() else str(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _number(value: Any, places: int = 2) -> str:
    if value is None:
        return "-"
    return f"{Decimal(value):.{places}f}"


def print_report(report: Dict[str, Any]) -> None:
    """The report as text: fills, contracts, days, total slippage, the fill hash."""
    print(f"fills: {len(report['fills'])}")
    for fill in report["fills"]:
        print(
            f"  {fill['time']}  {fill['contract']}  {fill['side']:<4} {_number(fill['volume'], 3)} @ "
            f"{_number(fill['price'])}  mid {_number(fill['mid'])}  slippage {_number(fill['slippage'])}"
        )
    print("per contract:")
    for row in report["contracts"]:
        print(
            f"  {row['contract']}  day {row['delivery_day']}  net {_number(row['net'], 3)} MW  "
            f"cash {_number(row['cash'])}  fees {_number(row['fees'])}  trades {row['trades']}"
        )
    print("per delivery day (Europe/Zurich):")
    for row in report["days"]:
        print(
            f"  {row['day']}  {row['quarter_hours']} quarter-hours  net {_number(row['net_energy_mwh'], 3)} MWh  "
            f"cash {_number(row['cash'])}  fees {_number(row['fees'])}"
        )
    print(f"slippage against the recorded mid: {_number(report['slippage'])}")
    print(f"fill log sha256: {report['fill_hash']}")


def plot_report(report: Dict[str, Any], mids: Any, path: str) -> None:
    """Draw the fills over the recorded mids of their contracts into ``path`` (matplotlib, imported here)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(f"--plot needs matplotlib: {install_hint('matplotlib')}") from None
    figure, axes = plt.subplots(figsize=(11, 5))
    contracts = sorted({fill["contract"] for fill in report["fills"]})
    first = min((mids.series(contract)[0][:1] or [0.0])[0] for contract in contracts) if contracts else 0.0
    for contract in contracts:
        times, prices = mids.series(contract)
        hours = [(moment - first) / 3600 for moment in times]
        axes.step(hours, [float(price) for price in prices], where="post", lw=0.8)
    for side, marker in (("buy", "^"), ("sell", "v")):
        chosen = [fill for fill in report["fills"] if fill["side"] == side]
        moments = [dt.datetime.fromisoformat(str(fill["time"]).replace("Z", "+00:00")).timestamp() for fill in chosen]
        axes.scatter(
            [(moment - first) / 3600 for moment in moments],
            [float(fill["price"]) for fill in chosen],
            marker=marker,
            label=f"{side} fills",
        )
    axes.set_xlabel(f"hours since {_iso(first)} (exchange time)")
    axes.set_ylabel("price")
    axes.set_title("fills against the recorded mids")
    axes.legend()
    figure.autofmt_xdate()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(args: argparse.Namespace) -> int:
    from gameproto_exchange import RecordingError, read_recording
    from gameproto_exchange._recording import info

    try:
        if args.action == "info":
            held = info(args.recording)
            if args.json:
                print(json.dumps(held.__dict__))
            else:
                print(
                    f"{held.path}: {held.polls} polls from {_iso(held.start)} to {_iso(held.end)} "
                    f"({held.sessions} sessions) of {held.source or 'an exchange'}; {held.level_changes} book changes, "
                    f"{held.trades} trades; {held.bytes:,} bytes"
                )
            return 0
        tape = read_recording(args.recording)
    except RecordingError as error:
        raise UsageError(str(error)) from None
    from gameproto.risk import trader_names
    from gameproto.simulator.replay_report import Mids, report

    with open_client(args) as api:
        names: List[str] = list(args.trader or [])
        if not names:
            names = trader_names(api.get_orders())
        if not names:
            raise UsageError("no order tells this account's trader name: give --trader NAME")
        trades = api.get_trades()
    made = report(tape, trades, names)
    if args.plot:
        plot_report(made, Mids(tape), args.plot)
    if args.json:
        print(json.dumps(_plain(made)))
    else:
        print_report(made)
    return 0
