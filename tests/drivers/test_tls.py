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
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator, List, Union

import pytest

from gameproto._boundary import Request, Response
from gameproto._errors import NetworkError, OutcomeUnknownError
from gameproto.simulator.exchange import Exchange
from gameproto_async import GameAPI as AsyncGameAPI
from gameproto_exchange import RunningServer
from gameproto_sync import GameAPI as SyncGameAPI
from tests.support.common import TOKEN, future_order
from tests.support.harness import Harness, every_driver

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


def _warnings(caplog: pytest.LogCaptureFixture) -> List[logging.LogRecord]:
    return [record for record in caplog.records if WARNING_TEXT in record.getMessage()]


def _access_token(exchange: Exchange) -> str:
    """A valid access token, obtained from the exchange directly (no network)."""
    body = json.dumps({"token": TOKEN}).encode()
    answer = exchange.handle(Request("POST", "/auth/token", headers=(("content-type", "application/json"),), body=body))
    assert answer.status == 200
    return str(json.loads(answer.body)["access_token"])


def _give_token(api: Union[SyncGameAPI, AsyncGameAPI], exchange: Exchange) -> None:
    """Hand the client a valid access token so that its next request is the call itself, not an exchange."""
    tokens = api._session.tokens
    body = json.dumps({"access_token": _access_token(exchange), "expires_in": 3600}).encode()
    tokens.accept(Response(200, {"content-type": "application/json"}, body), time.monotonic())


@asynccontextmanager
async def tls(h: Harness, context: ssl.SSLContext) -> AsyncIterator[RunningServer[Exchange]]:
    """The harness's exchange served over TLS with ``context``."""
    async with h.serve(ssl_context=context) as running:
        assert running.base_url.startswith("https://")
        yield running


@every_driver(max_retries=0, timeout=10)
async def test_default_settings_refuse_an_unknown_certificate(h: Harness, server_context: ssl.SSLContext) -> None:
    async with tls(h, server_context) as running:
        api = h.client(running.base_url)
        with pytest.raises(NetworkError) as caught:
            await api.get_status()
        assert not isinstance(caught.value, OutcomeUnknownError)
        text = str(caught.value)
        assert text.startswith("tls: ") and "CERTIFICATE_VERIFY_FAILED" in text, text
        assert await api.test_connection() is False
    assert h.exchange.attempts == {}


@every_driver(max_retries=1, timeout=10)
async def test_default_retries_then_still_a_network_error(h: Harness, server_context: ssl.SSLContext) -> None:
    # A TLS failure sent nothing, so it may be retried; with the retries spent it is still a NetworkError.
    async with tls(h, server_context) as running:
        with pytest.raises(NetworkError) as caught:
            await h.client(running.base_url).get_status()
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert "2 attempts" in str(caught.value)


@every_driver(max_retries=0, timeout=10)
async def test_create_order_over_a_refused_certificate_is_not_outcome_unknown(
    h: Harness, server_context: ssl.SSLContext
) -> None:
    async with tls(h, server_context) as running:
        api = h.client(running.base_url)
        # First as a new client: the token exchange is what fails.
        with pytest.raises(NetworkError) as caught:
            await api.create_order(future_order())
        assert not isinstance(caught.value, OutcomeUnknownError)
        # Then with a valid access token already held: the POST /orders itself meets the TLS failure.
        _give_token(h.unwrapped(api), h.exchange)
        with pytest.raises(NetworkError) as caught:
            await api.create_order(future_order())
        assert not isinstance(caught.value, OutcomeUnknownError)
        assert caught.value.path == "/orders"
    assert h.orders() == []
    assert ("POST", "/orders") not in h.exchange.attempts


@every_driver(borrowed=False, timeout=10)
async def test_a_ca_bundle_path_connects(h: Harness, server_context: ssl.SSLContext, ca_path: str) -> None:
    async with tls(h, server_context) as running:
        api = h.client(running.base_url, verify_ssl=ca_path)
        assert (await api.get_status())["status"] == "healthy"
        created = await api.create_order(future_order())
        assert await api.find_order_by_id(created["order_id"]) is not None
        for _ in range(5):
            await api.get_status()
        assert running.connections_accepted == 1  # one TLS connection, kept alive
    assert h.exchange.exchanges == 1


