"""Each contender as a round function: do ``n`` calls of ``get_status``, return (cpu, wall) seconds.

Every contender is built once (connections open, token exchanged) and then
timed over many rounds, as a long-running trading process would use it.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, Tuple

from .server import TOKEN

__all__ = ["sync_contenders", "async_contenders", "published_contender", "access_token"]

Round = Callable[[int], Tuple[float, float]]


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
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n):
            api.get_status()
        return time.process_time() - cpu, time.perf_counter() - wall

    def plain_requests(n: int) -> Tuple[float, float]:
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n):
            session.get(url, headers=headers, timeout=30).json()
        return time.process_time() - cpu, time.perf_counter() - wall

    def close() -> None:
        api.close()
        session.close()

    return {"gameproto_sync": ours, "requests loop": plain_requests}, close


class _Loop:
    """One event loop kept running in a thread-free way: each round is one ``run`` call."""

    def __init__(self, backend: str) -> None:
        self.backend = backend

    def run(self, function: Callable[..., Any], *args: Any) -> Any:
        import anyio

        return anyio.run(function, *args, backend=self.backend)


def async_contenders(base_url: str, backend: str) -> Dict[str, Round]:
    """gameproto_async against a raw ``httpcore.AsyncConnectionPool`` loop, on one backend.

    Each round opens its client in a fresh event loop (anyio.run) and times
    only the calls, after a first call has opened the connection and, for
    gameproto, exchanged the token.
    """
    import httpcore

    from gameproto_async import GameAPI

    token = access_token(base_url)
    url = (base_url + "/api/v1/status").encode()
    headers = [(b"Host", base_url.split("//", 1)[1].encode()), (b"Authorization", f"Bearer {token}".encode())]

    async def ours(n: int) -> Tuple[float, float]:
        async with GameAPI(TOKEN, base_url) as api:
            await api.get_status()
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(n):
                await api.get_status()
            return time.process_time() - cpu, time.perf_counter() - wall

    async def raw(n: int) -> Tuple[float, float]:
        async with httpcore.AsyncConnectionPool() as pool:
            response = await pool.request(b"GET", url, headers=headers)
            json.loads(response.content)
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(n):
                response = await pool.request(b"GET", url, headers=headers)
                json.loads(response.content)
            return time.process_time() - cpu, time.perf_counter() - wall

    loop = _Loop(backend)
    return {
        f"gameproto_async ({backend})": lambda n: loop.run(ours, n),  # type: ignore[no-any-return]
        f"httpcore loop ({backend})": lambda n: loop.run(raw, n),  # type: ignore[no-any-return]
    }


def published_contender(base_url: str) -> Dict[str, Round]:
    """The published ``game-api-client`` (asyncio, httpx) next to gameproto_async on asyncio."""
    from game_client import GameAPI as Published  # the benchmark-only dependency

    from gameproto_async import GameAPI

    async def theirs(n: int) -> Tuple[float, float]:
        api = Published(TOKEN, base_url)
        await api.get_status()
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n):
            await api.get_status()
        return time.process_time() - cpu, time.perf_counter() - wall

    async def ours(n: int) -> Tuple[float, float]:
        async with GameAPI(TOKEN, base_url) as api:
            await api.get_status()
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(n):
                await api.get_status()
            return time.process_time() - cpu, time.perf_counter() - wall

    loop = _Loop("asyncio")
    return {
        "gameproto_async (asyncio)": lambda n: loop.run(ours, n),  # type: ignore[no-any-return]
        "game-api-client 0.1.2": lambda n: loop.run(theirs, n),  # type: ignore[no-any-return]
    }
