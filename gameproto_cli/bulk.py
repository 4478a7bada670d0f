"""``game bulk FILE``: place many orders from a CSV or JSON-lines file.

Every row is checked before anything is sent; one bad row and nothing is
sent. Then the orders go out in requests of 100, one after the other, and
each row's outcome is written to a results file, so that a failure half-way
leaves no doubt about which orders exist.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import IO, Any, Dict, List, Optional, Sequence, Tuple, cast

from gameproto import GameAPIError, OrderValidationError, OutcomeUnknownError, _constants, validate_orders
from gameproto.types import BulkResult

from .failures import explain
from .options import UsageError, connection_parent, open_client, output_parent
from .order import end_time, too_large
from .tables import as_json, order_name
from .zones import default_tz, delivery_text, tz_problem

__all__ = [
    "add_parsers", "Row", "Reading", "read_rows", "read_file", "check_rows", "send_rows", "settle_time_zones",
    "Progress", "CHUNK",
]  # fmt: skip

CHUNK = _constants.BULK_LIMIT
MAX_PROBLEMS_SHOWN = 20
RESULT_COLUMNS = ("row", "line", "status", "order_id", "error", "delivery")
STATUSES = ("created", "failed", "unsent", "unknown")

#: Columns a CSV file may have; ``trader_suffixe`` goes into the order's ``options``.
CSV_COLUMNS = (
    "side", "price", "volume", "date", "start_time", "end_time", "duration", "tz_offset_hours", "state",
    "trader_suffixe",
)  # fmt: skip
DECIMAL_FIELDS = ("price", "volume")
INT_FIELDS = ("tz_offset_hours",)
_DECIMAL_COMMA = re.compile(r"[+-]?[0-9]*,[0-9]+")

DESCRIPTION = """Place many orders from a CSV or JSON-lines file.

Every row is checked first: one bad row and nothing is sent. Then the orders
go out in requests of 100, one after the other, and each row's outcome is
written to a results file."""

EPILOG = """examples:
  game bulk orders.csv --token-file ~/.game-token
  generate-orders | game bulk - --results today.results.csv --json

A CSV file has a header row naming its columns, in any order and any case:
  side,price,volume,date,start_time,end_time,duration,tz_offset_hours,state,trader_suffixe
  buy,95.5,1,2030-01-15,14:00,14:15,15m,1,,my_bot
end_time, tz_offset_hours, state and trader_suffixe are optional (an empty cell is
an absent field): end_time is start_time + duration, tz_offset_hours is --tz or
this computer's offset at the delivery start (refused when it is not 0, 1 or 2).
Files separated by ';' (Excel in much of Europe) are read too, with decimal commas:
  Side;Price;Volume;Date;Start_Time;Duration
  buy;95,5;0,25;2030-01-15;14:00;15m
A JSON-lines file (.jsonl, .ndjson, or anything starting with "{") has one order
object a line, as the API takes it. Prices and volumes are read exactly (as Decimal).
The summary says what was detected (delimiter, decimal commas, derived fields).

The results file (default FILE.results.csv) has one line per row:
  row,line,status,order_id,error,delivery    with status created, failed, unsent or unknown,
and the delivery window as given and in UTC (2030-01-15 14:00-14:15 UTC+1 (13:00-13:15 UTC)).
"unknown" means the exchange may or may not have placed the order: check with
`game orders` before sending that row again.

