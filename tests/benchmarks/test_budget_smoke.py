"""``python -m benchmarks.budget`` runs (tiny sizes); its figures are printed, never asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("scenario", ["async-serve", "sync-strict"])
def test_the_budget_benchmark_runs_with_tiny_sizes(
    scenario: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.budget import allowed_seconds, main, run_case

    result = run_case(scenario, workers=3, calls=4, limit=50)
    assert (result.answered, result.failed, result.refusals_429) == (12, 0, 0)
    # The calls, and for game serve the token exchange (the strict server counts calls only, as GAME does).
    assert result.requests_at_server == (13 if scenario == "async-serve" else 12)
    assert allowed_seconds(12, 50) == 0.0 and allowed_seconds(2400, 600) == 180.0
    assert main(["--only", scenario, "--workers", "1", "--calls", "1", "--json"]) == 0
    assert '"refusals_429": 0' in capsys.readouterr().out
