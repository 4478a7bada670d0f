"""``python -m benchmarks.sandbox_history --small`` runs to its end; its figures are not asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_sandbox_history_benchmark_runs_small(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.sandbox_history import main

    assert main(["--small", "--calls", "20", "--dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for figure in ("trader p99, idle", "a change, 0 filled", "public view render", "admin view render"):
        assert figure in printed
    assert "refused requests wrote nothing:   True" in printed
    assert "0 failures" in printed
