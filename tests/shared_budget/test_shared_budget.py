"""The shared request budget against a real redis-server: the window rule across threads and
processes, the shared pause and limit, the account's key, and Redis going away and coming back."""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import threading
import time
from typing import List

import pytest

pytest.importorskip("redis", reason="needs redis-py (the 'redis' extra)")

from gameproto_redis import Grant, SharedBudget, default_key
from tests.support.redis_server import RedisServer, hammer, most_in_any_window

WINDOW = 2.0  # seconds: short, so that a test sees several windows go by


class ManualClock:
    """The client's own clock (its local window, its retry timer), moved by the test."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def budget(server: RedisServer, key: str = "desk", **options: object) -> SharedBudget:
    options.setdefault("window", WINDOW)
    return SharedBudget(server.url, key, **options)  # type: ignore[arg-type]


# -- the window rule -------------------------------------------------------------


def test_grants_up_to_the_limit_then_names_a_wait_and_takes_nothing(redis_server: RedisServer) -> None:
    with budget(redis_server, limit=5) as client:
        assert [client.reserve() for _ in range(5)] == [0.0] * 5
        waits = [client.reserve() for _ in range(3)]
    assert all(0.0 < wait <= WINDOW for wait in waits)
    assert redis_server.client().zcard("{desk}:grants") == 5  # the refused asks took nothing


def test_asking_again_after_the_named_wait_gets_a_slot(redis_server: RedisServer) -> None:
    with budget(redis_server, limit=3, window=0.5) as client:
        for _ in range(3):
            assert client.reserve() == 0.0
        waits = 0
        for _ in range(6):  # each wait named is long enough: the slot is there when asked again
            wait = client.reserve()
            if wait > 0.0:
                waits += 1
                time.sleep(wait)
                assert client.reserve() == 0.0
        assert waits >= 1


def test_threads_of_one_process_never_exceed_the_limit_in_any_window(redis_server: RedisServer) -> None:
    grants = hammer(redis_server.url, "threads", limit=50, window=WINDOW, threads=6, per_thread=20)
    assert len(grants) == 120
    assert all(shared for _, shared in grants)
    assert most_in_any_window([at for at, _ in grants], WINDOW) == 50


def test_processes_never_exceed_the_limit_in_any_window(redis_server: RedisServer) -> None:
    # Three processes, two threads each, one key: the grant times are the Redis server's.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(3, mp_context=context) as pool:
        runs = [pool.submit(hammer, redis_server.url, "processes", 50, WINDOW, 2, 20) for _ in range(3)]
        grants = [grant for run in runs for grant in run.result(timeout=120)]
    assert len(grants) == 120
    assert all(shared for _, shared in grants)
    assert most_in_any_window([at for at, _ in grants], WINDOW) == 50


def test_grants_in_the_same_instant_all_count(redis_server: RedisServer) -> None:
    with budget(redis_server, "burst", limit=1000) as client:
        workers = [threading.Thread(target=lambda: [client.reserve() for _ in range(50)]) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert redis_server.client().zcard("{burst}:grants") == 200


def test_every_key_expires_when_idle(redis_server: RedisServer) -> None:
    with budget(redis_server, "idle", idle_expiry=60.0) as client:
        client.learn_limit(10)
        client.reserve()
        client.pause(1.5)
    plain = redis_server.client()
    assert 0 < plain.pttl("{idle}:grants") <= WINDOW * 1000
    assert 0 < plain.pttl("{idle}:limit") <= 60_000
    assert 0 < plain.pttl("{idle}:pause") <= 1_501


# -- what every client of a key shares -------------------------------------------------


def test_a_pause_holds_every_client_of_the_key(redis_server: RedisServer) -> None:
    with budget(redis_server) as first, budget(redis_server) as second, budget(redis_server, limit=100) as fixed:
        assert second.reserve() == 0.0
        first.pause(1.0)
        for client in (first, second, fixed):
            wait = client.reserve()
            assert 0.0 < wait <= 1.0
        with budget(redis_server, "another desk") as elsewhere:
            assert elsewhere.reserve() == 0.0  # a pause is the key's, not the server's
        time.sleep(second.reserve())
        assert second.reserve() == 0.0


def test_a_longer_pause_is_not_shortened(redis_server: RedisServer) -> None:
    with budget(redis_server) as client:
        client.pause(1.5)
        client.pause(0.1)
        assert 1.0 < client.reserve() <= 1.5


def test_a_learnt_limit_is_shared_by_the_auto_clients_of_the_key(redis_server: RedisServer) -> None:
    with budget(redis_server) as teacher, budget(redis_server) as learner, budget(redis_server, limit=6) as fixed:
        assert learner.limit == 1000
        teacher.learn_limit(3)
        assert [learner.reserve() for _ in range(3)] == [0.0] * 3
        assert learner.limit == 3  # seen on its first ask
        assert learner.reserve() > 0.0
        # A fixed limit is its own: it counts the same grants against 6, and teaches nothing.
        fixed.learn_limit(100)
        assert [fixed.reserve() for _ in range(3)] == [0.0] * 3
        assert fixed.reserve() > 0.0
        assert learner.reserve() > 0.0
        assert redis_server.client().get("{desk}:limit") == b"3"


# -- the account's key ----------------------------------------------------------------


def test_the_default_key_is_the_accounts_and_never_holds_the_token() -> None:
    token = "personal-token-alice-0123456789"
    key = default_key("https://game.example.com", token)
    assert token not in key and "alice" not in key
    assert key.startswith("gameproto:budget:https://game.example.com:")
    assert default_key("HTTPS://Game.Example.com/", token) == key  # one exchange, however it is written
    assert default_key("https://game.example.com", "personal-token-bob-9876543210") != key
    assert default_key("https://other.example.com", token) != key
    assert "s3cret" not in default_key("https://user:s3cret@game.example.com", token)
    assert default_key("https://game.example.com", token, budget_key="desk-7") == "desk-7"


@pytest.mark.parametrize(
    ("base_url", "token", "budget_key", "named"),
    [("", "t", None, "base_url"), ("https://x", "", None, "token"), ("https://x", "t", "  ", "budget_key")],
)
def test_the_default_key_refuses_what_cannot_name_an_account(
    base_url: str, token: str, budget_key: object, named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        default_key(base_url, token, budget_key=budget_key)  # type: ignore[arg-type]


def test_clients_of_one_account_share_a_budget_without_configuration(redis_server: RedisServer) -> None:
    token = "personal-token-alice-0123456789"
    key = default_key("http://127.0.0.1:8000", token)
    with SharedBudget(redis_server.url, key, limit=2) as one, SharedBudget(redis_server.url, key, limit=2) as two:
        assert one.reserve() == 0.0
        assert two.reserve() == 0.0
        assert one.reserve() > 0.0
    assert all(token not in name.decode() for name in redis_server.client().keys("*"))


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": "fast"}, "limit"),
        ({"limit": True}, "limit"),
        ({"window": 0}, "window"),
        ({"read_timeout": -1}, "read_timeout"),
        ({"key": ""}, "key"),
    ],
)
def test_bad_arguments_are_named(arguments: dict, named: str) -> None:  # type: ignore[type-arg]
    options = {"url": "redis://127.0.0.1:1/0", "key": "desk", **arguments}
    with pytest.raises(ValueError, match=named):
        SharedBudget(**options)


def test_a_bad_url_is_named_without_its_password() -> None:
    with pytest.raises(ValueError, match="Redis URL") as refused:
        SharedBudget("http://:s3cret@127.0.0.1:1/0", "desk")
    assert "s3cret" not in str(refused.value)
    with SharedBudget("redis://:s3cret@127.0.0.1:1/0", "desk") as client:
        assert "s3cret" not in repr(client)
        with pytest.raises(ValueError, match="learnt limit"):
            client.learn_limit(0)
        with pytest.raises(ValueError, match="pause"):
            client.pause(-1.0)


# -- Redis going away and coming back ----------------------------------------------------


def warnings_of(caplog: pytest.LogCaptureFixture) -> List[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "gameproto" and record.levelno >= logging.WARNING]


def test_redis_stopped_paces_locally_with_one_warning_then_shares_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = RedisServer(password="s3cret-redis-password")
    server.start()
    clock = ManualClock()
    grants: List[Grant] = []
    caplog.set_level(logging.INFO, logger="gameproto")
    try:
        client = SharedBudget(
            server.url, "desk", limit=5, window=WINDOW, retry_interval=3.0, on_grant=grants.append, clock=clock
        )
        assert [client.reserve() for _ in range(2)] == [0.0, 0.0]
        assert client.shared

        server.stop()
        # The local window already holds this process's two shared grants: three more, then a wait.
        assert [client.reserve() for _ in range(3)] == [0.0] * 3
        assert not client.shared
        wait = client.reserve()
        assert wait == pytest.approx(WINDOW)
        clock.advance(wait)
        assert client.reserve() == 0.0  # pacing goes on, window after window
        clock.advance(3.0)  # Redis asked again (still down): no second warning
        assert client.reserve() == 0.0
        assert [grant.shared for grant in grants] == [True, True, False, False, False, False, False]
        assert len(warnings_of(caplog)) == 1
        warning = warnings_of(caplog)[0].getMessage()
        assert f"redis://:***@127.0.0.1:{server.port}/0" in warning
        assert "s3cret" not in caplog.text

        server.start()  # a fresh server: the window and the script are gone
        clock.advance(1.0)
        assert client.reserve() == 0.0
        assert not client.shared  # not asked again before retry_interval
        clock.advance(3.0)
        assert client.reserve() == 0.0
        assert client.shared
        assert grants[-1].shared
        assert server.client().zcard("{desk}:grants") == 1
        assert len(warnings_of(caplog)) == 1
        assert "answers again" in caplog.text
        client.close()
    finally:
        server.stop()


def test_back_on_a_redis_that_restarted_empty_the_slots_taken_alone_still_count(redis_server: RedisServer) -> None:
    clock = ManualClock()
    alone = SharedBudget(redis_server.url, "desk", limit=5, window=WINDOW, retry_interval=0.5, clock=clock)
    assert alone.reserve() == 0.0
    redis_server.stop()
    assert [alone.reserve() for _ in range(3)] == [0.0] * 3
    redis_server.start()  # empty
    clock.advance(0.6)
    assert alone.reserve() == 0.0
    assert alone.shared
    # The three slots taken alone are in the shared window again (the first was lost with Redis).
    assert redis_server.client().zcard("{desk}:grants") == 4
    with budget(redis_server, limit=5) as other:
        assert other.reserve() == 0.0  # the one slot left of five
        assert other.reserve() > 0.0
    alone.close()


def test_while_redis_is_down_each_client_paces_to_its_share_of_the_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = RedisServer()
    server.start()
    clock = ManualClock()
    caplog.set_level(logging.WARNING, logger="gameproto")
    try:
        first = SharedBudget(server.url, "desk", limit=6, window=WINDOW, clock=clock)
        second = SharedBudget(server.url, "desk", limit=6, window=WINDOW, clock=clock)
        assert first.reserve() == 0.0
        assert second.reserve() == 0.0  # Redis has seen two clients of the key ask
        assert first.reserve() == 0.0
        server.stop()
        # Each may take 6 // 2 = 3 a window, counting what it took from the shared window.
        assert [first.reserve() for _ in range(2)] == [0.0, pytest.approx(WINDOW)]
        assert [second.reserve() for _ in range(3)] == [0.0, 0.0, pytest.approx(WINDOW)]
        assert len(warnings_of(caplog)) == 2  # one each
        first.close()
        second.close()
    finally:
        server.stop()


def test_a_frozen_redis_times_out_into_the_local_window(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    client = budget(redis_server, limit=3, read_timeout=0.3, retry_interval=3.0, clock=clock)
    caplog.set_level(logging.WARNING, logger="gameproto")
    assert client.reserve() == 0.0
    redis_server.freeze()
    try:
        assert [client.reserve() for _ in range(3)][:2] == [0.0, 0.0]
        assert client.reserve() > 0.0
        assert not client.shared
        assert len(warnings_of(caplog)) == 1
        assert "Timeout" in warnings_of(caplog)[0].getMessage()
    finally:
        redis_server.thaw()
    clock.advance(3.0)
    client.reserve()
    assert client.shared
    client.close()


# -- an optional extra ------------------------------------------------------------------


def test_the_core_never_imports_redis_and_the_clients_run_without_it() -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "import gameproto\n"
        "assert 'redis' not in sys.modules and 'gameproto_redis' not in sys.modules, 'the core imported redis'\n"
        "sys.modules['redis'] = None  # as on a machine without the extra\n"
        "import gameproto_sync, gameproto_async\n"
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr


# -- what no Redis, slow or poisoned, may do ---------------------------------------------


def test_an_absurd_pause_is_five_minutes_in_redis_too(redis_server: RedisServer) -> None:
    with budget(redis_server, "absurd") as client, budget(redis_server, "absurd") as other:
        client.pause(999_999_999.0)
        wait = other.reserve()
    assert 299.0 < wait <= 300.0
    assert 0 < redis_server.client().pttl("{absurd}:pause") <= 300_001


def test_a_reserve_ends_by_its_time_left_whatever_answers(caplog: pytest.LogCaptureFixture) -> None:
    from tests.support.hostile_redis import RedisImpostor, dribble

    caplog.set_level(logging.WARNING, logger="gameproto")
    with RedisImpostor(dribble, lifetime=10.0) as impostor:
        with SharedBudget(impostor.url, "desk", limit=2, read_timeout=5.0, connect_timeout=5.0) as client:
            assert [client.reserve(time_left=0.5) for _ in range(3)][:2] == [0.0, 0.0]
            assert not client.shared
    assert not impostor.lifetime_reached
    assert len(warnings_of(caplog)) == 1
