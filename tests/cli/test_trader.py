"""``game`` as a trader uses it on a bad day: the real command in a real process.

Every test runs ``python -m gameproto_cli`` in a subprocess against the
embedded exchange on a loopback port and checks what a trader sees: the
exit status, one line in words on stderr, and never a traceback or a token.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from gameproto_sync import GameAPI
from tests.support.common import OTHER_TOKEN, TOKEN, future_order

ROOT = Path(__file__).resolve().parents[2]
#: Fixed POSIX zones (no daylight saving): the tests mean the same on any day of the year.
ZURICH_WINTER, NEW_YORK, TOKYO = "CET-1", "EST+5", "JST-9"
#: What must never reach a trader's terminal.
PYTHON_NOISE = ("Traceback", "urllib3", "_Pool(", "NewConnectionError", "Max retries", "Error:")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX time zones and paths")


def run_game(
    *argv: str,
    cwd: Path,
    env: Optional[Dict[str, str]] = None,
    before: str = "",
    timeout: float = 60,
) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """``game ARGV`` in a fresh interpreter, with no GAME_API_* of the developer's and no .env of theirs.

    ``before`` is Python run first in that interpreter (to make ``import trio`` fail, say).
    """
    clean = {key: value for key, value in os.environ.items() if not key.startswith("GAME_API_")}
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        clean.pop(name, None)
    clean.update(PYTHONPATH=str(ROOT), TZ=ZURICH_WINTER, COLUMNS="200")
    clean.update(env or {})
    if before:
        program = [sys.executable, "-c", f"{before}\nimport sys\nfrom gameproto_cli.main import main\nsys.exit(main())"]
    else:
        program = [sys.executable, "-m", "gameproto_cli"]
    return subprocess.run(
        [*program, *argv], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=clean, stdin=subprocess.DEVNULL
    )


def one_line_error(done: subprocess.CompletedProcess, code: int) -> str:  # type: ignore[type-arg]
    """The single stderr line of a failed command, after checking its status and that it says no Python."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("game"), lines
    for noise in PYTHON_NOISE:
        assert noise not in done.stderr, done.stderr
    assert TOKEN not in done.stdout + done.stderr
    return lines[0]


def tomorrow() -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).date().isoformat()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    return path


@pytest.fixture
def game(server: Any, token_file: Path, tmp_path: Path) -> Any:
    """``game(*argv, env=..., before=...)``: the command against the test exchange, as alice."""

    def run(*argv: str, **options: Any) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        done = run_game(*argv, "--url", server.base_url, "--token-file", str(token_file), cwd=tmp_path, **options)
        assert TOKEN not in done.stdout + done.stderr
        return done

    return run


def sent(server: Any, method: str, path: str) -> int:
    return int(server.exchange.attempts.get((method, path), 0))


CREATE = ("order", "create", "--side", "buy", "--price", "95.5", "--volume", "1", "--start", "14:00")


# -- 1. no silent time zone -----------------------------------------------------------------------


@pytest.mark.parametrize("zone, shown", [(NEW_YORK, "UTC-05:00"), (TOKYO, "UTC+09:00")])
def test_order_create_refuses_a_local_zone_outside_0_to_2(game: Any, server: Any, zone: str, shown: str) -> None:
    line = one_line_error(game(*CREATE, "--date", tomorrow(), env={"TZ": zone}), 2)
    assert shown in line and "--tz 0 (UTC), --tz 1 (CET) or --tz 2 (CEST)" in line
    assert sent(server, "POST", "/orders") == 0


def test_with_tz_the_same_order_is_placed_and_shown_in_utc(game: Any, server: Any) -> None:
    done = game(*CREATE, "--date", tomorrow(), "--tz", "1", env={"TZ": NEW_YORK})
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert re.fullmatch(
        rf"created order ord_\d+: buy 1 MW at 95.5, delivery {tomorrow()} 14:00-14:15 UTC\+1 \(13:00-13:15 UTC\)", first
    ), first
    with GameAPI(TOKEN, server.base_url) as api:
        (order,) = api.get_orders()
    assert order["tz_offset_hours"] == 1 and order["contract"].startswith(f"{tomorrow()}T13:00")


