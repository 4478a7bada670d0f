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
    # One writer name for the bot and the reconcile after it: the restarted bot settles its own intent at once.
    url = f"sqlite:///{tmp_path / 'bot.db'}?writer=bot"
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
    assert [record["order_id"] for record in records] == ["ord_1", "ord_2"]
    first = records[0]
    assert first["delivery_start_utc"].endswith("T10:00:00.000Z") and first["side"] == "buy"
    assert [change["state"] for change in first["changes"]] == ["intent", "created"]
    assert [(trade["trade_id"], trade["volume"]) for trade in first["trades"]] == [("trd_1", "0.5")]
    assert first["created_utc"] and first["created_utc"] <= first["trades"][0]["time"]

    target = tmp_path / "remit.csv"
    code, out, err = game(capsys, "journal", "export", "--journal", url, "--output", str(target))
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [(row["record"], row["order_id"], row["state"] or row["trade_id"]) for row in rows] == [
        ("state", "ord_1", "intent"),
        ("state", "ord_1", "created"),
        ("trade", "ord_1", "trd_1"),
        ("state", "ord_2", "intent"),
        ("state", "ord_2", "unknown"),
        ("state", "ord_2", "created"),
    ]


def test_a_missing_journal_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = game(capsys, "journal", "show")
    assert code == 2 and "no journal" in err
    code, out, err = game(capsys, "journal", "show", "--journal", f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 0 and "no journal at" in err and "(none)" in out
    assert not (tmp_path / "none.db").exists()
    code, _, err = game(capsys, "journal")
    assert code == 2


def test_a_journal_url_that_can_never_work_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("show", "export"):
        code, _, err = game(capsys, "journal", command, "--journal", "sqlite:bot.db")
        assert code == 2 and "journal must be a URL" in err and "Traceback" not in err


def test_export_brings_the_trades_up_to_date_with_a_token_and_keeps_trades_of_unknown_orders(
    server: RunningServer[Exchange], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    with GameAPI(TOKEN, server.base_url, journal=url) as bot, GameAPI(OTHER_TOKEN, server.base_url) as bob:
        bot.create_order(future_order(price=50.0, volume=2.0))
        bot.reconcile()  # the trader's name is known to the journal
    with GameAPI(TOKEN, server.base_url) as other_tool, GameAPI(OTHER_TOKEN, server.base_url) as bob:
        other_tool.create_order(future_order(price=55.0))  # an order the journal never sees
        bob.create_order(future_order("sell", price=50.0, volume=1.5))  # trades with it, after the bot stopped

    code, out, err = game(capsys, "journal", "export", "--journal", url, "--format", "jsonl")
    assert code == 0 and "may be missing" in err
    assert [record["record"] for record in (json.loads(line) for line in out.splitlines())] == ["order"]

    connection = ["--url", server.base_url, "--token-file", str(token_file)]
    code, out, err = game(capsys, "journal", "export", "--journal", url, "--format", "jsonl", *connection)
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [(record["record"], record["order_id"]) for record in records] == [("order", "ord_1"), ("trade", "ord_2")]
    assert [(trade["trade_id"], trade["volume"]) for trade in records[0]["trades"]] == [("trd_2", "0.5")]
    assert records[1]["trade_id"] == "trd_1" and records[1]["volume"] == "1"  # the other tool's order
    assert records[1]["time"].endswith("Z") and len(records[1]["time"]) == len("2031-01-14T09:20:41.007Z")


@pytest.mark.parametrize("url", ["sqlite:bot.db", "sqlite://bot.db", "mysql://host/db", "bot.db"])
def test_a_journal_url_that_can_never_work_is_a_usage_error(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, err = game(capsys, "journal", "show", "--journal", url)
    assert (code, out) == (2, "") and "journal" in err and "Traceback" not in err
