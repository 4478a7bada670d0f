"""CPU per call of the client on each borrowed HTTP client, beside that library's own bare call.

``python -m benchmarks.embedding [--calls N] [--rounds R] [--json]``: for a
``requests.Session``, an ``httpx.Client``, an ``httpx.AsyncClient`` (asyncio
and trio) and an ``aiohttp.ClientSession``, ``GameAPI(..., http_client=it)``
calling ``get_status`` against the library's own ``GET /status`` through the
same client object, with a timeout, its whole body read and parsed: the
same request. The exchange runs in a separate process (its CPU is not
counted); the contenders alternate, and each figure is the median of the
rounds. The goal: at most 1.15 times the bare call's CPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .contenders import access_token
from .measure import Round, alternate, stopwatch
from .server import TOKEN, ServerProcess

__all__ = ["GOAL", "measure", "main"]

#: The most the client may cost, per call, against the library's bare call.
GOAL = 1.15


def _blocking(
    make: Callable[[], Any], bare_get: Callable[[Any, str, Dict[str, str]], Any], base_url: str
) -> Dict[str, Round]:
    from gameproto_sync import GameAPI

    client = make()
    api = GameAPI(TOKEN, base_url, http_client=client)
    headers = {"Authorization": f"Bearer {access_token(base_url)}"}
    url = base_url + "/api/v1/status"

    def ours(n: int) -> Tuple[float, float]:
        spent = stopwatch()
        for _ in range(n):
            api.get_status()
        return spent()

    def bare(n: int) -> Tuple[float, float]:
        spent = stopwatch()
        for _ in range(n):
            json.loads(bare_get(client, url, headers))
        return spent()

    return {"gameproto": ours, "bare": bare}


def _requests_get(session: Any, url: str, headers: Dict[str, str]) -> bytes:
    return bytes(session.get(url, headers=headers, timeout=30).content)


def _httpx_get(client: Any, url: str, headers: Dict[str, str]) -> bytes:
    return bytes(client.get(url, headers=headers, timeout=30).content)


async def _httpx_async_get(client: Any, url: str, headers: Dict[str, str]) -> bytes:
    return bytes((await client.get(url, headers=headers, timeout=30)).content)


async def _aiohttp_get(session: Any, url: str, headers: Dict[str, str]) -> bytes:
    import aiohttp

    async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=30)) as answer:
        return bytes(await answer.read())


def _asynchronous(make: Callable[[], Any], bare_get: Any, close: str, base_url: str, backend: str) -> Dict[str, Round]:
    """Each round in a fresh event loop: the client made, warmed by a first call, then ``n`` timed calls."""
    import anyio

    from gameproto_async import GameAPI

    headers = {"Authorization": f"Bearer {access_token(base_url)}"}
    url = base_url + "/api/v1/status"

    async def ours(n: int) -> Tuple[float, float]:
        client = make()
        try:
            async with GameAPI(TOKEN, base_url, http_client=client) as api:
                await api.get_status()
                spent = stopwatch()
                for _ in range(n):
                    await api.get_status()
                return spent()
        finally:
            await getattr(client, close)()

    async def bare(n: int) -> Tuple[float, float]:
        client = make()
        try:
            await bare_get(client, url, headers)
            spent = stopwatch()
            for _ in range(n):
                json.loads(await bare_get(client, url, headers))
            return spent()
        finally:
            await getattr(client, close)()

    return {
        "gameproto": lambda n: anyio.run(ours, n, backend=backend),
        "bare": lambda n: anyio.run(bare, n, backend=backend),
    }


def _cases(base_url: str) -> List[Tuple[str, Callable[[], Dict[str, Round]]]]:
    cases: List[Tuple[str, Callable[[], Dict[str, Round]]]] = []
    if importlib.util.find_spec("requests"):
        import requests

        cases.append(("requests.Session", lambda: _blocking(requests.Session, _requests_get, base_url)))
    if importlib.util.find_spec("httpx"):
        import httpx

        cases.append(("httpx.Client", lambda: _blocking(httpx.Client, _httpx_get, base_url)))
        for backend in ("asyncio", "trio"):
            cases.append(
                (
                    f"httpx.AsyncClient ({backend})",
                    lambda backend=backend: _asynchronous(  # type: ignore[misc]
                        httpx.AsyncClient, _httpx_async_get, "aclose", base_url, backend
                    ),
                )
            )
    if importlib.util.find_spec("aiohttp"):
        import aiohttp

        cases.append(
            (
                "aiohttp.ClientSession (asyncio)",
                lambda: _asynchronous(aiohttp.ClientSession, _aiohttp_get, "close", base_url, "asyncio"),
            )
        )
    return cases


def measure(calls: int, rounds: int, only: str = "") -> Dict[str, Any]:
    """Every borrowed client's figures: CPU per call, ours and the bare call's, and their ratio."""
    results: Dict[str, Any] = {
        "python": sys.version.split()[0],
        "machine": platform.platform(),
        "calls": calls,
        "rounds": rounds,
        "clients": {},
    }
    with ServerProcess() as server:
        for name, contenders in _cases(server.base_url):
            if only.lower() not in name.lower():
                continue
            measured = alternate(contenders(), calls, rounds)
            ours, bare = measured["gameproto"]["cpu_per_op"], measured["bare"]["cpu_per_op"]
            results["clients"][name] = {
                "gameproto": ours,
                "bare": bare,
                "ratio": ours / bare,
                "holds": ours / bare <= GOAL,
            }
    return results


def report(results: Dict[str, Any]) -> str:
    lines = [
        f"CPU per get_status call, median of {results['rounds']} rounds of {results['calls']} calls "
        f"(Python {results['python']}, {results['machine']})",
        f"{'borrowed client':34} {'gameproto µs':>13} {'bare call µs':>13} {'ratio':>6}  goal <= {GOAL}",
    ]
    for name, figures in results["clients"].items():
        lines.append(
            f"{name:34} {figures['gameproto'] * 1e6:13.1f} {figures['bare'] * 1e6:13.1f} {figures['ratio']:6.2f}  "
            + ("holds" if figures["holds"] else "MISSED")
        )
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.embedding", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the median is kept (default 5)")
    parser.add_argument("--only", default="", help="only the clients whose name contains this (e.g. aiohttp)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    results = measure(args.calls, args.rounds, args.only)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
