"""The order calls: create one, create a bulk, list, delete.

Orders are checked with the clients' own rules (``gameproto._orders``), then
with this exchange's limits on sizes, then put in the ledger.
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import Any, List, Optional, Tuple

from .. import _constants
from .._boundary import Response
from .._calls import encode_json
from .._errors import OrderProblem, OrderValidationError
from .._orders import validate_order
from .answers import (
    Context,
    JSONObject,
    answer,
    answer_bytes,
    decimal,
    direction_param,
    error,
    invalid,
    json_body,
    more_problems,
    order_number,
)
from .book import MONEY, BookOrder
from .contracts import contract_name, delivery_window
from .ledger import Ledger
from .views import PLACES, created_json, order_view

__all__ = ["Desk"]

# The exchange's own limits on top of the order rules: sizes a double and a
# Decimal of modest precision hold exactly, so money never rounds in the book.
_MAX_AMOUNT = Decimal(10**9)
_UTC = dt.timezone.utc
_NONE: List[OrderProblem] = []


def _size_problem(value: Decimal) -> Optional[str]:
    if value.copy_abs() > _MAX_AMOUNT:
        return f"must be at most {_MAX_AMOUNT} in size on this exchange"
    if value.quantize(PLACES, context=MONEY) != value:
        return "must have at most 20 decimal places on this exchange"
    return None


def _plainly_fits(value: Any) -> bool:
    """Whether an amount is plainly within the sizes this exchange keeps (``_size_problem`` judges the rest).

    A Decimal written in at most 22 characters without an exponent has at most
    20 decimal places (at least "0." comes before them), and its magnitude is
    compared directly: no quantize for the usual price or volume.
    """
    if type(value) is Decimal:
        text = str(value)
        return len(text) <= 22 and "E" not in text and -_MAX_AMOUNT <= value <= _MAX_AMOUNT
    return type(value) is int and -_MAX_AMOUNT <= value <= _MAX_AMOUNT


def _exchange_problems(valid: JSONObject) -> List[OrderProblem]:
    """What this exchange refuses beyond the order rules: sizes it cannot keep exact, options it cannot echo."""
    if "options" not in valid and _plainly_fits(valid["price"]) and _plainly_fits(valid["volume"]):
        return _NONE
    problems = []
    for name in ("price", "volume"):
        reason = _size_problem(decimal(valid[name]))
        if reason is not None:
            problems.append(OrderProblem(None, name, reason))
    if "options" in valid:
        try:
            encode_json(valid["options"])
        except (ValueError, ArithmeticError, TypeError, RecursionError):
            problems.append(OrderProblem(None, "options", "must hold numbers within the range of a double"))
    return problems


@functools.lru_cache(maxsize=4)
def _moment(now: float) -> dt.datetime:
    """The exchange's clock as the order rules take it: the orders of a bulk share one."""
    return dt.datetime.fromtimestamp(now, _UTC)


@functools.lru_cache(maxsize=4096)
def _window(date: str, start_time: str, tz_offset_hours: int, duration: str) -> Tuple[float, int, str]:
    """A validated order's delivery start (epoch seconds), length in minutes and contract name.

    Bots send the same few windows over and over: each is worked out once.
    """
    details = {"date": date, "start_time": start_time, "tz_offset_hours": tz_offset_hours, "duration": duration}
    start, minutes = delivery_window(details)
    return start.timestamp(), minutes, contract_name(start, minutes)


