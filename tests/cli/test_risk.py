"""``game positions`` and ``game cancel-all``, as a trader runs them: a real process against the served exchange."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from gameproto import Contract
from gameproto.risk import is_resting
from gameproto_sync import GameAPI
from tests.support.common import OTHER_TOKEN, TOKEN, future_order

ROOT = Path(__file__).resolve().parents[2]
DAY = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).date()


def game(server: Any, tmp_path: Path, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env: Dict[str, str] = {key: value for key, value in os.environ.items() if not key.startswith("GAME_API_")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="200", GAME_API_URL=server.base_url, GAME_API_TOKEN=TOKEN)
    done = subprocess.run(
        [sys.executable, "-m", "gameproto_cli", *argv],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env, input=stdin,
    )  # fmt: skip
    assert "Traceback" not in done.stderr and TOKEN not in done.stdout + done.stderr
    return done


def at(side: str, price: Any, volume: Any, start: str = "10:00", end: str = "10:15", **fields: Any) -> Dict[str, Any]:
    return future_order(side, price, volume, day=DAY, start_time=start, end_time=end, **fields)


def resting(server: Any) -> int:
    return sum(1 for order in server.exchange.orders_of("alice") if is_resting(order))


def trade(
    server: Any, side: str, price: Any, volume: Any, start: str, end: str, duration: Optional[str] = None
) -> None:
    extra = {"duration": duration} if duration else {}
    with GameAPI(TOKEN, server.base_url) as alice, GameAPI(OTHER_TOKEN, server.base_url) as bob:
        alice.create_order(at(side, price, volume, start, end, **extra))
        bob.create_order(at("sell" if side == "buy" else "buy", price, volume, start, end, **extra))


def test_positions_prints_the_day_per_period_and_plots_it(server: Any, tmp_path: Path) -> None:
    trade(server, "buy", 80, 2, "10:00", "10:15")
    trade(server, "buy", 90, 1, "10:00", "10:15")
    trade(server, "sell", 70, 3, "11:00", "12:00", "1h")
    done = game(server, tmp_path, "positions", "--date", DAY.isoformat(), "--plot", "day.png")
    assert done.returncode == 0, done.stderr
    quarter = Contract.from_order(at("buy", 1, 1))
    hour = Contract.from_order(at("sell", 1, 1, "11:00", "12:00", duration="1h"))
    assert f"delivery day {DAY} (Europe/Zurich, 96 quarter-hours)" in done.stdout
    rows = {text.split()[3]: text.split() for text in done.stdout.splitlines() if "/PT" in text}
    local = f"{quarter.local_start:%H:%M}-{quarter.end.astimezone(quarter.local_start.tzinfo):%H:%M}"
    zone = f"UTC+{quarter.tz_offset_hours}"
    assert rows[quarter.id] == [f"Q{quarter.period}", local, zone, quarter.id, "3", "0", "3", "83.33", "-", "-250"]
    assert rows[hour.id][0] == f"H{hour.period}" and rows[hour.id][4:] == ["0", "3", "-3", "-", "70", "210"]
    assert "day: bought 0.75 MWh  sold 3 MWh  net -2.25 MWh  cash -40" in done.stdout
    png = (tmp_path / "day.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    answer = json.loads(game(server, tmp_path, "positions", "--date", DAY.isoformat(), "--json").stdout)
    assert [row["net"] for row in answer["periods"]] == ["3", "-3"] and answer["net_mwh"] == "-2.25"


@pytest.mark.parametrize("argv", [["cancel-all", "--side", "long"], ["cancel-all", "--contract", "x"],
                                  ["positions", "--date", "tomorrow"]])  # fmt: skip
def test_bad_arguments_are_one_line(server: Any, tmp_path: Path, argv: Any) -> None:
    done = game(server, tmp_path, *argv)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


def on_a_terminal(server: Any, tmp_path: Path, *argv: str, answer: str) -> subprocess.CompletedProcess[str]:
    """``game *argv`` with a terminal (a pseudo-terminal) as its stdin, on which ``answer`` is typed."""
    import pty

    controller, terminal = pty.openpty()
    env: Dict[str, str] = {key: value for key, value in os.environ.items() if not key.startswith("GAME_API_")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="200", GAME_API_URL=server.base_url, GAME_API_TOKEN=TOKEN)
    try:
        os.write(controller, answer.encode())  # the terminal keeps it until the prompt reads it
        done = subprocess.run(
            [sys.executable, "-m", "gameproto_cli", *argv],
            cwd=tmp_path, stdin=terminal, capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
    finally:
        os.close(terminal)
        os.close(controller)
    assert "Traceback" not in done.stderr
    return done


def test_cancel_all_asks_on_a_terminal_before_it_acts(server: Any, tmp_path: Path) -> None:
    with GameAPI(TOKEN, server.base_url) as alice:
        alice.create_order({"orders": [at("buy", 50, 1), at("sell", 150, 1), at("sell", 151, 1, "11:00", "11:15")]})
    declined = on_a_terminal(server, tmp_path, "cancel-all", answer="n\n")
    assert declined.returncode == 0 and "cancel 3 resting orders? [y/N]" in declined.stdout  # a choice, no failure
    assert "nothing cancelled" in declined.stdout and resting(server) == 3
    nothing = on_a_terminal(server, tmp_path, "cancel-all", answer="\n")  # no answer: no
    assert nothing.returncode == 0 and "nothing cancelled" in nothing.stdout and resting(server) == 3
    piped = game(server, tmp_path, "cancel-all", stdin="y\n")  # a pipe is no terminal: its answer is not taken
    assert piped.returncode == 2 and piped.stdout == "" and resting(server) == 3
    assert piped.stderr.strip() == (
        "game: game cancel-all asks before it cancels and there is no terminal to ask: pass --yes"
    )
    contract = Contract.from_order(at("buy", 1, 1)).id
    sells = on_a_terminal(server, tmp_path, "cancel-all", "--side", "sell", "--contract", contract, answer="y\n")
    assert sells.returncode == 0 and "1 cancelled, 0 already gone, 0 failed" in sells.stdout and resting(server) == 2
    done = game(server, tmp_path, "cancel-all", "--yes", "--json")
    assert done.returncode == 0 and len(json.loads(done.stdout)["cancelled"]) == 2 and resting(server) == 0
    assert on_a_terminal(server, tmp_path, "cancel-all", answer="").stdout.strip() == "no resting order to cancel"


def test_positions_plots_a_day_whose_trades_net_to_zero(
    server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    from gameproto import positions
    from gameproto_cli import plot

    trade(server, "buy", 80, 2, "10:00", "10:15")
    trade(server, "sell", 82, 2, "10:00", "10:15")
    with GameAPI(TOKEN, server.base_url) as alice:
        day = positions(alice.get_trades(), ["alice"]).day(DAY)
    assert day.energy == 0 and day.bought_energy > 0
    drawn: List[str] = []
    pyplot = plot._pyplot()
    real_text = pyplot.Axes.text

    def text(axes: Any, *args: Any, **kwargs: Any) -> Any:
        drawn.append(str(args[2]))
        return real_text(axes, *args, **kwargs)

    monkeypatch.setattr(pyplot.Axes, "text", text)  # what the plot writes on its axes
    plot.plot_day(day, str(tmp_path / "day.png"))
    assert "no trades for this day" not in drawn
    assert (tmp_path / "day.png").read_bytes().startswith(b"\x89PNG")
