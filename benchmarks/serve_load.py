"""``game serve`` against a peer's gateway under one load: ``python -m benchmarks.serve_load``.

Two servers, each in its own child process on loopback, no durable state:

- ``game serve`` (h11 on anyio, no ``--state``);
- ``matching-engine`` 0.1.1's FastAPI gateway (uvicorn with httptools, as its
  ``serve`` command runs it), its write-ahead log without fsync
  (``ME_FSYNC=0``). It needs Python 3.12 or later, FastAPI and uvicorn: where
  they are missing it is left out, with a message.

One load generator drives both, in turns (rounds alternate which goes first):
raw ``httpcore`` on anyio in one process, ``--connections`` keep-alive
connections each sending orders back to back (limit orders near the touch,
about one in ten crossing), and beside them a well-behaved trader on a
connection of its own, one order every ``--pace`` seconds, whose round trips
give the p50 and p99. Figures are medians over the rounds; they are printed
(and written as JSON with ``--out``), never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .server import TOKEN, ServerProcess

__all__ = ["main", "run", "Target"]

Body = Callable[[int], bytes]


class Target:
    """A server under load: where orders go, the headers they carry, and how an order is written."""

    def __init__(self, name: str, url: str, headers: List[Tuple[bytes, bytes]], body: Body, pid: int) -> None:
        self.name = name
        self.url = url
        self.headers = headers
        self.body = body
        #: The server's process: the CPU it spends is read from /proc where there is one.
        self.pid = pid


def _cpu_seconds(pid: int) -> Optional[float]:
    """User plus system CPU seconds the process has spent (Linux /proc), or None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _flow(seed: int, count: int) -> List[Tuple[str, int, int, int]]:
    """(side, price in hundredths, volume in tenths, account): near the touch, about one in ten crossing."""
    rng = random.Random(seed)
    orders = []
    for _ in range(count):
        side = "buy" if rng.random() < 0.5 else "sell"
        offset = rng.randint(-5, 50)
        price = 5000 - offset if side == "buy" else 5000 + offset
        orders.append((side, price, rng.randint(1, 30), rng.randint(1, 1000)))
    return orders


def _game_body(flow: List[Tuple[str, int, int, int]]) -> Body:
    day = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).date().isoformat()

    def body(index: int) -> bytes:
        side, price, volume, _ = flow[index % len(flow)]
        order = {
            "side": side,
            "price": price / 100,
            "volume": volume / 10,
            "date": day,
            "start_time": "10:00",
            "end_time": "10:15",
            "duration": "15m",
            "tz_offset_hours": 1,
        }
        return json.dumps(order).encode()

    return body


def _peer_body(flow: List[Tuple[str, int, int, int]]) -> Body:
    def body(index: int) -> bytes:
        side, price, volume, account = flow[index % len(flow)]
        order = {"account": account, "side": side, "price": f"{price / 100:.2f}", "quantity": f"{volume / 10:.1f}"}
        return json.dumps(order).encode()

    return body


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PeerGateway:
    """``matching-engine``'s gateway in a child process; ``url`` once it answers ``/healthz``."""

    MARKET = "PWR-15M"

    def __init__(self) -> None:
        self.url = ""
        self._folder = tempfile.TemporaryDirectory(prefix="peer-gateway-")
        self._process: Optional[subprocess.Popen[bytes]] = None
        self.pid = 0

    @staticmethod
    def missing() -> Optional[str]:
        """Why the gateway cannot run here, or None."""
        if sys.version_info < (3, 12):
            return f"matching-engine needs Python 3.12 or later (this is {platform.python_version()})"
        for module in ("matching_engine", "fastapi", "uvicorn", "httptools"):
            try:
                __import__(module)
            except ImportError:
                return f"{module} is not installed (pip install matching-engine==0.1.1 fastapi 'uvicorn[standard]')"
        return None

    def __enter__(self) -> PeerGateway:
        import httpcore

        port = _free_port()
        env = dict(
            os.environ,
            ME_FSYNC="0",
            ME_DATA_DIR=self._folder.name,
            ME_MARKETS=f"{self.MARKET}:0.01:0.1",
        )
        command = [sys.executable, "-m", "matching_engine", "serve", "--host", "127.0.0.1", "--port", str(port)]
        self._process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.pid = self._process.pid
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                if httpcore.request("GET", base + "/healthz").status == 200:
                    self.url = f"{base}/markets/{self.MARKET}/orders"
                    return self
            except httpcore.ConnectError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("the peer's gateway did not start")

    def __exit__(self, *exc_info: Any) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._folder.cleanup()


