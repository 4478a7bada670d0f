"""The diffing behind the watches: no fill counted twice, none missed, each trade once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, List, Optional, Set, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gameproto._calls import get_market_data, get_orders, get_trades
from gameproto._errors import (
    AuthenticationError,
    NetworkError,
    NotFoundError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitError,
    ServerError,
    ServerValidationError,
)
from gameproto._events import MarketEvent, MarketTracker, OrderEvent, OrderTracker, TradeTracker
from gameproto._watch import MarketWatch, OrderWatch, TradeWatch, is_transient

PROPERTY = settings(max_examples=300, derandomize=True, deadline=None)
IDS = st.integers(min_value=1, max_value=6)
# Volumes as exchanges write them: a few decimals, sent as floats, ints or Decimals.
AMOUNTS = st.decimals(min_value=0, max_value=1000, places=3)


def _number(amount: Decimal, form: int) -> Any:
    if form == 0:
        return float(amount)
    if form == 1 and amount == amount.to_integral_value():
        return int(amount)
    return amount if form == 2 else float(amount)


def _order(number: Any, executed: Any, volume: Any = 100, **extra: Any) -> Any:
    order = {"order_id": number, "volume": volume, "executed_volume": executed, "trader": "alice"}
    order.update(extra)
    return order


def _exact(value: Any) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


# An arbitrary listing: any of the ids, each with any executed volume (growing, shrinking), in any form.
listings = st.lists(
    st.lists(st.tuples(IDS, AMOUNTS, st.integers(0, 2), st.sampled_from([None, "Displayed", "Expired"])), max_size=6),
    max_size=15,
)


@PROPERTY
@given(listings)
def test_no_fill_is_counted_twice_or_missed_whatever_the_listings_say(
    snapshots: List[List[Tuple[int, Decimal, int, Optional[str]]]],
) -> None:
    tracker = OrderTracker()
    tracker.update([])  # the watch starts on an empty account: its baseline
    events: List[OrderEvent] = []
    highest: Dict[int, Decimal] = {}
    ever_listed: Set[int] = set()
    for snapshot in snapshots:
        listing = []
        for number, executed, form, state in snapshot:
            order = _order(number, _number(executed, form))
            if state is not None:
                order["state"] = state
            listing.append(order)
        seen_now = set()
        for order in listing:  # the first listing of an id in one answer stands
            if order["order_id"] not in seen_now:
                seen_now.add(order["order_id"])
                highest[order["order_id"]] = max(
                    highest.get(order["order_id"], Decimal(0)), _exact(order["executed_volume"])
                )
        ever_listed |= seen_now
        events += tracker.update(listing)
    for number in ever_listed:
        mine = [event for event in events if event.order["order_id"] == number]
        kinds = [event.kind for event in mine]
        assert kinds.count("placed") == 1 and kinds[0] == "placed"
        assert kinds.count("gone") <= 1
        fills = [_exact(event.volume) for event in mine if event.kind == "filled"]
        assert all(fill > 0 for fill in fills)
        assert sum(fills, Decimal(0)) == highest[number]
    last = {number for number, *_ in snapshots[-1]} if snapshots else set()
    for number in ever_listed - last:
        assert [event.kind for event in events if event.order["order_id"] == number].count("gone") == 1


@PROPERTY
@given(
    st.lists(st.tuples(IDS, AMOUNTS), min_size=1, max_size=30),  # fills as they happen on the exchange
    st.lists(st.sampled_from(["poll", "fail", "wait"]), min_size=1, max_size=40),
    st.integers(0, 2),
)
def test_polls_that_fail_or_come_late_still_see_every_fill_once(
    fills: List[Tuple[int, Decimal]], polls: List[str], form: int
) -> None:
    tracker = OrderTracker()
    tracker.update([])  # the watch starts on an empty account: its baseline
    executed: Dict[int, Decimal] = {}
    reported: Dict[int, Decimal] = {}
    moments = iter(polls)
    for number, amount in fills:
        executed[number] = executed.get(number, Decimal(0)) + amount
        step = next(moments, "poll")
        if step == "poll":  # "fail" and "wait" leave the tracker alone: its state is kept
            listing = [_order(key, _number(value, form), 10_000) for key, value in sorted(executed.items())]
            for event in tracker.update(listing):
                if event.kind == "filled":
                    listed: Any = event.order["order_id"]
                    reported[listed] = reported.get(listed, Decimal(0)) + _exact(event.volume)
    listing = [_order(key, _number(value, form), 10_000) for key, value in sorted(executed.items())]
    for event in tracker.update(listing):
        if event.kind == "filled":
            last: Any = event.order["order_id"]
            reported[last] = reported.get(last, Decimal(0)) + _exact(event.volume)
    for number, value in executed.items():
        assert reported.get(number, Decimal(0)) == _exact(_number(value, form))


def test_an_order_placed_filled_in_parts_and_expired() -> None:
    tracker = OrderTracker()
    tracker.update([])  # the watch starts on an empty account: its baseline
    assert [(e.kind, e.volume, e.complete) for e in tracker.update([_order(1, 0, 5, remaining_volume=5)])] == [
        ("placed", None, False)
    ]
    assert tracker.update([_order(1, 0, 5, remaining_volume=5)]) == []
    events = tracker.update([_order(1, 1.5, 5, remaining_volume=3.5)])
    assert [(e.kind, e.volume, e.complete) for e in events] == [("filled", 1.5, False)]
    events = tracker.update([_order(1, 2.0, 5, remaining_volume=3.0, state="Expired")])
    assert [(e.kind, e.volume) for e in events] == [("filled", 0.5), ("gone", None)]
    assert tracker.update([_order(1, 2.0, 5, remaining_volume=3.0, state="Expired")]) == []
    assert tracker.update([]) == []  # already reported gone


def test_an_order_first_seen_partly_executed_reports_what_it_had() -> None:
    tracker = OrderTracker()
    tracker.update([])
    events = tracker.update([_order("ord_7", 2, 5)])
    assert [(e.kind, e.volume) for e in events] == [("placed", None), ("filled", 2)]
    assert events[0].order_id == "ord_7"


def test_a_complete_order_that_leaves_is_gone_and_complete() -> None:
    tracker = OrderTracker()
    tracker.update([])  # the watch starts on an empty account: its baseline
    tracker.update([_order(3, 0, 2)])
    events = tracker.update([_order(3, 2, 2)])
    assert [(e.kind, e.volume, e.complete) for e in events] == [("filled", 2, True)]
    assert [(e.kind, e.complete) for e in tracker.update([])] == [("gone", True)]


def test_ids_in_either_form_are_one_order() -> None:
    tracker = OrderTracker()
    tracker.update([])  # the watch starts on an empty account: its baseline
    tracker.update([_order("ord_12", 1)])
    assert [e.kind for e in tracker.update([_order(12, 3)])] == ["filled"]


def test_an_order_listed_again_after_it_left_is_not_counted_again() -> None:
    tracker = OrderTracker()
    tracker.update([])  # the watch starts on an empty account: its baseline
    tracker.update([_order(1, 4)])
    assert [e.kind for e in tracker.update([])] == ["gone"]
    assert tracker.update([_order(1, 4)]) == []
    assert [(e.kind, e.volume) for e in tracker.update([_order(1, 5)])] == [("filled", 1)]
    assert tracker.update([]) == []


def _trade(number: int, buyer: str = "alice", seller: str = "bob") -> Any:
    return {"trade_id": f"trd_{number}", "buyer": buyer, "seller": seller, "volume": 1, "price": 50}


trade_listings = st.lists(
    st.lists(st.tuples(st.integers(1, 15), st.sampled_from(["alice", "bob", "carol"])), max_size=8), max_size=12
)


@PROPERTY
@given(trade_listings, st.booleans())
def test_each_trade_once_and_only_mine(snapshots: List[List[Tuple[int, str]]], mine: bool) -> None:
    tracker = TradeTracker(mine=mine, traders=["alice"], existing=True)
    yielded: List[Any] = []
    owners: Dict[int, str] = {}
    for snapshot in snapshots:
        listing = []
        for number, buyer in snapshot:
            owners.setdefault(number, buyer)
            listing.append(_trade(number, buyer=owners[number], seller="dave"))
        yielded += tracker.update(listing)
    ids = [trade["trade_id"] for trade in yielded]
    assert len(ids) == len(set(ids))
    expected = {f"trd_{n}" for n, owner in owners.items() if not mine or owner == "alice"}
    assert set(ids) == expected


def test_trades_listed_at_the_start_are_history() -> None:
    tracker = TradeTracker(mine=False)
    assert tracker.update([_trade(1), _trade(2)]) == []
    assert [t["trade_id"] for t in tracker.update([_trade(1), _trade(2), _trade(3)])] == ["trd_3"]
    assert tracker.update([_trade(3)]) == []
    assert tracker.update([_trade(1), _trade(3)]) == []  # listed again: not news


def test_mine_learns_the_names_from_the_orders() -> None:
    tracker = TradeTracker()
    assert tracker.needs_traders
    tracker.learn_traders([_order(1, 0), {"order_id": 2}])
    assert not tracker.needs_traders and tracker.traders == {"alice"}
    tracker.update([])
    assert [t["trade_id"] for t in tracker.update([_trade(1, "carol", "dave"), _trade(2, "dave", "alice")])] == [
        "trd_2"
    ]


def test_trades_while_no_name_is_known_wait_to_be_judged() -> None:
    tracker = TradeTracker()
    assert tracker.update([_trade(1)]) == []  # history
    assert tracker.update([_trade(1), _trade(2, "bob", "alice")]) == []  # whose? not known yet
    tracker.learn_traders([_order(5, 0)])
    assert [t["trade_id"] for t in tracker.update([_trade(1), _trade(2, "bob", "alice")])] == ["trd_2"]
    assert tracker.update([_trade(1), _trade(2, "bob", "alice")]) == []


def test_trades_without_ids_are_told_apart_by_their_facts() -> None:
    tracker = TradeTracker(mine=False, existing=True)
    one: Any = {"contract": "c", "timestamp": "t1", "price": 1, "volume": 1}
    two: Any = dict(one, timestamp="t2")
    assert len(tracker.update([one, two, one.copy()])) == 2


def _row(contract: str, direction: str, price: float) -> Any:
    return {"contract": contract, "direction": direction, "price": price, "volume": 1}


def test_market_events_when_the_best_prices_move() -> None:
    tracker = MarketTracker()
    tracker.update([])  # the watch starts on an empty account: its baseline
    first = tracker.update([_row("A", "buy", 49), _row("A", "buy", 48), _row("A", "sell", 51), _row("B", "sell", 60)])
    assert first == [MarketEvent("A", 49, 51), MarketEvent("B", None, 60)]
    assert tracker.update([_row("A", "buy", 49), _row("A", "sell", 51), _row("B", "sell", 60)]) == []
    assert tracker.update([_row("A", "buy", 50), _row("A", "sell", 51)]) == [
        MarketEvent("A", 50, 51),
        MarketEvent("B", None, None),
    ]


def test_summary_rows_give_the_bid_and_ask() -> None:
    tracker = MarketTracker()
    tracker.update([])  # the watch starts on an empty account: its baseline
    assert tracker.update([{"contract": "A", "bid": 10, "ask": 12}]) == [MarketEvent("A", 10, 12)]


market_listings = st.lists(
    st.lists(st.tuples(st.sampled_from("ABC"), st.sampled_from(["buy", "sell"]), st.integers(1, 5)), max_size=8),
    max_size=10,
)


@PROPERTY
@given(market_listings)
def test_replaying_market_events_gives_the_latest_best_prices(snapshots: List[List[Tuple[str, str, int]]]) -> None:
    tracker = MarketTracker()
    tracker.update([])  # the watch starts on an empty account: its baseline
    replayed: Dict[str, Tuple[Any, Any]] = {}
    for snapshot in snapshots:
        for event in tracker.update([_row(c, d, p) for c, d, p in snapshot]):
            replayed[event.contract] = (event.bid, event.ask)
    final = snapshots[-1] if snapshots else []
    for contract in "ABC":
        bids = [p for c, d, p in final if c == contract and d == "buy"]
        asks = [p for c, d, p in final if c == contract and d == "sell"]
        truth = (max(bids) if bids else None, min(asks) if asks else None)
        assert replayed.get(contract, (None, None)) == truth


@pytest.mark.parametrize(
    "error, transient",
    [
        (NetworkError("reset"), True),
        (OutcomeUnknownError("lost"), True),
        (ServerError("503", status_code=503), True),
        (RateLimitError("slow", retry_after=3), True),
        (ProtocolError("not json"), True),
        (ServerValidationError("408", status_code=408), True),
        (AuthenticationError("no", status_code=401), False),
        (NotFoundError("no", status_code=404), False),
        (ServerValidationError("bad", status_code=422), False),
        (ValueError("bug"), False),
    ],
)
def test_which_failures_a_watch_outlives(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient
    watch = OrderWatch(2.0, random=lambda: 0.5)
    if transient:
        assert watch.failed(error) >= 2.0
    else:
        with pytest.raises(type(error)):
            watch.failed(error)


def test_a_watch_backs_off_and_recovers() -> None:
    watch = OrderWatch(0.5, "buy", random=lambda: 1.0)
    assert watch.call == get_orders("buy")
    waits = [watch.failed(NetworkError("down")) for _ in range(6)]
    assert waits == sorted(waits) and waits[-1] == 8.0
    assert watch.failed(RateLimitError("slow", retry_after=30)) == 30
    assert watch.succeeded([_order(1, 0)]) == ([], 0.5)  # the baseline
    events, wait = watch.succeeded([_order(1, 0), _order(2, 0)])
    assert [e.kind for e in events] == ["placed"] and wait == 0.5 and watch.failures == 0


def test_a_trade_watch_lists_the_orders_first_when_it_needs_the_names() -> None:
    watch = TradeWatch(1.0, random=lambda: 0.5)
    assert watch.call == get_orders()
    assert watch.succeeded([_order(1, 0)]) == ([], 0.0)
    assert watch.call == get_trades()
    assert watch.succeeded([_trade(1)]) == ([], 1.0)
    assert watch.succeeded([_trade(1), _trade(2, "bob", "carol"), _trade(3, "bob", "alice")])[0] == [
        _trade(3, "bob", "alice")
    ]
    named = TradeWatch(1.0, traders=["alice"], random=lambda: 0.5)
    assert named.call == get_trades()


def test_a_market_watch_polls_its_duration() -> None:
    watch = MarketWatch(3, "15m", random=lambda: 0.5)
    assert watch.call == get_market_data(duration="15m")
    assert watch.succeeded([_row("A", "buy", 1)]) == ([], 3.0)  # the baseline
    assert watch.succeeded([_row("A", "buy", 2)]) == ([MarketEvent("A", 2, None)], 3.0)


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), "1", True])
def test_a_bad_interval_is_refused_by_name(bad: Any) -> None:
    with pytest.raises(ValueError, match="interval"):
        OrderWatch(bad, random=lambda: 0.5)