def test_a_local_zone_the_exchange_takes_is_used_and_said(game: Any) -> None:
    done = game(*CREATE, "--date", tomorrow(), env={"TZ": ZURICH_WINTER})
    assert done.returncode == 0, done.stderr
    assert f"delivery {tomorrow()} 14:00-14:15 UTC+1 (13:00-13:15 UTC)" in done.stdout
    utc = game(*CREATE, "--date", tomorrow(), "--start", "15:00", env={"TZ": "UTC"})
    assert f"delivery {tomorrow()} 15:00-15:15 UTC\n" in utc.stdout


def test_a_window_crossing_midnight_in_utc_shows_both_dates(game: Any) -> None:
    # Two days ahead: 00:30 at UTC+2 starts the evening before in UTC, which
    # must still be in the future at any hour of today.
    day = dt.date.fromisoformat(tomorrow()) + dt.timedelta(days=1)
    done = game(*CREATE[:-1], "00:30", "--date", day.isoformat(), "--tz", "2")
    before = (day - dt.timedelta(days=1)).isoformat()
    assert f"delivery {day} 00:30-00:45 UTC+2 ({before} 22:30 to {before} 22:45 UTC)" in done.stdout


def test_orders_table_shows_the_window_in_utc_and_one_id_form(game: Any, server: Any) -> None:
    with GameAPI(TOKEN, server.base_url) as api:
        created = api.create_order(future_order(tz_offset_hours=1))
    done = game("orders")
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if "Displayed" in line)
    assert row.split()[0] == created["order_id"]  # ord_N, as created
    assert f"{tomorrow()} 10:00-10:15 UTC+1 (09:00-09:15 UTC)" in row


def test_the_library_warns_once_when_it_clamps_the_local_zone(tmp_path: Path) -> None:
    script = (
        "import logging\n"
        "from gameproto import validate_order\n"
        "logging.basicConfig(format='%(levelname)s %(name)s: %(message)s')\n"
        f"order = dict(side='buy', price=1, volume=1, date='{tomorrow()}', start_time='14:00', end_time='14:15',"
        " duration='15m')\n"
        "for start in ('14:00', '15:00'):\n"
        "    end = start[:3] + '15'\n"
        "    print(validate_order(dict(order, start_time=start, end_time=end))['tz_offset_hours'])\n"
    )
    for zone, clamped in ((NEW_YORK, 0), (TOKYO, 2)):
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "TZ": zone, "PYTHONPATH": str(ROOT)},
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [str(clamped)] * 2  # the documented default is kept
        warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING gameproto:")]
        assert len(warnings) == 1, done.stderr  # once, not once per order
        assert f"taken as UTC+{clamped}" in warnings[0] and "tz_offset_hours" in warnings[0]
    quiet = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "TZ": ZURICH_WINTER, "PYTHONPATH": str(ROOT)},
    )
    assert quiet.stdout.split() == ["1", "1"] and "WARNING" not in quiet.stderr


# -- 2. errors in the trader's words -------------------------------------------------------------


