"""The trader's brakes on the served exchange, on every driver (blocking, asyncio, trio).

A bot under ``RiskLimits`` is refused before sending at each limit while a
second trader (bob) fills and quotes; the kill switch leaves no resting
order while the exchange answers deletes with 503s and drops connections;
``cancel_all_on_exit`` cancels when a block ends by an exception.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from pathlib import Path
from typing import Any, Dict, List

import anyio
import pytest

from gameproto import Contract, OutcomeUnknownError, RiskLimitError, RiskLimits
from gameproto.risk import is_resting
from gameproto.simulator.faults import Fault
from tests.support.common import OTHER_TOKEN, future_order
from tests.support.harness import Harness, every_driver

DAY = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).date()


def at(side: str, price: Any, volume: Any, start: str = "10:00", end: str = "10:15") -> Dict[str, Any]:
    """An order for ``DAY`` (two days ahead, UTC times): in the future at any hour of the test."""
    return future_order(side, price, volume, day=DAY, start_time=start, end_time=end)


def resting(h: Harness) -> List[Dict[str, Any]]:
    """alice's resting orders, as the exchange holds them."""
    return [order for order in h.orders() if is_resting(order)]


async def refused(h: Harness, api: Any, order: Dict[str, Any], limit: str) -> RiskLimitError:
    """``order`` is refused at ``limit`` and nothing reaches the exchange."""
    posts = h.attempts("POST", "/orders") + h.attempts("POST", "/orders/create-bulk")
    with pytest.raises(RiskLimitError) as caught:
        await api.create_order(order)
    assert limit in caught.value.limits, caught.value
    assert h.attempts("POST", "/orders") + h.attempts("POST", "/orders/create-bulk") == posts
    return caught.value


@every_driver()
async def test_a_bot_under_limits_is_refused_before_sending_at_each_limit(h: Harness) -> None:
    limits = RiskLimits(
        max_order_volume=5, max_net_position=8, max_open_volume=5, price_band=30, max_open_orders=3, max_state_age=0
    )
    alice = h.client(risk=limits)
    bob = h.client(token=OTHER_TOKEN)

    await alice.create_order(at("buy", 100, 4))
    await bob.create_order(at("sell", 100, 4))  # bob fills alice: she is long 4
    await bob.create_order(at("sell", 100, 10))  # and quotes the ask at 100
    assert (await alice.positions()).net(Contract.from_order(at("buy", 100, 4))) == 4

    error = await refused(h, alice, at("buy", 100, 6), "max_order_volume")
    assert "orders[0]: max_order_volume: volume 6 is over 5" in str(error)
    error = await refused(h, alice, at("buy", 100, 5), "max_net_position")  # 4 filled + 5 = 9 > 8
    assert error.limits == ["max_net_position"] and error.breaches[0].value == 9
    assert (await refused(h, alice, at("buy", 140, 2), "price_band")).limits == ["price_band"]  # 40 from the ask

    await alice.create_order(at("sell", 120, 1))  # rests: nobody bids
    stp = await refused(h, alice, at("buy", 125, 1), "self_trade_prevention")  # would cross her own sell at 120
    assert stp.limits == ["self_trade_prevention"]
    assert (await refused(h, alice, at("sell", 110, 5), "max_open_volume")).limits == ["max_open_volume"]
    await alice.create_order(at("sell", 111, 1))
    await alice.create_order(at("sell", 112, 1))
    assert (await refused(h, alice, at("sell", 113, 1), "max_open_orders")).limits == ["max_open_orders"]
    assert len(resting(h)) == 3

    # A bulk with skip_invalid: the breaching order is listed as failed, the others sent.
    await alice.cancel_all_orders()
    result = await alice.create_order({"orders": [at("buy", 100, 6), at("sell", 115, 1)]}, skip_invalid=True)
    assert [entry["index"] for entry in result["failed"]] == [0]
    assert result["failed"][0]["error"].startswith("risk limit: max_order_volume")
    assert [entry["index"] for entry in result["created"]] == [1]
    # Without skip_invalid nothing of the bulk is sent.
    await refused(h, alice, {"orders": [at("sell", 116, 1), at("buy", 100, 6)]}, "max_order_volume")  # type: ignore[arg-type]
    assert len(resting(h)) == 1


