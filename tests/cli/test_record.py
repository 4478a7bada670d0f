"""``game record``, ``game replay info|report`` and ``game serve --replay``: a moving sandbox recorded and replayed.

The sandbox runs on a manual clock with its moving makers; the recorder
drives the clock itself. The recording is then replayed in a backtest,
whose book at the end is the sandbox's book at the last poll.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from gameproto.simulator.exchange import Exchange
from gameproto.simulator.makers import Scenario
from gameproto_cli.main import main
from gameproto_exchange import Backtest, ManualClock, Sandbox, ServerThread, read_recording
from gameproto_exchange import record as record_into
from gameproto_exchange._recorder import book_not_listed
from gameproto_exchange._recording import info
from gameproto_sync import GameAPI
from tests.support.harness import GameServe
from tests.support.replay import T0, levels_of

ADMIN = "admin-secret"


@pytest.fixture
def sandbox() -> Iterator[Any]:
    exchange = Exchange(["demo-token"], clock=ManualClock(T0), seed=3)
    moving = Sandbox(exchange, clock=exchange._clock, admin_token=ADMIN, scenario=Scenario())  # type: ignore[arg-type]
    exchange.seed_market(now=T0)
    moving.quote()
    with ServerThread(moving) as running:
        yield running


def record(running: Any, path: Path, *flags: str) -> int:
    argv = ["record", str(path), "--url", running.base_url, "--token", "demo-token"]
    return main([*argv, "--drive-clock", "--admin-token", ADMIN, *flags])


def test_record_drives_the_clock_ends_by_itself_and_resumes(sandbox: Any, tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "day.sqlite"
    assert record(sandbox, path, "--every", "60", "--duration", "1h") == 0
    assert "recorded 61 polls" in capsys.readouterr().out
    held = info(str(path))
    assert (held.polls, held.sessions, held.end - held.start) == (61, 1, 3600)  # type: ignore[operator]
    assert held.level_changes > 0 and held.trades > 0
    assert record(sandbox, path, "--every", "1", "--polls", "5") == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "recorded 5 polls" in out
    held = info(str(path))
    assert (held.polls, held.sessions, held.end - held.start) == (66, 2, 3605)  # type: ignore[operator]
    # The replay at the last poll shows the book the sandbox showed then.
    backtest = Backtest(str(path))
    with backtest.client() as api, GameAPI("demo-token", sandbox.base_url) as live:
        api.sleep(backtest.tape.end - backtest.now)
        assert levels_of(api.get_market_data()) == levels_of(live.get_market_data())
        replayed = {trade["trade_id"] for trade in api.get_trades()}
        assert replayed == {trade["trade_id"] for trade in live.get_trades()}
    assert main(["replay", "info", str(path)]) == 0
    assert "66 polls" in capsys.readouterr().out


def test_a_quiet_market_costs_a_poll_row_not_a_book(sandbox: Any, tmp_path: Path) -> None:
    path = tmp_path / "quiet.sqlite"
    assert record(sandbox, path, "--every", "1", "--polls", "2") == 0
    before = info(str(path)).level_changes
    assert record(sandbox, path, "--every", "1", "--polls", "30", "-q") == 0  # within one quarter hour
    assert info(str(path)).level_changes - before < 30


def test_serve_replay_and_report(sandbox: Any, tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "day.sqlite"
    assert record(sandbox, path, "--every", "60", "--polls", "20", "-q") == 0
    with GameServe("--replay", str(path), "--clock", "manual", "--admin-token", ADMIN) as served:
        assert any("replaying" in line for line in served.banner)
        with GameAPI("demo-token", served.base_url) as api:
            assert api.get_status()["replay"]["clock"] == "manual"
            best = api.get_market_best_offers(top_n=1)
            contract = sorted(name for name in best if best[name].get("sell"))[0]
            offer = best[contract]["sell"][0]
            start = contract[11:16]
            api.create_order(
                {
                    "side": "buy",
                    "price": offer["price"],
                    "volume": 1,
                    "date": contract[:10],
                    "start_time": start,
                    "end_time": f"{int(start[:2]) + (int(start[3:]) + 15) // 60:02d}:{(int(start[3:]) + 15) % 60:02d}",
                    "duration": "15m",
                    "tz_offset_hours": 0,
                }
            )
        capsys.readouterr()
        argv = ["replay", "report", str(path), "--url", served.base_url, "--token", "demo-token"]
        assert main([*argv, "--json"]) == 0
        made = json.loads(capsys.readouterr().out)
        assert [(fill["side"], fill["volume"]) for fill in made["fills"]] == [("buy", "1")]
        assert made["days"][0]["quarter_hours"] == 96 and len(made["fill_hash"]) == 64
        assert main(argv) == 0
        assert "fill log sha256: " + made["fill_hash"] in capsys.readouterr().out
        if importlib.util.find_spec("matplotlib") is not None:  # the plot extra
            assert main([*argv, "--plot", str(tmp_path / "day.png")]) == 0
            assert (tmp_path / "day.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--replay", "missing.sqlite"], "no recording at"),
        (["--replay", "x.sqlite", "--seed-market"], "--seed-market does not go with --replay"),
        (["--speed", "100"], "--speed is the pace of a replay"),
        (["--replay", "x.sqlite", "--clock", "manual", "--speed", "10"], "not both"),
    ],
)
def test_serve_replay_refuses_what_does_not_go(tmp_path: Path, flags: List[str], says: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "gameproto_cli", "serve", "--port", "0", *flags],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 2 and says in completed.stderr


def test_record_refuses_a_file_that_is_not_a_recording(sandbox: Any, tmp_path: Path, capsys: Any) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("not sqlite at all, long enough to be read" * 20)
    assert record(sandbox, other, "--polls", "1") == 2
    assert "not a gameproto recording" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"every": 0}, "every must be"),
        ({"every": float("nan")}, "every must be"),
        ({"every": 1, "polls": 0}, "polls must be"),
        ({"every": 1, "duration": -5}, "duration must be"),
    ],
)
def test_record_refuses_an_interval_that_would_never_end(tmp_path: Path, options: Dict[str, Any], says: str) -> None:
    path = tmp_path / "day.sqlite"
    with GameAPI("demo-token", "http://127.0.0.1:9") as api, pytest.raises(ValueError, match=says):
        record_into(api, path, **options)
    assert not path.exists()  # refused before anything is written


def test_a_market_without_order_book_rows_is_told_once(sandbox: Any, tmp_path: Path) -> None:
    # A server older than 0.1.2 lists only the summary rows: what it records has no book to trade against.
    said: List[str] = []
    with GameAPI("demo-token", sandbox.base_url) as api:
        rows = api.get_market_data()
        assert not book_not_listed(rows)  # the sandbox lists its book
        summary_only = [row for row in rows if row.get("direction") is None]
        assert book_not_listed(summary_only)
        assert not book_not_listed([dict(row, bid=None, ask=None) for row in summary_only])  # a market gone quiet
        record_into(api, tmp_path / "day.sqlite", every=0.01, polls=2, say=said.append)
    assert not any("warning" in line for line in said)


def _polls(path: Path) -> int:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return int(connection.execute("SELECT count(*) FROM polls").fetchone()[0])
        finally:
            connection.close()
    except sqlite3.Error:
        return 0


@pytest.mark.component
def test_a_recording_killed_with_sigkill_resumes(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite"
    with GameServe("--clock", "manual", "--admin-token", ADMIN, "--seed-market") as served:
        argv = [sys.executable, "-m", "gameproto_cli", "record", str(path), "--url", served.base_url]
        argv += ["--token", "demo-token", "--drive-clock", "--admin-token", ADMIN, "--every", "20", "-q"]
        recorder = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while _polls(path) < 40 and recorder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(recorder.pid, signal.SIGKILL)
        recorder.wait()
        assert recorder.returncode == -signal.SIGKILL
        assert recorder.stderr is not None
        recorder.stderr.close()
        kept = _polls(path)
        assert kept >= 40
        tape = read_recording(str(path))  # whole: every committed poll reads back
        completed = subprocess.run([*argv, "--polls", "5"], capture_output=True, text=True, timeout=120)
        assert completed.returncode == 0, completed.stderr
        held = info(str(path))
        assert held.polls == kept + 5 and held.sessions == 2 and held.end > tape.end  # type: ignore[operator]
        backtest = Backtest(str(path))
        with backtest.client() as api, GameAPI("demo-token", served.base_url) as live:
            api.sleep(backtest.tape.end - backtest.now)
            assert levels_of(api.get_market_data()) == levels_of(live.get_market_data())
