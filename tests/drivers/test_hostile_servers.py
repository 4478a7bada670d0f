"""Both clients against hostile and broken servers (tests/support/hostile_servers.py), on sync, asyncio and trio.

Each finding of the adversarial pass has a test here: bounded memory (the
size cap, no content decoding), bounded connections, no order hidden behind
an answer the client cannot read, no token in any error text (the whole
``__cause__``/``__context__`` chain walked), tokens the client cannot send,
one shared token exchange, settings refused when made, the environment read
alike, a client that outlives its event loop. No assertion is on a duration.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Optional, Tuple, TypeVar

import anyio
import pytest

from benchmarks import endless_body
from gameproto._errors import (
    AuthenticationError,
    GameAPIError,
    NetworkError,
    OutcomeUnknownError,
    ProtocolError,
    ServerError,
)
from gameproto._retry import RetryPolicy
from gameproto_async import GameAPI as AsyncGameAPI
from gameproto_sync import GameAPI as SyncGameAPI
from tests.support import hostile_servers as hs
from tests.support.common import TOKEN, future_order
from tests.support.harness import DRIVERS, Harness, collect, run_on, transport_named

T = TypeVar("T")

FAST: Dict[str, Any] = {
    "timeout": 10,
    "read_timeout": 5,
    "connect_timeout": 5,
    "retry_policy": RetryPolicy(max_retries=2, backoff_initial=0.01, backoff_max=0.02),
}
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
#: A small cap, so that the cases that hit it are quick.
SMALL_CAP = 1024 * 1024


@pytest.fixture(params=DRIVERS)
def driver(request: Any) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own proxy variables would send these loopback tests elsewhere."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


# -- running a scenario on any driver (tests/support/harness.py) ---------------------------------------------


def run(driver: str, scenario: Callable[[AsyncGameAPI], Awaitable[T]], base_url: str, **options: Any) -> T:
    """``scenario(client)`` with a client of ``base_url`` on ``driver``; the client is closed after."""

    async def behaviour(h: Harness) -> T:
        return await scenario(h.client(base_url, **{**FAST, **options}))

    return run_on(driver, behaviour)


def raised(
    driver: str, scenario: Callable[[AsyncGameAPI], Awaitable[Any]], base_url: str, **options: Any
) -> BaseException:
    """The exception ``scenario`` raises on ``driver`` (it must raise)."""
    try:
        run(driver, scenario, base_url, **options)
    except Exception as error:
        return error
    raise AssertionError("the scenario raised nothing")


async def get_orders(api: Any) -> Any:
    return await api.get_orders()


async def get_status(api: Any) -> Any:
    return await api.get_status()


async def place_order(api: Any) -> Any:
    return await api.create_order(future_order())


def chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception behind it (``__cause__``, ``__context__``), suppressed or not."""
    seen: List[int] = []
    pending: List[Optional[BaseException]] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.append(id(current))
        yield current
        pending += [current.__cause__, current.__context__]


def texts_of(error: BaseException) -> str:
    """Every text an error reporter could show of ``error``'s chain."""
    parts = []
    for each in chain(error):
        parts += [str(each), repr(each), repr(each.args)]
        parts += [repr(value) for value in vars(each).values()]
    return "\n".join(parts)


def assert_no_secret(error: BaseException, *secrets: str) -> None:
    text = texts_of(error)
    for secret in secrets:
        assert secret not in text


# -- 1. the size cap ----------------------------------------------------------------------------


ENDLESS = {
    "endless chunked": hs.endless_chunked,
    "endless until close": hs.endless_until_close,
    "2 GB content-length": hs.huge_content_length,
}


@pytest.mark.parametrize("case", sorted(ENDLESS))
def test_an_endless_answer_stops_at_the_cap(driver: str, case: str) -> None:
    with hs.HostileServer(hs.on_api(ENDLESS[case])) as server:
        error = raised(driver, get_orders, server.base_url, max_response_bytes=SMALL_CAP)
        assert type(error) is ProtocolError
        assert "max_response_bytes" in str(error)
        assert server.count("/orders") == 1  # too long an answer is not asked for again
    # Reading stopped at the cap: what the server got out is the cap plus
    # what the sockets' buffers held, not the endless rest.
    assert server.bytes_written < 64 * SMALL_CAP


