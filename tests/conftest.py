"""Fixtures: the embedded exchange over a real loopback socket, on both async backends."""

from __future__ import annotations

from typing import AsyncIterator, Iterator

import pytest

from gameproto.simulator.exchange import Exchange
from gameproto_exchange import RunningServer, ServerThread, serve_exchange
from tests.support.common import OTHER_TOKEN, TOKEN
from tests.support.redis_server import RedisServer


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def exchange() -> Exchange:
    return Exchange(tokens={TOKEN: "alice", OTHER_TOKEN: "bob"}, seed=7)


@pytest.fixture
def server(exchange: Exchange) -> Iterator[RunningServer[Exchange]]:
    """The exchange served from a background thread, for the blocking client."""
    with ServerThread(exchange) as running:
        yield running


@pytest.fixture
async def aserver(exchange: Exchange) -> AsyncIterator[RunningServer[Exchange]]:
    """The exchange served on the test's own event loop (asyncio or trio)."""
    async with serve_exchange(exchange) as running:
        yield running


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server of the test's own (skipped, with the reason, where there is none)."""
    with RedisServer() as server:
        yield server
