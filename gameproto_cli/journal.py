"""``game journal show|export|reconcile``: the order journal a bot keeps (``GameAPI(journal=...)``).

``show`` lists the journal's orders (no exchange needed); ``export`` writes
the record an energy trader keeps for REMIT, as CSV or JSON lines: each
order (the exchange's id, our intent id, the contract with its delivery
start and end in UTC, side, price, volume), each state change with its time
by the exchange's clock, and each trade with price, volume and time;
``reconcile`` settles the intents a crash left open against the exchange's
listing and reports the orders the journal did not know (foreign).

The journal is named by ``--journal URL`` or ``GAME_JOURNAL``
(``sqlite:///bot.db``, ``postgresql://host/db``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from typing import Any, Dict, Iterable, Iterator, List, Sequence, TextIO

from gameproto.journal import JournalOrder, JournalStore, JournalTrade, iso, parse_time

from .failures import UsageError
from .options import connection_parent, open_client, output_parent

__all__ = ["add_parsers", "remit_records", "csv_rows", "order_json", "trade_json", "CSV_COLUMNS"]

EXAMPLES = """examples:
  game journal show --journal sqlite:///bot.db                 # every order the bot sent, and what came of it
  game journal show --state unknown                            # (GAME_JOURNAL names the journal)
  game journal export --format csv --output remit.csv          # the REMIT record: orders, state changes, trades
  game journal export --format jsonl                           # one JSON object per order, on stdout
  game journal reconcile --token-file ~/.game-token            # settle what a crash left open
