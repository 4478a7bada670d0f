"""Fixtures: the embedded exchange over a real loopback socket, on both async backends."""

from __future__ import annotations

import datetime as dt
from typing import Any, AsyncIterator, Dict, Iterator

import pytest

from gameproto.simulator.exchange import Exchange
from gameproto_exchange import ServerThread, serve_exchange

TOKEN = "personal-token-alice-0123456789"
OTHER_TOKEN = "personal-token-bob-9876543210"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def exchange() -> Exchange:
    return Exchange(tokens={TOKEN: "alice", OTHER_TOKEN: "bob"}, seed=7)


@pytest.fixture
def server(exchange: Exchange) -> Iterator[Any]:
    """The exchange served from a background thread, for the blocking client."""
    with ServerThread(exchange) as running:
        yield running


@pytest.fixture
async def aserver(exchange: Exchange) -> AsyncIterator[Any]:
    """The exchange served on the test's own event loop (asyncio or trio)."""
    async with serve_exchange(exchange) as running:
        yield running


def future_order(side: str = "buy", price: float = 100.0, volume: float = 1.0, **fields: Any) -> Dict[str, Any]:
    """A valid order for a quarter hour of tomorrow, in UTC."""
    day = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).date().isoformat()
    order: Dict[str, Any] = {
        "side": side,
        "price": price,
        "volume": volume,
        "date": day,
        "start_time": "10:00",
        "end_time": "10:15",
        "duration": "15m",
        "tz_offset_hours": 0,
    }
    order.update(fields)
    return order
