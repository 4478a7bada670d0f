"""The shared budget's benchmark runs (tiny sizes); its figures are reported, never asserted."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

pytest.importorskip("redis", reason="needs redis-py (the 'redis' extra)")


def test_the_shared_budget_benchmark_runs_with_tiny_sizes(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("needs a real redis-server (Debian: apt-get install redis-server; .ci/run installs it)")
    from benchmarks.shared_budget import main

    level = logging.getLogger("gameproto").level
    assert main(["--quick", "--json", str(tmp_path / "figures.json")]) == 0
    assert logging.getLogger("gameproto").level == level, "the benchmark left the client's log level changed"
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert {"shared, granted (us)", "local, granted (us)", "shared / local, granted"} <= set(figures)
    assert all(value > 0 for value in figures.values())