class Desk:
    """Takes orders into the ledger, and answers the order calls."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        allow_non_positive_price: bool = False,
        max_resting_orders: int = _constants.MAX_RESTING_ORDERS,
    ) -> None:
        self.ledger = ledger
        self.allow_non_positive_price = allow_non_positive_price
        self.max_resting_orders = max_resting_orders

    def full(self, trader: str) -> Optional[str]:
        """Why ``trader`` may place no order now (as many resting orders as the cap allows), or None."""
        if self.ledger.resting.get(trader, 0) < self.max_resting_orders:
            return None
        return (
            f"{trader} has {self.max_resting_orders:,} resting orders, the most this exchange keeps for one trader: "
            "delete some (or let them trade or expire) before placing more"
        )

    def place(
        self, raw: Any, trader: str, now: float, at: Optional[float] = None
    ) -> Tuple[Optional[BookOrder], List[OrderProblem], int]:
        """Check one order and put it in the book (matching it); or the problems found and how many more.

        ``now`` is the clock the rules use; ``at`` the time the order and its
        fills are stamped with (seeding backdates its trades).
        """
        try:
            valid = validate_order(raw, now=_moment(now), allow_non_positive_price=self.allow_non_positive_price)
        except OrderValidationError as error:
            return None, error.errors, error.omitted
        problems = _exchange_problems(valid)
        if problems:
            return None, problems, 0
        start, minutes, contract = _window(
            valid["date"], valid["start_time"], valid["tz_offset_hours"], valid["duration"]
        )
        stamp = now if at is None else at
        # number, trader, side, price, volume, contract, minutes, hidden, created, details: by position,
        # which the dataclass's __init__ takes faster than by name.
        order = BookOrder(
            self.ledger.book.next_number(),
            trader,
            valid["side"],
            decimal(valid["price"]),
            decimal(valid["volume"]),
            contract,
            minutes,
            valid["state"] == "hidden",
            stamp,
            valid,
        )
        self.ledger.add(order, start, stamp)
        return order, [], 0

    def create_order(self, context: Context) -> Response:
        """``POST /orders``; 422 when the trader already has as many resting orders as the cap allows."""
        full = self.full(context.trader)
        if full is not None:
            raise invalid(["body"], full, "value_error.resting_orders")
        order, problems, omitted = self.place(json_body(context.request), context.trader, context.now)
        if order is None:
            shown = problems[: _constants.ORDER_PROBLEMS_SHOWN]
            detail: List[JSONObject] = [
                {"loc": ["body", problem.field], "msg": problem.reason, "type": "value_error"} for problem in shown
            ]
            more = len(problems) - len(shown) + omitted
            if more:  # counted, not listed: the answer stays small whatever the order holds
                detail.append({"loc": ["body"], "msg": more_problems(more), "type": "value_error.too_many"})
            return answer(422, {"detail": detail})
        return answer_bytes(200, created_json(order).encode())

    def create_bulk(self, context: Context) -> Response:
        """``POST /orders/create-bulk``: each order placed or refused on its own."""
        body = json_body(context.request)
        orders = body.get("orders") if isinstance(body, dict) else None
        if type(orders) is not list:
            raise invalid(["body", "orders"], "must be a list of orders")
        if len(orders) > _constants.BULK_LIMIT:
            raise invalid(["body", "orders"], f"must hold at most {_constants.BULK_LIMIT} orders, got {len(orders)}")
        placed: List[Tuple[int, BookOrder]] = []
        failed: List[JSONObject] = []
        for index, raw in enumerate(orders):
            full = self.full(context.trader)
            if full is not None:  # the rest of the bulk is refused, each order by its index
                failed.append({"index": index, "error": full})
                continue
            order, problems, omitted = self.place(raw, context.trader, context.now)
            if order is None:
                shown = problems[: _constants.ORDER_PROBLEMS_SHOWN]
                reason = "; ".join(str(OrderProblem(index, problem.field, problem.reason)) for problem in shown)
                more = len(problems) - len(shown) + omitted
                if more:
                    reason += "; " + more_problems(more)
                failed.append({"index": index, "error": reason})
            else:
                placed.append((index, order))
        # Rendered after the whole bulk, so an answer shows fills by later orders of the same bulk. The
        # answer is {"requested": n, "created": [{"index": i, "result": <view>}, ...], "failed": [...]},
        # each view written as its creation answer is.
        created = ",".join([f'{{"index":{index},"result":{created_json(order)}}}' for index, order in placed])
        text = f'{{"requested":{len(orders)},"created":[{created}],"failed":{encode_json(failed).decode()}}}'
        return answer_bytes(200, text.encode())

    def orders_of(self, trader: str, direction: Optional[str] = None, *, plain: bool = False) -> List[JSONObject]:
        """The listing view of a trader's orders, oldest first; one side if given.

        Live orders, and those that expired at their delivery start less than
        ``EXPIRED_LISTED_FOR`` ago (shown as expired). ``plain``: amounts as JSON
        numbers (see ``order_view``), for a listing about to be encoded.
        """
        listed = []
        for order in self.ledger.listed(trader, direction):
            if not order.deleted:
                listed.append(order_view(order, plain=plain))
            elif order.number in self.ledger.expired:
                listed.append(order_view(order, expired=True, plain=plain))
        return listed

    def list_orders(self, context: Context) -> Response:
        """``GET /orders``."""
        return answer(200, self.orders_of(context.trader, direction_param(context), plain=True))

    def delete_order(self, context: Context) -> Response:
        """``DELETE /orders/{order_id}``."""
        number = order_number(context.request.path[len("/orders/") :])
        order = self.ledger.book.orders.get(number)
        if order is None or order.trader != context.trader:
            return error(404, "Order not found")  # another trader's order is none of the caller's business
        gone = _nothing_to_cancel(order)
        if gone is not None:
            return error(404, f"Order {number} {gone}: nothing is left to cancel")
        self.ledger.cancel(order, context.now)
        return answer(200, {"status": "deleted", "order_id": number})


def _nothing_to_cancel(order: BookOrder) -> Optional[str]:
    """Why an order of the caller's has nothing left to cancel, or None when some of it rests.

    An order with nothing left is not cancellable (GAME-API.md): a fully
    executed order traded, and a 200 ``deleted`` would read as if the trade
    were undone. The 404 says which case it is.
    """
    if order.filled:
        return "is fully executed"
    if order.expired:
        return "expired at its delivery start"
    if order.deleted:
        return "was deleted already"
    return None
