"""``python -m benchmarks.serve_load`` runs (tiny sizes); its figures are printed, never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_serve_load_benchmark_runs_with_tiny_sizes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.serve_load import PeerGateway, main

    arguments = ["--connections", "2", "--orders", "5", "--rounds", "1", "--pace", "0.01", "--out", str(tmp_path)]
    assert main(arguments) == 0
    results = json.loads((tmp_path / "serve_load.json").read_text())
    assert results["servers"]["game serve"]["orders_per_s"] > 0
    assert results["servers"]["game serve"]["trader_orders"] >= 1
    if PeerGateway.missing() is None:
        assert results["servers"]["matching-engine gateway"]["orders_per_s"] > 0
    else:  # left out, and the run says why
        assert "matching-engine gateway" not in results["servers"]
        assert results["skipped"]
    assert "game serve" in capsys.readouterr().out