@pytest.mark.parametrize("case", sorted(ENDLESS))
def test_an_endless_answer_to_an_order_is_outcome_unknown(driver: str, case: str) -> None:
    with hs.HostileServer(hs.on_api(ENDLESS[case])) as server:
        error = raised(driver, place_order, server.base_url, max_response_bytes=SMALL_CAP)
        assert isinstance(error, OutcomeUnknownError)
        assert "max_response_bytes" in str(error)
        assert server.count("/orders") == 1


def _every_answer_of_length(length: int) -> hs.Case:
    """Every answer's body exactly ``length`` bytes: the token's, and the orders' (``[]`` and spaces)."""

    def case(server: hs.HostileServer, connection: Any, seen: hs.Seen) -> bool:
        if seen.is_token_exchange:
            body = b'{"access_token": "access-token-of-fixed-length", "expires_in": 3600}'
        else:
            body = b"[]"
        body = body.ljust(length)
        return hs._send(connection, hs.answer_bytes(200, body, (("Content-Type", "application/json"),)))

    return case


def test_an_answer_as_long_as_the_cap_is_read(driver: str) -> None:
    with hs.HostileServer(_every_answer_of_length(100)) as server:
        assert run(driver, get_orders, server.base_url, max_response_bytes=100) == []
        error = raised(driver, get_orders, server.base_url, max_response_bytes=99)
        assert type(error) is ProtocolError and "max_response_bytes=99" in str(error)


# -- 2. no content decoding -------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_a_compressed_answer_is_not_inflated(driver: str, encoding: str) -> None:
    with hs.HostileServer(hs.on_api(hs.compressed(encoding))) as server:
        error = raised(driver, get_orders, server.base_url)
        assert type(error) is ProtocolError
        assert "Content-Encoding" in str(error)
        order_error = raised(driver, place_order, server.base_url)
        assert isinstance(order_error, OutcomeUnknownError)
        assert server.count("/orders") == 2


# -- 3. bounded connections ---------------------------------------------------------------------------


def _many_at_once(driver: str, base_url: str, calls: int, **options: Any) -> List[Any]:
    """``calls`` get_status calls at once (threads for the blocking client, tasks otherwise)."""

    async def behaviour(h: Harness) -> List[Any]:
        api = h.client(base_url, **{**FAST, **options})
        return await h.concurrently(*[api.get_status] * calls)

    return run_on(driver, behaviour)


def test_connections_stay_within_max_connections(driver: str, caplog: pytest.LogCaptureFixture) -> None:
    transport_named(driver).skip_unless("bounded_pool")
    calls = 32 if transport_named(driver).backend == "sync" else 100
    peaks = []
    with caplog.at_level(logging.WARNING), hs.HostileServer(hs.slow_honest(0.02)) as server:
        for _ in range(3):
            outcomes = _many_at_once(driver, server.base_url, calls, max_connections=10)
            assert all(isinstance(outcome, dict) for outcome in outcomes), outcomes
            # Each round has a client of its own: count its connections alone,
            # once the server has seen the last round's closed.
            assert server.wait_until_idle(10)
            peaks.append(server.take_peak())
    assert all(1 <= peak <= 10 for peak in peaks), peaks
    assert not [record for record in caplog.records if record.name.startswith("urllib3")]


def test_a_wait_for_a_free_connection_ends_at_the_deadline_and_sends_nothing(driver: str) -> None:
    transport_named(driver).skip_unless("bounded_pool")
    holding = threading.Event()

    def hold(server: hs.HostileServer, connection: Any, seen: hs.Seen) -> bool:
        holding.set()
        time.sleep(1.5)
        return hs._honestly(server, connection, seen)

    with hs.HostileServer(hs.on_api(hold, paths=("/status",))) as server:

        async def behaviour(h: Harness) -> List[Any]:
            api = h.client(server.base_url, **{**FAST, "max_connections": 1})
            await api.get_orders()  # the token, and the one connection, made first

            async def order() -> None:
                await h.wait_until(holding.is_set, "the busy call")
                # A deadline shorter than the busy call's hold, for the calls made from
                # now on (the busy call keeps the deadline it started with).
                h.unwrapped(api)._session.timeout = 0.3
                await api.create_order(future_order())

            return await h.concurrently(api.get_status, order)

        busy, outcome = run_on(driver, behaviour)
        assert isinstance(busy, dict)
        assert server.count("/orders", "POST") == 0
        if transport_named(driver).lacks("named_deadline") and isinstance(outcome, OutcomeUnknownError):
            return  # the cautious answer, where the library cannot say that nothing was sent
        assert isinstance(outcome, NetworkError)  # nothing was sent: not "outcome unknown"
        assert not isinstance(outcome, OutcomeUnknownError)