@every_driver(borrowed=False, timeout=10)
async def test_a_ca_bundle_as_a_path_object_and_by_host_name(
    h: Harness, server_context: ssl.SSLContext, ca_path: str
) -> None:
    async with tls(h, server_context) as running:
        api = h.client(f"https://localhost:{running.port}", verify_ssl=Path(ca_path))
        assert (await api.get_status())["status"] == "healthy"


@every_driver(max_retries=0, timeout=10)
async def test_a_wrong_host_name_is_refused_even_with_the_ca(h: Harness, authority: CA, ca_path: str) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("exchange.example").configure_cert(context)
    async with tls(h, context) as running:
        with pytest.raises(NetworkError) as caught:
            await h.client(running.base_url, verify_ssl=ca_path).get_status()
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert h.exchange.attempts == {}


@every_driver(borrowed=False, timeout=10)
async def test_verify_off_connects_and_warns_once_per_client(
    h: Harness, server_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gameproto")
    async with tls(h, server_context) as running:
        with warnings.catch_warnings(record=True) as python_warnings:
            warnings.simplefilter("always")
            for number in (1, 2):
                api = h.client(running.base_url, verify_ssl=False)
                assert (await api.get_status())["status"] == "healthy"
                assert await api.get_orders() == []
                await api.aclose()
                assert len(_warnings(caplog)) == number
    records = _warnings(caplog)
    assert [record.name for record in records] == ["gameproto", "gameproto"]
    assert all(record.levelno == logging.WARNING for record in records)
    assert running.base_url in records[0].getMessage()
    # urllib3's InsecureRequestWarning on every call is silenced: the log line said it once.
    assert [str(w.message) for w in python_warnings if "Unverified HTTPS" in str(w.message)] == []


@every_driver(borrowed=False)
async def test_verify_off_over_plain_http_does_not_warn(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gameproto")
    await h.client(verify_ssl=False).get_status()
    assert _warnings(caplog) == []


@every_driver(borrowed=False)
async def test_from_env_takes_the_ca_bundle(
    h: Harness, server_context: ssl.SSLContext, ca_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with tls(h, server_context) as running:
        monkeypatch.setenv("GAME_API_TOKEN", TOKEN)
        monkeypatch.setenv("GAME_API_URL", running.base_url)
        monkeypatch.setenv("GAME_API_VERIFY_SSL", ca_path)
        api = h.from_env(dotenv_path=None, timeout=10)
        assert api.verify_ssl == ca_path
        assert (await api.get_status())["status"] == "healthy"
        for verify in ("true", None):  # said, or left to the default: the system's trust store
            if verify is None:
                monkeypatch.delenv("GAME_API_VERIFY_SSL")
            else:
                monkeypatch.setenv("GAME_API_VERIFY_SSL", verify)
            api = h.from_env(dotenv_path=None, timeout=10, max_retries=0)
            assert api.verify_ssl is True
            with pytest.raises(NetworkError):
                await api.get_status()


@every_driver(borrowed=False)
async def test_from_env_verify_off(
    h: Harness, server_context: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gameproto")
    async with tls(h, server_context) as running:
        monkeypatch.setenv("GAME_API_TOKEN", TOKEN)
        monkeypatch.setenv("GAME_API_URL", running.base_url)
        monkeypatch.setenv("GAME_API_VERIFY_SSL", "false")
        api = h.from_env(dotenv_path=None, timeout=10)
        assert (await api.get_status())["status"] == "healthy"
        await api.get_status()
    assert len(_warnings(caplog)) == 1


@every_driver(borrowed=False, timeout=10)
async def test_a_refused_handshake_does_not_stop_the_server(
    h: Harness, server_context: ssl.SSLContext, ca_path: str
) -> None:
    async with tls(h, server_context) as running:
        for _ in range(3):
            with pytest.raises(NetworkError):
                await h.client(running.base_url, max_retries=0).get_status()
        assert (await h.client(running.base_url, verify_ssl=ca_path).get_status())["status"] == "healthy"


@every_driver(borrowed=False)
async def test_a_missing_ca_bundle_is_refused_at_construction(h: Harness, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CA bundle"):
        h.client("https://127.0.0.1:1", verify_ssl=str(tmp_path / "missing.pem"))
