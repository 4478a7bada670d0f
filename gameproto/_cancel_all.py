"""The kill switch: delete every resting order of the account (or those matching), whatever fails.

GAME has no cancel-all. ``CancelAll`` decides what the clients do: list the
orders, delete each resting one that matches (the clients send the deletes
at once where they can), and list again for those that failed, for at most
``CANCEL_ALL_ROUNDS`` rounds. One failed delete never stops the others;
a delete answered 404 means the order was already gone (filled, expired,
deleted, or deleted by an earlier attempt whose answer was lost). Running
it twice is harmless: the second run finds nothing to delete.

``Termination`` decides what ``cancel_all_on_exit()`` does on SIGTERM (what
``systemctl stop`` and ``docker stop`` send); the drivers install the
handler it asks for and carry out what it answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._arguments import check_direction, order_number_or_none
from ._contract import Contract
from ._errors import GameAPIError, InvalidArgumentError, NotFoundError
from ._order_life import is_resting

__all__ = ["CancelAll", "CancelAllResult", "CANCEL_ALL_ROUNDS", "Termination", "Terminated"]

#: Listings (each followed by the deletes of what still rests) before the kill switch reports failures.
CANCEL_ALL_ROUNDS = 3


@dataclass(frozen=True)
class CancelAllResult:
    """What ``cancel_all_orders`` did: the order ids cancelled, already gone, and failed (with the error)."""

    cancelled: Tuple[int, ...] = ()
    already_gone: Tuple[int, ...] = ()
    failed: Tuple[Tuple[int, GameAPIError], ...] = ()

    @property
    def ok(self) -> bool:
        """True when no order is known to be left resting by a failure."""
        return not self.failed

    def __str__(self) -> str:
        text = f"{len(self.cancelled)} cancelled, {len(self.already_gone)} already gone, {len(self.failed)} failed"
        for number, error in self.failed:
            text += f"\n  order {number}: {error}"
        return text


class CancelAll:
    """One run of the kill switch: which orders to delete in each round, and what came of each."""

    def __init__(self, contract: Any = None, side: Optional[str] = None, rounds: int = CANCEL_ALL_ROUNDS) -> None:
        if contract is None or isinstance(contract, Contract):
            self.contract: Optional[Contract] = contract
        elif isinstance(contract, str):
            try:
                self.contract = Contract.parse(contract)
            except ValueError as wrong:
                raise InvalidArgumentError(f"contract: {wrong}") from None
        else:
            raise InvalidArgumentError(f"contract must be a Contract, a contract id or None, got {contract!r}")
        self.side = check_direction(side, "side")
        self.rounds_left = rounds
        self.round = 0
        self._outcome: Dict[int, Union[str, GameAPIError]] = {}

    def next_round(self) -> bool:
        """Whether to list (again): first, and then while a delete failed and rounds are left."""
        if self.round > 0 and not any(isinstance(outcome, GameAPIError) for outcome in self._outcome.values()):
            return False
        if self.rounds_left <= 0:
            return False
        self.rounds_left -= 1
        self.round += 1
        return True

    def matches(self, order: Mapping[str, Any]) -> bool:
        """Whether a listed order rests and is one the caller asked to cancel."""
        if not is_resting(order):
            return False
        if self.side is not None and order.get("direction", order.get("side")) != self.side:
            return False
        if self.contract is not None:
            try:
                return Contract.parse(order.get("contract")) == self.contract  # type: ignore[arg-type]
            except ValueError:
                return False
        return True

    def targets(self, orders: Sequence[Mapping[str, Any]]) -> List[int]:
        """The numbers of the listed orders to delete in this round.

        An order listed again after its delete failed is tried again. One
        that was deleted is not (a listing a moment old may still show it).
        An order that failed and is no longer listed is gone.
        """
        listed: List[int] = []
        for order in orders:
            number = order_number_or_none(order.get("order_id"))
            if number is not None and self.matches(order):
                listed.append(number)
        for number, outcome in list(self._outcome.items()):
            if isinstance(outcome, GameAPIError) and number not in listed:
                self._outcome[number] = "gone"
        return [
            number
            for number in listed
            if number not in self._outcome or self._outcome[number] not in ("cancelled", "gone")
        ]

    def record(self, number: int, outcome: Any) -> None:
        """A delete's answer (cancelled), ``NotFoundError`` (already gone) or another error (failed)."""
        if isinstance(outcome, NotFoundError):
            self._outcome[number] = "gone"
        elif isinstance(outcome, GameAPIError):
            # A delete that failed after an earlier one in this run succeeded stays cancelled.
            if self._outcome.get(number) != "cancelled":
                self._outcome[number] = outcome
        else:
            self._outcome[number] = "cancelled"

    def result(self) -> CancelAllResult:
        """What the run did, each list in order of the order ids."""
        numbers = sorted(self._outcome)
        failed: List[Tuple[int, GameAPIError]] = []
        for number in numbers:
            outcome = self._outcome[number]
            if isinstance(outcome, GameAPIError):
                failed.append((number, outcome))
        return CancelAllResult(
            tuple(number for number in numbers if self._outcome[number] == "cancelled"),
            tuple(number for number in numbers if self._outcome[number] == "gone"),
            tuple(failed),
        )


