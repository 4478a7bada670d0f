"""Each contender as a round function: do ``n`` calls of ``get_status``, return (cpu, wall) seconds.

Every contender is built once (connections open, token exchanged) and then
timed over many rounds, as a long-running trading process would use it.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable, Dict, Tuple

from .measure import Round, stopwatch
from .server import TOKEN

__all__ = ["sync_contenders", "async_contenders", "published_contender", "access_token"]


def access_token(base_url: str) -> str:
    import requests

    answer = requests.post(base_url + "/api/v1/auth/token", json={"token": TOKEN}, timeout=10)
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def sync_contenders(base_url: str) -> Tuple[Dict[str, Round], Callable[[], None]]:
    """gameproto_sync against a plain ``requests.Session().get(...).json()`` loop."""
    import requests

    from gameproto_sync import GameAPI

    api = GameAPI(TOKEN, base_url)
    session = requests.Session()
    headers = {"Authorization": f"Bearer {access_token(base_url)}"}
    url = base_url + "/api/v1/status"

    def ours(n: int) -> Tuple[float, float]:
        spent = stopwatch()
        for _ in range(n):
            api.get_status()
        return spent()

    def plain_requests(n: int) -> Tuple[float, float]:
        spent = stopwatch()
        for _ in range(n):
            session.get(url, headers=headers, timeout=30).json()
        return spent()

    def close() -> None:
        api.close()
        session.close()

    return {"gameproto_sync": ours, "requests loop": plain_requests}, close


def _in_fresh_loop(backend: str, function: Callable[..., Any]) -> Round:
    """A round run as one ``anyio.run`` of ``function(n)`` on ``backend``."""
    import anyio

    return lambda n: anyio.run(function, n, backend=backend)


async def _gameproto_async(base_url: str, n: int) -> Tuple[float, float]:
    """``n`` calls of gameproto_async, timed after a first call opened the connection and got a token."""
    from gameproto_async import GameAPI

    async with GameAPI(TOKEN, base_url) as api:
        await api.get_status()
        spent = stopwatch()
        for _ in range(n):
            await api.get_status()
        return spent()


def async_contenders(base_url: str, backend: str) -> Dict[str, Round]:
    """gameproto_async against a raw ``httpcore.AsyncConnectionPool`` loop, on one backend.

    Each round opens its client in a fresh event loop (anyio.run) and times
    only the calls, after a first call has opened the connection and, for
    gameproto, exchanged the token.
    """
    import httpcore

    token = access_token(base_url)
    url = (base_url + "/api/v1/status").encode()
    headers = [(b"Host", base_url.split("//", 1)[1].encode()), (b"Authorization", f"Bearer {token}".encode())]

    async def raw(n: int) -> Tuple[float, float]:
        async with httpcore.AsyncConnectionPool() as pool:
            response = await pool.request(b"GET", url, headers=headers)
            json.loads(response.content)
            spent = stopwatch()
            for _ in range(n):
                response = await pool.request(b"GET", url, headers=headers)
                json.loads(response.content)
            return spent()

    return {
        f"gameproto_async ({backend})": _in_fresh_loop(backend, functools.partial(_gameproto_async, base_url)),
        f"httpcore loop ({backend})": _in_fresh_loop(backend, raw),
    }


def published_contender(base_url: str) -> Dict[str, Round]:
    """The published ``game-api-client`` (asyncio, httpx) next to gameproto_async on asyncio."""
    from game_client import GameAPI as Published  # the benchmark-only dependency

    async def theirs(n: int) -> Tuple[float, float]:
        api = Published(TOKEN, base_url)
        await api.get_status()
        spent = stopwatch()
        for _ in range(n):
            await api.get_status()
        return spent()

    return {
        "gameproto_async (asyncio)": _in_fresh_loop("asyncio", functools.partial(_gameproto_async, base_url)),
        "game-api-client 0.1.2": _in_fresh_loop("asyncio", theirs),
    }
