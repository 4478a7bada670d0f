"""A real ``redis-server`` for the tests: started on a free loopback port, stopped, frozen, restarted.

Never a fake: the shared budget's rule runs in Redis's own Lua. Tests that
need one skip, with the reason, where the binary (Debian's ``redis-server``)
or redis-py is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from typing import TYPE_CHECKING, List, Optional, Tuple

import pytest

if TYPE_CHECKING:
    import redis

REDIS_SERVER = shutil.which("redis-server")
SKIP_REASON = "needs a real redis-server (Debian: apt-get install redis-server; .ci/run installs it)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1, with nothing saved to disk."""

    def __init__(self, password: Optional[str] = None) -> None:
        if REDIS_SERVER is None:
            pytest.skip(SKIP_REASON)
        pytest.importorskip("redis", reason="needs redis-py (the 'redis' extra)")
        self.port = free_port()
        self.password = password
        self.process: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        command: List[str] = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
        ]  # fmt: skip
        if self.password:
            command += ["--requirepass", self.password]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=1.0)
        try:
            for _ in range(200):  # at most about 10 s on a busy machine
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server on port {self.port} exited with {self.process.returncode}")
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.05)
            raise RuntimeError(f"redis-server on port {self.port} did not answer PING")
        finally:
            client.close()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server (its data goes with it: nothing is saved)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a frozen server could not hear SIGTERM
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def freeze(self) -> None:
        """Stop the process without closing its sockets: clients time out rather than being refused."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def client(self) -> redis.Redis:
        """A plain redis-py client, to look at the budget's keys."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=2.0)


def hammer(url: str, key: str, limit: int, window: float, threads: int, per_thread: int) -> List[Tuple[float, bool]]:
    """Take ``threads * per_thread`` slots of one budget as fast as it lets, from threads of
    this process; the grants as ``(at, shared)``. Runs in child processes too (spawn)."""
    import threading

    from gameproto_redis import Grant, SharedBudget

    grants: List[Tuple[float, bool]] = []

    def taken(grant: Grant) -> None:
        grants.append((grant.at, grant.shared))

    with SharedBudget(url, key, limit=limit, window=window, on_grant=taken) as budget:

        def worker() -> None:
            for _ in range(per_thread):
                for _ in range(1000):  # bounded: a slot comes within a few windows
                    wait = budget.reserve()
                    if wait == 0.0:
                        break
                    time.sleep(wait)
                else:
                    raise AssertionError("no slot after 1000 asks")

        workers = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join()
    return grants


def most_in_any_window(times: List[float], window: float) -> int:
    """The largest number of ``times`` that fall in one window ``[t, t + window)``
    (with a microsecond of slack for the float seconds the grant times are)."""
    ordered = sorted(times)
    most = 0
    first = 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= window - 2e-6:
            first += 1
        most = max(most, last - first + 1)
    return most
