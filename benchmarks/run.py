"""Run every benchmark in one process tree, print a table of ratios and write a chart.

    pip install -e ".[bench]"
    python -m benchmarks            # full run, a few minutes
    python -m benchmarks --quick    # tiny sizes: checks that it all works

Each figure is a median over alternating rounds; each goal is a ratio
against a baseline measured in the same run, so the machine cancels out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from . import contenders, workloads
from .measure import alternate
from .server import ServerProcess

__all__ = ["main", "Goal"]


@dataclass
class Goal:
    name: str
    ours: str
    baseline: str
    ratio: float
    limit: float
    unit: str

    @property
    def holds(self) -> bool:
        return self.ratio <= self.limit


@dataclass
class Sizes:
    calls: int
    rounds: int
    validations: int
    bulk: int
    concurrent: int
    listing: int
    server_clients: int
    server_requests: int


FULL = Sizes(
    calls=2000,
    rounds=11,
    validations=20000,
    bulk=10000,
    concurrent=1000,
    listing=100000,
    server_clients=8,
    server_requests=500,
)
QUICK = Sizes(
    calls=20, rounds=2, validations=200, bulk=150, concurrent=50, listing=1000, server_clients=2, server_requests=20
)


def _per_call_goals(base_url: str, sizes: Sizes, results: Dict[str, Any], skip_published: bool) -> List[Goal]:
    goals: List[Goal] = []
    sync_rounds, close = contenders.sync_contenders(base_url)
    try:
        sync = alternate(sync_rounds, sizes.calls, sizes.rounds)
    finally:
        close()
    results["get_status, blocking"] = sync
    goals.append(_goal("sync client CPU per call", sync, "gameproto_sync", "requests loop", 0.45, "cpu_per_op"))
    for backend in ("asyncio", "trio"):
        measured = alternate(contenders.async_contenders(base_url, backend), sizes.calls, sizes.rounds)
        results[f"get_status, {backend}"] = measured
        goals.append(
            _goal(
                f"async client CPU per call ({backend})",
                measured,
                f"gameproto_async ({backend})",
                f"httpcore loop ({backend})",
                1.0,
                "cpu_per_op",
            )
        )
    if not skip_published:
        calls = max(10, sizes.calls // 5)  # the published client is slow: fewer calls, same rounds
        measured = alternate(contenders.published_contender(base_url), calls, sizes.rounds)
        results["get_status, published client"] = measured
        goals.append(
            _goal(
                "async client CPU per call vs game-api-client",
                measured,
                "gameproto_async (asyncio)",
                "game-api-client 0.1.2",
                0.40,
                "cpu_per_op",
            )
        )
    return goals


def _goal(name: str, measured: Dict[str, Dict[str, float]], ours: str, baseline: str, limit: float, key: str) -> Goal:
    return Goal(name, ours, baseline, measured[ours][key] / measured[baseline][key], limit, key)


def run(sizes: Sizes, skip_published: bool = False) -> Dict[str, Any]:
    results: Dict[str, Any] = {"python": sys.version.split()[0], "machine": platform.platform()}
    goals: List[Goal] = []
    with ServerProcess() as server:
        goals += _per_call_goals(server.base_url, sizes, results, skip_published)
        results["bulk create (async)"] = workloads.bulk_orders(server.base_url, sizes.bulk)
        results["server throughput"] = workloads.server_throughput(
            server.base_url, sizes.server_clients, sizes.server_requests
        )
    validation = workloads.validation(sizes.validations, sizes.rounds)
    results["order validation"] = validation
    goals.append(_goal("validate_order time", validation, "validate_order", "pydantic v2 model", 0.40, "cpu_per_op"))
    parse = workloads.listing_parse(sizes.listing, max(3, sizes.rounds // 2))
    results[f"parse {sizes.listing} listed orders"] = parse
    goals.append(_goal("listing parse time", parse, "gameproto parse", "json.loads", 1.2, "seconds"))
    results["concurrent calls (async)"] = workloads.concurrent_calls(sizes.concurrent)
    results["goals"] = [dict(goal.__dict__, holds=goal.holds) for goal in goals]
    return results


def _format(value: float, key: str) -> str:
    if key in ("cpu_per_op", "wall_per_op", "seconds"):
        return f"{value * 1e6:,.1f} us" if value < 0.01 else f"{value:,.3f} s"
    if key.endswith("mib"):
        return f"{value:,.1f} MiB"
    return f"{value:,.0f}"


def report(results: Dict[str, Any]) -> str:
    lines = [f"gameproto benchmarks, Python {results['python']} on {results['machine']}", ""]
    lines.append(f"{'goal':<48} {'ratio':>8} {'limit':>7}  verdict")
    for goal in results["goals"]:
        verdict = "holds" if goal["holds"] else "MISSED"
        lines.append(f"{goal['name']:<48} {goal['ratio']:>8.3f} {goal['limit']:>7.2f}  {verdict}")
    lines.append("")
    for section, figures in results.items():
        if section in ("python", "machine", "goals"):
            continue
        lines.append(section)
        for name, value in figures.items():
            if isinstance(value, dict):
                shown = ", ".join(f"{key} {_format(number, key)}" for key, number in value.items())
                lines.append(f"  {name:<34} {shown}")
            else:
                lines.append(f"  {name:<34} {_format(value, name)}")
    return "\n".join(lines)


def chart(results: Dict[str, Any], path: str) -> Optional[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    goals = results["goals"]
    figure, axis = plt.subplots(figsize=(9, 0.6 * len(goals) + 1.5))
    names = [goal["name"] for goal in goals]
    ratios = [goal["ratio"] for goal in goals]
    colours = ["#2a9d8f" if goal["holds"] else "#e76f51" for goal in goals]
    axis.barh(names, ratios, color=colours)
    axis.scatter([goal["limit"] for goal in goals], names, marker="|", s=400, color="black", label="goal")
    axis.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
    axis.invert_yaxis()
    axis.set_xlabel("ours / baseline (lower is better), median of alternating rounds")
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the benchmarks themselves")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results"), help="folder for JSON and PNG")
    parser.add_argument("--skip-published", action="store_true", help="leave out game-api-client")
    args = parser.parse_args(argv)
    skip = args.skip_published
    if not skip:
        try:
            import game_client  # noqa: F401
        except ImportError:
            print("game-api-client is not installed (pip install -e '.[bench]'): leaving it out", file=sys.stderr)
            skip = True
    results = run(QUICK if args.quick else FULL, skip_published=skip)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as out:
        json.dump(results, out, indent=2)
    text = report(results)
    with open(os.path.join(args.out, "results.txt"), "w", encoding="utf-8") as out:
        out.write(text + "\n")
    print(text)
    png = chart(results, os.path.join(args.out, "ratios.png"))
    if png:
        print(f"\nchart: {png}")
    return 0