exit status: 0 every row created; 1 some row was not (see the results file);
2 the file is wrong or missing (every problem listed) and nothing was sent.
"""


@dataclass
class Row:
    """One order of the file: its number among the orders, the line it starts on, and what was read."""

    number: int
    line: int
    order: Optional[Dict[str, Any]] = None
    problem: Optional[str] = None  # the row could not be read as an order at all


@dataclass
class Outcome:
    status: str = "unsent"
    order_id: Any = None
    error: str = ""


# -- reading -------------------------------------------------------------------


@dataclass
class Reading:
    """What was found out about the file while reading it, for the summary."""

    fmt: str = "csv"
    delimiter: str = ","
    decimal_commas: int = 0  # cells read with a decimal comma
    ended: int = 0  # rows whose end_time was derived from start_time + duration
    #: Rows without tz_offset_hours, per offset given to them, and where that offset came from.
    tz_given: Dict[int, int] = field(default_factory=dict)
    tz_source: str = "this computer's zone"

    def describe(self) -> str:
        """``CSV separated by ';', decimal commas; end_time from start_time + duration in 3 rows``."""
        if self.fmt == "jsonl":
            parts = ["JSON lines"]
        else:
            parts = [f"CSV separated by {self.delimiter!r}" + (", decimal commas" if self.decimal_commas else "")]
        if self.ended:
            parts.append(f"end_time from start_time + duration in {self.ended} row{'s' if self.ended != 1 else ''}")
        if self.tz_given:
            each = ", ".join(
                f"UTC+{tz} in {count} row{'s' if count != 1 else ''}" for tz, count in sorted(self.tz_given.items())
            )
            parts.append(f"times without tz_offset_hours at {each} ({self.tz_source})")
        return "; ".join(parts)

    def as_dict(self) -> Dict[str, Any]:
        found: Dict[str, Any] = {"format": self.fmt}
        if self.fmt == "csv":
            found.update(delimiter=self.delimiter, decimal_comma=bool(self.decimal_commas))
        given = {str(tz): count for tz, count in sorted(self.tz_given.items())}
        found.update(end_time_derived=self.ended, tz_offset_hours_given=given, tz_source=self.tz_source)
        return found


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read().lstrip("\ufeff")
    # utf-8-sig: spreadsheets write a byte-order mark; newline="" keeps quoted line breaks for csv.
    try:
        with open(path, encoding="utf-8-sig", newline="") as source:
            return source.read()
    except FileNotFoundError:
        raise UsageError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a file of orders") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text; save it as CSV UTF-8 (or JSON lines)") from None
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None


def detect_format(path: str, text: str) -> str:
    lower = path.lower()
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith(".csv"):
        return "csv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def detect_delimiter(text: str) -> str:
    """``;`` when the header row has more semicolons than commas (Excel in much of Europe), else ``,``."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    return ";" if header.count(";") > header.count(",") else ","


def read_rows(path: str, fmt: str = "auto") -> List[Row]:
    """The orders of ``path`` (``-``: standard input), as CSV or JSON lines."""
    return read_file(path, fmt)[0]


def read_file(path: str, fmt: str = "auto") -> Tuple[List[Row], Reading]:
    """The orders of ``path`` and what was detected reading them (format, delimiter, decimal commas)."""
    text = _read_text(path)
    if fmt == "auto":
        fmt = detect_format(path, text)
    reading = Reading(fmt=fmt)
    if fmt == "jsonl":
        rows = _jsonl_rows(text)
    else:
        reading.delimiter = detect_delimiter(text)
        rows = _csv_rows(text, reading)
    for row in rows:
        if row.order is not None and row.problem is None:
            _derive_end(row, reading)
    if not rows:
        raise UsageError(f"no orders in {_name(path)}")
    return rows, reading


def _derive_end(row: Row, reading: Reading) -> None:
    """``end_time`` from ``start_time`` + ``duration`` when the row gives none, as ``order create`` does."""
    order = cast(Dict[str, Any], row.order)
    start, duration = order.get("start_time"), order.get("duration")
    if order.get("end_time") is not None or not isinstance(start, str) or not isinstance(duration, str):
        return  # with start_time or duration missing, the order rules name what is missing
    try:
        order["end_time"] = end_time(start, duration)
    except OrderValidationError as error:
        row.problem = "; ".join(str(problem) for problem in error.errors)
        return
    reading.ended += 1


def _name(path: str) -> str:
    return "standard input" if path == "-" else repr(path)


def _exact(text: str, reading: Reading) -> Any:
    if reading.delimiter == ";" and _DECIMAL_COMMA.fullmatch(text):
        text = text.replace(",", ".")
        reading.decimal_commas += 1
    # A cell that is not a number stays text: the order rules then name the field and the value.
    try:
        return Decimal(text)
    except (InvalidOperation, ValueError):
        return text


def _whole(text: str) -> Any:
    digits = text[1:] if text[:1] in "+-" else text
    return int(text) if digits.isdigit() and digits.isascii() else text


