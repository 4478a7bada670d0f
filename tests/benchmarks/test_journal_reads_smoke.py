"""The journal's read benchmark runs (with a tiny journal); its figures are not asserted: benchmarks are not tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_journal_read_benchmark_runs_with_a_tiny_journal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.chdir(ROOT)
    from benchmarks.journal_reads import main

    assert main(["--orders", "300", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["orders"] == 300 and figures["lookup_rows_read"] == 5
    assert {"reconcile_median_s", "export_s", "export_peak_rss_mb"} <= set(figures)
