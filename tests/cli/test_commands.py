"""The everyday ``game`` commands, through the real entry point, against the embedded exchange."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Sequence, Tuple

import pytest

from gameproto.simulator.exchange import Exchange
from gameproto_cli.main import main
from gameproto_exchange import RunningServer
from gameproto_sync import GameAPI
from tests.support.common import OTHER_TOKEN, TOKEN, future_order

#: ``game(*argv)``: a command's exit status, standard output and standard error.
Game = Callable[..., Tuple[int, str, str]]

BULK_PATH = ("POST", "/orders/create-bulk")
SINGLE_PATH = ("POST", "/orders")


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def no_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only the flags configure the command: no GAME_API_* variables, no .env of the developer's."""
    for name in ("GAME_API_URL", "GAME_API_TOKEN", "GAME_API_VERIFY_SSL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def game(server: RunningServer[Exchange], token_file: Path, capsys: pytest.CaptureFixture[str]) -> Game:
    """``game(*argv)`` runs a command against the test exchange: (exit status, stdout, stderr)."""

    def run(*argv: str) -> Tuple[int, str, str]:
        connection = ["--url", server.base_url, "--token-file", str(token_file)]
        code = main([*argv, *connection])
        out, err = capsys.readouterr()
        assert TOKEN not in out and TOKEN not in err
        return code, out, err

    return run


def sent(server: RunningServer[Exchange], key: Tuple[str, str]) -> int:
    return int(server.exchange.attempts.get(key, 0))


def tomorrow() -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).date().isoformat()


@pytest.fixture
def book(server: RunningServer[Exchange]) -> Iterator[Dict[str, Any]]:
    """A small market: alice's resting buy at 100 and sell at 120, and one trade with bob at 60."""
    with GameAPI(TOKEN, server.base_url) as alice, GameAPI(OTHER_TOKEN, server.base_url) as bob:
        buy = alice.create_order(future_order("buy", 100.0, 1.0))
        sell = alice.create_order(future_order("sell", 120.0, 2.0))
        bob.create_order(future_order("sell", 60.0, 1.0, start_time="11:00", end_time="11:15"))
        alice.create_order(future_order("buy", 65.0, 1.0, start_time="11:00", end_time="11:15"))
        yield {"buy": buy, "sell": sell}


# -- help and usage ------------------------------------------------------------