"""

#: The CSV export's columns: one row per state change and per trade of an order.
CSV_COLUMNS = (
    "record",
    "order_id",
    "intent_id",
    "origin",
    "contract",
    "delivery_start_utc",
    "delivery_end_utc",
    "side",
    "price",
    "volume",
    "created_utc",
    "state",
    "time",
    "detail",
    "trade_id",
    "trade_price",
    "trade_volume",
)


#: The order's fields every CSV row of it carries.
_ORDER_FIELDS = CSV_COLUMNS[1:11]


def add_parsers(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "journal",
        help="the bot's order journal: show, export (REMIT), reconcile",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    journal = argparse.ArgumentParser(add_help=False)
    journal.add_argument("--journal", metavar="URL", help="the journal (default: GAME_JOURNAL)")

    show = actions.add_parser(
        "show",
        help="list the journal's orders",
        parents=[output_parent(), journal],
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("--state", help="only orders in this state (intent, unknown, created, foreign, ...)")
    show.set_defaults(handler=run_show)

    export = actions.add_parser(
        "export",
        help="write the REMIT record of orders, state changes and trades",
        parents=[output_parent(), connection_parent(), journal],
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv", help="csv (default) or jsonl")
    export.add_argument("--output", metavar="PATH", help="write to this file (default: stdout)")
    export.set_defaults(handler=run_export)

    reconcile = actions.add_parser(
        "reconcile",
        help="settle unsettled intents against the exchange; report foreign orders",
        parents=[output_parent(), connection_parent(), journal],
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reconcile.set_defaults(handler=run_reconcile)

    def no_action(args: argparse.Namespace) -> int:
        parser.print_usage(sys.stderr)
        print("game journal: say which action: show, export or reconcile", file=sys.stderr)
        return 2

    parser.set_defaults(handler=no_action)
    return parser


def _url(args: argparse.Namespace) -> str:
    url = getattr(args, "journal", None) or os.environ.get("GAME_JOURNAL")
    if not url:
        raise UsageError("no journal: pass --journal URL (sqlite:///bot.db, postgresql://host/db) or set GAME_JOURNAL")
    from gameproto_journal import check_journal_url

    try:
        check_journal_url(url)
    except ValueError as error:  # a URL that can never name a journal: the caller's input
        raise UsageError(str(error)) from None
    return str(url)


def _path(url: str) -> str:
    return url[len("sqlite:///") :].partition("?")[0] if url.startswith("sqlite:///") else ""


def _missing(args: argparse.Namespace) -> bool:
    """Whether the journal is a SQLite file not made yet (said on stderr: nothing is recorded)."""
    path = _path(_url(args))
    if path and path != ":memory:" and not os.path.exists(path):
        print(
            f"game journal: no journal at {path} yet: nothing recorded (a bot with journal=... makes it)",
            file=sys.stderr,
        )
        return True
    return False


def _store(args: argparse.Namespace) -> JournalStore:
    """The journal, read-only when this process may not write its file (it is then never changed)."""
    from gameproto_journal import open_journal

    url = _url(args)
    path = _path(url)
    return open_journal(url, read_only=bool(path) and path != ":memory:" and not os.access(path, os.W_OK))


def _plain(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def order_name(number: Any) -> str:
    """An order id as ``create_order`` answers it (``ord_457``); "" for none."""
    return "" if number is None else f"ord_{number}"


def remit_time(text: Any) -> str:
    """A time as the export writes it: UTC, ISO 8601, milliseconds (``2031-01-14T09:12:03.120Z``); "" for none."""
    moment = parse_time(text)
    return "" if moment is None else iso(moment)


def trade_json(trade: JournalTrade) -> Dict[str, Any]:
    """One trade of the REMIT record, as JSON: its id as the exchange lists it, its time as the exchange stamped it."""
    return {
        "trade_id": trade.trade_id,
        "order_id": order_name(trade.exchange_id),
        "side": trade.side,
        "contract": trade.contract,
        "price": str(trade.price),
        "volume": str(trade.volume),
        "time": remit_time(trade.at),
    }


def order_json(order: JournalOrder, trades: Sequence[JournalTrade] = ()) -> Dict[str, Any]:
    """One order of the REMIT record, as JSON: times from the exchange's fields, in UTC with milliseconds."""
    return {
        "record": "order",
        "order_id": order_name(order.exchange_id),
        "intent_id": order.intent_id,
        "origin": order.origin,
        "contract": order.contract,
        "delivery_start_utc": remit_time(order.delivery_start),
        "delivery_end_utc": remit_time(order.delivery_end),
        "side": order.side,
        "price": str(order.price),
        "volume": str(order.volume),
        "created_utc": remit_time(order.created_at),
        "state": order.state,
        "executed_volume": str(order.executed_volume),
        "sent_at": remit_time(order.sent_at),
        "writer": order.writer,
        "reason": order.reason,
        "changes": [
            {"state": change.state, "time": remit_time(change.at), "detail": change.detail} for change in order.changes
        ],
        "fills": [
            {"volume": str(fill.volume), "executed_volume": str(fill.executed_volume), "time": remit_time(fill.at)}
            for fill in order.fills
        ],
        "trades": [trade_json(trade) for trade in trades],
    }


def remit_records(store: JournalStore, *, page: int = 500) -> Iterator[Dict[str, Any]]:
    """Every order with its state changes and trades, then every trade whose order the journal does not know.

    Read a page at a time (the memory an export takes does not grow with the journal).
    """
    batch: List[JournalOrder] = []

    def flush() -> Iterator[Dict[str, Any]]:
        numbers = [order.exchange_id for order in batch if order.exchange_id is not None]
        by_order: Dict[int, List[JournalTrade]] = {}
        for trade in store.trades_of(numbers, 30.0):
            if trade.exchange_id is not None:
                by_order.setdefault(trade.exchange_id, []).append(trade)
        for order in batch:
            yield order_json(order, by_order.get(order.exchange_id, []) if order.exchange_id is not None else [])
        batch.clear()

    for order in store.iter_orders(page=page):
        batch.append(order)
        if len(batch) >= page:
            yield from flush()
    yield from flush()
    for trade in store.iter_trades(orphans=True, page=page):
        yield {"record": "trade", **trade_json(trade)}