def _game_target(server: ServerProcess, body: Body) -> Target:
    import httpcore

    answer = httpcore.request(
        "POST",
        server.base_url + "/api/v1/auth/token",
        headers=[(b"content-type", b"application/json")],
        content=json.dumps({"token": TOKEN}).encode(),
    )
    token = json.loads(answer.content)["access_token"]
    headers = [(b"content-type", b"application/json"), (b"authorization", f"Bearer {token}".encode())]
    process = server._process
    assert process is not None
    return Target("game serve", server.base_url + "/api/v1/orders", headers, body, process.pid)


async def _load(target: Target, connections: int, per_connection: int, pace: float) -> Dict[str, float]:
    """One round: the connections' orders back to back, and the paced trader's round trips."""
    import anyio
    import httpcore

    latencies: List[float] = []
    refused: List[int] = []
    sent = [0]
    done = anyio.Event()
    async with httpcore.AsyncConnectionPool(
        max_connections=connections + 1, max_keepalive_connections=connections + 1
    ) as pool:

        async def post(index: int) -> None:
            answer = await pool.request("POST", target.url, headers=target.headers, content=target.body(index))
            sent[0] += 1
            if answer.status != 200:
                refused.append(answer.status)

        async def blaster(first: int) -> None:
            for index in range(first, first + per_connection):
                await post(index)

        async def trader() -> None:
            index = 10**6
            while not done.is_set():
                started = time.perf_counter()
                await post(index)
                latencies.append(time.perf_counter() - started)
                index += 1
                with anyio.move_on_after(pace):
                    await done.wait()

        # Open every connection before the clock starts.
        async with anyio.create_task_group() as warm:
            for index in range(connections + 1):
                warm.start_soon(post, 2 * 10**6 + index)
        sent[0] = 0
        cpu_before = _cpu_seconds(target.pid)
        generator_before = time.process_time()
        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            group.start_soon(trader)
            async with anyio.create_task_group() as blast:
                for number in range(connections):
                    blast.start_soon(blaster, number * per_connection)
            seconds = time.perf_counter() - started
            done.set()
    if refused:
        raise RuntimeError(f"{target.name} refused {len(refused)} orders (statuses {sorted(set(refused))})")
    cpu_after = _cpu_seconds(target.pid)
    ordered = sorted(latencies)
    figures = {
        "orders_per_s": connections * per_connection / seconds,
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "trader_orders": float(len(ordered)),
    }
    # The load generator's own CPU per order: where it is near the time an order takes, the generator,
    # not the server, sets the pace (one process, one core of two).
    figures["generator_cpu_us_per_order"] = 1e6 * (time.process_time() - generator_before) / sent[0]
    if cpu_before is not None and cpu_after is not None:
        # The server's own CPU per order: what the machine's other load cannot blur as much as orders/s.
        figures["server_cpu_us_per_order"] = 1e6 * (cpu_after - cpu_before) / sent[0]
    return figures


