"""``python -m benchmarks.engine`` runs (tiny sizes); its figures are printed, never asserted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_engine_benchmark_runs_with_tiny_sizes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.engine import main

    assert (
        main(["--commands", "300", "--orders", "100", "--validations", "50", "--rounds", "1", "--out", str(tmp_path)])
        == 0
    )
    results = json.loads((tmp_path / "engine.json").read_text())
    raced = set(results["seconds_per_op"])
    assert {"our book", "floor", "Exchange.handle, single", "Exchange.handle, bulk of 100"} <= raced
    assert all(spent > 0 for spent in results["seconds_per_op"].values())
    if sys.version_info < (3, 12):  # the peer's Python: it is left out, and the run says so
        assert "matching-engine 0.1.1" not in raced
        assert any("matching-engine" in reason for reason in results["skipped"])
    assert "Exchange.handle, bulk of 100, vs the floor" in capsys.readouterr().out
    pytest.importorskip("matplotlib")
    from benchmarks.speed_chart import main as chart

    assert chart([str(tmp_path), str(tmp_path / "goals.png")]) == 0
    assert (tmp_path / "goals.png").stat().st_size > 0


def test_the_seeded_flow_is_the_same_for_the_same_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.engine import order_flow

    # The same seed gives the same flow, and about a quarter of it is cancels.
    flow = order_flow(3, 400)
    assert flow == order_flow(3, 400)
    assert 0 < sum(command[0] == "cancel" for command in flow) < 400 // 3