def csv_rows(records: Iterable[Dict[str, Any]]) -> Iterator[Dict[str, Any]]:
    """The CSV export: a row per state change and per trade, each carrying its order's fields."""
    for record in records:
        if record["record"] == "trade":  # a trade whose order the journal does not know
            yield {
                "record": "trade",
                "order_id": record["order_id"],
                "contract": record["contract"],
                "side": record["side"],
                "time": record["time"],
                "trade_id": record["trade_id"],
                "trade_price": record["price"],
                "trade_volume": record["volume"],
            }
            continue
        common = {key: record[key] for key in _ORDER_FIELDS}
        for change in record["changes"]:
            state = {"state": change["state"], "time": change["time"], "detail": change["detail"]}
            yield {"record": "state", **common, **state}
        for trade in record["trades"]:
            yield {
                "record": "trade",
                **common,
                "state": "",
                "time": trade["time"],
                "trade_id": trade["trade_id"],
                "trade_price": trade["price"],
                "trade_volume": trade["volume"],
            }


def run_show(args: argparse.Namespace) -> int:
    orders: List[JournalOrder] = []
    if not _missing(args):
        store = _store(args)
        try:
            orders = store.orders(state=args.state)
        finally:
            store.close()
    out = sys.stdout
    if args.json:
        json.dump([order_json(order) for order in orders], out, indent=2)
        out.write("\n")
        return 0
    from .tables import table

    columns = ["intent", "order", "side", "volume", "price", "contract", "state", "executed", "sent at"]
    rows = [
        dict(
            zip(
                columns,
                [
                    order.intent_id[:8],
                    _plain(order.exchange_id),
                    order.side,
                    str(order.volume),
                    str(order.price),
                    order.contract,
                    order.state,
                    str(order.executed_volume),
                    order.sent_at,
                ],
            )
        )
        for order in orders
    ]
    out.write(table(rows, columns) + "\n")
    return 0


def run_export(args: argparse.Namespace) -> int:
    if _missing(args):
        records: Iterable[Dict[str, Any]] = []
        _emit(records, args)
        return 0
    _bring_trades_up_to_date(args)
    store = _store(args)
    try:
        _emit(remit_records(store), args)
    finally:
        store.close()
    return 0


def _bring_trades_up_to_date(args: argparse.Namespace) -> None:
    """With a token, the trades the exchange lists are recorded before the export; without, say what may lack."""
    from gameproto._settings import settings_from_env

    if not (getattr(args, "token", None) or getattr(args, "token_file", None) or settings_from_env().token):
        print(
            "game journal export: no token: trades made since the bot last listed them may be missing "
            "(pass --token-file PATH to bring them up to date first)",
            file=sys.stderr,
        )
        return
    api = open_client(args, journal=_url(args))
    try:
        api.journal.record_trades()
    finally:
        api.close()


def _emit(records: Iterable[Dict[str, Any]], args: argparse.Namespace) -> None:
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="") as target:
            _write(records, args.format, target)
    else:
        _write(records, args.format, sys.stdout)


def _write(records: Iterable[Dict[str, Any]], form: str, out: TextIO) -> None:
    if form == "jsonl":
        for record in records:
            out.write(json.dumps(record, sort_keys=True) + "\n")
        return
    writer = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS), restval="", lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(records):
        writer.writerow(row)


def run_reconcile(args: argparse.Namespace) -> int:
    url = _url(args)
    api = open_client(args, journal=url)
    try:
        done = api.reconcile()
    finally:
        api.close()
    if args.json:
        json.dump(
            {
                "settled": [order_json(order) for order in done.settled],
                "foreign": [order_json(order) for order in done.foreign],
                "in_flight": list(done.in_flight),
                "new_trades": done.trades,
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
        return 0
    for order in done.settled:
        print(f"settled  {order.intent_id} -> {order.state} order {_plain(order.exchange_id)} {_what(order)}")
    for order in done.foreign:
        print(f"foreign  order {order.exchange_id} {_what(order)} (not placed by this journal's bots)")
    for intent_id in done.in_flight:
        print(f"waiting  {intent_id} (its request may still land: settled once its window closes)")
    print(
        f"{len(done.settled)} settled, {len(done.foreign)} foreign, {len(done.in_flight)} in flight, "
        f"{done.trades} new trades recorded"
    )
    return 0


def _what(order: JournalOrder) -> str:
    return f"{order.side} {order.volume} @ {order.price} {order.contract}"
