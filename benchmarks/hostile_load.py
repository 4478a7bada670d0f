"""``python -m benchmarks.hostile_load``: each attack against a real ``game serve`` while a trader calls.

Every attack runs against a fresh ``game serve`` child process (its file
descriptors limited to 1024, as in the report that found them), on loopback,
while a well-behaved client keeps calling ``GET /status`` and ``GET /orders``.
Printed per attack: the well-behaved client's answers, failures, median, p99
and worst latency (for an attack that builds up first, as the book flood
does, only the calls made under load); the server's RSS at the start, its
peak, and after the attack ended; and what the attacker got. With ``--runs 2`` each attack runs twice on the same
server, so memory that is reused (not leaked) shows as no growth in the
second run.

``--source DIR`` serves the exchange from another checkout (to measure an
earlier commit with the same attacks).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from tests.support import hostile_clients as hostile

__all__ = ["main"]

TOKEN = "hostile-load-token"
OTHER_TOKEN = "hostile-load-attacker"
#: The sandbox's admin token the guessers do not know (on the command line: this run is the only user).
ADMIN_TOKEN = "hostile-load-admin-token"
_URL = re.compile(r"https?://([0-9.]+):([0-9]+)")
MB = 1024 * 1024


def _limit_descriptors() -> None:  # pragma: no cover - runs in the child
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1024 if hard == resource.RLIM_INFINITY else min(1024, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class Server:
    """``game serve --port 0`` in a child process, with its RSS sampled from /proc."""

    def __init__(self, source: Optional[str], extra: List[str]) -> None:
        self.source = source
        self.extra = extra
        self.port = 0
        self.peak = 0
        self._process: Optional[subprocess.Popen[str]] = None
        self._sampling = threading.Event()
        self._sampler: Optional[threading.Thread] = None

    def __enter__(self) -> Server:
        env = dict(os.environ)
        if self.source:
            env["PYTHONPATH"] = self.source
        command = [sys.executable, "-m", "gameproto_cli", "serve", "--port", "0", "--token", TOKEN]
        command += ["--token", OTHER_TOKEN, "--rate-limit", "100000000", *self.extra]
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=self.source or None,
            preexec_fn=_limit_descriptors,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        found = _URL.search(line)
        if found is None:
            raise RuntimeError(f"game serve did not start: {line!r}")
        self.port = int(found.group(2))
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def rss(self) -> int:
        assert self._process is not None
        try:
            with open(f"/proc/{self._process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _sample(self) -> None:
        while not self._sampling.is_set():
            self.peak = max(self.peak, self.rss())
            self._sampling.wait(0.05)

    def __exit__(self, *exc: Any) -> None:
        self._sampling.set()
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


@dataclass
class Row:
    attack: str
    run: int
    answers: int = 0
    failures: int = 0
    worst: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    rss_start: int = 0
    rss_peak: int = 0
    rss_after: int = 0
    attacker: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class _Mark:
    """Called when an attack's load starts: the trader's calls from then on are the ones measured."""

    client: hostile.WellBehavedClient
    first: int = 0

    def __call__(self) -> None:
        self.first = len(self.client.latencies)


def _describe(outcome: hostile.Outcome) -> str:
    statuses = ",".join(f"{status}x{count}" for status, count in sorted(outcome.statuses.items()))
    parts = [f"conns={outcome.connections}", f"closed={outcome.closed_by_server}"]
    if statuses:
        parts.append(f"answers={statuses}")
    if outcome.refused:
        parts.append(f"refused={outcome.refused}")
    if outcome.largest_answer:
        parts.append(f"largest={outcome.largest_answer / MB:.2f}MB")
    return " ".join(parts)


#: Traders of the book flood: with the default cap (10,000 resting orders a trader), ten of them rest 100,000.
FLOOD_TRADERS = [f"flood-token-{number}" for number in range(1, 11)]
#: ``game serve`` arguments an attack needs beyond the usual two tokens.
SERVE_ARGS: Dict[str, List[str]] = {
    "book_flood_100k": [arg for token in FLOOD_TRADERS for arg in ("--token", token)],
    "admin_token_guesses_5k": ["--clock", "manual", "--admin-token", ADMIN_TOKEN],
}


def _attacks(
    scale: float, port: int, polling: Optional[Callable[[], None]] = None
) -> Dict[str, Callable[[], hostile.Outcome]]:
    host = "127.0.0.1"

    def sized(number: int) -> int:
        return max(1, int(number * scale))

    def duration(seconds: float) -> float:
        return max(3.0, seconds * scale)

    def unknown_fields() -> hostile.Outcome:
        access = hostile.access_token(host, port, OTHER_TOKEN)
        # One body built once and sent again and again: the attacker's own CPU stays out of the trader's way.
        return hostile.unknown_fields_order(host, port, access, fields=60_000, repeat=100_000, deadline=duration(20))

    def unique_paths() -> hostile.Outcome:
        return hostile.unique_paths(host, port, requests=sized(40_000), path_length=8000, deadline=300)

    def big_book() -> hostile.Outcome:
        access = hostile.access_token(host, port, OTHER_TOKEN)
        return hostile.big_book(host, port, access, orders=sized(30_000), listings=20, deadline=600)

    def book_flood() -> hostile.Outcome:
        accesses = [hostile.access_token(host, port, token) for token in FLOOD_TRADERS]
        return hostile.book_flood(
            host,
            port,
            accesses,
            orders=sized(10_000),
            pollers=10,
            polls=sized(5),
            deadline=900,
            polling=polling,
            processes=True,
        )

    def both_headers() -> hostile.Outcome:
        return hostile.both_length_headers(host, port)

    return {
        "unknown_fields_60k": unknown_fields,
        "slowloris_1100": lambda: hostile.slowloris(
            host, port, connections=1100, interval=10.0, duration=duration(48), reconnect=True
        ),
        "slow_body_400x1MB": lambda: hostile.slow_body(
            host, port, connections=400, body_size=MB, unsent=500, interval=10.0, duration=duration(30)
        ),
        "unique_paths_40k": unique_paths,
        "token_guesses_5k": lambda: hostile.token_guesses(host, port, guesses=sized(5_000), deadline=120),
        "token_exchanges_100k": lambda: hostile.token_exchanges(host, port, TOKEN, count=sized(100_000), deadline=600),
        "big_book_30k": big_book,
        "book_flood_100k": book_flood,
        "both_length_headers": both_headers,
        "admin_token_guesses_5k": lambda: hostile.sandbox_wrong_admin_token(host, port, guesses=sized(5_000)),
        "foreign_hosts": lambda: hostile.foreign_hosts(host, port),
    }


def run_attack(name: str, source: Optional[str], runs: int, scale: float, extra: List[str]) -> List[Row]:
    rows: List[Row] = []
    with Server(source, extra + SERVE_ARGS.get(name, [])) as server:
        time.sleep(0.5)
        for run in range(1, runs + 1):
            row = Row(name, run, rss_start=server.rss())
            server.peak = row.rss_start
            client = hostile.WellBehavedClient("127.0.0.1", server.port, TOKEN, timeout=120.0)
            # An attack that builds up first (the book flood) says when its load starts: only the
            # trader's calls from then on are measured.
            mark = _Mark(client)
            attack = _attacks(scale, server.port, mark)[name]
            with client:
                client.wait_for_answers(5, limit=30)
                outcome = attack()
                # The trader is still served once the attack has ended.
                client.wait_for_answers(3, limit=60)
            time.sleep(2.0)  # connections closed by the attacker are let go of
            row.rss_peak = server.peak
            row.rss_after = server.rss()
            row.answers, row.failures, row.worst = client.answers, len(client.failures), client.worst_latency
            ordered = sorted(client.latencies[mark.first :])
            row.p50 = ordered[len(ordered) // 2] if ordered else 0.0
            row.p99 = ordered[int(len(ordered) * 0.99)] if ordered else 0.0
            if client.failures:
                row.extra["failures"] = sorted(set(client.failures))[:3]
            row.attacker = _describe(outcome) + (f" {outcome.note}" if outcome.note else "")
            rows.append(row)
            print(_format(row), flush=True)
    return rows


def _format(row: Row) -> str:
    return (
        f"{row.attack:<22} run {row.run}  good: {row.answers:5d} answers {row.failures:3d} failures "
        f"p50 {row.p50:6.3f}s p99 {row.p99:6.3f}s worst {row.worst:7.3f}s | "
        f"rss start {row.rss_start / MB:6.1f} peak {row.rss_peak / MB:6.1f} after {row.rss_after / MB:6.1f} MB | "
        f"attacker: {row.attacker}" + (f" | trader failures: {row.extra['failures']}" if row.extra else "")
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hostile_load", description=__doc__)
    parser.add_argument("--only", action="append", default=[], metavar="ATTACK", help="run only this attack")
    parser.add_argument("--runs", type=int, default=1, help="runs of each attack on the same server (default 1)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply counts and durations (default 1)")
    parser.add_argument("--source", help="serve the exchange from this checkout instead")
    parser.add_argument("--serve-arg", action="append", default=[], help="extra argument for game serve")
    args = parser.parse_args(argv)
    names = args.only or list(_attacks(1.0, 0))
    unknown = [name for name in names if name not in _attacks(1.0, 0)]
    if unknown:
        parser.error(f"unknown attack(s) {unknown}; known: {list(_attacks(1.0, 0))}")
    for name in names:
        run_attack(name, args.source, args.runs, args.scale, args.serve_arg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
