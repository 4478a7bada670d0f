"""``python -m benchmarks.journal`` runs (a few orders); its timings are printed, never asserted.

What it counts is asserted: an order costs one commit (its outcome rides on the next one), a bulk two.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_journal_benchmark_runs_with_a_few_orders(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    import gameproto_journal._held
    from benchmarks.journal import main

    # The group commit never comes due within the run: every outcome rides on a commit the benchmark counts.
    monkeypatch.setattr(gameproto_journal._held, "GROUP_COMMIT_AFTER", 3600.0)

    assert main(["--orders", "10", "--rounds", "5", "--bulk", "10", "--no-postgres", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["rounds"] == 5 and figures["orders_per_round"] == 2
    sqlite = figures["ways"]["sqlite"]
    assert sqlite["orders"] == 10 and figures["ways"]["floor"]["orders"] == 10
    # Ten orders, their last outcome flushed at the end: eleven commits; a bulk: its intents, then its outcomes.
    assert sqlite["commits_per_order"] == pytest.approx(1.1) and sqlite["commits_per_bulk"] == 2
    assert {"added_median_ms", "added_over_floor", "added_over_commit_in_order", "median_ms", "p99_ms"} <= set(sqlite)
    assert figures["ways"]["commit+order"]["orders"] == 10  # the floor inside an order: no journal beats it