def _csv_header(header: Sequence[str]) -> List[str]:
    # Spreadsheets capitalise (Side, Start_Time): the names are matched without case.
    names = [name.strip().lower() for name in header]
    unknown = [name for name in names if name not in CSV_COLUMNS]
    if unknown:
        shown = header[names.index(unknown[0])].strip()
        raise UsageError(f"unknown column {shown!r} in the header; the columns are: {', '.join(CSV_COLUMNS)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UsageError(f"column {repeated[0]!r} appears twice in the header")
    return names


def _csv_order(names: Sequence[str], cells: Sequence[str], reading: Reading) -> Tuple[Dict[str, Any], Optional[str]]:
    order: Dict[str, Any] = {}
    for name, raw in zip(names, cells):
        text = raw.strip()
        if not text:
            continue  # an empty cell is an absent field, as null is in JSON
        if name in DECIMAL_FIELDS:
            order[name] = _exact(text, reading)
        elif name in INT_FIELDS:
            order[name] = _whole(text)
        elif name == "trader_suffixe":
            order["options"] = {"trader_suffixe": text}
        else:
            order[name] = text
    extra = [cell for cell in cells[len(names) :] if cell.strip()]
    problem = f"{len(cells)} cells but the header names {len(names)}" if extra else None
    return order, problem


def _csv_rows(text: str, reading: Reading) -> List[Row]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=reading.delimiter)
    header = next(reader, None)
    if header is None:
        return []
    names = _csv_header(header)
    rows: List[Row] = []
    while True:
        line = reader.line_num + 1  # where the next row starts, however many lines it spans
        try:
            cells = next(reader)
        except StopIteration:
            return rows
        except csv.Error as error:
            raise UsageError(f"line {line}: not valid CSV: {error}")
        if not any(cell.strip() for cell in cells):
            continue  # blank lines and the ",,,," that spreadsheets leave at the end
        order, problem = _csv_order(names, cells, reading)
        rows.append(Row(len(rows) + 1, line, order, problem))


def _jsonl_rows(text: str) -> List[Row]:
    rows: List[Row] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line:
            continue
        row = Row(len(rows) + 1, number)
        try:
            # parse_float=Decimal: 95.125 arrives as written, not as the nearest float.
            value = json.loads(line, parse_float=Decimal)
        except ValueError as error:
            row.problem = f"not valid JSON: {error}"
        else:
            if isinstance(value, dict):
                row.order = value
            else:
                row.problem = f"must be a JSON object (an order), got {type(value).__name__}"
        rows.append(row)
    return rows


def settle_time_zones(rows: Sequence[Row], tz: Optional[int], reading: Reading) -> List[str]:
    """Give every row without ``tz_offset_hours`` an offset said out loud, or say why not.

    ``--tz`` when given; otherwise this computer's offset at the row's delivery
    start, only when the exchange can take it (0, 1 or 2). Rows whose local
    offset it cannot take are named in one problem (nothing is then sent).
    """
    refused: List[Row] = []
    reason = ""
    for row in rows:
        order = row.order
        if order is None or row.problem is not None or order.get("tz_offset_hours") is not None:
            continue
        if tz is not None:
            order["tz_offset_hours"] = tz
            reading.tz_source = "--tz"
            reading.tz_given[tz] = reading.tz_given.get(tz, 0) + 1
            continue
        problem = tz_problem(order.get("date"), order.get("start_time"))
        if problem:
            refused.append(row)
            reason = reason or problem
            order["tz_offset_hours"] = 0  # checked for its other fields; never sent (the file is refused)
            continue
        local = default_tz(order.get("date"), order.get("start_time"))
        if local is not None:
            order["tz_offset_hours"] = local
            reading.tz_given[local] = reading.tz_given.get(local, 0) + 1
    if not refused:
        return []
    first = refused[0]
    others = f" and {len(refused) - 1} more" if len(refused) > 1 else ""
    return [
        f"{_where(first)}{others}: tz_offset_hours: not given, and {reason}; add a tz_offset_hours column "
        "(0 UTC, 1 CET, 2 CEST) or pass --tz"
    ]


# -- checking ------------------------------------------------------------------


def check_rows(rows: Sequence[Row], allow_non_positive_price: bool = False) -> List[str]:
    """Every problem of every row, as ``row N (line L): field: reason``; empty when all are good."""
    readable = [row for row in rows if row.order is not None and row.problem is None]
    found: List[Tuple[int, str]] = [(row.number, f"{_where(row)}: {row.problem}") for row in rows if row.problem]
    for row in readable:
        for name in DECIMAL_FIELDS:
            if too_large(cast(Dict[str, Any], row.order).get(name)):
                found.append((row.number, f"{_where(row)}: {name}: is too large to send as a number"))
    try:
        validate_orders([row.order for row in readable], allow_non_positive_price=allow_non_positive_price)
    except OrderValidationError as error:
        for problem in error.errors:
            if problem.index is None or not 0 <= problem.index < len(readable):
                found.append((0, f"{problem.field}: {problem.reason}"))
            else:
                row = readable[problem.index]
                found.append((row.number, f"{_where(row)}: {problem.field}: {problem.reason}"))
    found.sort(key=lambda pair: pair[0])  # stable: a row's problems stay in the validator's order
    return [text for _, text in found]