class Terminated(SystemExit):
    """The signal that ended a ``cancel_all_on_exit()`` block, raised from it once the orders are cancelled.

    Raised only when the handler that was there before the block took the
    signal and returned (a framework's own shutdown, begun): the block
    cannot go on. A ``SystemExit`` with the shell's status for the signal
    (143 for SIGTERM), so that nothing else catches it by mistake.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


class Termination:
    """What ``cancel_all_on_exit()`` does on SIGTERM; one per block, nested blocks each have their own.

    The driver says what was installed before the block (``previous``:
    ``"default"``, ``"ignored"``, ``"handler"`` for a Python callable, or
    ``"unknown"`` for one not installed from Python) and whether the block
    runs in the main thread (the only one where a handler can be set).

    - ``covers``: install the block's handler. Not when the signal was
      ignored (the process chose to live through it), nor outside the main
      thread or over a handler that cannot be put back (then ``warning``
      says that only exceptions are covered).
    - ``signalled()``: the signal came; whether to interrupt the block now.
      Once only: a second signal while the orders are being cancelled must
      not stop the cancelling.
    - ``hand_over()``: once the orders are cancelled, what to do with the
      signal: ``"default"`` (the previous disposition ends the process: put
      it back and raise the signal again, so that the process ends as it
      would have, status 143), ``"handler"`` (call the previous handler,
      then end the block with ``Terminated`` if it returns), or ``""``
      (no signal came: nothing).
    """

    def __init__(self, previous: str, in_main_thread: bool, signal_name: str = "SIGTERM") -> None:
        if previous not in ("default", "ignored", "handler", "unknown"):
            raise ValueError(f"previous must be default, ignored, handler or unknown, got {previous!r}")
        self.previous = previous
        self.covers = in_main_thread and previous in ("default", "handler")
        self.warning: Optional[str] = None
        if not in_main_thread:
            self.warning = (
                f"cancel_all_on_exit() outside the main thread covers exceptions only: {signal_name} "
                "handlers can be set in the main thread alone"
            )
        elif previous == "unknown":
            self.warning = (
                f"cancel_all_on_exit() covers exceptions only: {signal_name} has a handler not set from "
                "Python, which could not be put back"
            )
        self.came = False

    def signalled(self) -> bool:
        """The signal came: True the first time (interrupt the block), False after (the cancelling goes on)."""
        if self.came:
            return False
        self.came = True
        return True

    def hand_over(self) -> str:
        """What to do with the signal once the block's orders are cancelled (see the class)."""
        if not self.came:
            return ""
        return "default" if self.previous == "default" else "handler"
