"""The workloads that are not a per-call CPU race: validation, bulk, concurrency, parsing, the server."""

from __future__ import annotations

import datetime as dt
import gc
import json
import statistics
import time
import tracemalloc
from typing import Any, Dict, List, Tuple

from .server import TOKEN

__all__ = ["validation", "bulk_orders", "concurrent_calls", "listing_parse", "server_throughput", "sample_order"]


def sample_order(index: int = 0, days_ahead: int = 2) -> Dict[str, Any]:
    day = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days_ahead)).date().isoformat()
    quarter = index % 96
    start = f"{quarter // 4:02d}:{quarter % 4 * 15:02d}"
    end_quarter = (quarter + 1) % 96
    end = f"{end_quarter // 4:02d}:{end_quarter % 4 * 15:02d}"
    return {
        "side": "buy" if index % 2 else "sell",
        "price": 50.0 + index % 7 + (1000 if index % 2 == 0 else 0),  # sells far above buys: nothing trades
        "volume": 1.0 + index % 3,
        "date": day,
        "start_time": start,
        "end_time": end,
        "duration": "15m",
        "tz_offset_hours": 1,
        "state": "displayed",
        "options": {"trader_suffixe": "bench"},
    }


def validation(n: int, rounds: int) -> Dict[str, Dict[str, float]]:
    """``validate_order`` against the same rules as a pydantic v2 model, alternating rounds."""
    from gameproto import validate_order

    from .pydantic_order import validate_with_pydantic

    orders = [sample_order(index) for index in range(64)]
    contenders = {"validate_order": validate_order, "pydantic v2 model": validate_with_pydantic}
    times: Dict[str, List[float]] = {name: [] for name in contenders}
    for check in contenders.values():
        for order in orders:
            check(order)
    for index in range(rounds):
        names = list(contenders) if index % 2 == 0 else list(reversed(contenders))
        for name in names:
            check = contenders[name]
            started = time.process_time()
            for repeat in range(n):
                check(orders[repeat & 63])
            times[name].append((time.process_time() - started) / n)
    return {name: {"cpu_per_op": statistics.median(values)} for name, values in times.items()}


def _peak(function: Any, *args: Any) -> Tuple[Any, float, int]:
    """Result, seconds and peak traced memory (bytes) of ``function(*args)``."""
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = function(*args)
    finally:
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return result, seconds, peak


def bulk_orders(base_url: str, count: int) -> Dict[str, float]:
    """``count`` orders in one bulk call of the async client, end to end against the simulator."""
    import anyio

    from gameproto_async import GameAPI

    orders = [sample_order(index, days_ahead=3) for index in range(count)]

    async def upload() -> int:
        async with GameAPI(TOKEN, base_url) as api:
            result = await api.create_order({"orders": orders})
            return len(result["created"])  # type: ignore[typeddict-item]

    created, seconds, peak = _peak(anyio.run, upload)
    return {
        "orders": float(count),
        "created": float(created),
        "orders_per_s": count / seconds,
        "peak_mib": peak / 2**20,
    }


def concurrent_calls(count: int, backend: str = "asyncio") -> Dict[str, float]:
    """``count`` concurrent ``get_status`` calls through one async client; connections the server saw."""
    import anyio

    from gameproto_async import GameAPI

    from .server import ServerProcess

    exchanges: List[str] = []

    def seen(attempt: Any) -> None:
        if attempt.path == "/auth/token":
            exchanges.append(attempt.path)

    with ServerProcess() as server:

        async def storm() -> float:
            async with GameAPI(TOKEN, server.base_url, on_attempt=seen) as api:
                started = time.perf_counter()
                async with anyio.create_task_group() as group:
                    for _ in range(count):
                        group.start_soon(api.get_status)
                return time.perf_counter() - started

        seconds = anyio.run(storm, backend=backend)
    return {
        "calls": float(count),
        "calls_per_s": count / seconds,
        "connections": float(server.connections_accepted),
        "token_exchanges": float(len(exchanges)),
    }


def _listing_bytes(count: int) -> bytes:
    base = {
        "direction": "buy",
        "volume": 1.5,
        "price": 101.25,
        "state": "Displayed",
        "contract": "2026-12-01T14:00:00Z/PT15M",
        "trader": "alice",
        "date": "2026-12-01",
        "start_time": "15:00",
        "end_time": "15:15",
        "duration": "15m",
        "tz_offset_hours": 1,
        "created_at": "2026-11-30T10:00:00Z",
        "updated_at": "2026-11-30T10:00:00Z",
        "executed_volume": 0,
        "remaining_volume": 1.5,
        "average_price": None,
        "execution_count": 0,
        "total_value": 0,
        "fees": 0,
        "metadata": {},
    }
    return json.dumps([dict(base, order_id=index) for index in range(count)]).encode()


def listing_parse(count: int, rounds: int) -> Dict[str, Dict[str, float]]:
    """The client's parse of a ``GET /orders`` answer against ``json.loads`` of the same bytes."""
    from gameproto import Response
    from gameproto._calls import get_orders

    body = _listing_bytes(count)
    response = Response(200, {"content-type": "application/json"}, body)
    parse = get_orders().parse
    contenders = {"gameproto parse": lambda: parse(response), "json.loads": lambda: json.loads(body)}
    seconds: Dict[str, List[float]] = {name: [] for name in contenders}
    for index in range(rounds):
        names = list(contenders) if index % 2 == 0 else list(reversed(contenders))
        for name in names:
            gc.collect()
            started = time.perf_counter()
            contenders[name]()
            seconds[name].append(time.perf_counter() - started)
    # Memory apart from time: tracing allocations slows the parse several times over.
    peaks = {name: _peak(contenders[name])[2] for name in contenders}
    return {name: {"seconds": statistics.median(seconds[name]), "peak_mib": peaks[name] / 2**20} for name in contenders}


def server_throughput(base_url: str, clients: int, per_client: int) -> Dict[str, float]:
    """Requests per second the embedded exchange serves to ``clients`` keep-alive connections."""
    import http.client
    import threading

    host, port = base_url.split("//", 1)[1].split(":")
    token = json.loads(_post(host, int(port), "/api/v1/auth/token", {"token": TOKEN}))["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    barrier = threading.Barrier(clients + 1)

    def client() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        barrier.wait()
        for _ in range(per_client):
            connection.request("GET", "/api/v1/status", headers=headers)
            connection.getresponse().read()
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return {
        "requests": float(clients * per_client),
        "requests_per_s": clients * per_client / seconds,
        "clients": float(clients),
    }


def _post(host: str, port: int, path: str, body: Dict[str, Any]) -> bytes:
    import http.client

    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        return connection.getresponse().read()
    finally:
        connection.close()
