"""Order creation as a caller asks for it: one order, or a bulk of any size.

A bulk is validated whole before anything is sent, split into requests of at
most ``BULK_LIMIT`` orders, and the answers merged back with every ``index``
counted over the caller's whole list.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from . import _constants
from ._calls import Call, create_order, create_orders_bulk
from ._errors import OrderProblem, OrderValidationError
from ._orders import validate_order, validate_orders
from ._types import BulkResult, Order

__all__ = ["OrderPlan", "plan_orders", "merge_bulk_results", "finish_bulk", "is_bulk"]


@dataclass(frozen=True)
class OrderPlan:
    """What ``create_order`` sends: one single-order call, or the parts of a bulk.

    ``parts`` pairs each bulk call with the offset of its first order in the
    caller's list.
    """

    single: Optional[Call[Order]]
    parts: Tuple[Tuple[int, Call[BulkResult]], ...]
    requested: int


def is_bulk(order_data: Any) -> bool:
    """Whether ``order_data`` is a bulk request: ``{"orders": [...]}``."""
    return isinstance(order_data, dict) and "orders" in order_data


def plan_orders(
    order_data: Any,
    *,
    now: Optional[dt.datetime] = None,
    allow_non_positive_price: bool = False,
    bulk_limit: int = _constants.BULK_LIMIT,
) -> OrderPlan:
    """Validate ``order_data`` in full and plan its requests; nothing is sent.

    Raises ``OrderValidationError`` naming every bad order and field.
    """
    if is_bulk(order_data):
        extra = [key for key in order_data if key != "orders"]
        if extra:
            problems = [OrderProblem(None, str(key), "unknown field of a bulk request") for key in extra]
            raise OrderValidationError(problems)
        orders = validate_orders(order_data["orders"], now=now, allow_non_positive_price=allow_non_positive_price)
        parts = tuple(
            (offset, create_orders_bulk(orders[offset : offset + bulk_limit]))
            for offset in range(0, len(orders), bulk_limit)
        )
        return OrderPlan(None, parts, len(orders))
    order = validate_order(order_data, now=now, allow_non_positive_price=allow_non_positive_price)
    return OrderPlan(create_order(order), (), 1)


def merge_bulk_results(results: Sequence[Tuple[int, BulkResult]], requested: int) -> BulkResult:
    """One bulk answer from the answers of its parts, indices over the whole list."""
    if len(results) == 1 and results[0][0] == 0:
        only = results[0][1]
        only["requested"] = requested
        return only
    created: List[Any] = []
    failed: List[Any] = []
    for offset, result in sorted(results, key=lambda pair: pair[0]):
        for entry in result["created"]:
            created.append(dict(entry, index=entry["index"] + offset))
        for failure in result["failed"]:
            failed.append(dict(failure, index=failure["index"] + offset))
    merged: Dict[str, Union[int, List[Any]]] = {"requested": requested, "created": created, "failed": failed}
    return merged  # type: ignore[return-value]


def finish_bulk(plan: OrderPlan, outcomes: Dict[int, Union[BulkResult, BaseException, None]]) -> BulkResult:
    """The merged answer of a bulk's parts, or the first part's error.

    ``outcomes`` maps each part's offset to its answer, its error, or None
    when it was not sent (a driver stops sending after a failure). The error
    raised carries ``partial_result``: what the parts that were answered did,
    and, in ``unsent``/``unknown``, the indices never sent and those whose
    outcome is unknown, so that no accepted order goes unnoticed.
    """
    answered = [(offset, outcome) for offset, outcome in outcomes.items() if isinstance(outcome, dict)]
    errors = [(offset, outcome) for offset, outcome in sorted(outcomes.items()) if isinstance(outcome, BaseException)]
    if not errors and len(answered) == len(plan.parts):
        return merge_bulk_results(answered, plan.requested)
    bounds = [(offset, offset + _part_size(plan, offset)) for offset, _ in plan.parts]
    unsent: List[int] = []
    unknown: List[int] = []
    from ._errors import GameAPIError, OutcomeUnknownError

    for start, end in bounds:
        outcome = outcomes.get(start)
        if outcome is None:
            unsent.extend(range(start, end))
        elif isinstance(outcome, OutcomeUnknownError):
            unknown.extend(range(start, end))
        elif isinstance(outcome, BaseException):
            unsent.extend(range(start, end))
    if not errors:  # pragma: no cover - a driver always reports why it stopped
        raise RuntimeError("bulk parts missing without an error")
    error = errors[0][1]
    partial: Dict[str, Any] = (
        dict(merge_bulk_results(answered, plan.requested))
        if answered
        else {
            "requested": plan.requested,
            "created": [],
            "failed": [],
        }
    )
    partial["unsent"] = unsent
    partial["unknown"] = unknown
    if isinstance(error, GameAPIError):
        error.partial_result = partial
    raise error


def _part_size(plan: OrderPlan, offset: int) -> int:
    offsets = [start for start, _ in plan.parts] + [plan.requested]
    position = offsets.index(offset)
    return offsets[position + 1] - offset
