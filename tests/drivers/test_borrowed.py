"""``GameAPI(..., http_client=...)``: the application's own httpx, aiohttp or requests client, borrowed.

What is refused when the client is made (each setting of the borrowed client
that would act on gameproto's requests, named), and that a borrowed client is
left open and usable after the ``GameAPI`` that used it is closed, on each
library. The behaviour on each borrowed transport is the whole driver suite's
(``GAMEPROTO_TRANSPORTS=all``, tests/support/harness.py).
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, List

import anyio
import pytest
import requests

from gameproto import InvalidArgumentError
from gameproto.simulator.exchange import Exchange
from gameproto_async import GameAPI as AsyncGameAPI
from gameproto_sync import GameAPI as SyncGameAPI
from tests.support.common import TOKEN, future_order
from tests.support.harness import TRANSPORTS, Harness, run_on


def _httpx() -> Any:
    """httpx, or the case skipped: the README's command runs without the extras."""
    return pytest.importorskip("httpx", reason="needs httpx (the 'httpx' extra)")


URL = "http://127.0.0.1:9"


# -- refused when made, naming the setting ------------------------------------------------------------------


def _retrying_session(retries: Any) -> Any:
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(max_retries=retries))
    return session


def _with(make: Callable[[], Any], **attributes: Any) -> Any:
    made = make()
    for name, value in attributes.items():
        setattr(made, name, value)
    return made


BLOCKING_REFUSED: Dict[str, Any] = {
    "auth": (lambda: _with(requests.Session, auth=("user", "secret")), "auth"),
    "hooks": (lambda: _with(requests.Session, hooks={"response": [print]}), "hooks"),
    "retries": (lambda: _retrying_session(3), "max_retries"),
    "post retries": (
        lambda: _retrying_session(__import__("urllib3").util.Retry(total=2, allowed_methods=None)),
        "max_retries",
    ),
    "pool_block": (lambda: _blocking_session(), "pool_block"),
    "authorization header": (lambda: _headers(requests.Session(), "Authorization"), "Authorization"),
    "httpx auth": (lambda: _httpx().Client(auth=("user", "secret")), "auth"),
    "httpx hooks": (lambda: _httpx().Client(event_hooks={"request": [print]}), "event_hooks"),
    "httpx cookie header": (lambda: _httpx().Client(headers={"Cookie": "a=b"}), "Cookie"),
    "httpx async client": (lambda: _httpx().AsyncClient(), "httpx.Client"),
    "not a client": (lambda: object(), "requests.Session or an httpx.Client"),
}


def _blocking_session() -> Any:
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_block=True))
    return session


def _headers(session: Any, name: str) -> Any:
    session.headers[name] = "Bearer someone-else"
    return session


@pytest.mark.parametrize("case", sorted(BLOCKING_REFUSED))
def test_the_blocking_client_refuses_what_would_act_on_its_requests(case: str) -> None:
    make, named = BLOCKING_REFUSED[case]
    with pytest.raises(InvalidArgumentError, match=named):
        SyncGameAPI(TOKEN, URL, http_client=make())


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"verify_ssl": False}, "verify_ssl=False"),
        ({"trust_env": False}, "trust_env=False"),
        ({"max_connections": 3}, "max_connections=3"),
    ],
)
@pytest.mark.parametrize("client", [SyncGameAPI, AsyncGameAPI])
def test_own_connection_settings_with_a_borrowed_client_are_refused(
    client: Any, options: Dict[str, Any], named: str
) -> None:
    borrowed = requests.Session() if client is SyncGameAPI else _httpx().AsyncClient()
    with pytest.raises(InvalidArgumentError, match=named):
        client(TOKEN, URL, http_client=borrowed, **options)


ASYNC_REFUSED: Dict[str, Any] = {
    "httpx auth": (lambda: _httpx().AsyncClient(auth=("user", "secret")), "auth"),
    "httpx hooks": (lambda: _httpx().AsyncClient(event_hooks={"response": [print]}), "event_hooks"),
    "httpx authorization header": (lambda: _httpx().AsyncClient(headers={"Authorization": "x"}), "Authorization"),
    "httpx blocking client": (lambda: _httpx().Client(), "httpx.AsyncClient"),
    "a requests session": (lambda: requests.Session(), "httpx.AsyncClient or an aiohttp.ClientSession"),
}


