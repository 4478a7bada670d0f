"""The recorder: polls an exchange through the blocking client and writes each poll into a recording.

``game record`` runs it; a script may too (``gameproto_exchange.record``).
What a poll reads and writes is said in ``_recording``'s docstring and in
docs/backtesting.md.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import time
from typing import TYPE_CHECKING, Any, Callable, List, Optional

from ._admin import AdminRefused, AdminUnreachable, SandboxAdmin
from ._recording import PathArg, RecordingError, RecordingWriter

if TYPE_CHECKING:
    from gameproto_sync import GameAPI

__all__ = ["record", "SandboxClock", "TRADES_AT_LEAST_EVERY", "book_not_listed"]

#: Polls between two listings of the trades when the last traded prices say nothing moved.
TRADES_AT_LEAST_EVERY = 60


def _moment(text: Any, what: str) -> float:
    if not isinstance(text, str):
        raise RecordingError(f"{what} is not a time: {text!r}")
    cleaned = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = dt.datetime.fromisoformat(cleaned)
    except ValueError:
        raise RecordingError(f"{what} is not a time: {text!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)).timestamp()


class SandboxClock:
    """Moves a sandbox's manual clock through its admin endpoint (one kept-alive connection)."""

    def __init__(self, base_url: str, admin_token: str) -> None:
        self._admin = SandboxAdmin(base_url, admin_token, trust_env=False)  # a loopback sandbox: no proxy
        self.base = self._admin.root

    def _call(self, method: str, path: str, body: Optional[Any] = None) -> float:
        try:
            data = self._admin.call(method, path, body)
        except AdminUnreachable as failure:
            raise RecordingError(f"cannot reach the sandbox at {self.base}: {failure.detail}") from None
        except AdminRefused as refused:
            raise RecordingError(str(refused)) from None
        if data.get("clock") != "manual":
            raise RecordingError(
                f"--drive-clock needs a sandbox on a manual clock (game serve --clock manual), not {self.base}"
            )
        return _moment(data.get("now"), "the sandbox's clock")

    def now(self) -> float:
        return self._call("GET", "/_sandbox/clock")

    def set(self, moment: float) -> float:
        return self._call("POST", "/_sandbox/clock/set", {"to": _iso(moment)})

    def advance(self, seconds: float) -> float:
        return self._call("POST", "/_sandbox/clock/advance", {"by": seconds})

    def close(self) -> None:
        self._admin.close()


def record(
    api: GameAPI,
    path: PathArg,
    *,
    every: float,
    polls: Optional[int] = None,
    duration: Optional[float] = None,
    driver: Optional[SandboxClock] = None,
    say: Callable[[str], None] = print,
) -> int:
    """Poll ``api`` into the recording at ``path`` until ``polls`` or ``duration`` is reached; the polls made.

    With ``driver`` the sandbox's clock is moved by ``every`` before each
    poll (not before the first of a fresh recording), and the client's
    clock and budget follow it; otherwise the polls are ``every`` apart by
    this host's clock.
    """
    path = os.fspath(path)
    # An interval of 0 would poll (or drive the clock) without end; say so before anything is written.
    if not _positive(every):
        raise ValueError(f"every must be a finite number of seconds above 0, got {every!r}")
    if polls is not None and (isinstance(polls, bool) or not isinstance(polls, int) or polls < 1):
        raise ValueError(f"polls must be a whole number, at least 1, got {polls!r}")
    if duration is not None and not _positive(duration):
        raise ValueError(f"duration must be a finite number of seconds above 0, got {duration!r}")
    writer = RecordingWriter(path, source=api.base_url)
    if writer.resumed and writer.last_exchange_time is not None:
        say(f"resuming {path}: {writer.polls} polls so far, the last at {_iso(writer.last_exchange_time)}")
    if driver is not None and writer.last_exchange_time is not None and driver.now() < writer.last_exchange_time:
        driver.set(writer.last_exchange_time)  # a sandbox started afresh: on from where the recording stopped
    if driver is not None:
        # The client's clock (its deadlines and request budget) runs as this host's plus the time driven, so a
        # replayed minute counts as a minute for the budget however fast it passes here.
        driven = [0.0]
        session = api._session
        host = session.clock
        session.clock = lambda: host() + driven[0]
    made = 0
    changes = 0
    warned = False
    first_time: Optional[float] = None
    last_prices: Optional[bytes] = None
    try:
        while True:
            started = time.monotonic()
            if driver is not None:
                if made == 0 and not writer.resumed:
                    exchange_time = driver.now()
                else:
                    exchange_time = driver.advance(every)
                    driven[0] += every
            else:
                status = api.get_status()
                exchange_time = _moment(status.get("timestamp"), "the exchange's /status timestamp")
            if first_time is None:
                first_time = exchange_time
            market = api.get_market_data()
            if not warned and book_not_listed(market):
                warned = True
                say(
                    "warning: the exchange's /market shows bids or offers but no order-book rows (with a direction):"
                    " the recording holds its trades and last prices, not a book a replay can trade against"
                )
            prices = api.get_latest_available_ltp()
            seen = json.dumps(prices, sort_keys=True, default=str).encode()
            trades: Optional[List[Any]] = None
            if seen != last_prices or made % TRADES_AT_LEAST_EVERY == 0:
                trades = api.get_trades()
            last_prices = seen
            changes += writer.write(
                exchange_time=exchange_time, local_time=time.time(), market=market, trades=trades, ltp=prices
            )
            made += 1
            if polls is not None and made >= polls:
                break
            if duration is not None and exchange_time - first_time >= duration - 1e-9:
                break
            if driver is None:
                api.sleep(max(0.0, every - (time.monotonic() - started)))
    finally:
        writer.close()
    say(f"recorded {made} polls ({changes} changes) into {path}")
    return made


def book_not_listed(rows: Any) -> bool:
    """Whether a ``/market`` answer shows a contract's best bid or offer but none of its order-book rows.

    Servers older than 0.1.2 list only the summary rows; their book cannot
    be recorded (a contract whose book is empty shows no bid or ask, so a
    quiet market does not count).
    """
    if not isinstance(rows, list):
        return False
    listed = {row.get("contract") for row in rows if isinstance(row, dict) and row.get("direction") in ("buy", "sell")}
    return any(
        isinstance(row, dict)
        and row.get("direction") is None
        and (row.get("bid") is not None or row.get("ask") is not None)
        and row.get("contract") not in listed
        for row in rows
    )


def _positive(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and value > 0


def _iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.timezone.utc).isoformat().replace("+00:00", "Z")
