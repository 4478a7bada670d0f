"""Alternating rounds and medians: contenders run in turn so drift hits them all alike."""

from __future__ import annotations

import statistics
import time
from typing import Callable, Dict, List, Mapping, Tuple

__all__ = ["alternate", "stopwatch", "Round", "Sample"]

# One round of a contender: does ``n`` operations, returns (cpu seconds, wall seconds).
Round = Callable[[int], Tuple[float, float]]
Sample = Dict[str, float]


def stopwatch() -> Callable[[], Tuple[float, float]]:
    """Started now; calling it gives the (cpu, wall) seconds spent since."""
    cpu, wall = time.process_time(), time.perf_counter()
    return lambda: (time.process_time() - cpu, time.perf_counter() - wall)


def alternate(contenders: Mapping[str, Round], n: int, rounds: int) -> Dict[str, Sample]:
    """Median CPU and wall time per operation for each contender, over alternating rounds."""
    cpu: Dict[str, List[float]] = {name: [] for name in contenders}
    wall: Dict[str, List[float]] = {name: [] for name in contenders}
    for run in contenders.values():  # warm-up: connections, caches, imports
        run(max(1, n // 10))
    for index in range(rounds):
        order = list(contenders.items())
        if index % 2:
            order.reverse()
        for name, run in order:
            spent_cpu, spent_wall = run(n)
            cpu[name].append(spent_cpu / n)
            wall[name].append(spent_wall / n)
    return {
        name: {"cpu_per_op": statistics.median(cpu[name]), "wall_per_op": statistics.median(wall[name])}
        for name in contenders
    }
