"""The account view: reservations kept through the late-request window, trader names, no trading blind."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Dict, List

import pytest

from gameproto import Contract, RiskLimits
from gameproto._account import Account
from gameproto._risk import RiskBook, RiskGuard
from gameproto.risk import request_window

UTC = dt.timezone.utc
CONTRACT = Contract(dt.datetime(2030, 1, 15, 10, tzinfo=UTC), 15)
T0 = dt.datetime(2030, 1, 1, 12, tzinfo=UTC).timestamp()


def order(side: str = "buy", price: Any = 50, volume: Any = 2) -> Dict[str, Any]:
    return {"side": side, "price": price, "volume": volume, **CONTRACT.order_fields(), "state": "displayed"}


def listed(number: int, created: float, volume: Any = 2, price: Any = 50) -> Dict[str, Any]:
    return {
        "order_id": number,
        "direction": "buy",
        "price": price,
        "volume": volume,
        "remaining_volume": volume,
        **CONTRACT.order_fields(),
        "contract": CONTRACT.id,
        "trader": "alice",
        "state": "Displayed",
        "created_at": dt.datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z"),
    }


def unknown_book() -> RiskBook:
    """max_net_position 3; one order of 2 sent at T0 whose call gave up at T0 + 10 without an answer."""
    book = RiskBook(RiskLimits(max_net_position=3, max_state_age=1e9, traders=["alice"]))
    book.refresh([], [], None, None, now=0.0)
    guard = RiskGuard(book, window=lambda: request_window(T0, T0 + 10))
    assert guard.screen([(0, order())]) == []
    guard.failed(TimeoutError("no answer"))
    return book


def counted(book: RiskBook) -> List[Decimal]:
    return sorted(held.remaining for _, held in book.resting())


def test_an_unknown_order_keeps_its_reservation_while_its_window_is_open() -> None:
    book = unknown_book()
    book.refresh([], [], None, None, now=1.0, since=book.begin_refresh(), exchange_time=T0 + 14)
    assert counted(book) == [2]
    _, breaches = book.check([(0, order(volume=2))])
    assert [breach.limit for breach in breaches] == ["max_net_position"]  # 2 + 2 > 3
    assert book.needs_refresh(1.0)  # and it is looked for again before the next order


def test_it_is_released_once_its_window_has_closed_unseen() -> None:
    book = unknown_book()
    book.refresh([], [], None, None, now=1.0, since=book.begin_refresh(), exchange_time=T0 + 15.5)
    assert counted(book) == [] and not book.needs_refresh(1.0)


def test_a_listed_order_created_within_the_window_is_it_counted_once() -> None:
    book = unknown_book()
    book.refresh([listed(7, T0 + 12)], [], None, None, now=1.0, since=book.begin_refresh(), exchange_time=T0 + 13)
    assert [(number, held.remaining) for number, held in book.resting()] == [(7, Decimal(2))]
    assert not book.needs_refresh(1.0)


def test_an_identical_order_created_outside_the_window_is_another_order() -> None:
    book = unknown_book()
    other = listed(8, T0 - 30)  # placed before the request left: not it
    book.refresh([other], [], None, None, now=1.0, since=book.begin_refresh(), exchange_time=T0 + 13)
    assert counted(book) == [2, 2]


def test_trader_names_are_given_or_learnt_each_once() -> None:
    account = Account(["alice"])
    account.learn([{"trader": "alice"}, {"trader": "alice_bot"}, {"trader": None}])
    assert account.traders == ["alice", "alice_bot"]
    with pytest.raises(ValueError, match=r"RiskLimits\.traders must be a list of trader names"):
        RiskLimits(traders="alice")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty strings"):
        RiskLimits(traders=["alice", ""])


TRADE = {"contract": CONTRACT.id, "price": 50, "volume": 4, "buyer": "alice", "seller": "bob", "trade_id": "t1"}


def test_a_position_limit_refuses_to_trade_blind() -> None:
    blind = RiskBook(RiskLimits(max_net_position=5))
    blind.refresh([], [TRADE], None, None, now=0.0)
    _, breaches = blind.check([(0, order(volume=1))])
    assert [breach.limit for breach in breaches] == ["max_net_position"]
    assert "pass RiskLimits(traders=[...])" in breaches[0].reason

    named = RiskBook(RiskLimits(max_net_position=5, traders=["alice"]))
    named.refresh([], [TRADE], None, None, now=0.0)
    assert [breach.value for breach in named.check([(0, order(volume=2))])[1]] == [Decimal(6)]  # 4 filled + 2
    assert named.check([(0, order(volume=1))])[1] == []

    fresh = RiskBook(RiskLimits(max_net_position=5))  # nothing traded anywhere: nothing to count
    fresh.refresh([], [], None, None, now=0.0)
    assert fresh.check([(0, order(volume=1))])[1] == []


def test_a_name_learnt_from_the_listing_counts_the_fills() -> None:
    book = RiskBook(RiskLimits(max_net_position=5))
    book.refresh([listed(3, T0)], [TRADE], None, None, now=0.0)  # alice's order names her
    assert book.filled(CONTRACT) == 4