@every_driver()
async def test_the_book_kept_from_answers_counts_resting_orders_as_filled(h: Harness) -> None:
    """With a long ``max_state_age`` the book is the client's own answers: bob's fills cannot loosen it."""
    alice = h.client(risk=RiskLimits(max_net_position=5, max_state_age=3600))
    bob = h.client(token=OTHER_TOKEN)
    await alice.create_order(at("buy", 100, 3))
    await bob.create_order(at("sell", 100, 2))  # a fill the client has not read: 2 filled + 1 resting
    gets = h.attempts("GET", "/orders")
    await alice.create_order(at("buy", 100, 2))  # 3 + 2 = 5: at the limit
    await refused(h, alice, at("buy", 99, 1), "max_net_position")
    assert h.attempts("GET", "/orders") == gets  # judged from the book, no listing
    second = next(order for order in resting(h) if order["remaining_volume"] == 2)
    await alice.delete_order(second["order_id"])
    # Part of a deleted order may have filled unseen: the book is read again before the next order.
    await alice.create_order(at("buy", 99, 2))  # 3 + 2 again
    assert h.attempts("GET", "/orders") == gets + 1
    await alice.cancel_all_orders()  # the book is read again before the next order
    await alice.create_order(at("buy", 90, 3))  # 2 filled + 3 = 5
    await refused(h, alice, at("buy", 90, 1), "max_net_position")


@every_driver(max_retries=0)
async def test_cancel_all_leaves_no_resting_order_through_503s_and_dropped_connections(h: Harness) -> None:
    alice = h.client()
    bob = h.client(token=OTHER_TOKEN)
    orders = [at("buy", 50 + n, 1) for n in range(8)] + [at("sell", 200 + n, 1, "11:00", "11:15") for n in range(6)]
    created = await alice.create_order({"orders": orders})
    assert len(created["created"]) == 14
    await bob.create_order(at("sell", 57, 1))  # fills alice's best bid: one order already gone
    h.faults.add(Fault("status", status=503), method="DELETE", times=4)
    h.faults.add(Fault("drop_before"), method="DELETE", times=2)
    h.faults.add(Fault("drop_after"), method="DELETE", times=2)  # deleted, but the answer is lost
    h.faults.add(Fault("status", status=503), method="DELETE", times=1)

    result = await alice.cancel_all_orders()
    assert resting(h) == []
    assert result.ok and result.failed == ()
    assert len(result.cancelled) + len(result.already_gone) == 13
    assert len(result.already_gone) >= 1  # a delete whose answer was lost, found gone in the next round
    again = await alice.cancel_all_orders()
    assert (again.cancelled, again.already_gone, again.failed) == ((), (), ())


@every_driver()
async def test_cancel_all_reports_what_it_could_not_cancel(h: Harness) -> None:
    alice = h.client(max_retries=0)
    await alice.create_order({"orders": [at("buy", 50, 1), at("buy", 51, 1)]})
    h.faults.add(Fault("status", status=503), method="DELETE", times=100)
    result = await alice.cancel_all_orders()
    assert not result.ok and len(result.failed) == 2 and result.cancelled == ()
    assert "503" in str(result.failed[0][1]) and "2 failed" in str(result)
    assert len(resting(h)) == 2
    h.faults.rules.clear()
    assert len((await alice.cancel_all_orders()).cancelled) == 2


@every_driver()
async def test_cancel_all_of_one_contract_and_side(h: Harness) -> None:
    alice = h.client()
    await alice.create_order(
        {"orders": [at("buy", 50, 1), at("sell", 90, 1), at("buy", 51, 1, "11:00", "11:15"), at("sell", 91, 1)]}
    )
    contract = Contract.from_order(at("buy", 50, 1))
    result = await alice.cancel_all_orders(contract=contract.id, side="sell")
    assert len(result.cancelled) == 2
    left = sorted((order["direction"], order["contract"]) for order in resting(h))
    assert left == [("buy", contract.id), ("buy", Contract.from_order(at("buy", 51, 1, "11:00", "11:15")).id)]
    with pytest.raises(ValueError, match="side"):
        await alice.cancel_all_orders(side="long")
    with pytest.raises(ValueError, match="contract"):
        await alice.cancel_all_orders(contract="tomorrow")