@pytest.mark.parametrize("case", sorted(ASYNC_REFUSED))
def test_the_async_client_refuses_what_would_act_on_its_requests(case: str) -> None:
    make, named = ASYNC_REFUSED[case]
    with pytest.raises(InvalidArgumentError, match=named):
        AsyncGameAPI(TOKEN, URL, http_client=make())


def _aiohttp_cases() -> Dict[str, Any]:
    aiohttp = pytest.importorskip("aiohttp", reason="needs aiohttp (the 'aiohttp' extra)")

    async def middleware(request: Any, handler: Any) -> Any:
        return await handler(request)

    trace = aiohttp.TraceConfig()
    return {
        "auth": (lambda: aiohttp.ClientSession(auth=aiohttp.BasicAuth("user", "secret")), "auth"),
        "trace_configs": (lambda: aiohttp.ClientSession(trace_configs=[trace]), "trace_configs"),
        "middlewares": (lambda: aiohttp.ClientSession(middlewares=(middleware,)), "middlewares"),
        "base_url": (lambda: aiohttp.ClientSession(base_url="http://127.0.0.1:9"), "base_url"),
        "authorization header": (lambda: aiohttp.ClientSession(headers={"Authorization": "x"}), "Authorization"),
    }


@pytest.mark.filterwarnings("ignore:.*auth.*:DeprecationWarning")  # aiohttp deprecates the setting refused here
@pytest.mark.parametrize("case", ["auth", "trace_configs", "middlewares", "base_url", "authorization header"])
def test_an_aiohttp_session_that_would_act_on_its_requests_is_refused(case: str) -> None:
    make, named = _aiohttp_cases()[case]

    async def main() -> None:
        session = make()
        try:
            with pytest.raises(InvalidArgumentError, match=named):
                AsyncGameAPI(TOKEN, URL, http_client=session)
        finally:
            await session.close()

    asyncio.run(main())


def test_an_aiohttp_session_is_refused_on_trio() -> None:
    aiohttp = pytest.importorskip("aiohttp", reason="needs aiohttp (the 'aiohttp' extra)")
    pytest.importorskip("trio")

    async def made_on_asyncio() -> Any:
        return aiohttp.ClientSession()

    session = asyncio.run(made_on_asyncio())

    async def on_trio() -> None:
        with pytest.raises(InvalidArgumentError, match="asyncio only, not trio"):
            AsyncGameAPI(TOKEN, URL, http_client=session)

    try:
        anyio.run(on_trio, backend="trio")
    finally:
        asyncio.run(session.close())


# -- a borrowed client is left open, and usable ----------------------------------------------------------------


async def _own_request(client: Any, url: str) -> int:
    """The application's own request through its client: the status of ``GET url``."""
    if isinstance(client, requests.Session):
        return int(client.get(url, timeout=10).status_code)
    if type(client).__module__.startswith("httpx") and not hasattr(client, "aclose"):
        return client.get(url, timeout=10).status_code
    if type(client).__module__.startswith("httpx"):
        return (await client.get(url, timeout=10)).status_code
    async with client.get(url) as answer:  # aiohttp
        return int(answer.status)


@pytest.mark.parametrize("transport", [each for each in TRANSPORTS if each.borrowed], ids=lambda each: each.name)
def test_a_borrowed_client_stays_open_and_usable_after_the_client_is_closed(transport: Any) -> None:
    pytest.importorskip(transport.library, reason=f"needs {transport.library} (the '{transport.library}' extra)")

    async def behaviour(h: Harness) -> List[int]:
        assert transport.make is not None
        borrowed, close = transport.make({})
        try:
            statuses = []
            # Closed by the context manager, then by close()/aclose() on a second client: neither closes it.
            async with h.client(http_client=borrowed) as api:
                assert (await api.get_status())["status"] == "healthy"
                assert (await api.create_order(future_order()))["order_id"]
            statuses.append(await _own_request(borrowed, h.base_url + "/api/v1/status"))
            second = h.client(http_client=borrowed)
            assert len(await second.get_orders()) == 1
            await second.aclose()
            statuses.append(await _own_request(borrowed, h.base_url + "/api/v1/status"))
            return statuses
        finally:
            await close()

    exchange = Exchange(tokens={TOKEN: "alice"}, seed=7)
    # The exchange answers the application's own request (no token) with 401: it went through.
    assert run_on(transport.name, behaviour, exchange) == [401, 401]
    assert len(exchange.orders_of("alice")) == 1