def test_a_refused_connection_names_the_url_and_what_to_try(tmp_path: Path, token_file: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    done = run_game("status", "--url", url, "--token-file", str(token_file), "--timeout", "5", cwd=tmp_path)
    line = one_line_error(done, 1)
    assert line == (
        f"game: cannot connect to {url}: connection refused (nothing listens there); "
        "is the exchange running? check --url (or GAME_API_URL)"
    )


def test_a_wrong_url_that_answers_404_says_wrong_url(game: Any, server: Any, token_file: Path, tmp_path: Path) -> None:
    url = f"{server.base_url}/trading"
    done = run_game("orders", "--url", url, "--token-file", str(token_file), cwd=tmp_path)
    line = one_line_error(done, 1)
    assert line.startswith(f"game: {url} has no GAME API") and "wrong URL?" in line


def test_verbose_adds_the_detail_below_the_same_line(server: Any, token_file: Path, tmp_path: Path) -> None:
    url = f"{server.base_url}/trading"
    quiet = run_game("orders", "--url", url, "--token-file", str(token_file), cwd=tmp_path)
    loud = run_game("orders", "--url", url, "--token-file", str(token_file), "-v", cwd=tmp_path)
    assert loud.returncode == quiet.returncode == 1
    lines = [line for line in loud.stderr.splitlines() if not line.startswith(("gameproto", "urllib3"))]
    assert lines[0] == quiet.stderr.strip()
    assert any(line.startswith("  AuthenticationError: ") and "404" in line for line in lines[1:])
    assert "Traceback" not in loud.stderr and TOKEN not in loud.stderr


def test_a_wrong_token_says_which_setting_to_check(server: Any, tmp_path: Path) -> None:
    done = run_game("status", "--url", server.base_url, "--token", "personal-token-nobody-0000", cwd=tmp_path)
    line = one_line_error(done, 1)
    assert f"{server.base_url} refused your personal token (HTTP 401)" in line and "--token-file" in line
    assert "personal-token-nobody-0000" not in done.stderr


@pytest.mark.parametrize(
    "url, source",
    [("ftp://exchange.example", "--url"), ("127.0.0.1:8765", "--url"), ("http://", "--url")],
)
def test_a_url_that_is_no_address_is_bad_input(url: str, source: str, token_file: Path, tmp_path: Path) -> None:
    done = run_game("status", "--url", url, "--token-file", str(token_file), cwd=tmp_path)
    line = one_line_error(done, 2)
    assert f"{url!r} (from {source}) is not a server address" in line and "http://127.0.0.1:8765" in line
    assert "ValueError" not in line and "base_url" not in line


def test_a_url_from_the_environment_is_named_as_such(token_file: Path, tmp_path: Path) -> None:
    done = run_game("orders", "--token-file", str(token_file), cwd=tmp_path, env={"GAME_API_URL": "localhost:8765"})
    assert "(from GAME_API_URL)" in one_line_error(done, 2)


def test_a_bad_argument_the_client_refuses_is_bad_input(game: Any, server: Any) -> None:
    line = one_line_error(game("trades", "--duration", "7x"), 2)
    assert line == """game: duration must be a duration like "15m" or "1h", got '7x'"""
    assert sent(server, "GET", "/trades") == 0
    line = one_line_error(game("order", "delete", "../1"), 2)
    assert line.startswith("game: bad order id, nothing was sent: order_id must be ") and "'../1'" in line


def test_a_failing_or_busy_exchange_says_when_to_try_again(game: Any, server: Any) -> None:
    from gameproto.simulator.faults import Fault

    server.exchange.faults.add(
        Fault("status", 500, body=b'{"detail": "matching engine down"}'), path="/status", times=9
    )
    line = one_line_error(game("status", "--timeout", "20"), 1)
    assert line == f"game: {server.base_url} failed (HTTP 500) on GET /status; try again later (-v shows its answer)"
    server.exchange.faults.clear()
    server.exchange.faults.add(Fault("status", 429, headers=(("Retry-After", "120"),)), path="/trades")
    line = one_line_error(game("trades"), 1)
    assert line == f"game: {server.base_url} is rate limiting your token; try again in 120 s"


def test_deleting_an_order_that_is_not_there(game: Any) -> None:
    line = one_line_error(game("order", "delete", "ord_999999"), 1)
    assert "has no order ord_999999 of yours" in line and "game orders" in line


def test_deleting_a_filled_order_says_it_traded_and_deletes_nothing(game: Any, server: Any) -> None:
    with GameAPI(TOKEN, server.base_url) as api:
        sold = api.create_order(future_order("sell", price=50.0, volume=1.0))
        api.create_order(future_order("buy", price=60.0, volume=1.0))  # takes all of it
    line = one_line_error(game("order", "delete", str(sold["order_id"])), 1)
    assert (
        line == f"game: {sold['order_id']} cannot be cancelled: it is fully executed, nothing is left of it in the book"
    )
    with GameAPI(TOKEN, server.base_url) as api:
        assert (api.find_order_by_id(sold["order_id"]) or {}).get("status") == "filled"


def test_argparse_refusals_are_one_line_too(game: Any, tmp_path: Path) -> None:
    line = one_line_error(game("order", "create", "--side", "hold"), 2)
    assert line.startswith("game order create: argument --side: invalid choice") and "--help" in line
    bare = run_game("order", cwd=tmp_path)
    assert one_line_error(bare, 2) == "game order: say which: create or delete (see game order --help)"
    assert one_line_error(run_game(cwd=tmp_path), 2) == "game: say which command (game --help lists them)"


BLOCK_TRIO = "import sys\nsys.modules['trio'] = None  # as if trio were not installed"


@pytest.mark.parametrize("command", [["demo"], ["serve", "--port", "0"]], ids=" ".join)
def test_a_missing_trio_is_one_line_before_anything_runs(command: List[str], tmp_path: Path) -> None:
    done = run_game(*command, "--backend", "trio", cwd=tmp_path, before=BLOCK_TRIO, timeout=30)
    line = one_line_error(done, 2)
    assert 'pip install "trio>=0.26.1"' in line
    assert done.stdout == ""  # nothing ran: no exchange started, no blocking half


def test_demo_runs_on_trio_when_it_is_there(tmp_path: Path) -> None:
    pytest.importorskip("trio")
    done = run_game("demo", "--backend", "trio", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "demo finished: every call answered." in done.stdout


# -- 3. exit codes as the README says -------------------------------------------------------------


def test_a_missing_ca_bundle_is_bad_input(game: Any, server: Any) -> None:
    line = one_line_error(game("status", "--ca-bundle", "no-such-ca.pem"), 2)
    assert "--ca-bundle names no-such-ca.pem, which does not exist" in line
    assert sent(server, "POST", "/auth/token") == 0


def test_a_missing_ca_bundle_in_the_environment_is_bad_input(game: Any) -> None:
    line = one_line_error(game("status", env={"GAME_API_VERIFY_SSL": "/nowhere/ca.pem"}), 2)
    assert "GAME_API_VERIFY_SSL names /nowhere/ca.pem" in line


def test_a_missing_bulk_file_is_bad_input(game: Any, server: Any) -> None:
    assert one_line_error(game("bulk", "orders-of-today.csv"), 2) == "game: no such file: orders-of-today.csv"
    assert sent(server, "POST", "/orders/create-bulk") == 0


def test_a_missing_token_file_is_bad_input(server: Any, tmp_path: Path) -> None:
    done = run_game("orders", "--url", server.base_url, "--token-file", "nope.token", cwd=tmp_path)
    assert "cannot read the token file nope.token" in one_line_error(done, 2)


# -- 4. European spreadsheets ---------------------------------------------------------------------


def test_a_semicolon_csv_with_decimal_commas_and_no_end_time_uploads(game: Any, server: Any, tmp_path: Path) -> None:
    day = tomorrow()
    source = tmp_path / "Aufträge.csv"
    # What Excel writes in Zurich: ';' between cells, ',' in numbers, headers as typed.
    source.write_text(
        "Side;Price;Volume;Date;Start_Time;Duration;State\r\n"
        f"buy;95,5;0,25;{day};14:00;15m;\r\n"
        f"sell;120;1,5;{day};14:00;1h;hidden\r\n"
        ";;;;;;\r\n",
        encoding="utf-8-sig",
    )
    done = game("bulk", str(source), env={"TZ": ZURICH_WINTER})
    assert done.returncode == 0, done.stderr
    read, counts = done.stdout.strip().splitlines()
    assert read == (
        f"read {str(source)!r} as CSV separated by ';', decimal commas; end_time from start_time + duration "
        "in 2 rows; times without tz_offset_hours at UTC+1 in 2 rows (this computer's zone)"
    )
    assert counts.startswith("created 2, failed 0, unsent 0, unknown 0; results in ")
    with open(f"{source}.results.csv", encoding="utf-8", newline="") as results_file:
        results = list(csv.DictReader(results_file))
    assert [row["order_id"][:4] for row in results] == ["ord_", "ord_"]
    assert [row["delivery"] for row in results] == [
        f"{day} 14:00-14:15 UTC+1 (13:00-13:15 UTC)",
        f"{day} 14:00-15:00 UTC+1 (13:00-14:00 UTC)",
    ]
    with GameAPI(TOKEN, server.base_url) as api:
        orders = sorted(api.get_orders(), key=lambda order: str(order["direction"]))
    buy, sell = orders
    assert Decimal(str(buy["price"])) == Decimal("95.5") and Decimal(str(buy["volume"])) == Decimal("0.25")
    assert (buy["end_time"], sell["end_time"]) == ("14:15", "15:00")
    assert buy["tz_offset_hours"] == sell["tz_offset_hours"] == 1
    assert str(sell["state"]).lower() == "hidden"


def test_the_json_summary_says_what_was_detected(game: Any, tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_text(f"SIDE,PRICE,VOLUME,DATE,START_TIME,END_TIME,DURATION\nbuy,95.5,1,{tomorrow()},14:00,14:15,15m\n")
    done = game("bulk", str(source), "--json", "--tz", "0", env={"TZ": NEW_YORK})
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["created"] == 1
    assert summary["read"] == {
        "format": "csv",
        "delimiter": ",",
        "decimal_comma": False,
        "end_time_derived": 0,
        "tz_offset_hours_given": {"0": 1},
        "tz_source": "--tz",
    }


def test_a_bulk_file_without_time_zone_in_new_york_is_refused(game: Any, server: Any, tmp_path: Path) -> None:
    source = tmp_path / "orders.csv"
    rows = "".join(f"buy;9{i},5;1;{tomorrow()};1{i}:00;15m\n" for i in range(3))
    source.write_text("side;price;volume;date;start_time;duration\n" + rows, encoding="utf-8")
    done = game("bulk", str(source), env={"TZ": NEW_YORK})
    assert done.returncode == 2
    assert "row 1 (line 2) and 2 more: tz_offset_hours: not given" in done.stderr
    assert "UTC-05:00" in done.stderr and "pass --tz" in done.stderr and "nothing was sent" in done.stderr
    assert sent(server, "POST", "/orders/create-bulk") == 0


def test_json_lines_without_end_time_are_completed_too(game: Any, server: Any, tmp_path: Path) -> None:
    order = future_order("sell", 130.0, 1.0)
    del order["end_time"]
    source = tmp_path / "orders.jsonl"
    source.write_text(json.dumps(order) + "\n", encoding="utf-8")
    done = game("bulk", str(source))
    assert done.returncode == 0, done.stderr
    assert "JSON lines; end_time from start_time + duration in 1 row" in done.stdout
    with GameAPI(TOKEN, server.base_url) as api:
        assert [placed["end_time"] for placed in api.get_orders()] == ["10:15"]


# -- 5. one order id ------------------------------------------------------------------------------


def test_one_id_form_from_create_to_listing_to_delete(game: Any, server: Any) -> None:
    created = game(*CREATE, "--date", tomorrow(), "--tz", "0")
    order_id = re.match(r"created order (ord_\d+):", created.stdout)
    assert order_id, created.stdout
    name = order_id.group(1)
    listing = game("orders")
    assert [line.split()[0] for line in listing.stdout.splitlines()[2:]] == [name]
    deleted = game("order", "delete", name)
    assert (deleted.returncode, deleted.stdout) == (0, f"deleted order {name}\n")
    with GameAPI(TOKEN, server.base_url) as api:
        again = api.create_order(future_order())
    number = str(again["order_id"]).replace("ord_", "")
    assert game("order", "delete", number).stdout == f"deleted order ord_{number}\n"  # the bare number works too


def test_order_delete_help_shows_the_id_a_trader_sees(game: Any) -> None:
    done = game("order", "delete", "--help")
    assert done.returncode == 0
    assert "ord_1234" in done.stdout and '"1234"' not in done.stdout


# -- 6. the market, narrowed ----------------------------------------------------------------------


@pytest.fixture
def market(server: Any) -> Iterator[Dict[str, str]]:
    """Two contracts tomorrow (10:00 and 12:00) with both sides, and one the day after (10:00)."""
    day_after = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).date().isoformat()
    with GameAPI(OTHER_TOKEN, server.base_url) as bob:
        for start, end in (("10:00", "10:15"), ("12:00", "12:15")):
            bob.create_order(future_order("buy", 90.0, 1.0, start_time=start, end_time=end))
            bob.create_order(future_order("sell", 110.0, 1.0, start_time=start, end_time=end))
            bob.create_order(future_order("sell", 115.0, 2.0, start_time=start, end_time=end))
        bob.create_order(future_order("sell", 105.0, 1.0, date=day_after))
    yield {
        "ten": f"{tomorrow()}T10:00:00Z/PT15M",
        "twelve": f"{tomorrow()}T12:00:00Z/PT15M",
        "later": f"{day_after}T10:00:00Z/PT15M",
        "day_after": day_after,
    }


def test_market_contract_date_and_side_filters(game: Any, market: Dict[str, str]) -> None:
    one = game("market", "--contract", market["ten"])
    assert one.returncode == 0 and market["ten"] in one.stdout
    assert market["twelve"] not in one.stdout and market["later"] not in one.stdout
    by_day = game("market", "--date", tomorrow())
    assert market["ten"] in by_day.stdout and market["twelve"] in by_day.stdout
    assert market["later"] not in by_day.stdout
    by_prefix = game("market", "--contract", f"{tomorrow()}T12")
    assert market["twelve"] in by_prefix.stdout and market["ten"] not in by_prefix.stdout
    sells = game("market", "--date", tomorrow(), "--side", "sell")
    words = [line.split()[:1] for line in sells.stdout.splitlines()]
    assert ["sell"] in words and ["buy"] not in words
    nothing = game("market", "--date", "2031-01-01")
    assert nothing.returncode == 0 and "(no offer matches --date 2031-01-01)" in nothing.stdout


def test_market_json_has_one_shape_with_and_without_best(game: Any, market: Dict[str, str]) -> None:
    full = json.loads(game("market", "--json", "--date", tomorrow()).stdout)
    best = json.loads(game("market", "--json", "--date", tomorrow(), "--best", "1").stdout)
    assert set(full) == set(best) == {market["ten"], market["twelve"]}
    for contract in full:
        assert set(full[contract]) == set(best[contract]) == {"buy", "sell"}
        assert [float(row["price"]) for row in full[contract]["sell"]] == [110.0, 115.0]
        assert [float(row["price"]) for row in best[contract]["sell"]] == [110.0]
    buys = json.loads(game("market", "--json", "--side", "buy", "--contract", market["ten"]).stdout)
    assert list(buys) == [market["ten"]] and buys[market["ten"]]["sell"] == []
    assert [float(row["price"]) for row in buys[market["ten"]]["buy"]] == [90.0]


# -- 7. help and text -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["serve"], ["demo"], ["bulk"], ["order"], ["ltp"], ["market"]], ids=" ".join)
def test_help_has_no_raw_markup_and_one_examples_block(command: List[str], tmp_path: Path) -> None:
    done = run_game(*command, "--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "``" not in done.stdout
    assert len(re.findall(r"^examples?:$", done.stdout, flags=re.MULTILINE)) == 1, done.stdout


def test_ltp_help_and_table_agree_most_recent_first(game: Any, server: Any) -> None:
    with GameAPI(TOKEN, server.base_url) as alice, GameAPI(OTHER_TOKEN, server.base_url) as bob:
        for start, end in (("10:00", "10:15"), ("11:00", "11:15"), ("09:00", "09:15")):
            bob.create_order(future_order("sell", 60.0, 1.0, start_time=start, end_time=end))
            alice.create_order(future_order("buy", 60.0, 1.0, start_time=start, end_time=end))
    assert "most recent trade first" in " ".join(game("ltp", "--help").stdout.split())
    table = game("ltp").stdout.splitlines()[2:]
    stamps = [line.split()[3] for line in table]
    assert len(stamps) >= 3 and stamps == sorted(stamps, reverse=True)


def test_demo_says_what_the_crossing_pair_did_and_how_many_trades_it_shows(tmp_path: Path) -> None:
    done = run_game("demo", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    section = out.split("== a crossing pair")[1].split("==")[0]
    assert re.search(r"sell ord_\d+, 2 MW at 60: nothing traded: it rests in the book", section), section
    assert re.search(r"buy ord_\d+, 1 MW at 65: traded 1 MW in 1 fill at 60 on average, filled completely", section)
    assert re.search(r"crossing buy ord_\d+, 1\.5 MW at 71: traded 1\.5 MW", out)
    assert "filled by the two cheapest sells" not in out
    for shown in re.findall(r"the last 5 of (\d+) trades", out):
        assert int(shown) > 5
    # How many trades there are depends on the hour (the seeded quotes' prices
    # follow it); each table says when it shows only the last 5.
    assert out.count("  contract                    direction") == 2
    for table in out.split("== trades")[1:]:
        rows = [line for line in table.split("\n\n")[0].splitlines() if re.match(r"  \d{4}-\d{2}-\d{2}T", line)]
        assert len(rows) <= 5


def test_demo_says_which_orders_traded_and_never_deletes_a_filled_one(tmp_path: Path) -> None:
    done = run_game("demo", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "created ord_" not in out  # every order placed says what happened to it
    placed = re.findall(r"placed (ord_\d+)[^\n]*?: (nothing traded|traded [^\n]*)", out)
    assert len(placed) == 4, out
    filled = {name for name, what in placed if what.endswith("filled completely")}
    for name in re.findall(r"deleted (ord_\d+)", out) + re.findall(r"(ord_\d+): deleted", out):
        assert name not in filled, f"{name} traded completely, yet the demo deleted it"
    section = out.split("== lookup and deletion")[1].split("==")[0]
    found = re.search(r"found (ord_\d+): [^\n]*", section)
    assert found is not None
    if found.group(1) in filled:
        assert "traded completely (a filled order cannot be deleted)" in found.group(0)


# -- 9. .env read by python-dotenv ----------------------------------------------------------------


def test_dotenv_inline_comments_read_right(server: Any, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"# my trading desk\nexport GAME_API_URL={server.base_url}   # the local exchange\n"
        f"GAME_API_TOKEN={TOKEN} # alice's token\nGAME_API_VERIFY_SSL='true'\n",
        encoding="utf-8",
    )
    done = run_game("status", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "healthy"
    assert TOKEN not in done.stdout + done.stderr


def test_the_core_imports_dotenv_only_when_it_reads_a_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GAME_API_TOKEN=abc # comment\n", encoding="utf-8")
    script = (
        "import sys\nimport gameproto\nassert 'dotenv' not in sys.modules\n"
        "from gameproto._settings import read_dotenv\nprint(read_dotenv('.env'))\n"
        "assert 'dotenv' in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'GAME_API_TOKEN': 'abc'}"


# -- 10. the sandbox's demo token, and no other ---------------------------------------------------


def _readme_cli_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("## The `game` command")[1].split("\n## ")[0]


def test_the_readme_says_exactly_what_serve_and_demo_print(tmp_path: Path) -> None:
    section = " ".join(_readme_cli_section().split())
    assert "`personal token: demo-token`" in section
    assert "`personal tokens: N configured (not shown)`" in section
    assert "`embedded GAME exchange on http://127.0.0.1:PORT/api/v1 (token demo-token)`" in section
    assert "no command ever prints a token" not in section.lower()
    done = run_game("demo", cwd=tmp_path, timeout=120)
    banner = done.stdout.splitlines()[0]
    assert re.fullmatch(r"embedded GAME exchange on http://127\.0\.0\.1:\d+/api/v1 \(token demo-token\)", banner)
    assert done.stdout.count("demo-token") == 1  # the banner, and nowhere else


def test_demo_against_a_real_server_never_prints_its_token(server: Any, token_file: Path, tmp_path: Path) -> None:
    done = run_game("demo", "--url", server.base_url, "--token-file", str(token_file), cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "market (read-only)" in done.stdout
    assert TOKEN not in done.stdout + done.stderr and "demo-token" not in done.stdout + done.stderr
    failed = run_game("demo", "--url", server.base_url, "--token", TOKEN + "-wrong", cwd=tmp_path, timeout=60)
    assert "refused your personal token" in one_line_error(failed, 1)
    assert TOKEN not in failed.stdout + failed.stderr


def test_demo_url_without_a_token_is_bad_input(tmp_path: Path) -> None:
    done = run_game("demo", "--url", "http://127.0.0.1:9", cwd=tmp_path)
    assert "--url needs a token" in one_line_error(done, 2)


def test_demo_with_a_url_that_is_no_address_is_bad_input(tmp_path: Path) -> None:
    done = run_game("demo", cwd=tmp_path, env={"GAME_API_URL": "ftp://exchange.example", "GAME_API_TOKEN": "t0k3n-x"})
    line = one_line_error(done, 2)
    assert "'ftp://exchange.example' (from GAME_API_URL) is not a server address" in line
    assert done.stdout == ""


def test_bulk_on_a_terminal_draws_its_bar_and_says_what_it_read(server: Any, token_file: Path, tmp_path: Path) -> None:
    """Where a terminal matters: stderr is a pseudo-terminal, so the progress bar is drawn by default."""
    source = tmp_path / "orders.csv"
    rows = "".join(f"buy;50,{i:03d};0,1;{tomorrow()};10:00;15m;0\n" for i in range(150))
    source.write_text("Side;Price;Volume;Date;Start_Time;Duration;TZ_Offset_Hours\n" + rows, encoding="utf-8")
    controller, terminal = os.openpty()
    try:
        clean = {key: value for key, value in os.environ.items() if not key.startswith("GAME_API_")}
        process = subprocess.Popen(
            [sys.executable, "-m", "gameproto_cli", "bulk", str(source), "--url", server.base_url,
             "--token-file", str(token_file)],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=terminal, stdin=subprocess.DEVNULL, text=True,
            env={**clean, "PYTHONPATH": str(ROOT), "TZ": ZURICH_WINTER},
        )  # fmt: skip
        os.close(terminal)
        terminal = -1
        out, _ = process.communicate(timeout=60)
        screen = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the process closed its end
                break
            if not chunk:
                break
            screen += chunk
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)
    text = screen.decode("utf-8", errors="replace")
    assert process.returncode == 0, text
    assert "\r" in text and "150/150 orders, request 2/2" in text and "Traceback" not in text
    assert out.splitlines()[0].endswith(
        "as CSV separated by ';', decimal commas; end_time from start_time + duration in 150 rows"
    )
    assert sent(server, "POST", "/orders/create-bulk") == 2
