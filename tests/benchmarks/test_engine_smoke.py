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
    from benchmarks.engine import main, order_flow

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
    # The same seed gives the same flow, a quarter of it cancels at most.
    flow = order_flow(3, 400)
    assert flow == order_flow(3, 400)
    assert 0 < sum(command[0] == "cancel" for command in flow) < 400 // 3
