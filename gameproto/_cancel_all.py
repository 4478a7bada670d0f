"""The kill switch: delete every resting order of the account (or those matching), whatever fails.

GAME has no cancel-all. ``CancelAll`` decides what the clients do: list the
orders, delete each resting one that matches (the clients send the deletes
at once where they can), and list again for those that failed, for at most
``CANCEL_ALL_ROUNDS`` rounds. One failed delete never stops the others;
a delete answered 404 means the order was already gone (filled, expired,
deleted, or deleted by an earlier attempt whose answer was lost). Running
it twice is harmless: the second run finds nothing to delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._arguments import check_direction, order_number_or_none
from ._contract import Contract
from ._errors import GameAPIError, InvalidArgumentError, NotFoundError
from ._order_life import is_resting

__all__ = ["CancelAll", "CancelAllResult", "CANCEL_ALL_ROUNDS"]

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
