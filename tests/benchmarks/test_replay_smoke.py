"""``python -m benchmarks.replay`` runs (a few replayed minutes); its figures are printed, never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_replay_benchmark_runs_with_tiny_sizes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.replay import main

    recording = tmp_path / "minutes.sqlite"
    assert main(["--hours", "0.02", "--record-in-memory", "--recording", str(recording), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["record"]["polls"] == 73 and recording.exists()
    assert figures["replay_http_100x"]["orders"] >= 1 and figures["replay_in_process"]["events"] > 0