# -- 4. informational answers, and answers an order request cannot read ------------------------------


@pytest.mark.parametrize("statuses", [(103,), (100, 102, 103)])
def test_informational_answers_are_skipped(driver: str, statuses: Tuple[int, ...]) -> None:
    with hs.HostileServer(hs.on_api(hs.informational_first(*statuses))) as server:
        if transport_named(driver).lacks("informational") and statuses != (100,):
            # The 1xx read as the final answer: outcome unknown (the cautious answer), never a second order.
            assert isinstance(raised(driver, place_order, server.base_url), OutcomeUnknownError)
            assert len(server.exchange.orders_of("alice")) == 1
            return
        order = run(driver, place_order, server.base_url)
        assert order["order_id"]
        assert len(server.exchange.orders_of("alice")) == 1
        assert len(run(driver, get_orders, server.base_url)) == 1


@pytest.mark.parametrize("status", [200, 201, 299, 302, 307, 600, 999])
def test_an_answer_an_order_request_cannot_read_is_outcome_unknown(driver: str, status: int) -> None:
    with hs.HostileServer(hs.on_api(hs.odd_status(status, b"<html>maybe</html>"), paths=("/orders",))) as server:
        error = raised(driver, place_order, server.base_url)
        assert isinstance(error, OutcomeUnknownError), error
        assert len(server.exchange.orders_of("alice")) == 1  # placed, and the caller is told to reconcile
        assert server.count("/orders") == 1


# -- 5. and 11. tokens redacted everywhere --------------------------------------------------------------


def _access_token(server: hs.HostileServer) -> str:
    bearers = [seen.bearer for seen in server.seen if seen.bearer]
    assert bearers
    return str(bearers[0])


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_token_in_a_redirect_is_redacted(driver: str, status: int) -> None:
    with hs.HostileServer(hs.on_api(hs.redirect_with_token(status))) as server:
        error = raised(driver, get_orders, server.base_url)
        assert type(error) is ProtocolError
        assert "redirect to https://elsewhere.invalid/collect?access_token=***" in str(error)
        assert_no_secret(error, _access_token(server), TOKEN)
        order_error = raised(driver, place_order, server.base_url)
        assert isinstance(order_error, OutcomeUnknownError)
        assert_no_secret(order_error, _access_token(server), TOKEN)


def test_no_token_in_a_suppressed_context(driver: str) -> None:
    with hs.HostileServer(hs.on_api(hs.garbage_echoing_tokens)) as server:
        for scenario in (get_orders, place_order):
            error = raised(driver, scenario, server.base_url)
            assert isinstance(error, (ProtocolError, OutcomeUnknownError))
            assert "bearer *** personal ***" in getattr(error, "excerpt", "")
            assert_no_secret(error, _access_token(server), TOKEN)


@pytest.mark.parametrize("access_token", ["e", "s", "er"])
def test_a_short_token_does_not_garble_error_texts(driver: str, access_token: str) -> None:
    with hs.HostileServer(hs.issue_access_token(access_token)) as server:
        error = raised(driver, get_status, server.base_url)
        assert isinstance(error, ServerError)
        # The words stay readable; the token, where it stands alone, is redacted.
        assert "service temporarily unavailable for ***" in str(error)


# -- 6. an access token the client cannot send ---------------------------------------------------------


UNSENDABLE = {
    "non-ASCII": ("tok\u20acen", "outside ASCII"),
    "control byte": ("tok\x01en", "control character"),
    "line break": ("tok\r\nX-Injected: 1", "control character"),
    "space": ("tok en", "space"),
    "DEL": ("tok\x7fen", "control character"),
}


@pytest.mark.parametrize("case", sorted(UNSENDABLE))
def test_an_unsendable_access_token_is_refused_when_issued(driver: str, case: str) -> None:
    access_token, problem = UNSENDABLE[case]
    with hs.HostileServer(hs.issue_access_token(access_token)) as server:

        async def twice(api: Any) -> List[BaseException]:
            errors = []
            for _ in range(2):
                try:
                    await api.get_status()
                except GameAPIError as error:
                    errors.append(error)
            assert await api.test_connection() is False  # never raises for that
            return errors

        errors = run(driver, twice, server.base_url)
        assert len(errors) == 2
        for error in errors:
            assert isinstance(error, AuthenticationError)
            assert "access_token issued cannot be sent" in str(error) and problem in str(error)
            assert_no_secret(error, access_token, TOKEN)
        assert server.count("/auth/token") == 3  # refused each time, never cached
        assert server.count("/status") == 0  # nothing sent with it