def _where(row: Row) -> str:
    return f"row {row.number} (line {row.line})"


def _report_problems(problems: Sequence[str], path: str, reading: Reading) -> None:
    read_as = f" (read as {reading.describe()})"
    print(f"game: {len(problems)} problem(s) in {_name(path)}{read_as}; nothing was sent", file=sys.stderr)
    for text in problems[:MAX_PROBLEMS_SHOWN]:
        print(f"  {text}", file=sys.stderr)
    if len(problems) > MAX_PROBLEMS_SHOWN:
        print(f"  ... and {len(problems) - MAX_PROBLEMS_SHOWN} more", file=sys.stderr)


# -- sending -------------------------------------------------------------------


class Progress:
    """A one-line progress bar redrawn with ``\\r``; silent when not enabled."""

    WIDTH = 30

    def __init__(self, total: int, requests: int, stream: IO[str], enabled: bool) -> None:
        self.total, self.requests, self.stream, self.enabled = total, requests, stream, enabled
        self.drawn = False

    def show(self, done: int, sent_requests: int) -> None:
        if not self.enabled:
            return
        filled = self.WIDTH * done // self.total if self.total else self.WIDTH
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r  [{bar}] {done}/{self.total} orders, request {sent_requests}/{self.requests}")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def _one_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return f"{type(error).__name__}: {text.splitlines()[0]}"


def _record_answer(outcomes: List[Outcome], start: int, result: BulkResult, size: int) -> None:
    for position in range(start, start + size):
        # The exchange answers for each order; one it leaves out may or may not exist.
        outcomes[position] = Outcome("unknown", error="not in the exchange's answer")
    _record_answer_parts(outcomes, start, size, dict(result))


def _record_error(outcomes: List[Outcome], start: int, size: int, error: GameAPIError) -> None:
    if isinstance(error, OrderValidationError):
        # Refused by the client's own check (a window that began while we were sending):
        # nothing of this request went out, so only the named rows failed.
        for problem in error.errors:
            if problem.index is not None and 0 <= problem.index < size:
                outcomes[start + problem.index] = Outcome("failed", error=f"{problem.field}: {problem.reason}")
        return
    status = "unknown" if isinstance(error, OutcomeUnknownError) else "failed"
    for position in range(start, start + size):
        outcomes[position] = Outcome(status, error=explain(error)[1])
    partial = error.partial_result if isinstance(error.partial_result, dict) else None
    if partial:
        _record_answer_parts(outcomes, start, size, partial)


def _record_answer_parts(outcomes: List[Outcome], start: int, size: int, answer: Dict[str, Any]) -> None:
    """What a bulk answer (or a failed request's ``partial_result``) says of each of its rows.

    Indices are the request's own; one outside it (a confused server) is ignored
    rather than allowed to stop the results file from being written.
    """

    def position(index: Any) -> Optional[int]:
        return start + index if type(index) is int and 0 <= index < size else None

    for entry in answer.get("created") or []:
        where = position(entry.get("index"))
        if where is not None:
            outcomes[where] = Outcome("created", (entry.get("result") or {}).get("order_id"))
    for failure in answer.get("failed") or []:
        where = position(failure.get("index"))
        if where is not None:
            outcomes[where] = Outcome("failed", error=str(failure.get("error", "")))
    for index in answer.get("unknown") or []:
        where = position(index)
        if where is not None and outcomes[where].status != "unknown":
            outcomes[where] = Outcome("unknown", error=outcomes[where].error)


def send_rows(
    api: Any, orders: Sequence[Dict[str, Any]], progress: Progress, url: Optional[str] = None
) -> Tuple[List[Outcome], Optional[str]]:
    """Send ``orders`` in requests of ``CHUNK``, one at a time; stop at the first request that fails.

    Returns each order's outcome and, when sending stopped early, why.
    """
    outcomes = [Outcome() for _ in orders]
    progress.show(0, 0)
    for request, start in enumerate(range(0, len(orders), CHUNK), start=1):
        chunk = list(orders[start : start + CHUNK])
        try:
            result = cast(BulkResult, api.create_order({"orders": chunk}))
        except GameAPIError as error:
            _record_error(outcomes, start, len(chunk), error)
            return outcomes, f"request {request} failed: {explain(error, url)[1]}"
        except KeyboardInterrupt:
            for position in range(start, start + len(chunk)):
                outcomes[position] = Outcome("unknown", error="interrupted while this request was out")
            return outcomes, "interrupted"
        except (ValueError, TypeError) as error:
            # Raised while the client builds the request, before a byte is sent; the rows
            # already sent must still reach the results file.
            for position in range(start, start + len(chunk)):
                outcomes[position] = Outcome("failed", error=_one_line(error))
            return outcomes, f"request {request} not sent: {_one_line(error)}"
        _record_answer(outcomes, start, result, len(chunk))
        progress.show(start + len(chunk), request)
    return outcomes, None