@every_driver()
async def test_cancel_all_on_exit_cancels_when_the_block_ends_by_an_exception(h: Harness) -> None:
    alice = h.client()
    api: Any = h.unwrapped(alice)
    for ending in (KeyboardInterrupt, RuntimeError):
        with pytest.raises(ending):
            if h.blocking:
                with api.cancel_all_on_exit():
                    api.create_order(at("buy", 50, 1))
                    raise ending()
            else:
                async with api.cancel_all_on_exit():
                    await api.create_order(at("buy", 50, 1))
                    raise ending()
        assert resting(h) == []
    # A block that ends normally leaves the orders resting.
    if h.blocking:
        with api.cancel_all_on_exit():
            api.create_order(at("buy", 50, 1))
    else:
        async with api.cancel_all_on_exit():
            await api.create_order(at("buy", 50, 1))
    assert len(resting(h)) == 1


@pytest.mark.anyio
async def test_cancel_all_on_exit_runs_when_the_task_is_cancelled(aserver: Any, anyio_backend: str) -> None:
    from gameproto_async import GameAPI
    from tests.support.common import TOKEN

    async with GameAPI(TOKEN, aserver.base_url) as api:
        placed = anyio.Event()

        async def bot() -> None:
            async with api.cancel_all_on_exit():
                await api.create_order(at("buy", 50, 1))
                placed.set()
                await anyio.sleep_forever()

        async with anyio.create_task_group() as group:
            group.start_soon(bot)
            await placed.wait()
            group.cancel_scope.cancel()
    assert [order for order in aserver.exchange.orders_of("alice") if is_resting(order)] == []


@every_driver()
async def test_orders_sent_at_once_are_judged_against_one_another(h: Harness) -> None:
    """Threads (blocking) or tasks (async) sharing one client: the limit holds for them together."""
    alice = h.client(risk=RiskLimits(max_net_position=5, max_state_age=3600))
    await alice.get_status()
    outcomes = await h.concurrently(*[lambda n=n: alice.create_order(at("buy", 50 + n, 2)) for n in range(8)])
    accepted = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    assert len(accepted) == 2 and all(
        isinstance(outcome, RiskLimitError) for outcome in outcomes if outcome not in accepted
    )
    assert sum(order["remaining_volume"] for order in resting(h)) == 4


@every_driver()
async def test_an_order_filled_in_its_create_answer_is_not_resting(h: Harness) -> None:
    """A buy that traded entirely on arrival leaves nothing of the account's to cross: a sell is not refused."""
    alice = h.client(risk=RiskLimits(max_net_position=10, max_state_age=3600))
    bob = h.client(token=OTHER_TOKEN)
    await bob.create_order(at("sell", 60, 3))
    answer = await alice.create_order(at("buy", 60, 3))
    assert float(answer["remaining_volume"]) == 0
    gets = h.attempts("GET", "/orders")
    await alice.create_order(at("sell", 55, 2))  # would have "crossed the account's own resting buy"
    assert h.attempts("GET", "/orders") == gets  # judged from the book, not refreshed into passing


@every_driver()
async def test_a_bad_risk_argument_is_named(h: Harness) -> None:
    with pytest.raises(ValueError, match="risk must be a RiskLimits, got dict"):
        h.client(risk={"max_order_volume": 5})


@every_driver()
async def test_positions_of_named_traders(h: Harness) -> None:
    alice = h.client()
    bob = h.client(token=OTHER_TOKEN)
    await alice.create_order(at("buy", 70, 2))
    await bob.create_order(at("sell", 70, 2))
    contract = Contract.from_order(at("buy", 70, 2))
    assert (await alice.positions(traders=["bob"])).net(contract) == -2
    assert (await bob.positions()).net(contract) == -2 and (await alice.positions()).net(contract) == 2
    with pytest.raises(ValueError, match="traders must be a list of trader names"):
        await alice.positions(traders="alice")  # type: ignore[arg-type]


