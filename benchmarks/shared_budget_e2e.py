"""One account, three processes, one budget: ``python -m benchmarks.shared_budget_e2e``.

Starts its own ``redis-server`` and ``game serve --rate-limit 60``, then three
processes (the blocking client, the async client on asyncio, and on trio),
each firing 60 ``get_status`` calls from 4 concurrent workers under one
personal token and one shared budget. It reports the 429s the exchange sent
(the goal: none) and how long the 180 calls took against what the limit
allows (the goal: within 10%). ``--outage START:END`` stops Redis START
seconds after the processes start firing and starts it (empty) again at END: the calls go on, paced locally, each
process logs one warning, and sharing resumes.

Two ways to pace, chosen by what the clients offer:
- ``GameAPI(..., budget_url=...)`` when the clients take it: the client
  paces every request itself (the default key is the account's);
- until then, each worker asks a ``SharedBudget`` for a slot before each call
  (in a worker thread on the async client) and teaches it the limit of each
  ``/status`` answer: what the wired client will do inside its call flow.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import math
import shutil
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional

from gameproto_redis import SharedBudget, default_key

from .server import TOKEN, ServerProcess
from .shared_budget import _Redis

__all__ = ["main"]

CALLS = 60
WORKERS = 4
RATE_LIMIT = 60  # requests per minute: the exchange's, and so the budget's once learnt


class _Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.left = CALLS
        self.too_many = 0
        self.errors: List[str] = []
        self.warnings = 0
        #: (epoch seconds, from the shared window?) of each slot taken (unwired pacing only).
        self.grants: List[Any] = []

    def granted(self, grant: Any) -> None:
        self.grants.append((time.time(), grant.shared))

    def take(self) -> bool:
        with self.lock:
            if self.left == 0:
                return False
            self.left -= 1
            return True

    def attempt(self, attempt: Any) -> None:
        if attempt.status == 429:
            with self.lock:
                self.too_many += 1


class _WarningCount(logging.Handler):
    def __init__(self, counters: _Counters) -> None:
        super().__init__(logging.WARNING)
        self.counters = counters

    def emit(self, record: logging.LogRecord) -> None:
        self.counters.warnings += 1


def _wired(api_class: Any) -> bool:
    return "budget_url" in inspect.signature(api_class).parameters


def _learn(budget: Optional[SharedBudget], status: Any) -> None:
    advertised = (status.get("rate_limit") or {}).get("requests_per_minute")
    if budget is not None and isinstance(advertised, int) and advertised > 0:
        budget.learn_limit(advertised)


def _run_sync(base_url: str, redis_url: str, counters: _Counters) -> str:
    from gameproto_sync import GameAPI

    wired = _wired(GameAPI)
    options: Dict[str, Any] = {"budget_url": redis_url, "timeout": 300.0} if wired else {}
    budget = None if wired else SharedBudget(redis_url, default_key(base_url, TOKEN), on_grant=counters.granted)
    with GameAPI(TOKEN, base_url, on_attempt=counters.attempt, **options) as api:

        def worker() -> None:
            while counters.take():
                if budget is not None:
                    while True:
                        wait = budget.reserve()
                        if wait == 0.0:
                            break
                        time.sleep(wait)
                try:
                    _learn(budget, api.get_status())
                except Exception as error:
                    counters.errors.append(f"{type(error).__name__}: {error}")

        threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if budget is not None:
        budget.close()
    return "GameAPI(budget_url=...)" if wired else "SharedBudget before each call"


def _run_async(backend: str, base_url: str, redis_url: str, counters: _Counters) -> str:
    import anyio
    import anyio.to_thread

    from gameproto_async import GameAPI

    wired = _wired(GameAPI)
    options: Dict[str, Any] = {"budget_url": redis_url, "timeout": 300.0} if wired else {}
    budget = None if wired else SharedBudget(redis_url, default_key(base_url, TOKEN), on_grant=counters.granted)

    async def main() -> None:
        async with GameAPI(TOKEN, base_url, on_attempt=counters.attempt, **options) as api:

            async def worker() -> None:
                while counters.take():
                    if budget is not None:
                        while True:
                            # A blocking round trip to Redis: off the event loop.
                            wait = await anyio.to_thread.run_sync(budget.reserve)
                            if wait == 0.0:
                                break
                            await anyio.sleep(wait)
                    try:
                        _learn(budget, await api.get_status())
                    except Exception as error:
                        counters.errors.append(f"{type(error).__name__}: {error}")

            async with anyio.create_task_group() as group:
                for _ in range(WORKERS):
                    group.start_soon(worker)

    anyio.run(main, backend=backend)
    if budget is not None:
        budget.close()
    return "GameAPI(budget_url=...)" if wired else "SharedBudget before each call"


def _worker(flavour: str, base_url: str, redis_url: str, start_at: float) -> int:
    counters = _Counters()
    logging.getLogger("gameproto").addHandler(_WarningCount(counters))
    # Every process starts firing at once, whatever its imports cost.
    time.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    if flavour == "sync":
        pacing = _run_sync(base_url, redis_url, counters)
    else:
        pacing = _run_async(flavour, base_url, redis_url, counters)
    result = {
        "flavour": flavour,
        "pacing": pacing,
        "started": started,
        "ended": time.time(),
        "calls": CALLS - counters.left,
        "429s": counters.too_many,
        "errors": counters.errors[:5],
        "budget warnings": counters.warnings,
        "grants": counters.grants,
    }
    print(json.dumps(result), flush=True)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shared_budget_e2e", description=__doc__)
    parser.add_argument("--outage", metavar="START:END", help="stop Redis START s in, start it again at END s")
    parser.add_argument("--worker", choices=("sync", "asyncio", "trio"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.worker, args.base_url, args.redis_url, args.start_at)

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("needs redis-server on the PATH (Debian: apt-get install redis-server)")
    outage = [float(part) for part in args.outage.split(":")] if args.outage else None
    redis_server = _Redis(binary)
    try:
        with ServerProcess(extra=["--rate-limit", str(RATE_LIMIT)]) as exchange:
            command = [sys.executable, "-m", "benchmarks.shared_budget_e2e", "--base-url", exchange.base_url]
            start_at = time.time() + 5.0
            command += ["--redis-url", redis_server.url, "--start-at", repr(start_at)]
            processes = [
                subprocess.Popen([*command, "--worker", flavour], stdout=subprocess.PIPE, text=True)
                for flavour in ("sync", "asyncio", "trio")
            ]
            if outage is not None:
                time.sleep(max(0.0, start_at + outage[0] - time.time()))
                redis_server.stop()
                print(f"Redis stopped at {outage[0]:g} s", flush=True)
                time.sleep(max(0.0, start_at + outage[1] - time.time()))
                redis_server = redis_server.again()
                print(f"Redis started again at {outage[1]:g} s", flush=True)
            results = [
                json.loads(process.communicate(timeout=900)[0].strip().splitlines()[-1]) for process in processes
            ]
    finally:
        redis_server.stop()

    calls = sum(result["calls"] for result in results)
    elapsed = max(result["ended"] for result in results) - min(result["started"] for result in results)
    # The limit lets RATE_LIMIT calls go at once, then RATE_LIMIT more each minute.
    allowed = 60.0 * (math.ceil(calls / RATE_LIMIT) - 1)
    for result in results:
        print(
            f"  {result['flavour']:<8} {result['calls']} calls, {result['429s']} 429s, "
            f"{result['budget warnings']} budget warnings, errors {result['errors']} ({result['pacing']})"
        )
    print(f"{calls} calls in {elapsed:.1f} s; the limit allows {allowed:.0f} s: {elapsed / allowed:.3f} of it")
    print(f"429s in total: {sum(result['429s'] for result in results)}")
    grants = [grant for result in results for grant in result["grants"]]
    if grants:
        first = min(result["started"] for result in results)
        buckets: Dict[int, List[int]] = {}
        for at, shared in grants:
            bucket = buckets.setdefault(int((at - first) // 10), [0, 0])
            bucket[0 if shared else 1] += 1
        timeline = ", ".join(f"{10 * key}s: {shared}+{local}" for key, (shared, local) in sorted(buckets.items()))
        print(f"slots taken per 10 s (shared+local): {timeline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