# -- results -------------------------------------------------------------------


def default_results_path(path: str) -> str:
    return "bulk-results.csv" if path == "-" else path + ".results.csv"


def write_results(target: IO[str], rows: Sequence[Row], outcomes: Sequence[Outcome]) -> None:
    writer = csv.writer(target)
    writer.writerow(RESULT_COLUMNS)
    for row, outcome in zip(rows, outcomes):
        order_id = "" if outcome.order_id is None else order_name(outcome.order_id)
        order = row.order or {}
        window = order.get("date"), order.get("start_time"), order.get("end_time"), order.get("tz_offset_hours")
        delivery = delivery_text(*window) if order.get("date") else ""  # as given, and in UTC
        writer.writerow([row.number, row.line, outcome.status, order_id, outcome.error, delivery])


def _open_results(path: str, source: str) -> IO[str]:
    if source != "-" and os.path.exists(source) and os.path.abspath(path) == os.path.abspath(source):
        raise UsageError("--results must not be the input file")
    # Opened before anything is sent: an unwritable path must stop us while nothing exists yet.
    return open(path, "w", encoding="utf-8", newline="")


def summary(outcomes: Sequence[Outcome]) -> Dict[str, int]:
    counts = {status: 0 for status in STATUSES}
    for outcome in outcomes:
        counts[outcome.status] += 1
    return counts


# -- the command ---------------------------------------------------------------


def add_parsers(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bulk",
        help="place many orders from a CSV or JSON-lines file",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[output_parent(), connection_parent()],
    )
    parser.add_argument("file", metavar="FILE", help='CSV or JSON-lines file of orders; "-" reads standard input')
    parser.add_argument("--format", choices=("auto", "csv", "jsonl"), default="auto", help="file format (auto)")
    parser.add_argument("--results", metavar="PATH", help="per-row results CSV (default FILE.results.csv)")
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument(
        "--progress", dest="progress", action="store_true", default=None, help="show the progress bar even off a TTY"
    )
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never show the progress bar")
    parser.add_argument(
        "--allow-non-positive-price", action="store_true", help="allow prices of zero or below (power markets see them)"
    )
    parser.add_argument(
        "--tz",
        type=int,
        metavar="{0,1,2}",
        help="UTC offset of the times of rows without tz_offset_hours: 0 UTC, 1 CET, 2 CEST (default: this "
        "computer's offset at each delivery start, refused when it is none of those)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # The client first: a missing token is found before a long file is read. No request yet.
    if args.tz is not None and args.tz not in (0, 1, 2):
        raise UsageError(f"--tz must be 0 (UTC), 1 (CET) or 2 (CEST), got {args.tz}")
    with open_client(args, allow_non_positive_price=args.allow_non_positive_price) as api:
        rows, reading = read_file(args.file, args.format)
        problems = settle_time_zones(rows, args.tz, reading)
        problems += check_rows(rows, args.allow_non_positive_price)
        if problems:
            _report_problems(problems, args.file, reading)
            return 2
        results_path = args.results or default_results_path(args.file)
        orders = [cast(Dict[str, Any], row.order) for row in rows]
        show = sys.stderr.isatty() if args.progress is None else args.progress
        progress = Progress(len(orders), -(-len(orders) // CHUNK), sys.stderr, show)
        with _open_results(results_path, args.file) as target:
            try:
                outcomes, stopped = send_rows(api, orders, progress, args.resolved_url)
            finally:
                progress.close()
            write_results(target, rows, outcomes)
    return _finish(args, summary(outcomes), results_path, stopped, reading)


def _finish(
    args: argparse.Namespace, counts: Dict[str, int], results_path: str, stopped: Optional[str], reading: Reading
) -> int:
    if stopped:
        print(f"game: bulk stopped: {stopped}", file=sys.stderr)
    if args.json:
        total = sum(counts.values())
        print(as_json(dict(counts, rows=total, results=results_path, stopped=stopped, read=reading.as_dict())))
    else:
        print(f"read {_name(args.file)} as {reading.describe()}")
        line = ", ".join(f"{status} {counts[status]}" for status in STATUSES)
        print(f"{line}; results in {results_path}")
    if stopped == "interrupted":
        return 130
    return 0 if counts["created"] == sum(counts.values()) else 1
