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


def test_behind_schedule_is_each_answers_lag_or_more_never_less(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.replay import SPEED, behind_schedule

    # The schedule began at exchange time 1000 (host 0); each answer's clock was read between its sending and
    # its arrival. The quickest way in (the clock read as the request left) pins the schedule's start exactly.
    speed, origin = SPEED, 1000.0
    reads = [(0.0, 0.0, 0.002), (1.0, 1.001, 1.004), (2.0, 2.01, 2.03)]  # (sent, read, received), host seconds
    readings = [(sent, received, origin + speed * read) for sent, read, received in reads]
    lags = behind_schedule(readings)
    assert lags == pytest.approx([speed * (received - read) for _, read, received in reads])
    # Without that quickest reading the figures are bounds: each at least the true lag, at most the round trip.
    bounded = behind_schedule(readings[1:])
    for (sent, read, received), figure in zip(reads[1:], bounded):
        assert speed * (received - read) - 1e-6 <= figure <= speed * (received - sent) + 1e-6
