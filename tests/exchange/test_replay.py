"""A recording replayed: the book as recorded, fills that consume what they take, the queue, closures, DST, ids.

Each behaviour runs on the blocking and the async client of a ``Backtest``
(in memory, on its virtual clock), and the determinism checks also over
HTTP, on a sandbox replaying on a manual clock.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List

import anyio
import pytest
import requests

import gameproto_async
import gameproto_sync
from gameproto.simulator.replay import RECORDED, LevelChange, Tape, book_changes, level_volumes
from gameproto_exchange import Backtest, BacktestFinished, DrivenClient, RecordingError, ServerThread, read_recording
from gameproto_exchange._recording import info
from gameproto_exchange._replay import replay_sandbox
from tests.support.replay import CONTRACT, DAY, T0, levels_of, make_recording, order

pytestmark = pytest.mark.anyio


class Client:
    """One face for both clients: every method awaitable, whichever client answers."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        member = getattr(self.api, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = member(*args, **kwargs)
            if isinstance(self.api, gameproto_async.GameAPI):
                result = await result
            return result

        return call


@pytest.fixture(params=["sync", "async"])
def kind(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "day.sqlite"
    make_recording(path)
    return path


def client_of(backtest: Backtest, kind: str) -> Client:
    return Client(backtest.client() if kind == "sync" else backtest.async_client())


async def close(client: Client) -> None:
    if isinstance(client.api, gameproto_sync.GameAPI):
        client.api.close()
    else:
        await client.api.aclose()


async def wait_until(client: Client, backtest: Backtest, moment: float) -> None:
    """Wait through the client until the virtual clock shows ``moment``."""
    await client.sleep(moment - backtest.now)
    assert backtest.now == moment


def level(rows: List[Dict[str, Any]], side: str, price: Any) -> Decimal:
    return levels_of(rows).get((CONTRACT, side, Decimal(str(price))), Decimal(0))


async def test_the_replayed_book_answers_market_as_recorded_at_each_moment(
    tmp_path: Path, kind: str, anyio_backend: str
) -> None:
    path = tmp_path / "day.sqlite"
    recorded = make_recording(path)
    backtest = Backtest(str(path))
    api = client_of(backtest, kind)
    try:
        for offset, expected in zip((0, 60, 120, 180, 7140), recorded):
            await wait_until(api, backtest, T0 + offset)
            assert levels_of(await api.get_market_data()) == expected
            assert (await api.get_status())["replay"]["clock"] == "manual"
    finally:
        await close(api)


async def test_what_a_bot_lifts_stays_taken(recording: Path, kind: str, anyio_backend: str) -> None:
    backtest = Backtest(str(recording))
    api = client_of(backtest, kind)
    try:
        first = await api.create_order(order("buy", 50, 2))
        assert first["executed_volume"] == 2  # lifted from the recorded offer of 5
        assert level(await api.get_market_data(), "sell", 50) == 3
        second = await api.create_order(order("buy", 50, 3))
        assert second["executed_volume"] == 3  # the 3 the first order left, no more
        assert level(await api.get_market_data(), "sell", 50) == 0
        third = await api.create_order(order("buy", 50, 1, start="12:15"))  # another contract: nothing there
        assert third["executed_volume"] == 0
        # The recording adds 2 at 50 (5 -> 7): applied to what the bot left (0), not to the recorded volume.
        await wait_until(api, backtest, T0 + 60)
        assert level(await api.get_market_data(), "sell", 50) == 2
        # Then the recording takes 3 (7 -> 4): what is left cannot go below zero.
        await wait_until(api, backtest, T0 + 120)
        assert level(await api.get_market_data(), "sell", 50) == 0
        assert level(await api.get_market_data(), "sell", 51) == 3  # a level the bot did not touch: as recorded
    finally:
        await close(api)


async def test_a_resting_order_fills_from_recorded_trades_after_its_queue(
    recording: Path, kind: str, anyio_backend: str
) -> None:
    backtest = Backtest(str(recording))
    api = client_of(backtest, kind)
    try:
        placed = await api.create_order(order("buy", 45, 2))  # behind the 4 recorded at 45
        number = int(str(placed["order_id"]).split("_")[-1])
        # At 10:02 a recorded seller hits the bid at 45 for 2: all of it ahead of the bot.
        await wait_until(api, backtest, T0 + 120)
        listed = await api.find_order_by_id(number)
        assert listed is not None and listed["executed_volume"] == 0
        # At 10:03 another takes 3 at 45: 2 more were ahead, so 1 fills the bot, at its price.
        await wait_until(api, backtest, T0 + 180)
        listed = await api.find_order_by_id(number)
        assert listed is not None and listed["executed_volume"] == 1 and listed["remaining_volume"] == 1
        mine = [trade for trade in await api.get_trades() if trade["buyer"] == backtest.trader]
        assert [(trade["price"], trade["volume"], trade["seller"]) for trade in mine] == [(45, 1, RECORDED)]
        assert mine[0]["timestamp"] == dt.datetime.fromtimestamp(T0 + 180, dt.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z"
        )
    finally:
        await close(api)


async def test_an_order_better_than_the_book_has_no_queue(recording: Path, kind: str, anyio_backend: str) -> None:
    backtest = Backtest(str(recording))
    api = client_of(backtest, kind)
    try:
        await api.create_order(order("buy", 46, 10))  # above the recorded bid: nothing ahead
        await wait_until(api, backtest, T0 + 180)
        mine = [trade for trade in await api.get_trades() if trade["buyer"] == backtest.trader]
        # Three recorded sells at 45 (2, then 2 and 1): each fills the bot, with no more than its volume.
        assert [(trade["price"], trade["volume"]) for trade in mine] == [(46, 2), (46, 2), (46, 1)]
    finally:
        await close(api)


async def test_recorded_trades_are_listed_with_their_ids(recording: Path, kind: str, anyio_backend: str) -> None:
    backtest = Backtest(str(recording))
    api = client_of(backtest, kind)
    try:
        assert await api.get_trades() == []
        await wait_until(api, backtest, T0 + 180)
        trades = await api.get_trades()
        assert [(trade["trade_id"], trade["direction"], trade["price"], trade["volume"]) for trade in trades] == [
            ("trd_1", "buy", 50, 3),
            ("trd_2", "sell", 45, 2),
            ("trd_3", "sell", 45, 2),
            ("trd_4", "sell", 45, 1),
        ]
        assert {trade["buyer"] for trade in trades} | {trade["seller"] for trade in trades} == {"maker", "taker"}
        ltp = await api.get_latest_available_ltp()
        assert [(entry["contract"], entry["price"]) for entry in ltp] == [(CONTRACT, 45)]
    finally:
        await close(api)


async def test_the_replays_own_ids_never_collide_with_the_recordings(
    recording: Path, kind: str, anyio_backend: str
) -> None:
    tape = read_recording(str(recording))
    backtest = Backtest(tape)
    api = client_of(backtest, kind)
    try:
        placed = await api.create_order(order("buy", 51, 4))  # lifts 4 of the 5 offered at 50
        await wait_until(api, backtest, T0 + 180)
        trades = await api.get_trades()
        recorded = {trade["trade_id"] for trade in trades if backtest.trader not in (trade["buyer"], trade["seller"])}
        own = [trade for trade in trades if backtest.trader in (trade["buyer"], trade["seller"])]
        assert own and not recorded & {trade["trade_id"] for trade in own}
        assert all(int(trade["trade_id"].split("_")[1]) > tape.trade_floor for trade in own)
        assert int(str(placed["order_id"]).split("_")[1]) > tape.order_floor
        theirs = [trade for trade in trades if trade["trade_id"] in recorded]
        assert max(trade[name] for trade in theirs for name in ("buy_order_id", "sell_order_id")) < tape.order_floor
        assert min(trade[name] for trade in own for name in ("buy_order_id", "sell_order_id")) > tape.order_floor
    finally:
        await close(api)


async def test_a_contract_closes_at_its_gate_closure_on_the_replayed_clock(
    recording: Path, kind: str, anyio_backend: str
) -> None:
    backtest = Backtest(str(recording))
    api = client_of(backtest, kind)
    try:
        placed = await api.create_order(order("sell", 60, 1))
        number = int(str(placed["order_id"]).split("_")[1])
        gate = dt.datetime(2030, 1, 15, 12, 0, tzinfo=dt.timezone.utc).timestamp()
        await wait_until(api, backtest, gate - 1)
        assert any(row["contract"] == CONTRACT for row in await api.get_market_data())
        await wait_until(api, backtest, gate)
        assert [row for row in await api.get_market_data() if row["contract"] == CONTRACT] == []
        listed = await api.find_order_by_id(number)
        assert listed is not None and listed["state"] == "Expired"
        with pytest.raises(gameproto_sync.GameAPIError):
            await api.create_order(order("buy", 50, 1))  # the window has started: refused by the order rules
    finally:
        await close(api)


async def test_a_wait_past_the_end_finishes_the_backtest(recording: Path, kind: str, anyio_backend: str) -> None:
    backtest = Backtest(str(recording))
    api = client_of(backtest, kind)
    try:
        await api.sleep(10 * 3600)  # to the end, no further
        assert backtest.now == backtest.tape.end and backtest.finished
        with pytest.raises(BacktestFinished):
            await api.sleep(1)
        with pytest.raises(gameproto_sync.InvalidArgumentError):
            await api.sleep(-1)
    finally:
        await close(api)


async def test_an_async_bots_tasks_wait_on_one_virtual_clock(recording: Path, anyio_backend: str) -> None:
    # Two watchers of one bot, every 60 s and every 100 s: each wakes on its own schedule, not after the other.
    backtest = Backtest(str(recording))
    woke: List[Any] = []
    async with backtest.async_client() as api:

        async def every(name: str, seconds: float) -> None:
            for _ in range(3):
                await api.sleep(seconds)
                woke.append((name, backtest.now - T0))

        async with anyio.create_task_group() as group:
            group.start_soon(every, "a", 60)
            group.start_soon(every, "b", 100)
    assert woke == [
        ("a", 60),
        ("b", 100),
        ("a", 120),
        ("a", 180),
        ("b", 200),
        ("b", 300),
    ]


async def test_tasks_waking_at_one_moment_all_wake_then_and_finish_their_calls(
    recording: Path, anyio_backend: str
) -> None:
    # Two tasks waking at the same virtual moments, each calling between its waits (the token lock is a
    # checkpoint inside the call): every wake is at its moment, every call answers (the clock never jumps
    # under a call's deadline). On asyncio the order of the two at one moment is the same every run; on trio
    # it is not guaranteed (its scheduler shuffles the tasks it wakes together), as docs/backtesting.md says.
    orders = set()
    for _ in range(6):
        woke = await two_tasks_at_one_moment(Backtest(str(recording)))
        for name in ("a", "b"):
            assert [entry[1] for entry in woke if entry[0] == name and len(entry) == 2] == [60, 120, 180]
            answered = [entry[2] for entry in woke if entry[0] == name and len(entry) == 3]
            assert answered == [_iso(T0 + 60), _iso(T0 + 120), _iso(T0 + 180)]
        orders.add(tuple(woke))
    if anyio_backend == "asyncio":
        assert len(orders) == 1


async def two_tasks_at_one_moment(backtest: Backtest) -> List[Any]:
    """Tasks a and b each wait 60 s and then call, three times: when each woke, and what each call answered."""
    woke: List[Any] = []
    async with backtest.async_client() as api:

        async def every(name: str) -> None:
            for _ in range(3):
                await api.sleep(60)
                woke.append((name, backtest.now - T0))
                status = await api.get_status()
                woke.append((name, "answered", status["timestamp"]))

        async with anyio.create_task_group() as group:
            group.start_soon(every, "a")
            group.start_soon(every, "b")
    return woke


def _iso(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_a_blocking_bots_threads_add_their_waits(recording: Path) -> None:
    # Each wait of a blocking client moves the virtual clock at once, whichever thread waits: two threads that
    # each wait 60 s have moved it 120 s (as docs/backtesting.md says: one thread, or the async client).
    backtest = Backtest(str(recording))
    clients = [backtest.client(), backtest.client()]
    threads = [threading.Thread(target=api.sleep, args=(60,)) for api in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for api in clients:
        api.close()
    assert backtest.now == T0 + 120


@pytest.mark.parametrize(("day", "quarters"), [("2030-03-31", 92), ("2030-10-27", 100), ("2030-01-15", 96)])
async def test_a_dst_day_replays_with_its_quarter_hours(
    tmp_path: Path, kind: str, anyio_backend: str, day: str, quarters: int
) -> None:
    start = dt.datetime.fromisoformat(day + "T00:30:00+00:00").timestamp()
    # 00:45 UTC: on the short day the clocks have not changed yet, and on the long one they have not either;
    # 23:30 UTC of the day before is the same local day on both sides of the change.
    polls = [(0, [("maker", order("sell", 50, 5, day=day, start="01:30"))]), (3600, [])]
    path = tmp_path / "dst.sqlite"
    make_recording(path, polls, start=start)
    backtest = Backtest(str(path))
    api = client_of(backtest, kind)
    try:
        await api.create_order(order("buy", 50, 2, day=day, start="01:30"))
    finally:
        await close(api)
    report = backtest.report()
    assert [(entry["day"], entry["quarter_hours"]) for entry in report["days"]] == [(day, quarters)]
    assert report["contracts"][0]["net"] == 2 and report["contracts"][0]["cash"] == -100
    assert report["fills"][0]["mid"] is None and report["fills"][0]["slippage"] is None  # no bid: no mid yet


def queue_bot(api: gameproto_sync.GameAPI) -> None:
    """A bot for the determinism checks: an order a minute, bid under the offer, until the recording ends."""
    minute = 0
    while True:
        best = api.get_market_best_offers(top_n=1).get(CONTRACT)
        if best is not None and best.get("sell"):
            price = Decimal(str(best["sell"][0]["price"])) - Decimal(minute % 7)
            api.create_order(order("buy", price, 1 + minute % 3))
        minute += 1
        api.sleep(60)


async def test_three_runs_of_one_bot_give_the_same_fill_hash(recording: Path, kind: str, anyio_backend: str) -> None:
    hashes = []
    logs = []
    for _ in range(3):
        backtest = Backtest(str(recording), seed=7)
        if kind == "sync":
            report = backtest.run(queue_bot)
        else:

            async def bot(api: gameproto_async.GameAPI) -> None:
                minute = 0
                while True:
                    best = (await api.get_market_best_offers(top_n=1)).get(CONTRACT)
                    if best is not None and best.get("sell"):
                        price = Decimal(str(best["sell"][0]["price"])) - Decimal(minute % 7)
                        await api.create_order(order("buy", price, 1 + minute % 3))
                    minute += 1
                    await api.sleep(60)

            report = await backtest.run_async(bot)
        hashes.append(report["fill_hash"])
        logs.append(backtest.fill_log())
    assert len(set(hashes)) == 1 and len(set(logs)) == 1
    assert logs[0].count(b"\n") >= 3  # it traded: the hash is of something


def test_the_same_bot_over_http_on_a_manual_clock_gives_the_same_hash(recording: Path) -> None:
    in_process = Backtest(str(recording), seed=7)
    expected = in_process.run(queue_bot)["fill_hash"]
    sandbox = replay_sandbox(str(recording), {"bot-token": in_process.trader}, admin_token="admin")
    with ServerThread(sandbox) as running:
        # The bot's waits move the sandbox's manual clock, as a backtest's client moves its own.
        with DrivenClient(recording, "bot-token", running.base_url, admin_token="admin") as api:
            try:
                queue_bot(api)
            except BacktestFinished:
                pass
            assert sandbox.now() == api.end == in_process.tape.end
            trades = api.get_trades()
    from gameproto.simulator.replay_report import fill_hash, fill_log

    assert fill_hash(fill_log(trades, [in_process.trader])) == expected


def test_a_replay_over_http_answers_status_with_its_speed(recording: Path) -> None:
    sandbox = replay_sandbox(str(recording), ["demo-token"], speed=100)
    with ServerThread(sandbox) as running, gameproto_sync.GameAPI("demo-token", running.base_url) as api:
        status = api.get_status()
        assert status["replay"]["speed"] == 100 and status["replay"]["clock"] == "replayed"
        assert levels_of(api.get_market_data())  # the recorded book stands
        # The client follows the replayed clock: its waits are a hundredth as long, its "now" is the replay's.
        assert api._session.host_seconds(60) == 0.6
        now = api._session.exchange_now()
        assert now is not None and T0 <= now.timestamp() < T0 + 86400


def test_book_changes_are_the_difference_of_two_polls() -> None:
    rows = [
        {"contract": CONTRACT, "direction": "sell", "price": 50, "volume": 5, "duration": "15m", "timestamp": "x"},
        {"contract": CONTRACT, "direction": "buy", "price": 45, "volume": 4, "duration": "15m"},
        {"contract": CONTRACT, "price": 47.5, "bid": 45, "ask": 50},  # a summary row: not a level
    ]
    first = level_volumes(rows)
    second = level_volumes([dict(rows[0], volume=7), rows[2]])
    assert book_changes({}, first, 10.0) == [
        LevelChange(10.0, CONTRACT, 15, "buy", Decimal(45), Decimal(4)),
        LevelChange(10.0, CONTRACT, 15, "sell", Decimal(50), Decimal(5)),
    ]
    assert book_changes(first, second, 11.0) == [
        LevelChange(11.0, CONTRACT, 15, "buy", Decimal(45), Decimal(0)),
        LevelChange(11.0, CONTRACT, 15, "sell", Decimal(50), Decimal(7)),
    ]
    assert book_changes(second, second, 12.0) == []


def test_a_file_that_is_not_a_recording_is_refused_by_name(tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text("hello")
    with pytest.raises(RecordingError, match="not a gameproto recording"):
        read_recording(str(other))
    with pytest.raises(RecordingError, match="no recording at"):
        read_recording(str(tmp_path / "missing.sqlite"))
    with pytest.raises(ValueError, match="ends"):
        Tape([], [], start=2.0, end=1.0)


def test_a_recording_is_named_by_a_path_object_whatever_its_name_holds(tmp_path: Path) -> None:
    # A Path (as tmp_path gives) and a name SQLite's URIs would misread ("?", "#", "%") name the same file.
    path = tmp_path / "day 1?#%.sqlite"
    make_recording(path)
    assert read_recording(path).start == T0
    assert info(path).polls == 6
    with Backtest(path).client() as api:
        assert level(api.get_market_data(), "sell", 50) == 5
    with ServerThread(replay_sandbox(path, ["demo-token"])) as running:
        with gameproto_sync.GameAPI("demo-token", running.base_url) as api:
            assert level(api.get_market_data(), "sell", 50) == 5
    with pytest.raises(TypeError, match="a path or a Tape"):
        Backtest(42)  # type: ignore[arg-type]


def test_a_tape_replays_without_a_file() -> None:
    tape = Tape([LevelChange(T0, CONTRACT, 15, "sell", Decimal(50), Decimal(5))], [], start=T0, end=T0 + 60)
    backtest = Backtest(tape)
    with backtest.client() as api:
        assert level(api.get_market_data(), "sell", 50) == 5
        assert DAY in CONTRACT


def test_the_web_view_shows_the_replay_as_its_clock_moves(recording: Path) -> None:
    sandbox = replay_sandbox(str(recording), ["demo-token"], admin_token="admin")
    with ServerThread(sandbox) as running, requests.Session() as http:

        def offered_at_50() -> object:
            view = http.get(running.base_url + "/_view", timeout=30).json()
            (shown,) = [entry for entry in view["contracts"] if entry["contract"] == CONTRACT]
            return next(ask["volume"] for ask in shown["asks"] if ask["price"] == 50)

        assert offered_at_50() == 5
        moved = http.post(
            running.base_url + "/_sandbox/clock/advance",
            json={"by": 60},
            headers={"Authorization": "Bearer admin"},
            timeout=30,
        )
        assert moved.status_code == 200
        deadline = time.monotonic() + 30  # the page's view is rendered at most four times a second
        while offered_at_50() != 7 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert offered_at_50() == 7
