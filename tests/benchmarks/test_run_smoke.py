"""The benchmark command runs (with tiny sizes); its figures are not asserted: benchmarks are not tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmark_command_runs_with_tiny_sizes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("pydantic")
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.chdir(ROOT)
    from benchmarks.run import main

    assert main(["--quick", "--skip-published", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    names = {goal["name"] for goal in results["goals"]}
    assert {"sync client CPU per call", "validate_order time", "listing parse time"} <= names
    assert all(goal["ratio"] > 0 for goal in results["goals"])
    assert results["bulk create (async)"]["created"] == results["bulk create (async)"]["orders"]
    assert results["concurrent calls (async)"]["token_exchanges"] == 1
    assert "ratio" in (tmp_path / "results.txt").read_text()
