"""What the shared request budget costs per call: ``python -m benchmarks.shared_budget``.

Starts its own ``redis-server`` on a free loopback port (nothing saved to
disk), then times ``SharedBudget.reserve()`` (one EVALSHA round trip) against
the same rule in memory (the local window under its lock, as the fallback
runs it): the median microseconds per reserve over batches, a slot granted and
a slot refused, from one thread and from four at once, from an asyncio and a
trio event loop through ``anyio.to_thread.run_sync``, and with Redis stopped
(the local fallback, Redis asked again every few seconds). Figures are
reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List, Optional

from gameproto._budget import RequestBudget
from gameproto_redis import SharedBudget

__all__ = ["main"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Redis:
    """A throwaway redis-server on 127.0.0.1."""

    def __init__(self, binary: str, port: Optional[int] = None) -> None:
        self.binary = binary
        self.port = port or _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0)
        for _ in range(200):
            try:
                if client.ping():
                    break
            except redis.RedisError:
                time.sleep(0.05)
        else:
            raise RuntimeError("redis-server did not answer PING")
        client.close()

    def again(self) -> _Redis:
        """A new (empty) server on this one's port, once this one has stopped."""
        return _Redis(self.binary, self.port)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _median_us(reserve: Callable[[], float], batches: int, per_batch: int) -> float:
    """The median over ``batches`` of the mean microseconds of one reserve in a batch."""
    for _ in range(min(per_batch, 100)):  # warm: connection made, script loaded
        reserve()
    samples: List[float] = []
    for _ in range(batches):
        started = time.perf_counter()
        for _ in range(per_batch):
            reserve()
        samples.append((time.perf_counter() - started) / per_batch * 1e6)
    return statistics.median(samples)


def _threads_per_second(reserve: Callable[[], float], threads: int, per_thread: int) -> float:
    """Reserves per second, ``threads`` threads asking at once."""
    barrier = threading.Barrier(threads + 1)

    def worker() -> None:
        barrier.wait()
        for _ in range(per_thread):
            reserve()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in workers:
        thread.join()
    return threads * per_thread / (time.perf_counter() - started)


def _median_us_in_thread(reserve: Callable[[], float], backend: str, batches: int, per_batch: int) -> float:
    """``_median_us`` of ``reserve`` called from an event loop in a worker thread, as the async client would."""
    import anyio
    import anyio.to_thread

    samples: List[float] = []

    async def main() -> None:
        for _ in range(min(per_batch, 100)):
            await anyio.to_thread.run_sync(reserve)
        for _ in range(batches):
            started = time.perf_counter()
            for _ in range(per_batch):
                await anyio.to_thread.run_sync(reserve)
            samples.append((time.perf_counter() - started) / per_batch * 1e6)

    anyio.run(main, backend=backend)
    return statistics.median(samples)


def _local(limit: int) -> Callable[[], float]:
    """The in-memory window as the fallback runs it: the core's RequestBudget, on the monotonic clock."""
    window = RequestBudget(limit, 60.0)

    def reserve() -> float:
        return window.reserve(time.monotonic())

    return reserve


def measure(batches: int, per_batch: int) -> Dict[str, float]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("needs redis-server on the PATH (Debian: apt-get install redis-server)")
    results: Dict[str, float] = {}
    server = _Redis(binary)
    try:
        # Granted: a limit no run reaches; refused: a full window (1,000 grants, then only waits).
        with SharedBudget(server.url, "bench:granted", limit=10**9) as granted:
            results["shared, granted (us)"] = _median_us(granted.reserve, batches, per_batch)
            for backend in ("asyncio", "trio"):
                results[f"shared, from {backend} via a thread (us)"] = _median_us_in_thread(
                    granted.reserve, backend, batches, per_batch
                )
            results["shared, 4 threads (reserves/s)"] = _threads_per_second(
                granted.reserve, 4, batches * per_batch // 4
            )
        with SharedBudget(server.url, "bench:refused", limit=1000) as refused:
            for _ in range(1000):
                refused.reserve()
            results["shared, refused (us)"] = _median_us(refused.reserve, batches, per_batch)
        local_granted = _local(10**9)
        results["local, granted (us)"] = _median_us(local_granted, batches, per_batch)
        results["local, 4 threads (reserves/s)"] = _threads_per_second(local_granted, 4, batches * per_batch // 4)
        local_refused = _local(1000)
        for _ in range(1000):
            local_refused()
        results["local, refused (us)"] = _median_us(local_refused, batches, per_batch)
        with SharedBudget(server.url, "bench:down", limit=10**9) as down:
            down.reserve()
            server.stop()
            down.reserve()  # the one failed ask that switches it to the local window
            results["Redis stopped, local fallback (us)"] = _median_us(down.reserve, batches, per_batch)
    finally:
        server.stop()
    results["shared / local, granted"] = results["shared, granted (us)"] / results["local, granted (us)"]
    return results


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shared_budget", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    batches, per_batch = (5, 20) if args.quick else (31, 500)
    import logging

    # The outage's warning is expected here; the level is put back, since a test runs main() in its own process's
    # logging (leaving it at ERROR silenced the client's DEBUG log for every later test in that worker).
    quiet = logging.getLogger("gameproto")
    previous = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        results = measure(batches, per_batch)
    finally:
        quiet.setLevel(previous)
    width = max(len(name) for name in results)
    print(f"SharedBudget.reserve() against a loopback redis-server ({batches} batches of {per_batch}, medians)")
    for name, value in results.items():
        print(f"  {name:<{width}}  {value:>12,.1f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