COMMANDS = [
    ["status"],
    ["orders"],
    ["trades"],
    ["market"],
    ["ltp"],
    ["spot"],
    ["order"],
    ["order", "create"],
    ["order", "delete"],
    ["bulk"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_of_every_command_has_an_example(command: List[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main([*command, "--help"])
    assert stop.value.code == 0
    assert "example" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["status"], ["orders"], ["bulk", "orders.csv"]], ids=" ".join)
def test_a_missing_token_is_a_usage_error(
    command: List[str], server: RunningServer[Exchange], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "orders.csv").write_text("side,price\n", encoding="utf-8")
    assert main([*command, "--url", server.base_url]) == 2
    out, err = capsys.readouterr()
    assert "token" in err and len(err.strip().splitlines()) == 1
    assert out == ""


def test_order_without_an_action_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["order"]) == 2
    assert "create or delete" in capsys.readouterr().err


# -- the read commands ---------------------------------------------------------


def test_status_as_table_and_json(game: Game) -> None:
    code, out, _ = game("status")
    assert code == 0 and "status" in out and "healthy" in out
    code, out, _ = game("status", "--json")
    assert code == 0 and json.loads(out)["status"] == "healthy"


def test_orders_as_table_and_json(game: Game, book: Dict[str, Any]) -> None:
    code, out, _ = game("orders")
    assert code == 0
    assert "order id" in out and "direction" in out and "delivery" in out
    assert f"{tomorrow()} 10:00-10:15" in out
    code, out, _ = game("orders", "--json", "--direction", "sell")
    orders = json.loads(out)
    assert code == 0 and orders and {order["direction"] for order in orders} == {"sell"}


def test_orders_shows_each_orders_status_beside_its_state(game: Game, book: Dict[str, Any]) -> None:
    code, out, _ = game("orders")
    header, _rule, *rows = out.splitlines()
    assert code == 0 and header.split()[7:9] == ["state", "status"]
    cells = {(row.split()[1], row.split()[2]): row.split()[5:7] for row in rows}
    assert cells[("buy", "65")] == ["Displayed", "filled"]  # bob's sell at 60 filled it whole
    assert cells[("buy", "100")] == ["Displayed", "active"] and cells[("sell", "120")] == ["Displayed", "active"]


def test_orders_refuses_an_unknown_direction(game: Game) -> None:
    with pytest.raises(SystemExit) as stop:
        game("orders", "--direction", "up")
    assert stop.value.code == 2


def test_trades_as_table_and_json(game: Game, book: Dict[str, Any]) -> None:
    code, out, _ = game("trades")
    assert code == 0 and "trade id" in out and "alice" in out and "bob" in out
    code, out, _ = game("trades", "--json", "--duration", "15m")
    ours = [trade for trade in json.loads(out) if (trade["buyer"], trade["seller"]) == ("alice", "bob")]
    assert code == 0 and len(ours) == 1 and float(ours[0]["price"]) == 60.0


def test_market_is_a_ladder_sells_above_buys(game: Game, book: Dict[str, Any]) -> None:
    code, out, _ = game("market")
    assert code == 0
    lines = out.splitlines()
    sell = next(i for i, line in enumerate(lines) if line.split()[:2] == ["sell", "120"])
    middle = next(i for i, line in enumerate(lines) if "spread 20" in line)
    buy = next(i for i, line in enumerate(lines) if line.split()[:2] == ["buy", "100"])
    assert sell < middle < buy
    # The contract's summary row (bid 100, ask 120, total volume) is no level of its own.
    assert [line.split() for line in lines].count(["buy", "100", "1"]) == 1
    assert sum(line.split()[:2] == ["buy", "100"] for line in lines) == 1


def test_market_best_and_json(game: Game, server: RunningServer[Exchange], book: Dict[str, Any]) -> None:
    with GameAPI(OTHER_TOKEN, server.base_url) as bob:
        bob.create_order(future_order("buy", 90.0, 1.0))
        bob.create_order(future_order("sell", 130.0, 1.0))
    code, out, _ = game("market", "--best", "1")
    assert code == 0 and "120" in out and "100" in out and "130" not in out and " 90" not in out
    code, out, _ = game("market", "--best", "1", "--json", "--duration", "15m")
    best = json.loads(out)
    assert code == 0
    for sides in best.values():
        assert len(sides["buy"]) <= 1 and len(sides["sell"]) <= 1
    code, out, _ = game("market", "--json")
    book = json.loads(out)  # one shape with and without --best: {contract: {"buy": [...], "sell": [...]}}
    assert code == 0 and set(book) == set(best)
    for contract, sides in book.items():
        assert set(sides) == {"buy", "sell"} and len(sides["buy"]) >= len(best[contract]["buy"])


def test_market_of_one_side_says_the_other_is_not_shown(game: Game, book: Dict[str, Any]) -> None:
    code, out, _ = game("market", "--side", "sell")
    assert code == 0 and "sell offers only (--side sell); buy offers not shown" in out
    assert "no buy offers" not in out and not any(line.split()[:1] == ["buy"] for line in out.splitlines())


def test_an_invalid_order_names_every_problem(game: Game, server: RunningServer[Exchange]) -> None:
    code, _, err = game("order", "create", "--side", "buy", "--price", "-1", "--volume", "1", "--start", "25:00")
    assert code == 2 and "start_time: must be HH:MM" in err and "price: must be > 0, got -1" in err
    assert "end_time" not in err  # it follows from the start: one problem, named once
    assert sent(server, SINGLE_PATH) == 0


def test_ltp_as_table_and_json(game: Game, book: Dict[str, Any]) -> None:
    code, out, _ = game("ltp")
    assert code == 0 and ("contract" in out or "(none)" in out)
    code, out, _ = game("ltp", "--json")
    latest = json.loads(out)
    assert code == 0 and isinstance(latest, dict)
    code, out, _ = game("ltp", "--zone", "10YCH-SWISSGRIDZ", "--json")
    assert code == 0 and isinstance(json.loads(out), list)
    code, out, _ = game("ltp", "--duration", "15m")
    assert code == 0


def test_spot_as_table_and_json(game: Game) -> None:
    code, out, _ = game("spot", "--area", "CH-SGD", "--limit", "5")
    assert code == 0 and ("contract" in out or "(none)" in out)
    code, out, _ = game("spot", "--json", "--from", tomorrow(), "--to", tomorrow())
    assert code == 0 and isinstance(json.loads(out), list)
    code, out, _ = game("spot", "--status", "--json")
    assert code == 0 and "status" in json.loads(out)


def test_spot_refuses_a_bad_date(game: Game) -> None:
    with pytest.raises(SystemExit) as stop:
        game("spot", "--from", "01.12.2026")
    assert stop.value.code == 2


# -- one order -----------------------------------------------------------------


def test_order_create_and_delete(game: Game, server: RunningServer[Exchange]) -> None:
    code, out, _ = game(
        "order", "create", "--side", "buy", "--price", "95.125", "--volume", "0.25",
        "--start", "14:00", "--date", tomorrow(), "--tz", "0", "--suffix", "cli_test", "--json",
    )  # fmt: skip
    assert code == 0
    order_id = json.loads(out)["order_id"]
    with GameAPI(TOKEN, server.base_url) as api:
        placed = api.find_order_by_id(order_id)
    assert placed is not None
    assert Decimal(str(placed["price"])) == Decimal("95.125") and Decimal(str(placed["volume"])) == Decimal("0.25")
    assert placed["end_time"] == "14:15" and placed["duration"] == "15m"
    code, out, _ = game("order", "delete", str(order_id))
    assert code == 0 and "deleted" in out
    with GameAPI(TOKEN, server.base_url) as api:
        assert api.find_order_by_id(order_id) is None


def test_order_create_as_table_computes_the_end(game: Game, server: RunningServer[Exchange]) -> None:
    code, out, _ = game(
        "order", "create", "--side", "sell", "--price", "120", "--volume", "1", "--start", "23:00",
        "--duration", "1h", "--date", tomorrow(), "--hidden",
    )  # fmt: skip
    assert code == 0 and out.startswith("created order ")
    assert "end_time" in out and "00:00" in out
    with GameAPI(TOKEN, server.base_url) as api:
        (order,) = api.get_orders()
    assert order["start_time"] == "23:00" and order["end_time"] == "00:00"
    assert str(order["state"]).lower() == "hidden"


@pytest.mark.parametrize("id_form", ["plain", "prefixed"])
def test_order_delete_takes_every_id_form(game: Game, server: RunningServer[Exchange], id_form: str) -> None:
    with GameAPI(TOKEN, server.base_url) as api:
        created = api.create_order(future_order())
        number = int(str(created["order_id"]).replace("ord_", ""))
    given = {"plain": str(number), "prefixed": f"ord_{number}"}[id_form]
    code, out, _ = game("order", "delete", given, "--json")
    assert code == 0 and json.loads(out)["status"] == "deleted"


@pytest.mark.parametrize(
    "flags, field",
    [
        (["--price", "-5"], "price"),
        (["--price", "abc"], "price"),
        (["--price", "1e400"], "price"),
        (["--price", "95", "--volume", "0"], "volume"),
        (["--price", "95", "--start", "25:00"], "start_time"),
        (["--price", "95", "--tz", "5"], "tz_offset_hours"),
        (["--price", "95", "--suffix", "x" * 51], "trader_suffixe"),
        (["--price", "95", "--date", "2001-01-01"], "date"),
    ],
)
def test_an_invalid_order_exits_2_naming_the_field(
    game: Game, server: RunningServer[Exchange], flags: List[str], field: str
) -> None:
    defaults = {"--volume": "1", "--start": "14:00", "--date": tomorrow()}
    for name, value in defaults.items():
        if name not in flags:
            flags = [*flags, name, value]
    code, out, err = game("order", "create", "--side", "buy", *flags)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and field in err
    assert sent(server, SINGLE_PATH) == 0


def test_a_window_past_midnight_is_refused(game: Game, server: RunningServer[Exchange]) -> None:
    code, _, err = game("order", "create", "--side", "buy", "--price", "1", "--volume", "1", "--start", "23:30",
                        "--duration", "1h", "--date", tomorrow())  # fmt: skip
    assert code == 2 and "end_time" in err
    assert sent(server, SINGLE_PATH) == 0


def test_order_delete_refuses_a_bad_id(game: Game, server: RunningServer[Exchange]) -> None:
    code, _, err = game("order", "delete", "../1")
    assert code == 2 and "order_id" in err
    assert sent(server, ("DELETE", "/orders/1")) == 0


# -- bulk ----------------------------------------------------------------------

HEADER = ["side", "price", "volume", "date", "start_time", "end_time", "duration", "tz_offset_hours", "state"]


def csv_text(rows: Sequence[Sequence[Any]], header: Sequence[str] = HEADER) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def bulk_rows(count: int) -> List[List[Any]]:
    # Every buy below every sell would not matter: these are all buys, so nothing trades.
    day = tomorrow()
    return [["buy", f"{50 + i / 1000:.3f}", "0.1", day, "10:00", "10:15", "15m", "0", ""] for i in range(count)]


def read_results(path: Path) -> List[Dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as source:
        return list(csv.DictReader(source))


def test_bulk_of_1000_csv_rows_goes_in_10_requests(game: Game, server: RunningServer[Exchange], tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(csv_text(bulk_rows(1000)), encoding="utf-8")
    code, out, err = game("bulk", str(source))
    results_path = tmp_path / "orders.csv.results.csv"
    assert code == 0, err
    read, counts = out.strip().splitlines()
    assert read == f"read {str(source)!r} as CSV separated by ','"
    assert counts == f"created 1000, failed 0, unsent 0, unknown 0; results in {results_path}"
    assert "\r" not in err  # stderr is no terminal here: no progress bar
    results = read_results(results_path)
    assert len(results) == 1000 and {row["status"] for row in results} == {"created"}
    assert [row["row"] for row in results[:3]] == ["1", "2", "3"] and results[0]["line"] == "2"
    assert len({row["order_id"] for row in results}) == 1000
    assert sent(server, BULK_PATH) == 10
    with GameAPI(TOKEN, server.base_url) as api:
        prices = sorted(Decimal(str(order["price"])) for order in api.get_orders())
    assert prices[1] == Decimal("50.001")  # no rounding on the way


def test_bulk_json_lines_with_json_summary_and_progress(
    game: Game, server: RunningServer[Exchange], tmp_path: Path
) -> None:
    orders = [future_order("sell", 200 + i, 0.5, state="hidden") for i in range(3)]
    orders[0]["price"] = 200.125
    orders[2]["options"] = {"trader_suffixe": "jsonl_bot"}
    source = tmp_path / "orders.txt"  # no telling suffix: the content says JSON lines
    source.write_text("\n".join(json.dumps(order) for order in orders) + "\n\n", encoding="utf-8")
    results_path = tmp_path / "out.csv"
    code, out, err = game("bulk", str(source), "--results", str(results_path), "--json", "--progress")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["created"] == 3 and summary["failed"] == summary["unsent"] == summary["unknown"] == 0
    assert summary["results"] == str(results_path)
    assert "\r" in err and "3/3" in err
    assert [row["status"] for row in read_results(results_path)] == ["created"] * 3
    with GameAPI(TOKEN, server.base_url) as api:
        assert Decimal("200.125") in {Decimal(str(order["price"])) for order in api.get_orders()}


def test_bulk_from_standard_input(game: Game, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(csv_text(bulk_rows(2))))
    code, out, _ = game("bulk", "-", "--no-progress")
    assert code == 0 and out.strip().endswith("results in bulk-results.csv")
    assert len(read_results(tmp_path / "bulk-results.csv")) == 2


def test_bulk_with_bad_rows_sends_nothing(game: Game, server: RunningServer[Exchange], tmp_path: Path) -> None:
    rows = bulk_rows(5)
    rows[2][1] = "-1"  # row 3, line 4
    rows[3][3] = "2026-02-30"  # row 4, line 5
    rows[4][7] = "one"  # row 5, line 6
    rows[1][2] = "1e999"  # row 2, line 3: finite, but no JSON number can carry it
    source = tmp_path / "orders.csv"
    source.write_text(csv_text(rows), encoding="utf-8")
    code, out, err = game("bulk", str(source))
    assert code == 2 and out == ""
    assert "row 2 (line 3): volume: is too large" in err
    assert "row 3 (line 4): price:" in err
    assert "row 4 (line 5): date:" in err
    assert "row 5 (line 6): tz_offset_hours:" in err
    assert "nothing was sent" in err
    assert sent(server, BULK_PATH) == 0 and sent(server, SINGLE_PATH) == 0
    assert not (tmp_path / "orders.csv.results.csv").exists()


def test_bulk_lists_at_most_20_problems(game: Game, tmp_path: Path) -> None:
    rows = bulk_rows(30)
    for row in rows:
        row[0] = "hold"
    source = tmp_path / "orders.csv"
    source.write_text(csv_text(rows), encoding="utf-8")
    code, _, err = game("bulk", str(source))
    assert code == 2
    assert err.count("side:") == 20 and "and 10 more" in err


def test_bulk_refuses_an_unknown_column(game: Game, server: RunningServer[Exchange], tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(csv_text([["buy", "1"]], header=["side", "volumne"]), encoding="utf-8")
    code, _, err = game("bulk", str(source))
    assert code == 2 and "volumne" in err
    assert sent(server, BULK_PATH) == 0


def test_bulk_bad_json_line_is_named(game: Game, tmp_path: Path) -> None:
    source = tmp_path / "orders.jsonl"
    source.write_text(json.dumps(future_order()) + "\n{not json\n[1]\n", encoding="utf-8")
    code, _, err = game("bulk", str(source))
    assert code == 2
    assert "row 2 (line 2): not valid JSON" in err and "row 3 (line 3): must be a JSON object" in err


def test_bulk_stops_at_a_failed_request(game: Game, server: RunningServer[Exchange], tmp_path: Path) -> None:
    from gameproto.simulator.faults import Fault

    server.exchange.faults.add(Fault("status", 400), method="POST", path="/orders/create-bulk")
    source = tmp_path / "orders.csv"
    source.write_text(csv_text(bulk_rows(150)), encoding="utf-8")
    code, out, err = game("bulk", str(source))
    assert code == 1
    assert out.strip().splitlines()[-1].startswith("created 0, failed 100, unsent 50, unknown 0; results in ")
    assert "bulk stopped" in err
    results = read_results(tmp_path / "orders.csv.results.csv")
    assert [row["status"] for row in results] == ["failed"] * 100 + ["unsent"] * 50
    assert results[0]["error"]


def test_bulk_outcome_unknown_is_recorded(game: Game, server: RunningServer[Exchange], tmp_path: Path) -> None:
    from gameproto.simulator.faults import Fault

    server.exchange.faults.add(Fault("status", 503), method="POST", path="/orders/create-bulk")
    source = tmp_path / "orders.csv"
    source.write_text(csv_text(bulk_rows(101)), encoding="utf-8")
    code, out, _ = game("bulk", str(source), "--json")
    assert code == 1
    summary = json.loads(out)
    assert (summary["unknown"], summary["unsent"], summary["created"]) == (100, 1, 0)
    assert sent(server, BULK_PATH) == 1  # an outcome in doubt is never sent again
