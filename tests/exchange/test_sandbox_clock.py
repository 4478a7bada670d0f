"""The sandbox's test clock keeps its promises: an offset applied once, never back, a bounded step,
rate-limit windows that end in real time, and tokens that expire on the exchange's own clock.

Each test talks to a server over a loopback socket (``game serve`` in a child
process, or a :class:`ServerThread`); none waits for wall-clock time.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from gameproto.simulator.exchange import Exchange
from gameproto_exchange import ManualClock, Sandbox, ServerThread
from tests.support import hostile_clients as hostile
from tests.support.harness import GameServe
from tests.support.sandbox import ADMIN, admin_call, plain_call

DEMO = "demo-token"


def _access(url: str) -> str:
    status, _, data = plain_call(url, "POST", "/api/v1/auth/token", {"token": DEMO})
    assert status == 200, data
    return str(data["access_token"])


def _order(day: str, start: str = "14:00", end: str = "14:15") -> Dict[str, Any]:
    return {
        "side": "buy",
        "price": 50.0,
        "volume": 1.0,
        "date": day,
        "start_time": start,
        "end_time": end,
        "duration": "15m",
        "tz_offset_hours": 0,
    }


def test_an_offset_on_a_manual_clock_is_applied_once_across_restarts(tmp_path: Path) -> None:
    flags = ["--clock", "manual", "--clock-offset", "3600", "--admin-token", ADMIN, "--state", str(tmp_path / "s.db")]
    with GameServe(*flags) as served:
        url = served.base_url
        assert admin_call(url, "POST", "/_sandbox/clock/set", {"to": "2031-06-01T13:00Z"})["now"].startswith(
            "2031-06-01T13:00:00"
        )
        assert admin_call(url, "GET", "/_sandbox/clock")["now"].startswith("2031-06-01T13:00:00")
        access = _access(url)
        status, _, created = plain_call(url, "POST", "/api/v1/orders", _order("2031-06-01"), access)
        assert status == 200, created
    with GameServe(*flags) as again:  # a plain restart: the clock where it was, the order still active
        url = again.base_url
        assert admin_call(url, "GET", "/_sandbox/clock")["now"].startswith("2031-06-01T13:00:00")
        status, _, listed = plain_call(url, "GET", "/api/v1/orders", token=_access(url))
        assert status == 200
        number = int(str(created["order_id"]).replace("ord_", ""))
        assert [order["status"] for order in listed if order["order_id"] == number] == ["active"]


def test_a_clock_offset_on_a_manual_clock_in_process_is_where_it_starts() -> None:
    clock = ManualClock(2_000_000_000.0)
    sandbox = Sandbox(Exchange(clock=clock, clock_offset=3600), clock=clock, admin_token=ADMIN)
    assert sandbox.now() == 2_000_003_600.0
    with ServerThread(sandbox) as running:
        moved = admin_call(running.base_url, "POST", "/_sandbox/clock/set", {"to": "2033-05-18T05:00Z"})
    assert moved["now"] == "2033-05-18T05:00:00.000Z" and sandbox.now() == clock()


def test_every_bad_clock_move_is_a_422_in_the_endpoints_words() -> None:
    clock = ManualClock(2_000_000_000.0)
    sandbox = Sandbox(Exchange(clock=clock), clock=clock, admin_token=ADMIN)
    with ServerThread(sandbox) as running:
        url = running.base_url
        outcome = hostile.sandbox_bad_clock_values("127.0.0.1", running.port, ADMIN)
        assert set(outcome.statuses) == {422}, outcome
        answers: Dict[Any, str] = {}
        for by in (10**400, -(10**400), "-5m", -300, "8d", 7 * 86400 + 1, 1e400):
            status, _, data = plain_call(url, "POST", "/_sandbox/clock/advance", {"by": by}, ADMIN)
            assert status == 422, (by, status, data)
            answers[by] = data["detail"]
        status, _, data = plain_call(url, "POST", "/_sandbox/clock/set", {"to": "2000-01-01T00:00Z"}, ADMIN)
        assert status == 422 and "only moves forward" in data["detail"]
        assert "only moves forward" in answers["-5m"] and "only moves forward" in answers[-300]
        assert "only moves forward" in answers[-(10**400)] and "7 days" in answers[10**400]
        assert "7 days" in answers["8d"] and len(answers[10**400]) < 200  # no 400 digits quoted back
        assert admin_call(url, "POST", "/_sandbox/clock/advance", {"by": "7d"})["now"].startswith("2033-05-25")
    assert clock() == 2_000_000_000.0 + 7 * 86400


def test_game_sandbox_clock_advance_back_says_what_the_endpoint_says() -> None:
    with GameServe("--clock", "manual", "--admin-token", ADMIN) as served:
        command = [sys.executable, "-m", "gameproto_cli", "sandbox", "clock", "advance", "-5m", "--url"]
        env = dict(os.environ, GAME_ADMIN_TOKEN=ADMIN)
        done = subprocess.run([*command, served.base_url], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2, done
    assert "422" in done.stderr and "only moves forward" in done.stderr and "usage:" not in done.stderr


def test_rate_limit_windows_on_a_manual_clock_follow_real_time_and_the_clocks_moves() -> None:
    clock = ManualClock(2_000_000_000.0)
    exchange = Exchange(clock=clock, rate_limit_per_minute=3)
    sandbox = Sandbox(exchange, clock=clock, admin_token=ADMIN)
    assert sandbox.real_time is time.time  # the sandbox's choice; a stand-in below
    real: List[float] = [1_699_999_990.0]
    sandbox.real_time = lambda: real[0]
    with ServerThread(sandbox) as running:
        url = running.base_url
        access = _access(url)
        statuses = [plain_call(url, "GET", "/api/v1/status", token=access)[0] for _ in range(3)]
        status, headers, _ = plain_call(url, "GET", "/api/v1/status", token=access)
        assert statuses == [200, 200, 200] and status == 429
        assert headers["retry-after"] == "50"  # real time says 50 s to the next minute
        real[0] += 50  # the manual clock has not moved; real time has
        status, _, data = plain_call(url, "GET", "/api/v1/status", token=access)
        assert status == 200, data
        assert data["rate_limit"]["requests_remaining"] == 2
        statuses = [plain_call(url, "GET", "/api/v1/status", token=access)[0] for _ in range(3)]
        assert statuses == [200, 200, 429]
        # Real time stands still; the clock moves a minute (as a recorder driving it does): a new window.
        admin_call(url, "POST", "/_sandbox/clock/advance", {"by": 60})
        status, _, data = plain_call(url, "GET", "/api/v1/status", token=access)
        assert status == 200, data
        assert data["rate_limit"]["requests_remaining"] == 2
    assert clock() == 2_000_000_060.0 and clock.moved == 60


def test_tokens_expire_on_the_exchanges_clock_when_it_runs_behind_the_hosts() -> None:
    with GameServe("--clock-offset", "-7200") as served:
        url = served.base_url
        access = _access(url)
        day = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).date().isoformat()
        status, _, created = plain_call(url, "POST", "/api/v1/orders", _order(day), access)
        assert status == 200, created
        status, _, deleted = plain_call(url, "DELETE", f"/api/v1/orders/{created['order_id']}", token=access)
        assert status == 200, deleted


@pytest.mark.parametrize("offset", [-7200.0, 7200.0])
def test_screen_and_handle_agree_on_a_token_near_its_expiry(offset: float) -> None:
    host = [2_000_000_000.0]
    exchange = Exchange(clock=lambda: host[0], clock_offset=offset, token_lifetime=60)
    with ServerThread(exchange) as running:
        access = _access(running.base_url)
        host[0] += 59  # one second of the token's life left on the exchange's clock
        status, _, data = plain_call(running.base_url, "POST", "/api/v1/orders", {"bad": 1}, access)
        assert status == 422, data  # screened and handled alike: the body was read and refused
        host[0] += 1
        status, _, data = plain_call(running.base_url, "POST", "/api/v1/orders", {"bad": 1}, access)
        assert status == 401 and data["detail"] == "Token expired"
