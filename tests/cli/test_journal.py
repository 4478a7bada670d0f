"""``game journal show|export|reconcile`` through the real entry point, on a real SQLite journal."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Tuple

import pytest

from gameproto.simulator.exchange import Exchange
from gameproto.simulator.faults import Fault
from gameproto_cli.main import main
from gameproto_exchange import RunningServer
from gameproto_sync import GameAPI, OutcomeUnknownError
from tests.support.common import OTHER_TOKEN, TOKEN, future_order


@pytest.fixture(autouse=True)
def no_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("GAME_API_URL", "GAME_API_TOKEN", "GAME_API_VERIFY_SSL", "GAME_JOURNAL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def game(capsys: pytest.CaptureFixture[str], *argv: str) -> Tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_show_export_and_reconcile(
    server: RunningServer[Exchange], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    with GameAPI(TOKEN, server.base_url, journal=url) as bot, GameAPI(OTHER_TOKEN, server.base_url) as bob:
        bot.create_order(future_order(price=50.0, volume=2.0))
        server.exchange.faults.add(Fault("drop_after"), method="POST", path="/orders")
        with pytest.raises(OutcomeUnknownError):
            bot.create_order(future_order(price=40.0))
        bob.create_order(future_order("sell", price=50.0, volume=0.5))

    code, out, err = game(capsys, "journal", "show", "--journal", url)
    assert code == 0, err
    assert "unknown" in out and "created" in out

    connection = ["--url", server.base_url, "--token-file", str(token_file)]
    code, out, err = game(capsys, "journal", "reconcile", "--journal", url, *connection)
    assert code == 0, err
    assert "-> created order 2" in out and "1 settled, 0 foreign" in out and "1 new trades" in out

    code, out, err = game(capsys, "journal", "export", "--journal", url, "--format", "jsonl")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [record["order_id"] for record in records] == [1, 2]
    first = records[0]
    assert first["delivery_start_utc"].endswith("T10:00:00.000Z") and first["side"] == "buy"
    assert [change["state"] for change in first["changes"]] == ["intent", "created"]
    assert [(trade["trade_id"], trade["volume"]) for trade in first["trades"]] == [("trd_1", "0.5")]

    target = tmp_path / "remit.csv"
    code, out, err = game(capsys, "journal", "export", "--journal", url, "--output", str(target))
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [(row["record"], row["order_id"], row["state"] or row["trade_id"]) for row in rows] == [
        ("state", "1", "intent"),
        ("state", "1", "created"),
        ("trade", "1", "trd_1"),
        ("state", "2", "intent"),
        ("state", "2", "unknown"),
        ("state", "2", "created"),
    ]


def test_a_missing_journal_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = game(capsys, "journal", "show")
    assert code == 2 and "no journal" in err
    code, out, err = game(capsys, "journal", "show", "--journal", f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 0 and "no journal at" in err and "(none)" in out
    assert not (tmp_path / "none.db").exists()
    code, _, err = game(capsys, "journal")
    assert code == 2


@pytest.mark.parametrize("url", ["sqlite:bot.db", "sqlite://bot.db", "mysql://host/db", "bot.db"])
def test_a_journal_url_that_can_never_work_is_a_usage_error(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, err = game(capsys, "journal", "show", "--journal", url)
    assert (code, out) == (2, "") and "journal" in err and "Traceback" not in err
