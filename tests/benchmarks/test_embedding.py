"""``python -m benchmarks.embedding`` runs (tiny sizes); its figures are printed, never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_embedding_benchmark_runs_with_tiny_sizes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("httpx", reason="needs httpx (the 'httpx' extra)")
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.embedding import main

    assert main(["--calls", "3", "--rounds", "1", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert {"requests.Session", "httpx.Client", "httpx.AsyncClient (asyncio)", "httpx.AsyncClient (trio)"} <= set(
        results["clients"]
    )
    for figures in results["clients"].values():
        assert figures["gameproto"] > 0 and figures["bare"] > 0
