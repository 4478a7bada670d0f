"""Who may reach the sandbox: the admin token guessed at most as fast as a personal token,
a usable admin token whatever its characters, the Host a browser names, and the instance it serves.

Everything over a loopback socket (a :class:`ServerThread` or ``game serve`` in a child process).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest

from gameproto.simulator.access import guesser
from gameproto.simulator.exchange import Exchange
from gameproto_exchange import ManualClock, Sandbox, ServerThread, Store, allowed_hosts
from tests.support import hostile_clients as hostile
from tests.support.harness import GameServe
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


def test_guesses_from_many_loopback_addresses_share_one_allowance() -> None:
    sandbox, _ = _sandbox(refusals=3)
    with ServerThread(sandbox) as running:
        try:
            outcome = hostile.sandbox_guesses_from_many_addresses(
                "127.0.0.1", running.port, addresses=10, per_address=3
            )
        except OSError as error:
            pytest.skip(f"this system sends from 127.0.0.1 alone: {error}")
        assert outcome.statuses == {401: 3, 429: 27}, outcome  # any local user may send from any of 127/8
        status, _, _ = plain_call(running.base_url, "GET", "/_sandbox/clock", token=ADMIN)
        assert status == 429


def test_refused_attempts_are_counted_against_whoever_holds_the_address() -> None:
    assert {guesser(one) for one in ("127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1")} == {"loopback"}
    assert guesser("2001:db8:1:2:3:4:5:6") == guesser("2001:db8:1:2::9") == "2001:db8:1:2::/64"
    assert guesser("2001:db8:1:3::9") != guesser("2001:db8:1:2::9")
    assert guesser("::ffff:192.0.2.1") == guesser("192.0.2.1") == "192.0.2.1" != guesser("192.0.2.2")
    assert (
        guesser("fe80::1%eth0") == "fe80::/64" and guesser("") == "" and guesser("not an address") == "not an address"
    )


# -- the Host a request names ------------------------------------------------------------------------------


def _with_host(port: int, host: str, path: str, absolute: bool = False) -> int:
    """The status of a GET naming ``host`` in its Host header (and its target, in absolute form)."""
    target = f"http://{host}{path}" if absolute else path
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("latin-1"))
        answer = hostile.read_answer(sock)
    assert answer is not None
    return answer[0]


@pytest.mark.parametrize("path", ["/api/v1/status", "/", "/_view", "/_sandbox/clock", "/static/sandbox.js", "/nowhere"])
def test_a_loopback_server_answers_only_loopback_host_names_on_every_path(path: str) -> None:
    sandbox, _ = _sandbox()
    with ServerThread(sandbox, hosts=allowed_hosts("127.0.0.1", ["box.example"])) as running:
        for host in ("evil.example", "evil.example:80", "127.0.0.1.evil.example", "localhost.evil.example"):
            assert _with_host(running.port, host, path) == 421, host
        assert _with_host(running.port, "evil.example", path, absolute=True) == 421
        for host in ("localhost", f"127.0.0.1:{running.port}", "[::1]:99", "LOCALHOST:1", "box.example:8765"):
            assert _with_host(running.port, host, path) != 421, host


def test_an_embedded_sandbox_on_loopback_refuses_every_foreign_host_and_a_bare_exchange_answers_any() -> None:
    sandbox, _ = _sandbox()
    with ServerThread(sandbox) as running:  # no hosts given: the bound address's rule
        outcome = hostile.foreign_hosts("127.0.0.1", running.port)
        assert not outcome.note and outcome.statuses[400] == 3, outcome  # two Host headers: one a path
        assert outcome.statuses[421] == outcome.requests - 3 > 40, outcome
        assert _with_host(running.port, f"localhost:{running.port}", "/") == 200
    with ServerThread(Exchange()) as running:  # serves no page: nothing to read by rebinding
        assert _with_host(running.port, "evil.example", "/api/v1/status") == 401


def test_the_hosts_a_bound_address_answers() -> None:
    assert allowed_hosts("127.0.0.1") == frozenset() and allowed_hosts("::1") == frozenset()
    assert allowed_hosts("localhost", ["Box.Example:8765"]) == frozenset({"box.example"})
    assert allowed_hosts("0.0.0.0") is None and allowed_hosts("192.0.2.7") is None  # any Host
    assert allowed_hosts("0.0.0.0", ["box.example"]) == frozenset({"box.example"})


def test_game_serve_refuses_a_foreign_host_with_a_clear_421_unless_allowed() -> None:
    with GameServe("--allowed-host", "sandbox.team.example") as served:
        port = int(served.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /_view HTTP/1.1\r\nHost: rebound.example\r\n\r\n")
            answer = hostile.read_answer(sock)
        assert answer is not None and answer[0] == 421
        assert b"rebound.example" in answer[2] and b"--allowed-host" in answer[2]
        assert _with_host(port, "sandbox.team.example:8765", "/api/v1/status") == 401  # answered: no token
        assert _with_host(port, "localhost", "/") == 200


# -- an admin token of any characters a header carries -----------------------------------------------------

BASE64_LIKE = "a+b/c&d%25e%zz=="


@pytest.mark.parametrize("token", ["s3cr€t", "two words", "tab\there", "\u0100bc"])
def test_an_admin_token_no_header_can_carry_is_refused_at_start(token: str, tmp_path: Path) -> None:
    (tmp_path / "admin.token").write_text(token + "\n", encoding="utf-8")
    for flags in (["--admin-token", token], ["--admin-token-file", str(tmp_path / "admin.token")]):
        command = [sys.executable, "-m", "gameproto_cli", "serve", "--port", "0", *flags]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done
        assert "admin token" in done.stderr and "Latin-1" in done.stderr and token not in done.stderr


def test_an_admin_token_with_plus_ampersand_and_percent_works_over_the_wire() -> None:
    clock = ManualClock(2_000_000_000.0)
    sandbox = Sandbox(Exchange(clock=clock), clock=clock, admin_token=BASE64_LIKE)
    with ServerThread(sandbox) as running:
        status, _, data = plain_call(running.base_url, "GET", "/_view", token=BASE64_LIKE)
        assert status == 200 and data["admin"] is True
        status, _, data = plain_call(running.base_url, "GET", "/_sandbox/clock", token=BASE64_LIKE)
        assert status == 200, data
    with pytest.raises(ValueError, match="Latin-1"):
        Sandbox(Exchange(), admin_token="s3cr€t")


def test_game_serve_takes_the_admin_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAME_ADMIN_TOKEN", ADMIN)  # never in the process list
    with GameServe("--clock", "manual") as served:
        assert "admin endpoints: on" in "".join(served.banner)
        status, _, data = plain_call(served.base_url, "GET", "/_sandbox/clock", token=ADMIN)
        assert status == 200 and data["clock"] == "manual", data


def _game(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gameproto_cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, **env), timeout=60)


def test_game_serve_and_game_sandbox_read_one_admin_token_file_alike(tmp_path: Path) -> None:
    secret = tmp_path / "admin.token"
    secret.write_text(f"# the team sandbox's admin token\n\n{ADMIN}\n", encoding="utf-8")
    secret.chmod(0o600)
    with GameServe("--clock", "manual", "--admin-token-file", str(secret)) as served:
        done = _game("sandbox", "clock", "advance", "15m", "--url", served.base_url, "--admin-token-file", str(secret))
        assert done.returncode == 0 and "manual clock" in done.stdout, done
        done = _game("sandbox", "clock", "--url", served.base_url, GAME_ADMIN_TOKEN="s3cr\u20act")
        assert done.returncode == 2 and "cannot be sent in an HTTP header" in done.stderr, done
        assert "Traceback" not in done.stderr and "codec" not in done.stderr
    secret.write_bytes(b"\xff\xfeadmin\n")
    done = _game("sandbox", "clock", "--admin-token-file", str(secret))
    assert done.returncode == 2 and f"the admin token file {str(secret)!r} is not UTF-8 text" in done.stderr, done
    done = _game("serve", "--port", "0", "--admin-token-file", str(secret))
    assert done.returncode == 2 and f"the token file {str(secret)!r} is not UTF-8 text" in done.stderr, done


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_game_serve_warns_when_other_users_may_read_the_admin_token_file(tmp_path: Path) -> None:
    secret = tmp_path / "admin.token"
    secret.write_text(ADMIN + "\n", encoding="utf-8")
    secret.chmod(0o644)
    with GameServe("--admin-token-file", str(secret)) as served:
        said = "".join(served.banner)
    assert f"warning: {secret} can be read by other local users (mode 644): chmod 600 {secret}" in said
    assert ADMIN not in said
    secret.chmod(0o600)
    with GameServe("--admin-token-file", str(secret)) as served:
        assert "warning" not in "".join(served.banner)
    with GameServe("--admin-token", ADMIN) as served:
        said = "".join(served.banner)
    assert "warning: --admin-token is in every local user's process list: use --admin-token-file" in said
    assert ADMIN not in said


@pytest.mark.component
@pytest.mark.parametrize("typed", [BASE64_LIKE, "a%2Bb%2Fc%26d%2525e%25zz%3D%3D"])
def test_the_page_takes_an_admin_token_with_plus_ampersand_and_percent_from_its_fragment(typed: str) -> None:
    chromium = os.environ.get("GAME_CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(chromium):
        pytest.skip(f"no chromium at {chromium}")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install gameproto[components]")
    with GameServe("--admin-token", BASE64_LIKE) as served, playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(served.base_url + "/#admin=" + typed)  # as typed, or percent-encoded in full
            page.wait_for_selector("#mode:has-text('admin view')", timeout=10000)
            wrong = browser.new_page()
            wrong.goto(served.base_url + "/#admin=not-it")
            # A selector, not a JavaScript string: the page's CSP (script-src 'self') forbids evaluating one.
            wrong.wait_for_selector("#live[title='wrong admin token']", state="attached", timeout=10000)
            assert wrong.inner_text("#mode") == "public view"
        finally:
            browser.close()


# -- the instance a bot talks to, and ids that are never given twice ---------------------------------------

TRADERS = {"alice-token": "alice", "bob-token": "bob"}


def _token(url: str, personal: str) -> str:
    status, _, data = plain_call(url, "POST", "/api/v1/auth/token", {"token": personal})
    assert status == 200, data
    return str(data["access_token"])


def _trade(url: str) -> Tuple[int, int, str]:
    """Alice sells and Bob buys 1 MW: (Bob's order number, the trade's number, the instance /status names)."""
    alice, bob = _token(url, "alice-token"), _token(url, "bob-token")
    order = hostile.future_order("sell", 60.0)
    status, _, sold = plain_call(url, "POST", "/api/v1/orders", order, alice)
    assert status == 200, sold
    status, _, bought = plain_call(url, "POST", "/api/v1/orders", dict(order, side="buy"), bob)
    assert status == 200, bought
    status, _, trades = plain_call(url, "GET", "/api/v1/trades", token=bob)
    _, _, shown = plain_call(url, "GET", "/api/v1/status", token=bob)
    return int(bought["order_id"][4:]), max(int(trade["trade_id"][4:]) for trade in trades), shown["instance"]


def test_a_reset_names_a_new_instance_and_ids_never_repeat_for_one_state_file(tmp_path: Path) -> None:
    path = str(tmp_path / "sandbox.db")
    seen: List[Tuple[int, int, str]] = []
    for _ in range(2):
        clock = ManualClock()
        sandbox = Sandbox(Exchange(tokens=TRADERS, clock=clock), clock=clock, admin_token=ADMIN, store=Store(path))
        with ServerThread(sandbox) as running:
            url = running.base_url
            _, _, shown = plain_call(url, "GET", "/api/v1/status", token=_token(url, "alice-token"))
            if seen:  # a restart from the state file: the same instance as before it
                assert shown["instance"] == seen[-1][2]
            seen.append(_trade(url))
            status, _, data = plain_call(url, "POST", "/_sandbox/reset", token=ADMIN)
            assert status == 200, data
            seen.append(_trade(url))
        assert sandbox.store is not None
        sandbox.store.close()
    orders, trades, instances = zip(*seen)
    assert list(orders) == sorted(set(orders)) and list(trades) == sorted(set(trades))
    assert instances[0] != instances[1] and instances[1] == instances[2] and instances[2] != instances[3]


def test_a_stateless_game_serve_names_a_new_instance_and_new_ids_after_a_restart() -> None:
    flags = ["--token", "alice-token", "--token", "bob-token"]
    with GameServe(*flags) as served:
        first = _trade(served.base_url)
    with GameServe(*flags) as served:
        second = _trade(served.base_url)
    assert second[2] != first[2] and second[0] > first[0] and second[1] > first[1]
    assert first[0] > 10**11  # numbered from the host's time, not from 1
