"""One client must not stop the exchange serving the others: each attack, small, against a real server.

Every case serves the real exchange from a background thread, runs one attack of
``tests/support/hostile_clients.py`` at a small size while a well-behaved trader keeps
calling, and asserts on outcomes: the trader got answers, the attacker was
closed or refused, and what the server holds stayed bounded. No case measures
time; ``python -m benchmarks.hostile_load`` runs the same attacks at full size.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import socket
import time
from typing import Any, Callable, Iterator, List

import pytest

from gameproto._boundary import Request
from gameproto._errors import OrderValidationError
from gameproto._orders import validate_order, validate_orders
from gameproto.simulator import market as market_module
from gameproto.simulator import trading as trading_module
from gameproto.simulator.exchange import Exchange
from gameproto_exchange import Limits, RunningServer, ServerThread
from tests.support import hostile_clients as hostile
from tests.support.common import OTHER_TOKEN, TOKEN

HOST = "127.0.0.1"
# Small deadlines so that each case ends quickly; the good trader answers in microseconds.
LIMITS = Limits(
    idle_timeout=5.0,
    head_timeout=0.5,
    body_timeout=1.0,
    min_rate=1_000_000,
    max_connections=24,
    max_connections_per_address=24,
    max_body=256 * 1024,
)


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def hostile_exchange() -> Exchange:
    return Exchange(tokens={TOKEN: "alice", OTHER_TOKEN: "mallory"}, seed=7, auth_refusals_per_minute=10)


@pytest.fixture
def served(hostile_exchange: Exchange, backend: str) -> Iterator[RunningServer[Exchange]]:
    with ServerThread(hostile_exchange, backend=backend, limits=LIMITS) as running:
        yield running


@pytest.fixture
def trader(served: RunningServer[Exchange]) -> Iterator[hostile.WellBehavedClient]:
    with hostile.WellBehavedClient(HOST, served.port, TOKEN, timeout=30.0, pause=0.01) as client:
        assert client.wait_for_answers(3)
        yield client


def _eventually(condition: Callable[[], bool], limit: float = 20.0) -> bool:
    """Whether ``condition`` holds within ``limit`` seconds (the server lets go of closed connections soon after)."""
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def _served_meanwhile(trader: hostile.WellBehavedClient, answers: int = 3) -> None:
    assert trader.wait_for_answers(answers), trader.failures
    assert set(trader.statuses) == {200}, trader.statuses


# -- 1: an order of 60,000 unknown fields -----------------------------------------------------


def test_unknown_fields_are_counted_past_ten_and_suggested_for_ten_only(monkeypatch: Any) -> None:
    suggested: List[str] = []
    real = difflib.get_close_matches

    def counting(word: str, *args: Any, **kwargs: Any) -> List[str]:
        suggested.append(word)
        return real(word, *args, **kwargs)

    monkeypatch.setattr(difflib, "get_close_matches", counting)
    order = {f"volum{number:05d}": 1 for number in range(60_000)}
    with pytest.raises(OrderValidationError) as caught:
        validate_order(order)
    error = caught.value
    assert len(suggested) == 10
    assert len(error.errors) == 10 + 7  # ten unknown fields named, and the seven required ones missing
    assert error.omitted == 59_990
    assert str(error).startswith("invalid order (60,007 problems): ")
    assert str(error).endswith("; ... and 59,990 more problems")
    assert len(str(error)) < 4000


def test_a_bulk_counts_what_it_does_not_list() -> None:
    with pytest.raises(OrderValidationError) as caught:
        validate_orders([{f"x{number}": 1 for number in range(50)} for _ in range(3)])
    assert caught.value.omitted == 3 * 40
    assert caught.value.indices == [0, 1, 2]
    assert "more problems" in str(caught.value)


def test_a_huge_unknown_fields_order_is_answered_small_while_others_are_served(
    served: RunningServer[Exchange], trader: hostile.WellBehavedClient
) -> None:
    access = hostile.access_token(HOST, served.port, OTHER_TOKEN)
    outcome = hostile.unknown_fields_order(HOST, served.port, access, fields=15_000, repeat=3)
    assert outcome.statuses == {422: 3}
    assert outcome.largest_answer < 8 * 1024
    assert "... and 14,990 more problems" in outcome.note
    _served_meanwhile(trader)


def test_the_bulk_answer_counts_what_it_does_not_list(hostile_exchange: Exchange) -> None:
    login = hostile_exchange.handle(Request("POST", "/auth/token", body=json.dumps({"token": TOKEN}).encode()))
    access = json.loads(login.body)["access_token"]
    bad = {f"volum{number:05d}": 1 for number in range(1000)}
    body = json.dumps({"orders": [bad, hostile.future_order()]}).encode()
    answer = hostile_exchange.handle(
        Request("POST", "/orders/create-bulk", (), (("authorization", f"Bearer {access}"),), body)
    )
    failed = json.loads(answer.body)["failed"]
    assert [entry["index"] for entry in failed] == [0]
    assert failed[0]["error"].endswith("; ... and 990 more problems")
    assert len(answer.body) < 8 * 1024


# -- 2: slowloris ------------------------------------------------------------------------------


def test_slowloris_connections_are_closed_at_the_head_deadline(
    served: RunningServer[Exchange], trader: hostile.WellBehavedClient
) -> None:
    # Fewer attackers than the cap: only the head deadline can close them, however they trickle.
    outcome = hostile.slowloris(HOST, served.port, connections=10, interval=0.2, duration=2.5)
    assert outcome.closed_by_server == outcome.connections == 10
    assert served.connections_timed_out >= 10
    _served_meanwhile(trader)


def test_slowloris_beyond_the_connection_cap_evicts_the_stalest(
    served: RunningServer[Exchange], trader: hostile.WellBehavedClient
) -> None:
    outcome = hostile.slowloris(HOST, served.port, connections=60, interval=0.1, duration=1.5, reconnect=True)
    assert outcome.closed_by_server >= 60 - LIMITS.max_connections
    assert served.connections_evicted >= 60 - LIMITS.max_connections
    assert served.connections_peak <= LIMITS.max_connections
    _served_meanwhile(trader)


def test_silent_connections_beyond_the_cap_make_room_for_a_trader(
    served: RunningServer[Exchange], trader: hostile.WellBehavedClient
) -> None:
    outcome = hostile.connection_flood(HOST, served.port, connections=80, duration=0.5)
    assert outcome.connections == 80
    assert outcome.closed_by_server >= 80 - LIMITS.max_connections
    assert served.connections_peak <= LIMITS.max_connections
    _served_meanwhile(trader)


# -- 3: unauthenticated bodies -------------------------------------------------------------------


def _refused_before_the_body(port: int, authorization: str) -> int:
    """Status of a POST whose head declares 200 KB and whose body never comes."""
    with socket.create_connection((HOST, port), timeout=10) as sock:
        head = (
            "POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{authorization}Content-Length: 200000\r\n\r\n"
        )
        sock.sendall(head.encode())
        answer = hostile.read_answer(sock)
        assert answer is not None
        assert answer[1].get("connection") == "close"
        return answer[0]


def test_a_body_without_a_valid_token_is_refused_from_the_head(
    served: RunningServer[Exchange], trader: hostile.WellBehavedClient, hostile_exchange: Exchange
) -> None:
    assert _refused_before_the_body(served.port, "") == 401
    assert _refused_before_the_body(served.port, "Authorization: Bearer forged\r\n") == 401
    outcome = hostile.slow_body(HOST, served.port, connections=8, body_size=200_000, interval=0.2, duration=1.5)
    assert outcome.closed_by_server == 8
    assert served.buffered == 0  # nothing was reserved: each was refused from its head
    assert ("POST", "/orders") not in hostile_exchange.attempts
    _served_meanwhile(trader)


def test_a_slow_authenticated_body_is_closed_at_the_body_deadline(
    served: RunningServer[Exchange], trader: hostile.WellBehavedClient
) -> None:
    access = hostile.access_token(HOST, served.port, OTHER_TOKEN)
    outcome = hostile.slow_body(
        HOST,
        served.port,
        connections=4,
        body_size=200_000,
        interval=0.3,
        duration=3.0,
        authorization=f"Bearer {access}",
    )
    assert outcome.closed_by_server == 4
    assert served.connections_timed_out >= 4
    assert _eventually(lambda: served.buffered == 0)
    _served_meanwhile(trader)


def test_bodies_beyond_the_buffer_budget_are_refused(hostile_exchange: Exchange) -> None:
    limits = Limits(max_body=100_000, max_buffered=250_000, body_timeout=2.0, head_timeout=1.0, min_rate=1e6)
    with ServerThread(hostile_exchange, limits=limits) as running:
        access = hostile.access_token(HOST, running.port, OTHER_TOKEN)
        outcome = hostile.slow_body(
            HOST,
            running.port,
            connections=4,
            body_size=100_000,
            interval=0.2,
            duration=0.6,
            authorization=f"Bearer {access}",
        )
        assert _eventually(lambda: running.buffered == 0)
    # Two bodies fit the budget and wait for their last bytes; the third and fourth were refused at once.
    assert outcome.closed_by_server >= 2


# -- 4: unknown paths ------------------------------------------------------------------------------


def test_unknown_paths_leave_nothing_behind(
    served: RunningServer[Exchange], trader: hostile.WellBehavedClient, hostile_exchange: Exchange
) -> None:
    counted = dict(hostile_exchange.attempts)
    outcome = hostile.unique_paths(HOST, served.port, requests=300, path_length=4000)
    assert outcome.statuses == {404: 300}
    assert {key for key in hostile_exchange.attempts if key not in counted} <= {
        ("GET", "/status"),
        ("GET", "/orders"),
        ("POST", "/auth/token"),
    }
    _served_meanwhile(trader)


def test_attempts_count_routed_calls_with_a_token_issued_here(hostile_exchange: Exchange) -> None:
    login = hostile_exchange.react(Request("POST", "/auth/token", body=json.dumps({"token": TOKEN}).encode()))
    assert login.response is not None
    access = json.loads(login.response.body)["access_token"]
    bearer = (("authorization", f"Bearer {access}"),)
    for number in range(1500):
        hostile_exchange.react(Request("DELETE", f"/orders/{number}", (), bearer))
        hostile_exchange.react(Request("GET", f"/nowhere/{number}", (), bearer))
        hostile_exchange.react(Request("GET", "/status", (), (("authorization", f"Bearer forged{number}"),)))
    assert len(hostile_exchange.attempts) <= 1 + 1000 + 1
    assert hostile_exchange.attempts[("DELETE", "/orders/{order_id}")] == 1500 - 999
    assert hostile_exchange.attempts[("POST", "/auth/token")] == 1
    assert ("GET", "/status") not in hostile_exchange.attempts


# -- 5: the token exchange -------------------------------------------------------------------------


def test_refused_token_exchanges_are_limited_per_address_and_valid_ones_never(
    served: RunningServer[Exchange], trader: hostile.WellBehavedClient
) -> None:
    outcome = hostile.token_guesses(HOST, served.port, guesses=40)
    assert outcome.statuses[401] <= 10
    assert outcome.statuses[429] >= 30
    assert outcome.retry_after and all(1 <= int(wait) <= 60 for wait in outcome.retry_after)
    # The same address exchanging a valid token is never limited.
    valid = hostile.token_exchanges(HOST, served.port, TOKEN, count=30)
    assert valid.statuses == {200: 30}
    _served_meanwhile(trader)


def test_expired_access_tokens_are_forgotten() -> None:
    clock = [1_700_000_000.0]
    exchange = Exchange(tokens={TOKEN: "alice"}, clock=lambda: clock[0], token_lifetime=60)
    body = json.dumps({"token": TOKEN}).encode()
    for _ in range(50):
        assert exchange.handle(Request("POST", "/auth/token", body=body)).status == 200
    assert exchange.access_tokens_held == 50
    clock[0] += 60 + 301
    assert exchange.handle(Request("POST", "/auth/token", body=body)).status == 200
    assert exchange.access_tokens_held == 1


def test_live_access_tokens_of_one_personal_token_are_capped() -> None:
    exchange = Exchange(tokens={TOKEN: "alice"})
    body = json.dumps({"token": TOKEN}).encode()
    first = json.loads(exchange.handle(Request("POST", "/auth/token", body=body)).body)["access_token"]
    for _ in range(1200):
        exchange.handle(Request("POST", "/auth/token", body=body))
    assert exchange.access_tokens_held == 1000
    # The oldest gave way: its holder is told to authenticate again, as after an expiry.
    answer = exchange.handle(Request("GET", "/status", (), (("authorization", f"Bearer {first}"),)))
    assert answer.status == 401


# -- 6: listing a trader's orders -------------------------------------------------------------------


def test_listing_costs_what_the_trader_holds(
    served: RunningServer[Exchange], trader: hostile.WellBehavedClient, monkeypatch: Any
) -> None:
    access = hostile.access_token(HOST, served.port, OTHER_TOKEN)
    rendered: List[int] = []
    real = trading_module.order_view

    def counting(order: Any, **kwargs: Any) -> Any:
        rendered.append(order.number)
        return real(order, **kwargs)

    outcome = hostile.big_book(HOST, served.port, access, orders=300, listings=0)
    assert outcome.note == "300 orders placed"
    monkeypatch.setattr(trading_module, "order_view", counting)
    listed = hostile.big_book(HOST, served.port, access, orders=0, listings=5)
    assert listed.statuses == {200: 5} and listed.largest_answer == 2  # "[]": no sell order
    mallory_orders = rendered[:]
    assert mallory_orders == []  # none of the 300 buys was looked at
    _served_meanwhile(trader)


# -- the book flood: one trader's resting orders, polled by many connections ----------------------


def test_a_book_flood_is_capped_and_each_contract_encoded_once_for_every_poll(backend: str, monkeypatch: Any) -> None:
    exchange = Exchange(
        tokens={TOKEN: "alice", OTHER_TOKEN: "mallory", "mallory-2-token": "mallory-2"}, max_resting_orders=120
    )
    built: List[str] = []
    real = market_module.summary_row

    def counting(book: Any, contract: str, *args: Any) -> Any:
        built.append(contract)
        return real(book, contract, *args)

    monkeypatch.setattr(market_module, "summary_row", counting)
    with ServerThread(exchange, backend=backend, limits=LIMITS) as served, hostile.WellBehavedClient(
        HOST, served.port, TOKEN, timeout=30.0, pause=0.01
    ) as trader:
        accesses = [hostile.access_token(HOST, served.port, token) for token in (OTHER_TOKEN, "mallory-2-token")]
        outcome = hostile.book_flood(HOST, served.port, accesses, orders=150, pollers=3, polls=4, deadline=60)
        assert outcome.note == "240 orders resting, 60 refused"  # 120 each: the cap's 422s, order by order
        assert outcome.statuses == {200: 4 + 3 * 4} and outcome.closed_by_server == 0
        assert exchange.ledger.resting == {"mallory": 120, "mallory-2": 120}
        # Twelve polls of an unchanged book: each of its eight contracts was encoded once.
        assert sorted(built) == sorted(set(built)) and len(built) == 8
        _served_meanwhile(trader)


def test_a_deleted_order_leaves_the_index(hostile_exchange: Exchange) -> None:
    login = hostile_exchange.handle(Request("POST", "/auth/token", body=json.dumps({"token": TOKEN}).encode()))
    bearer = (("authorization", f"Bearer {json.loads(login.body)['access_token']}"),)
    day = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).date().isoformat()
    numbers = []
    for side in ("buy", "sell", "buy"):
        order = dict(hostile.future_order(side, price=10.0 if side == "buy" else 90.0), date=day)
        created = hostile_exchange.handle(Request("POST", "/orders", (), bearer, json.dumps(order).encode()))
        numbers.append(int(json.loads(created.body)["order_id"][len("ord_") :]))
    assert hostile_exchange.handle(Request("DELETE", f"/orders/{numbers[0]}", (), bearer)).status == 200
    assert [order["order_id"] for order in hostile_exchange.orders_of("alice")] == numbers[1:]
    assert [order["order_id"] for order in hostile_exchange.orders_of("alice", "buy")] == numbers[2:]


# -- 7: Content-Length with Transfer-Encoding ------------------------------------------------------


def test_both_length_headers_are_refused_and_the_connection_closed(
    served: RunningServer[Exchange], trader: hostile.WellBehavedClient, hostile_exchange: Exchange
) -> None:
    access = hostile.access_token(HOST, served.port, OTHER_TOKEN)
    outcome = hostile.both_length_headers(HOST, served.port, access)
    assert outcome.statuses == {400: 1}
    assert outcome.closed_by_server == 1
    assert hostile_exchange.orders_of("mallory") == []
    _served_meanwhile(trader)


# -- the flags of game serve ------------------------------------------------------------------------


def test_serve_help_shows_the_connection_limits_and_their_defaults(capsys: Any) -> None:
    from gameproto import _constants
    from gameproto_cli.main import main

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = capsys.readouterr().out
    shown = " ".join(text[text.index("connection limits") :].split())
    for flag, default in [
        ("--max-connections N", _constants.SERVER_MAX_CONNECTIONS),
        ("--max-connections-per-address N", _constants.SERVER_MAX_CONNECTIONS_PER_ADDRESS),
        ("--idle-timeout SECONDS", f"{_constants.SERVER_IDLE_TIMEOUT:g}"),
        ("--head-timeout SECONDS", f"{_constants.SERVER_HEAD_TIMEOUT:g}"),
        ("--body-timeout SECONDS", f"{_constants.SERVER_BODY_TIMEOUT:g}"),
        ("--min-rate BYTES", _constants.SERVER_MIN_RATE),
        ("--auth-refusals N", _constants.AUTH_REFUSALS_PER_MINUTE),
    ]:
        assert flag in shown
        after = shown[shown.index(flag) :]
        assert f"(default {default})" in after[: after.index(")") + 1], flag


def test_serve_refuses_a_limit_that_is_not_positive(capsys: Any) -> None:
    from gameproto_cli.main import main

    for argv in (["--max-connections", "0"], ["--head-timeout", "-1"], ["--body-timeout", "nan"]):
        with pytest.raises(SystemExit):
            main(["serve", *argv])
        assert "must be" in capsys.readouterr().err


def test_limits_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        Limits(max_connections=0)
    with pytest.raises(ValueError, match="head_timeout"):
        Limits(head_timeout=0)
