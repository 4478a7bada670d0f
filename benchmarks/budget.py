"""The request budget at full size: ``python -m benchmarks.budget [--only NAME ...] [--calls N]``.

Workers (8 tasks on one async client, on asyncio or with ``--backend trio``
on trio, or 8 threads on one blocking client) each make ``--calls`` ``get_status`` calls (300) against a server that
allows ``--limit`` requests a minute (600):

``serve``
    ``game serve --rate-limit 600`` in a child process (a fixed one-minute
    window per trader, stated in ``/status``); the client at
    ``requests_per_minute="auto"`` learns the limit from the first answer.
``strict``
    a small server written here that enforces a strict sliding 60 s window,
    counting every request it carries out (the token exchange included), and
    says nothing about its limit but 429 with ``Retry-After``; the client at
    a fixed ``requests_per_minute=600``.

Each run prints the 429s the client met, the requests the server carried
out, the most it saw in any 60 s (strict server only), the time taken, and
the time the limit allows for the requests the client sent: the first
``limit`` at once, then ``limit`` a minute, so ``floor((sent - 1) / limit)``
minutes. The client's budget counts a 61 s window (``BUDGET_WINDOW``) to
absorb the network's jitter, so it takes about a second longer per minute.
Figures are printed, not asserted: benchmarks are not tests.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import math
import threading
import time
from dataclasses import asdict, dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

import anyio

from gameproto import Attempt
from gameproto_async import GameAPI as AsyncGameAPI
from gameproto_sync import GameAPI as SyncGameAPI

from .server import TOKEN, ServerProcess

__all__ = ["main", "StrictWindowServer", "run_case", "allowed_seconds"]

WINDOW = 60.0
SCENARIOS = ("async-serve", "sync-serve", "async-strict", "sync-strict")


def allowed_seconds(requests: int, limit: int, window: float = WINDOW) -> float:
    """The least time ``requests`` requests take under ``limit`` a ``window``: the first ``limit`` go at once."""
    return math.floor(max(requests - 1, 0) / limit) * window


class StrictWindowServer:
    """A loopback HTTP/1.1 server with a strict sliding window and no word about its limit.

    It answers ``POST /api/v1/auth/token`` and ``GET /api/v1/status`` (a
    status without ``rate_limit``). A call that would make more than
    ``limit`` carried-out calls within ``window`` seconds is answered 429
    with ``Retry-After`` (whole seconds until the oldest leaves); refused
    calls are not counted. As GAME does, it counts the requests of an access
    token: the token exchange, which carries none, is not counted.
    """

    def __init__(self, limit: int, window: float = WINDOW) -> None:
        self.limit = limit
        self.window = window
        self.carried_out: List[float] = []
        self.refused = 0
        self._recent: Deque[float] = collections.deque()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # One write per answer (the handler flushes after each), no Nagle delay.
            wbufsize = 64 * 1024
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, value: Any, headers: Sequence[Tuple[str, str]] = ()) -> None:
                body = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Date", formatdate(usegmt=True))
                for name, value_ in headers:
                    self.send_header(name, value_)
                self.end_headers()
                self.wfile.write(body)

            def _admit(self) -> Optional[float]:
                """None when the request may be carried out (and it is counted); else the seconds to wait."""
                now = time.monotonic()
                with outer._lock:
                    recent = outer._recent
                    while recent and recent[0] <= now - outer.window:
                        recent.popleft()
                    if len(recent) >= outer.limit:
                        outer.refused += 1
                        return recent[0] + outer.window - now
                    recent.append(now)
                    outer.carried_out.append(now)
                    return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if self.path != "/api/v1/auth/token":
                    self._answer(404, {"detail": "Not Found"})
                    return
                self._answer(200, {"access_token": "strict-access-token", "expires_in": 3600})

            def do_GET(self) -> None:
                if self.path != "/api/v1/status":
                    self._answer(404, {"detail": "Not Found"})
                    return
                wait = self._admit()
                if wait is not None:
                    self._answer(429, {"detail": "Rate limit exceeded"}, [("Retry-After", str(math.ceil(wait)))])
                    return
                self._answer(200, {"status": "healthy", "version": "strict"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def most_in_a_window(self) -> int:
        """The most carried-out requests any ``window``-second interval held."""
        times = self.carried_out
        most, first = 0, 0
        for last in range(len(times)):
            while times[last] - times[first] >= self.window:
                first += 1
            most = max(most, last - first + 1)
        return most

    def __enter__(self) -> StrictWindowServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@dataclass
class Result:
    scenario: str
    workers: int
    calls_per_worker: int
    limit: int
    client_limit: str
    answered: int
    failed: int
    refusals_429: int
    requests_at_server: int
    most_in_60s: Optional[int]
    seconds: float
    allowed_seconds: float

    @property
    def over_allowed(self) -> float:
        """How much longer than the limit allows, as a fraction (0.02: 2 % longer)."""
        if self.allowed_seconds == 0:
            return 0.0
        return self.seconds / self.allowed_seconds - 1.0

    def line(self) -> str:
        most = "" if self.most_in_60s is None else f", at most {self.most_in_60s} in any 60 s"
        return (
            f"{self.scenario:<22} {self.workers} x {self.calls_per_worker} get_status, limit {self.limit}/min "
            f"(client {self.client_limit}): {self.answered} answered, {self.failed} failed, "
            f"{self.refusals_429} x 429; server carried out {self.requests_at_server}{most}; "
            f"{self.seconds:.1f} s vs {self.allowed_seconds:.0f} s allowed ({self.over_allowed:+.1%})"
        )


def _counting() -> Tuple[List[Attempt], Callable[[Attempt], None]]:
    seen: List[Attempt] = []
    lock = threading.Lock()

    def record(attempt: Attempt) -> None:
        with lock:
            seen.append(attempt)

    return seen, record


def _run_async(
    url: str, token: str, workers: int, calls: int, limit: Any, backend: str = "asyncio"
) -> Tuple[int, int, List[Attempt], float]:
    attempts, record = _counting()
    outcome = {"answered": 0, "failed": 0}

    async def main() -> float:
        async with AsyncGameAPI(
            token, url, requests_per_minute=limit, timeout=900, on_attempt=record, trust_env=False
        ) as api:

            async def worker() -> None:
                for _ in range(calls):
                    try:
                        await api.get_status()
                        outcome["answered"] += 1
                    except Exception:
                        outcome["failed"] += 1

            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for _ in range(workers):
                    group.start_soon(worker)
            return time.perf_counter() - started

    seconds = anyio.run(main, backend=backend)
    return outcome["answered"], outcome["failed"], attempts, seconds


def _run_sync(
    url: str, token: str, workers: int, calls: int, limit: Any, backend: str = ""
) -> Tuple[int, int, List[Attempt], float]:
    attempts, record = _counting()
    outcome: Dict[str, int] = {"answered": 0, "failed": 0}
    lock = threading.Lock()
    with SyncGameAPI(token, url, requests_per_minute=limit, timeout=900, on_attempt=record, trust_env=False) as api:

        def worker() -> None:
            for _ in range(calls):
                try:
                    api.get_status()
                    kind = "answered"
                except Exception:
                    kind = "failed"
                with lock:
                    outcome[kind] += 1

        threads = [threading.Thread(target=worker) for _ in range(workers)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
    return outcome["answered"], outcome["failed"], attempts, seconds


def run_case(
    scenario: str, *, workers: int = 8, calls: int = 300, limit: int = 600, backend: str = "asyncio"
) -> Result:
    """One scenario of ``SCENARIOS``, measured; ``backend`` is the async client's event loop."""
    driver, server_kind = scenario.split("-")
    run = functools.partial(_run_async if driver == "async" else _run_sync, backend=backend)
    if server_kind == "serve":
        client_limit: Any = "auto"
        with ServerProcess(["--rate-limit", str(limit)]) as served:
            answered, failed, attempts, seconds = run(served.base_url, TOKEN, workers, calls, client_limit)
        requests, most = served.requests_served, None
    else:
        client_limit = limit
        with StrictWindowServer(limit) as strict:
            answered, failed, attempts, seconds = run(strict.base_url, TOKEN, workers, calls, client_limit)
        requests, most = len(strict.carried_out), strict.most_in_a_window()
    refusals = sum(1 for attempt in attempts if attempt.status == 429)
    return Result(
        scenario=scenario if driver == "sync" else f"{scenario} ({backend})",
        workers=workers,
        calls_per_worker=calls,
        limit=limit,
        client_limit=str(client_limit),
        answered=answered,
        failed=failed,
        refusals_429=refusals,
        requests_at_server=requests,
        most_in_60s=most,
        seconds=seconds,
        # What the limit allows the calls (the token exchange is counted by neither server).
        allowed_seconds=allowed_seconds(workers * calls, limit),
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.budget", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=SCENARIOS, help="run this scenario (repeatable)")
    parser.add_argument("--workers", type=int, default=8, help="tasks or threads (8)")
    parser.add_argument("--calls", type=int, default=300, help="get_status calls per worker (300)")
    parser.add_argument("--limit", type=int, default=600, help="the servers' requests per minute (600)")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio", help="for async-*: the loop")
    parser.add_argument("--json", action="store_true", help="print each result as a JSON line too")
    args = parser.parse_args(argv)
    for scenario in args.only or SCENARIOS:
        result = run_case(scenario, workers=args.workers, calls=args.calls, limit=args.limit, backend=args.backend)
        print(result.line(), flush=True)
        if args.json:
            print(json.dumps(dict(asdict(result), over_allowed=round(result.over_allowed, 4))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
