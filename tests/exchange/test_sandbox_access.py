"""Who may reach the sandbox: the admin token guessed at most as fast as a personal token,
a usable admin token whatever its characters, the Host a browser names, and the instance it serves.

Everything over a loopback socket (a :class:`ServerThread` or ``game serve`` in a child process).
"""

from __future__ import annotations

from typing import List, Tuple

from gameproto.simulator.exchange import Exchange
from gameproto_exchange import ManualClock, Sandbox, ServerThread
from tests.support import hostile_clients as hostile
from tests.support.sandbox import ADMIN, plain_call

DEMO = "demo-token"


def _sandbox(refusals: int = 5) -> Tuple[Sandbox, List[float]]:
    """A manual-clock sandbox whose rate-limit windows follow ``real`` (a stand-in for real time)."""
    clock = ManualClock(2_000_000_000.0)
    exchange = Exchange(clock=clock, auth_refusals_per_minute=refusals)
    sandbox = Sandbox(exchange, clock=clock, admin_token=ADMIN)
    real = [1_699_999_980.0]
    exchange.access.window_clock = lambda: real[0]
    return sandbox, real


def test_wrong_admin_tokens_are_limited_per_address_and_the_right_one_works_after_the_wait() -> None:
    sandbox, real = _sandbox(refusals=5)
    with ServerThread(sandbox) as running:
        url = running.base_url
        outcome = hostile.sandbox_wrong_admin_token("127.0.0.1", running.port, guesses=12)
        # "Bearer " carries no token and "Basic" no bearer token: refused, never counted as a guess.
        assert outcome.statuses == {401: 2 + 5, 429: 5}, outcome
        status, headers, data = plain_call(url, "POST", "/_sandbox/clock/advance", {"by": "1m"}, ADMIN)
        assert status == 429 and headers["retry-after"] == "60", data  # the right token waits too
        status, _, _ = plain_call(url, "GET", "/_view", token=ADMIN)
        assert status == 429  # the page's admin view is the same door
        status, _, _ = plain_call(url, "GET", "/_view")
        assert status == 200  # the public view needs no token and is never limited
        real[0] += 60
        status, _, data = plain_call(url, "POST", "/_sandbox/clock/advance", {"by": "1m"}, ADMIN)
        assert status == 200, data
        status, _, _ = plain_call(url, "GET", "/_view", token="still-wrong")
        assert status == 401
    assert sandbox.clock is not None and sandbox.clock() == 2_000_000_060.0


def test_wrong_personal_and_admin_tokens_share_the_addresss_allowance() -> None:
    sandbox, _ = _sandbox(refusals=4)
    with ServerThread(sandbox) as running:
        guesses = hostile.token_guesses("127.0.0.1", running.port, guesses=4)
        assert set(guesses.statuses) == {401}, guesses
        status, _, _ = plain_call(running.base_url, "GET", "/_sandbox/clock", token="guess")
        assert status == 429
