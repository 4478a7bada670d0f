"""Order creation as a caller asks for it: one order, or a bulk of any size.

A bulk is validated whole before anything is sent, split into requests of at
most ``BULK_LIMIT`` orders, and the answers merged back with every ``index``
counted over the caller's whole list.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from . import _constants
from ._calls import Call, create_order, create_orders_bulk
from ._errors import GameAPIError, OrderProblem, OrderValidationError, OutcomeUnknownError, RiskBreach, RiskLimitError
from ._orders import validate_order, validate_orders
from ._types import BulkFailed, BulkResult, Order

#: Judges validated orders (each with its index in the caller's list) against
#: risk limits before anything is sent: the breaches found (issue 23).
Screen = Callable[[Sequence[Tuple[int, Dict[str, Any]]]], List[RiskBreach]]

__all__ = ["Screen", "OrderPlan", "BulkSending", "plan_orders", "merge_bulk_results", "finish_bulk", "is_bulk"]


@dataclass(frozen=True)
class OrderPlan:
    """What ``create_order`` sends: one single-order call, or the parts of a bulk.

    ``parts`` pairs each bulk call with the offset of its first order among
    the orders sent. ``positions`` maps each order sent to its index in the
    caller's list (they differ when ``skip_invalid`` left orders out), and
    ``refused`` holds the client's own refusals, shaped as the exchange's.
    """

    single: Optional[Call[Order]]
    parts: Tuple[Tuple[int, Call[BulkResult]], ...]
    requested: int
    positions: Tuple[int, ...] = ()
    refused: Tuple[BulkFailed, ...] = ()


def is_bulk(order_data: Any) -> bool:
    """Whether ``order_data`` is a bulk request: ``{"orders": [...]}``."""
    return isinstance(order_data, dict) and "orders" in order_data


def _reason(error: OrderValidationError) -> str:
    return "; ".join(f"{problem.field}: {problem.reason}" for problem in error.errors)


def plan_orders(
    order_data: Any,
    *,
    now: Optional[dt.datetime] = None,
    allow_non_positive_price: bool = False,
    bulk_limit: int = _constants.BULK_LIMIT,
    skip_invalid: bool = False,
    screen: Optional[Screen] = None,
) -> OrderPlan:
    """Validate ``order_data`` in full and plan its requests; nothing is sent.

    Raises ``OrderValidationError`` naming every bad order and field. With
    ``skip_invalid`` a bulk's invalid orders are left out and reported in
    the answer's ``failed`` instead, the valid ones sent. ``screen`` (risk
    limits) judges the valid orders: a breach raises ``RiskLimitError``, or
    with ``skip_invalid`` reports the order in ``failed`` too.
    """
    if not isinstance(skip_invalid, bool):
        raise OrderValidationError([OrderProblem(None, "skip_invalid", f"must be True or False, got {skip_invalid!r}")])
    if not is_bulk(order_data):
        order = validate_order(order_data, now=now, allow_non_positive_price=allow_non_positive_price)
        if screen is not None:
            breaches = screen([(0, order)])
            if breaches:
                raise RiskLimitError(breaches)
        return OrderPlan(create_order(order), (), 1)
    extra = [key for key in order_data if key != "orders"]
    if extra:
        problems = [OrderProblem(None, str(key), "unknown field of a bulk request") for key in extra]
        raise OrderValidationError(problems)
    given = order_data["orders"]
    refused: List[BulkFailed] = []
    try:
        orders = validate_orders(given, now=now, allow_non_positive_price=allow_non_positive_price)
        positions = tuple(range(len(orders)))
    except OrderValidationError as invalid:
        if not skip_invalid or any(problem.index is None for problem in invalid.errors):
            raise
        bad = set(invalid.indices)
        positions = tuple(index for index in range(len(given)) if index not in bad)
        orders = [
            validate_order(given[index], now=now, allow_non_positive_price=allow_non_positive_price)
            for index in positions
        ]
        for index in sorted(bad):
            found = [problem for problem in invalid.errors if problem.index == index]
            refused.append({"index": index, "error": _reason(OrderValidationError(found))})
    if screen is not None:
        breaches = screen(list(zip(positions, orders)))
        if breaches and not skip_invalid:
            raise RiskLimitError(breaches)
        if breaches:
            refused_by_risk = {breach.index for breach in breaches}
            kept = [(index, order) for index, order in zip(positions, orders) if index not in refused_by_risk]
            positions, orders = tuple(index for index, _ in kept), [order for _, order in kept]
            for index in sorted(refused_by_risk):
                reason = "; ".join(f"{b.limit}: {b.reason}" for b in breaches if b.index == index)
                refused.append({"index": index, "error": f"risk limit: {reason}"})
            refused.sort(key=lambda entry: entry["index"])
    parts = tuple(
        (offset, create_orders_bulk(orders[offset : offset + bulk_limit]))
        for offset in range(0, len(orders), bulk_limit)
    )
    return OrderPlan(None, parts, len(given), positions, tuple(refused))


def merge_bulk_results(results: Sequence[Tuple[int, BulkResult]], plan: OrderPlan) -> BulkResult:
    """One bulk answer from the answers of its parts, indices over the caller's whole list."""
    created: List[Any] = []
    failed: List[Any] = list(plan.refused)
    positions = plan.positions
    for offset, result in sorted(results, key=lambda pair: pair[0]):
        for entry in result["created"]:
            created.append(dict(entry, index=positions[entry["index"] + offset]))
        for failure in result["failed"]:
            failed.append(dict(failure, index=positions[failure["index"] + offset]))
    failed.sort(key=lambda entry: entry["index"])
    merged: Dict[str, Any] = {"requested": plan.requested, "created": created, "failed": failed}
    if len(results) == 1 and not plan.refused:
        # Keep whatever else the exchange said (fields added over time).
        extra = {key: value for key, value in results[0][1].items() if key not in merged}
        merged.update(extra)
    return merged  # type: ignore[return-value]


