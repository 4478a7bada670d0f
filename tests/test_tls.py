"""Both clients against the embedded exchange served over TLS, with a throwaway CA (trustme).

The certificate is unknown to every default trust store, so default settings
must refuse it (a ``NetworkError``, never an "outcome unknown": nothing was
sent), a CA bundle path must accept it, and ``verify_ssl=False`` must connect
and warn once per client, not once per call.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator, List

import pytest

from gameproto._boundary import Request, Response
from gameproto._errors import NetworkError, OutcomeUnknownError
from gameproto.simulator.exchange import Exchange
from gameproto_async import GameAPI as AsyncGameAPI
from gameproto_exchange import RunningServer, ServerThread, serve_exchange
from gameproto_sync import GameAPI as SyncGameAPI

from .support import TOKEN, future_order

if TYPE_CHECKING:
    from trustme import CA

trustme = pytest.importorskip("trustme")

WARNING_TEXT = "TLS certificate verification is OFF"


@pytest.fixture(scope="module")
def authority() -> CA:
    made: CA = trustme.CA()
    return made


@pytest.fixture(scope="module")
def server_context(authority: CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_path(authority: CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def tls_server(exchange: Exchange, server_context: ssl.SSLContext) -> Iterator[RunningServer[Exchange]]:
    with ServerThread(exchange, ssl_context=server_context) as running:
        assert running.base_url.startswith("https://")
        yield running


@pytest.fixture
async def tls_aserver(exchange: Exchange, server_context: ssl.SSLContext) -> AsyncIterator[RunningServer[Exchange]]:
    async with serve_exchange(exchange, ssl_context=server_context) as running:
        assert running.base_url.startswith("https://")
        yield running


def _warnings(caplog: pytest.LogCaptureFixture) -> List[logging.LogRecord]:
    return [record for record in caplog.records if WARNING_TEXT in record.getMessage()]


def _access_token(exchange: Exchange) -> str:
    """A valid access token, obtained from the exchange directly (no network)."""
    body = json.dumps({"token": TOKEN}).encode()
    answer = exchange.handle(Request("POST", "/auth/token", headers=(("content-type", "application/json"),), body=body))
    assert answer.status == 200
    return str(json.loads(answer.body)["access_token"])


def _give_token(api: Any, exchange: Exchange) -> None:
    """Hand the client a valid access token so that its next request is the call itself, not an exchange."""
    tokens = api._session.tokens
    body = json.dumps({"access_token": _access_token(exchange), "expires_in": 3600}).encode()
    tokens.accept(Response(200, {"content-type": "application/json"}, body), time.monotonic())


# --- the blocking client ------------------------------------------------------------------------


def test_sync_default_settings_refuse_an_unknown_certificate(tls_server: RunningServer[Exchange]) -> None:
    with SyncGameAPI(TOKEN, tls_server.base_url, max_retries=0, timeout=10) as api:
        with pytest.raises(NetworkError) as caught:
            api.get_status()
        assert not isinstance(caught.value, OutcomeUnknownError)
        assert "tls" in str(caught.value).lower() or "ssl" in str(caught.value).lower()
        assert api.test_connection() is False
    assert tls_server.exchange.attempts == {}


def test_sync_default_retries_then_still_a_network_error(tls_server: RunningServer[Exchange]) -> None:
    # A TLS failure sent nothing, so it may be retried; with the retries spent it is still a NetworkError.
    with SyncGameAPI(TOKEN, tls_server.base_url, max_retries=1, timeout=10) as api:
        with pytest.raises(NetworkError) as caught:
            api.get_status()
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert "2 attempts" in str(caught.value)


def test_sync_create_order_over_a_refused_certificate_is_not_outcome_unknown(
    tls_server: RunningServer[Exchange],
) -> None:
    exchange = tls_server.exchange
    with SyncGameAPI(TOKEN, tls_server.base_url, max_retries=0, timeout=10) as api:
        # First as a new client: the token exchange is what fails.
        with pytest.raises(NetworkError) as caught:
            api.create_order(future_order())
        assert not isinstance(caught.value, OutcomeUnknownError)
        # Then with a valid access token already held: the POST /orders itself meets the TLS failure.
        _give_token(api, exchange)
        with pytest.raises(NetworkError) as caught:
            api.create_order(future_order())
        assert not isinstance(caught.value, OutcomeUnknownError)
        assert caught.value.path == "/orders"
    assert exchange.orders_of("alice") == []
    assert ("POST", "/orders") not in exchange.attempts


def test_sync_ca_bundle_path_connects(tls_server: RunningServer[Exchange], ca_path: str) -> None:
    with SyncGameAPI(TOKEN, tls_server.base_url, verify_ssl=ca_path, timeout=10) as api:
        assert api.get_status()["status"] == "healthy"
        created: Any = api.create_order(future_order())
        assert api.find_order_by_id(created["order_id"]) is not None
    assert tls_server.exchange.exchanges == 1


def test_sync_ca_bundle_as_a_path_object_and_by_host_name(tls_server: RunningServer[Exchange], ca_path: str) -> None:
    url = f"https://localhost:{tls_server.port}"
    with SyncGameAPI(TOKEN, url, verify_ssl=Path(ca_path), timeout=10) as api:  # type: ignore[arg-type]
        assert api.get_status()["status"] == "healthy"


def test_sync_wrong_host_name_is_refused_even_with_the_ca(exchange: Exchange, authority: CA, ca_path: str) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("exchange.example").configure_cert(context)
    with ServerThread(exchange, ssl_context=context) as running:
        with SyncGameAPI(TOKEN, running.base_url, verify_ssl=ca_path, max_retries=0, timeout=10) as api:
            with pytest.raises(NetworkError) as caught:
                api.get_status()
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert exchange.attempts == {}


def test_sync_verify_off_connects_and_warns_once_per_client(
    tls_server: RunningServer[Exchange], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gameproto")
    with warnings.catch_warnings(record=True) as python_warnings:
        warnings.simplefilter("always")
        for number in (1, 2):
            with SyncGameAPI(TOKEN, tls_server.base_url, verify_ssl=False, timeout=10) as api:
                assert api.get_status()["status"] == "healthy"
                assert api.get_orders() == []
            assert len(_warnings(caplog)) == number
    records = _warnings(caplog)
    assert [record.name for record in records] == ["gameproto", "gameproto"]
    assert all(record.levelno == logging.WARNING for record in records)
    assert tls_server.base_url in records[0].getMessage()
    # urllib3's InsecureRequestWarning on every call is silenced: the log line said it once.
    assert [str(w.message) for w in python_warnings if "Unverified HTTPS" in str(w.message)] == []


def test_verify_off_over_plain_http_does_not_warn(
    server: RunningServer[Exchange], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gameproto")
    with SyncGameAPI(TOKEN, server.base_url, verify_ssl=False) as api:
        api.get_status()
    assert _warnings(caplog) == []


def test_sync_from_env_takes_the_ca_bundle(
    tls_server: RunningServer[Exchange], ca_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAME_API_TOKEN", TOKEN)
    monkeypatch.setenv("GAME_API_URL", tls_server.base_url)
    monkeypatch.setenv("GAME_API_VERIFY_SSL", ca_path)
    with SyncGameAPI.from_env(dotenv_path=None, timeout=10) as api:
        assert api.get_status()["status"] == "healthy"
    monkeypatch.delenv("GAME_API_VERIFY_SSL")
    with SyncGameAPI.from_env(dotenv_path=None, timeout=10, max_retries=0) as api:
        with pytest.raises(NetworkError):
            api.get_status()


def test_sync_from_env_verify_off(
    tls_server: RunningServer[Exchange], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gameproto")
    monkeypatch.setenv("GAME_API_TOKEN", TOKEN)
    monkeypatch.setenv("GAME_API_URL", tls_server.base_url)
    monkeypatch.setenv("GAME_API_VERIFY_SSL", "false")
    with SyncGameAPI.from_env(dotenv_path=None, timeout=10) as api:
        assert api.get_status()["status"] == "healthy"
        api.get_status()
    assert len(_warnings(caplog)) == 1


def test_a_refused_handshake_does_not_stop_the_server(tls_server: RunningServer[Exchange], ca_path: str) -> None:
    for _ in range(3):
        with SyncGameAPI(TOKEN, tls_server.base_url, max_retries=0, timeout=10) as api:
            with pytest.raises(NetworkError):
                api.get_status()
    with SyncGameAPI(TOKEN, tls_server.base_url, verify_ssl=ca_path, timeout=10) as api:
        assert api.get_status()["status"] == "healthy"


# --- the async client, on asyncio and trio -----------------------------------------------------


@pytest.mark.anyio
async def test_async_default_settings_refuse_an_unknown_certificate(tls_aserver: RunningServer[Exchange]) -> None:
    async with AsyncGameAPI(TOKEN, tls_aserver.base_url, max_retries=0, timeout=10) as api:
        with pytest.raises(NetworkError) as caught:
            await api.get_status()
        assert not isinstance(caught.value, OutcomeUnknownError)
        assert await api.test_connection() is False
    assert tls_aserver.exchange.attempts == {}


@pytest.mark.anyio
async def test_async_create_order_over_a_refused_certificate_is_not_outcome_unknown(
    tls_aserver: RunningServer[Exchange],
) -> None:
    exchange = tls_aserver.exchange
    async with AsyncGameAPI(TOKEN, tls_aserver.base_url, max_retries=0, timeout=10) as api:
        with pytest.raises(NetworkError) as caught:
            await api.create_order(future_order())
        assert not isinstance(caught.value, OutcomeUnknownError)
        _give_token(api, exchange)
        with pytest.raises(NetworkError) as caught:
            await api.create_order(future_order())
        assert not isinstance(caught.value, OutcomeUnknownError)
        assert caught.value.path == "/orders"
    assert exchange.orders_of("alice") == []
    assert ("POST", "/orders") not in exchange.attempts


@pytest.mark.anyio
async def test_async_ca_bundle_path_connects(tls_aserver: RunningServer[Exchange], ca_path: str) -> None:
    async with AsyncGameAPI(TOKEN, tls_aserver.base_url, verify_ssl=ca_path, timeout=10) as api:
        assert (await api.get_status())["status"] == "healthy"
        created: Any = await api.create_order(future_order())
        assert await api.find_order_by_id(created["order_id"]) is not None
        for _ in range(5):
            await api.get_status()
    assert tls_aserver.exchange.exchanges == 1
    assert tls_aserver.connections_accepted == 1  # one TLS connection, kept alive


@pytest.mark.anyio
async def test_async_verify_off_connects_and_warns_once_per_client(
    tls_aserver: RunningServer[Exchange], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gameproto")
    for number in (1, 2):
        async with AsyncGameAPI(TOKEN, tls_aserver.base_url, verify_ssl=False, timeout=10) as api:
            assert (await api.get_status())["status"] == "healthy"
            assert await api.get_orders() == []
        assert len(_warnings(caplog)) == number
    assert [record.name for record in _warnings(caplog)] == ["gameproto", "gameproto"]


@pytest.mark.anyio
async def test_async_from_env_takes_the_ca_bundle(
    tls_aserver: RunningServer[Exchange], ca_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAME_API_TOKEN", TOKEN)
    monkeypatch.setenv("GAME_API_URL", tls_aserver.base_url)
    monkeypatch.setenv("GAME_API_VERIFY_SSL", ca_path)
    async with AsyncGameAPI.from_env(dotenv_path=None, timeout=10) as api:
        assert (await api.get_status())["status"] == "healthy"
    monkeypatch.setenv("GAME_API_VERIFY_SSL", "true")
    async with AsyncGameAPI.from_env(dotenv_path=None, timeout=10, max_retries=0) as api:
        with pytest.raises(NetworkError):
            await api.get_status()


def test_async_a_missing_ca_bundle_is_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CA bundle"):
        AsyncGameAPI(TOKEN, "https://127.0.0.1:1", verify_ssl=str(tmp_path / "missing.pem"))


@pytest.mark.anyio
async def test_async_tls_failure_says_it_is_the_certificate(tls_aserver: RunningServer[Exchange]) -> None:
    async with AsyncGameAPI(TOKEN, tls_aserver.base_url, max_retries=0, timeout=10) as api:
        with pytest.raises(NetworkError) as caught:
            await api.get_status()
    text = str(caught.value)
    assert text.startswith("tls: "), text
    assert "CERTIFICATE_VERIFY_FAILED" in text, text