# -- 7. one token exchange, its failure shared --------------------------------------------------------


def test_a_refused_exchange_is_shared_by_every_waiting_caller(driver: str) -> None:
    calls = 32 if transport_named(driver).backend == "sync" else 100
    with hs.HostileServer(hs.refuse_token_exchange) as server:
        outcomes = _many_at_once(driver, server.base_url, calls)
        assert len(outcomes) == calls
        assert all(isinstance(outcome, AuthenticationError) for outcome in outcomes), outcomes
        assert server.count("/auth/token") == 1
        assert server.count("/status") == 0


# -- 8. settings that can never work -------------------------------------------------------------------


NEVER_WORK: Dict[str, Tuple[Dict[str, Any], str]] = {
    "missing CA bundle": ({"verify_ssl": "/no/such/ca-bundle.pem"}, "verify_ssl"),
    "no connections": ({"max_connections": 0}, "max_connections"),
    "no bytes": ({"max_response_bytes": 0}, "max_response_bytes"),
    "space in base_url": ({"base_url": "http://exa mple.com"}, "base_url"),
    "CR/LF in base_url": ({"base_url": "http://example.com\r\nX-Injected: 1"}, "base_url"),
    "tab in base_url": ({"base_url": "http://example.com/\tapi"}, "base_url"),
    "NUL in base_url": ({"base_url": "http://example.com\x00"}, "base_url"),
    "host beyond IDNA": ({"base_url": "http://\u00fc" + "x" * 70 + ".example"}, "base_url"),
    "bad port": ({"base_url": "http://example.com:99999"}, "base_url"),
    "non-ASCII path": ({"base_url": "http://example.com/\u00e4pi"}, "base_url"),
    "trust_env not a bool": ({"trust_env": "no"}, "trust_env"),
}


@pytest.mark.parametrize("case", sorted(NEVER_WORK))
def test_settings_that_can_never_work_are_refused_alike(case: str) -> None:
    options, named = NEVER_WORK[case]
    options = {"base_url": "http://127.0.0.1:1", **options}
    messages = []
    for client in (SyncGameAPI, AsyncGameAPI):
        with pytest.raises(ValueError) as caught:
            client(TOKEN, **options)
        messages.append(str(caught.value))
        assert named in str(caught.value)
    assert messages[0] == messages[1]


ENVIRONMENT_NEVER_WORKS = {
    "socks proxy": ("HTTPS_PROXY", "socks5://127.0.0.1:1080"),
    "proxy with a bad port": ("https_proxy", "http://127.0.0.1:0"),
    "missing CA file": ("SSL_CERT_FILE", "/no/such/ca.pem"),
    "missing CA bundle": ("REQUESTS_CA_BUNDLE", "/no/such/ca.pem"),
}