# -- issue 27: late requests, a restarted bot, a kill switch that never waits on the journal ------------------


@every_driver(max_retries=0)
async def test_a_late_request_keeps_its_reservation_until_the_exchange_shows_it(h: Harness) -> None:
    """No accepted sequence crosses a limit: an order whose request may still land stays counted."""
    alice = h.client(risk=RiskLimits(max_net_position=2, max_state_age=0))
    await alice.get_status()
    h.faults.add(Fault("drop_before"), method="POST")
    with pytest.raises(OutcomeUnknownError):
        await alice.create_order(at("buy", 100, 2))
    # The next refresh lists the orders before the request lands: its window is open, it stays reserved.
    await refused(h, alice, at("buy", 100, 1), "max_net_position")
    # It lands (the account's same order, created within the window) and is counted once, from the listing.
    await h.client().create_order(at("buy", 100, 2))
    await refused(h, alice, at("buy", 99, 1), "max_net_position")
    await alice.create_order(at("sell", 150, 2))  # 2 bought - 2 sold: the sell side has room


@every_driver()
async def test_a_restarted_bot_counts_what_its_account_holds_before_its_first_order(h: Harness) -> None:
    first = h.client()
    bob = h.client(token=OTHER_TOKEN)
    await first.create_order(at("buy", 100, 6))
    await bob.create_order(at("sell", 100, 4))  # alice is long 4
    await first.cancel_all_orders()  # the rest of her buy deleted: nothing of hers is listed any more
    assert [order for order in h.orders() if order["trader"] == "alice"] == []

    blind = h.client(risk=RiskLimits(max_net_position=5))
    # Nothing of the account is listed: its name is unknown, so it refuses rather than trade blind.
    error = await refused(h, blind, at("buy", 100, 1), "max_net_position")
    assert "pass RiskLimits(traders=[...])" in str(error)
    named = h.client(risk=RiskLimits(max_net_position=5, traders=["alice"]))
    error = await refused(h, named, at("buy", 100, 2), "max_net_position")  # 4 filled + 2 > 5
    assert error.breaches[0].value == 6
    await named.create_order(at("buy", 100, 1))  # 4 + 1 = 5: at the limit


@every_driver()
async def test_a_restarted_bot_learns_its_trader_names_from_its_journal(h: Harness, tmp_path: Path) -> None:
    """Nothing of the account is listed and no ``traders=``: the journal of the last run names the account."""
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    first = h.client(journal=url)
    bob = h.client(token=OTHER_TOKEN)
    await first.create_order(at("buy", 100, 6))  # the create answer names alice; the journal keeps the name
    await bob.create_order(at("sell", 100, 4))  # alice is long 4
    await first.cancel_all_orders()  # nothing of hers is listed any more
    await first.aclose()
    assert [order for order in h.orders() if order["trader"] == "alice"] == []

    restarted = h.client(journal=url, risk=RiskLimits(max_net_position=5))
    error = await refused(h, restarted, at("buy", 100, 2), "max_net_position")  # 4 filled + 2 > 5
    assert error.breaches[0].value == 6
    await restarted.create_order(at("buy", 100, 1))  # 4 + 1 = 5: at the limit


@every_driver(max_retries=0)
async def test_the_kill_switch_never_waits_on_the_journal(
    h: Harness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A write-locked journal: each delete's record gets its short budget, the deletes go, a warning is logged."""
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    alice = h.client(journal=url, timeout=5)
    await alice.create_order({"orders": [at("buy", 50 + n, 1) for n in range(3)]})
    blocker = sqlite3.connect(str(tmp_path / "bot.db"), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the file (or the disk is full)
    try:
        with caplog.at_level(logging.WARNING, logger="gameproto.journal"):
            result = await alice.cancel_all_orders()
        assert len(result.cancelled) == 3 and result.ok, result
        assert resting(h) == []
        assert any("the deletes go ahead" in record.getMessage() for record in caplog.records)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