class BulkSending:
    """The parts of one bulk on their way: what to send, what came back, the merged answer.

    Drivers send ``plan.parts`` (one after another, or several at once) and
    ``record`` each outcome; the one rule, "after a part fails, send no
    further part" (the caller must know where things stand), is ``stopped``.
    """

    def __init__(self, plan: OrderPlan) -> None:
        self.plan = plan
        self.outcomes: Dict[int, Union[BulkResult, GameAPIError, None]] = {offset: None for offset, _ in plan.parts}
        self.stopped = False

    def record(self, offset: int, outcome: Union[BulkResult, GameAPIError]) -> None:
        """The answer or the error of the part that starts at ``offset``."""
        self.outcomes[offset] = outcome
        if isinstance(outcome, GameAPIError):
            self.stopped = True

    def result(self) -> BulkResult:
        """The merged answer, or the first failed part's error with ``partial_result``."""
        return finish_bulk(self.plan, self.outcomes)


def finish_bulk(plan: OrderPlan, outcomes: Dict[int, Union[BulkResult, GameAPIError, None]]) -> BulkResult:
    """The merged answer of a bulk's parts, or the first part's error.

    ``outcomes`` maps each part's offset to its answer, its error, or None
    when it was not sent (a driver stops sending after a failure). The error
    raised carries ``partial_result``: what the parts that were answered did,
    and, in ``unsent``/``unknown``, the indices never sent and those whose
    outcome is unknown, so that no accepted order goes unnoticed.
    """
    answered = [(offset, outcome) for offset, outcome in outcomes.items() if isinstance(outcome, dict)]
    errors = [(offset, outcome) for offset, outcome in sorted(outcomes.items()) if isinstance(outcome, GameAPIError)]
    if not errors and len(answered) == len(plan.parts):
        return merge_bulk_results(answered, plan)
    if not errors:  # pragma: no cover - a driver always reports why it stopped
        raise RuntimeError("bulk parts missing without an error")
    unsent: List[int] = []
    unknown: List[int] = []
    for start, end in _bounds(plan):
        outcome = outcomes.get(start)
        if isinstance(outcome, OutcomeUnknownError):
            unknown.extend(plan.positions[start:end])
        elif not isinstance(outcome, dict):
            unsent.extend(plan.positions[start:end])
    partial: Dict[str, Any] = dict(merge_bulk_results(answered, plan))
    partial["unsent"] = unsent
    partial["unknown"] = unknown
    error = errors[0][1]
    error.partial_result = partial
    raise error


def _bounds(plan: OrderPlan) -> List[Tuple[int, int]]:
    offsets = [start for start, _ in plan.parts] + [len(plan.positions)]
    return list(zip(offsets, offsets[1:]))