@pytest.mark.parametrize("case", sorted(ENVIRONMENT_NEVER_WORKS))
def test_an_environment_that_can_never_work_is_refused_alike(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    name, value = ENVIRONMENT_NEVER_WORKS[case]
    for variable in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(name, value)
    messages = []
    for client in (SyncGameAPI, AsyncGameAPI):
        with pytest.raises(ValueError) as caught:
            client(TOKEN, "https://127.0.0.1:1")
        messages.append(str(caught.value))
        assert name in str(caught.value)
        client(TOKEN, "https://127.0.0.1:1", trust_env=False)  # the way out
    assert messages[0] == messages[1]


def test_an_international_host_is_sent_in_its_ascii_form() -> None:
    for client in (SyncGameAPI, AsyncGameAPI):
        api = client(TOKEN, "http://b\u00fccher.example:8765/")
        assert api.base_url == "http://xn--bcher-kva.example:8765"


# -- 9. the environment: proxies and CA bundles, alike -------------------------------------------------


trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def authority() -> Any:
    return trustme.CA()


@pytest.fixture
def ca_path(authority: Any, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def tls_exchange(authority: Any) -> Iterator[Any]:
    import ssl

    from gameproto.simulator.exchange import Exchange
    from gameproto_exchange import ServerThread

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with ServerThread(Exchange(tokens={TOKEN: "alice"}, seed=7), ssl_context=context) as running:
        yield running


def test_https_through_a_proxy_is_tunnelled(
    driver: str, monkeypatch: pytest.MonkeyPatch, tls_exchange: Any, ca_path: str
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)  # a borrowed requests session would read it
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", ca_path)  # the CA from the environment, in both clients
    # A borrowed client's TLS is its own: the harness gives it the CA (requests reads no SSL_CERT_FILE).
    tls = {"verify_ssl": ca_path} if transport_named(driver).borrowed else {}
    with hs.ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        assert run(driver, get_status, tls_exchange.base_url, **tls)["status"] == "healthy"
        assert run(driver, place_order, tls_exchange.base_url, **tls)["order_id"]
    port = tls_exchange.base_url.rpartition(":")[2]
    assert proxy.heads and all(head == f"CONNECT 127.0.0.1:{port}" for head in proxy.heads)
    # Inside the tunnel only TLS: neither token, nor even the word, crossed the proxy in clear.
    relayed = bytes(proxy.relayed)
    assert TOKEN.encode() not in relayed and b"Bearer" not in relayed and b"/auth/token" not in relayed


def test_http_through_a_proxy_is_forwarded(driver: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with hs.HostileServer(hs.slow_honest(0.0)) as server, hs.ConnectProxy() as proxy:
        monkeypatch.setenv("http_proxy", "http://user:p%40ss@" + proxy.url[len("http://") :])
        monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")  # not for an http URL
        assert run(driver, get_status, server.base_url)["status"] == "healthy"
    # Absolute-form requests (the proxy records the first of each connection's, and relays the rest).
    assert proxy.heads and all(head.startswith(f"POST {server.base_url}/api/v1/auth/token") for head in proxy.heads)
    assert f"GET {server.base_url}/api/v1/status".encode() in bytes(proxy.relayed)
    # requests and httpcore alike: the credentials of the proxy URL, as Basic auth.
    assert proxy.proxy_authorizations and set(proxy.proxy_authorizations) == {"Basic dXNlcjpwQHNz"}


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "*", "localhost, 127.0.0.0/8", "127.0.0.1:1,*.invalid"])
def test_no_proxy_and_trust_env_false_go_direct(driver: str, monkeypatch: pytest.MonkeyPatch, no_proxy: str) -> None:
    transport_named(driver).skip_unless(f"no_proxy={no_proxy}")
    with hs.HostileServer(hs.slow_honest(0.0)) as server, hs.ConnectProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert run(driver, get_status, server.base_url, trust_env=False)["status"] == "healthy"
        monkeypatch.setenv("NO_PROXY", no_proxy)
        if no_proxy.startswith("127.0.0.1:1,"):  # another port of the host: still proxied
            monkeypatch.setenv("NO_PROXY", no_proxy.replace(":1,", f":{server.port},"))
        assert run(driver, get_status, server.base_url)["status"] == "healthy"
    assert proxy.heads == []


# -- 10. an async client outlives its event loop --------------------------------------------------------


def test_an_async_client_works_in_a_new_event_loop() -> None:
    with hs.HostileServer(hs.slow_honest(0.0)) as server:
        api = AsyncGameAPI(TOKEN, server.base_url, **FAST)
        # Each loop leaves a pooled connection behind, and the token lock made in it.
        assert asyncio.run(api.get_status())["status"] == "healthy"
        assert asyncio.run(api.get_status())["status"] == "healthy"
        server.exchange.expire_access_tokens()  # the next call needs the token lock again
        assert anyio.run(api.get_status, backend="trio")["status"] == "healthy"
        server.exchange.expire_access_tokens()
        assert asyncio.run(api.get_status())["status"] == "healthy"
        asyncio.run(api.aclose())
        assert server.count("/auth/token") == 3


def test_an_async_client_closed_after_its_loop_ended() -> None:
    with hs.HostileServer(hs.slow_honest(0.0)) as server:
        api = AsyncGameAPI(TOKEN, server.base_url, **FAST)
        assert asyncio.run(api.get_status())["status"] == "healthy"
        anyio.run(api.aclose, backend="trio")  # nothing awaited on the dead loop
        with pytest.raises(RuntimeError, match="closed"):
            asyncio.run(api.get_status())


# -- peak memory against an endless body, in a process of its own -----------------------------------------


def peak_rss(driver: str, base_url: str, cap: int) -> Tuple[int, int]:
    """Peak RSS in bytes of a fresh process before and after reading an endless answer under ``cap``.

    The process is ``benchmarks/endless_body.py``'s probe: one probe for the
    test (which asserts the bound) and the benchmark (which prints figures).
    """
    before, after, _ = endless_body.measure(driver, base_url, cap, TOKEN)
    return int(before * 1024 * 1024), int(after * 1024 * 1024)


@pytest.mark.skipif(sys.platform != "linux", reason="the probe reads /proc/self/status")
@pytest.mark.parametrize("case", ["endless chunked", "endless until close"])
def test_peak_memory_against_an_endless_body(driver: str, case: str) -> None:
    cap = 8 * 1024 * 1024
    with hs.HostileServer(hs.on_api(ENDLESS[case])) as server:
        _, peak = peak_rss(driver, server.base_url, cap)
    assert peak < 2 * cap + 100 * 1024 * 1024, peak


# -- absurd values in answers: the client's own errors, or the value set aside ------------------------------


async def _first_event(api: Any, server: hs.HostileServer, watcher: str, path: str, *orders: Dict[str, Any]) -> Any:
    """The first event of ``watcher`` when another client places ``orders`` once the watch has polled ``path``.

    Nothing exists when the watch starts, so whatever it reports is a change.
    """

    def place() -> None:
        waited = 0
        while server.count(path, "GET") == 0 and waited < 1000:
            time.sleep(0.01)
            waited += 1
        with SyncGameAPI(TOKEN, server.base_url, **FAST) as other:
            for order in orders:
                other.create_order(order)

    placing = threading.Thread(target=place, daemon=True)
    placing.start()
    try:
        (event,) = await collect(getattr(api, watcher)(interval=0.02), lambda events: len(events) == 1)
    finally:
        placing.join()
    return event


YEAR_9999 = "Fri, 31 Dec 9999 23:59:59 GMT"


def test_a_date_of_year_9999_is_set_aside(driver: str) -> None:
    async def scenario(api: Any) -> Any:
        placed = [await api.create_order(future_order()) for _ in range(3)]
        return placed, api.clock_offset

    with hs.HostileServer(hs.dated(YEAR_9999)) as server:
        placed, offset = run(driver, scenario, server.base_url)
    assert len(placed) == 3 and all(str(order["order_id"]).startswith("ord_") for order in placed)
    assert offset is None  # the only stamp was implausible


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:59-99:59", "now+99:59"])
def test_a_status_timestamp_with_an_impossible_zone_is_set_aside(driver: str, timestamp: str) -> None:
    if timestamp.startswith("now"):
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="milliseconds")
        timestamp = now + timestamp[3:]

    async def scenario(api: Any) -> Any:
        await api.get_status()
        placed = [await api.create_order(future_order()) for _ in range(2)]
        return placed, api.clock_offset

    with hs.HostileServer(hs.status_timestamp(timestamp)) as server:
        placed, offset = run(driver, scenario, server.base_url)
    assert len(placed) == 2
    assert offset is None  # no Date header here, and the timestamp says nothing


