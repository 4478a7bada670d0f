"""Peak memory of a client fed an endless answer: ``python -m benchmarks.endless_body [--cap BYTES ...]``.

A loopback server answers the token exchange, then every call with a
chunked body that never ends. Each client (blocking, asyncio, trio) runs in
a fresh process, which reports its peak RSS (``VmHWM``) before the call
and after the client gave up at ``max_response_bytes``. The promise: the
peak stays under twice the cap plus 100 MB. Figures are printed, not
asserted (tests/drivers/test_hostile_servers.py asserts the bound with a small cap).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
import time
from typing import List, Optional, Sequence, Tuple

__all__ = ["main", "measure"]

TOKEN = "benchmark-personal-token-0001"
BLOCK = 64 * 1024

PROBE = """
import resource, sys, time
import anyio
from gameproto import ProtocolError
from gameproto_async import GameAPI as AsyncGameAPI
from gameproto_sync import GameAPI as SyncGameAPI

driver, url, token, cap = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def peak_kib():
    # VmHWM: this process's own peak. ru_maxrss would carry the parent's
    # peak across fork and exec (Linux keeps the larger).
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def borrowed(library):
    # "sync-httpx", "asyncio-aiohttp", ...: the application's own client, which reads no proxy variable.
    if library == "requests":
        import requests
        session = requests.Session()
        session.trust_env = False
        return session
    if library == "aiohttp":
        import aiohttp
        return aiohttp.ClientSession(trust_env=False)
    import httpx
    return (httpx.Client if driver.startswith("sync") else httpx.AsyncClient)(trust_env=False)


before = peak_kib()
backend, _, library = driver.partition("-")
options = dict(max_response_bytes=cap, timeout=300, read_timeout=60, trust_env=False)
if library:
    del options["trust_env"]
started = time.perf_counter()
try:
    if backend == "sync":
        SyncGameAPI(token, url, http_client=borrowed(library) if library else None, **options).get_orders()
    else:
        async def main():
            async with AsyncGameAPI(token, url, http_client=borrowed(library) if library else None, **options) as api:
                await api.get_orders()
        anyio.run(main, backend=backend)
except ProtocolError:
    pass
else:
    raise SystemExit("the endless answer was taken")
print(before, peak_kib(), time.perf_counter() - started)
"""


def _serve(connection: socket.socket, stop: threading.Event) -> None:
    with connection:
        data = b""
        while not stop.is_set():
            head, found, rest = data.partition(b"\r\n\r\n")
            if not found:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                data += chunk
                continue
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(rest) < length:
                rest += connection.recv(65536)
            data = rest[length:]
            try:
                if b"/auth/token" in head.split(b"\r\n")[0]:
                    body = json.dumps({"access_token": "benchmark-access-token", "expires_in": 3600}).encode()
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                    continue
                connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                block = b"%x\r\n" % BLOCK + b"[" * BLOCK + b"\r\n"
                while not stop.is_set():
                    connection.sendall(block)
            except OSError:
                return


class EndlessServer:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except socket.timeout:
                continue
            threading.Thread(target=_serve, args=(connection, self.stop), daemon=True).start()

    def __enter__(self) -> EndlessServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


def measure(driver: str, url: str, cap: int, token: str = TOKEN) -> Tuple[float, float, float]:
    """(peak RSS before, peak RSS after, seconds) of one client process, in MB and seconds."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, driver, url, token, str(cap)], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    before, after, seconds = done.stdout.split()
    return int(before) / 1024, int(after) / 1024, float(seconds)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=int, action="append", help="max_response_bytes (repeatable)")
    parser.add_argument("--driver", action="append", choices=["sync", "asyncio", "trio"])
    args = parser.parse_args(argv)
    caps: List[int] = args.cap or [8 * 1024 * 1024, 64 * 1024 * 1024]
    drivers: List[str] = args.driver or ["sync", "asyncio", "trio"]
    print(f"{'driver':8} {'cap MiB':>8} {'RSS before MB':>14} {'peak RSS MB':>12} {'bound MB':>9} {'seconds':>8}")
    with EndlessServer() as server:
        for cap in caps:
            for driver in drivers:
                before, after, seconds = measure(driver, server.url, cap)
                bound = 2 * cap / 1024 / 1024 + 100
                print(f"{driver:8} {cap / 2**20:8.0f} {before:14.1f} {after:12.1f} {bound:9.0f} {seconds:8.2f}")
                time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