def run(connections: int, per_connection: int, rounds: int, pace: float, seed: int = 7) -> Dict[str, Any]:
    """Every round on both servers; the median of each figure, and game serve's orders/s over the gateway's."""
    import anyio

    results: Dict[str, Any] = {
        "python": sys.version.split()[0],
        "machine": platform.platform(),
        "cores": os.cpu_count(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "connections": connections,
        "orders_per_round": connections * per_connection,
        "rounds": rounds,
        "skipped": [],
    }
    flow = _flow(seed, 4096)
    missing = PeerGateway.missing()
    if missing is not None:
        results["skipped"].append(f"the peer's gateway: {missing}")
    total = (rounds + 1) * (connections * per_connection + 64 * connections) + 10**6
    extra = ["--max-resting-orders", str(total)]
    figures: Dict[str, List[Dict[str, float]]] = {}
    with ServerProcess(extra) as server:
        targets = [_game_target(server, _game_body(flow))]
        peer: Optional[PeerGateway] = None
        try:
            if missing is None:
                peer = PeerGateway().__enter__()
                headers = [(b"content-type", b"application/json")]
                targets.append(Target("matching-engine gateway", peer.url, headers, _peer_body(flow), peer.pid))
            for target in targets:  # a short warm-up round each
                anyio.run(_load, target, connections, max(1, per_connection // 10), pace)
            for index in range(rounds):
                for target in targets if index % 2 == 0 else list(reversed(targets)):
                    figures.setdefault(target.name, []).append(
                        anyio.run(_load, target, connections, per_connection, pace)
                    )
        finally:
            if peer is not None:
                peer.__exit__()
    results["servers"] = {
        name: {key: statistics.median(one[key] for one in measured) for key in measured[0]}
        for name, measured in figures.items()
    }
    if "matching-engine gateway" in results["servers"]:
        ratio = (
            results["servers"]["game serve"]["orders_per_s"]
            / results["servers"]["matching-engine gateway"]["orders_per_s"]
        )
        results["goals"] = [
            {
                "name": "game serve vs the gateway (orders/s)",
                "ratio": ratio,
                "limit": 2.0,
                "at_most": False,
                "holds": ratio >= 2.0,
            }
        ]
        game, gateway = results["servers"]["game serve"], results["servers"]["matching-engine gateway"]
        # (A tiny run may spend less than one clock tick of /proc's: no ratio then.)
        if game.get("server_cpu_us_per_order") and gateway.get("server_cpu_us_per_order"):
            # Not a goal: the same comparison in server CPU per order, which the machine's other load blurs less.
            results["cpu_ratio"] = gateway["server_cpu_us_per_order"] / game["server_cpu_us_per_order"]
    else:
        results["goals"] = []
    return results


def report(results: Dict[str, Any]) -> str:
    lines = [
        f"benchmarks.serve_load, Python {results['python']} on {results['machine']} ({results['cores']} cores), "
        f"{results['date']}: {results['connections']} keep-alive connections, {results['orders_per_round']:,} orders "
        f"a round, median of {results['rounds']} rounds",
        "",
        f"  {'server':<26} {'orders/s':>10} {'trader p50':>11} {'trader p99':>11} {'generator CPU/order':>20}"
        f" {'server CPU/order':>17}",
    ]
    for name, figures in results["servers"].items():
        cpu = figures.get("server_cpu_us_per_order")
        lines.append(
            f"  {name:<26} {figures['orders_per_s']:>10,.0f} {figures['p50_ms']:>8.2f} ms {figures['p99_ms']:>8.2f} ms"
            f" {figures['generator_cpu_us_per_order']:>17,.0f} us" + (f" {cpu:>14,.0f} us" if cpu is not None else "")
        )
    for goal in results["goals"]:
        verdict = "holds" if goal["holds"] else "MISSED"
        lines.append(f"\n  {goal['name']}: {goal['ratio']:.2f}x (goal >= {goal['limit']:.1f}x) {verdict}")
    if "cpu_ratio" in results:
        lines.append(f"  the gateway's server CPU per order over game serve's: {results['cpu_ratio']:.2f}x")
    for reason in results["skipped"]:
        lines.append(f"  skipped: {reason}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.serve_load",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections sending back to back")
    parser.add_argument("--orders", type=int, default=500, help="orders each connection sends a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pace", type=float, default=0.02, help="seconds between the paced trader's orders")
    parser.add_argument("--out", help="folder to write serve_load.json in")
    args = parser.parse_args(argv)
    results = run(args.connections, args.orders, args.rounds, args.pace)
    print(report(results))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "serve_load.json"), "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