HUGE_PRICE = int("9" * 401)


def test_a_price_of_401_digits_is_ignored_by_best_offers(driver: str) -> None:
    async def scenario(api: Any) -> Any:
        await api.create_order(future_order("buy", price=100))
        await api.create_order(future_order("sell", price=200))
        return await api.get_market_best_offers()

    with hs.HostileServer(hs.market_price(HUGE_PRICE)) as server:
        offers = run(driver, scenario, server.base_url)
    (book,) = offers.values()
    assert [row["price"] for row in book["buy"]] == [100] and book["sell"] == []


def test_a_price_of_401_digits_is_ignored_by_watch_market(driver: str) -> None:
    with hs.HostileServer(hs.market_price(HUGE_PRICE)) as server:
        orders = (future_order("buy", price=100), future_order("sell", price=200))
        event = run(driver, lambda api: _first_event(api, server, "watch_market", "/market", *orders), server.base_url)
    assert event.bid == 100 and event.ask != HUGE_PRICE


def test_an_order_id_of_5000_digits_is_an_order_of_its_own(driver: str) -> None:
    order_id = "ord_" + "7" * 5000
    with hs.HostileServer(hs.order_id_listed(order_id)) as server:
        event = run(
            driver, lambda api: _first_event(api, server, "watch_orders", "/orders", future_order()), server.base_url
        )
    assert event.order["order_id"] == order_id


def test_an_executed_volume_beyond_any_number_is_ignored(driver: str) -> None:
    with hs.HostileServer(hs.executed_volume_listed("1e1000000")) as server:
        event = run(
            driver, lambda api: _first_event(api, server, "watch_orders", "/orders", future_order()), server.base_url
        )
    assert event.kind != "filled" and event.volume is None
