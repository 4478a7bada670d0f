"""The sandbox's state file (``game serve --state``): kept private, held by one server, never ahead of what it says.

Each promise is tried over a real socket against a real SQLite file: the
file's mode and what it keeps of a token; a second server on the same file;
another program's database and damaged files; a save that fails (the disk
full, the file read-only, another process holding it) leaves nothing of the
change in force; refused requests write nothing; a save writes what changed,
whatever the history.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from gameproto.simulator.exchange import Exchange
from gameproto_exchange import ManualClock, Sandbox, ScenarioError, ServerThread, StateFileError, Store, load_scenario
from tests.support.harness import GameServe
from tests.support.sandbox import ADMIN, plain_call

START = dt.datetime(2030, 3, 1, 6, 7, tzinfo=dt.timezone.utc).timestamp()
TOKENS = {"alice-token": "alice", "bob-token": "bob"}


def _order(price: float = 50.0, side: str = "buy") -> Dict[str, Any]:
    return {
        "side": side,
        "price": price,
        "volume": 1.0,
        "date": "2030-03-01",
        "start_time": "14:00",
        "end_time": "14:15",
        "duration": "15m",
        "tz_offset_hours": 0,
    }


def _access(url: str, personal: str = "alice-token") -> str:
    status, _, body = plain_call(url, "POST", "/api/v1/auth/token", {"token": personal})
    assert status == 200, body
    return str(body["access_token"])


def _listed(url: str, token: str) -> List[int]:
    status, _, body = plain_call(url, "GET", "/api/v1/orders", token=token)
    assert status == 200
    return [int(order["order_id"]) for order in body if order["status"] == "active"]


def _sandbox(path: str) -> Sandbox:
    clock = ManualClock(START)
    return Sandbox(Exchange(tokens=TOKENS, clock=clock), clock=clock, admin_token=ADMIN, store=Store(path))


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[Tuple[Sandbox, str, str]]:
    """A sandbox on a real state file served on loopback: (sandbox, base url, the file's path)."""
    path = str(tmp_path / "sandbox.db")
    sandbox = _sandbox(path)
    try:
        with ServerThread(sandbox) as running:
            yield sandbox, running.base_url, path
    finally:
        assert sandbox.store is not None
        sandbox.store.close()


def _game_serve(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gameproto_cli", "serve", "--port", "0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


# -- item 4: the file is its owner's, and keeps no bare hash of a token ----------------------------------------


def test_the_state_file_is_its_owners_alone_and_keys_each_token(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    with GameServe("--state", str(path), "--token", "alice-token", "--clock", "manual") as served:
        assert _listed(served.base_url, _access(served.base_url)) == []
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if name.exists():
            assert stat.S_IMODE(name.stat().st_mode) == 0o600, name
    with sqlite3.connect(path) as db:
        kept = [row[0] for row in db.execute("SELECT token_hmac FROM traders")]
        key = db.execute("SELECT value FROM meta WHERE key = 'token_key'").fetchone()[0]
    bare = hashlib.sha256(b"alice-token").hexdigest()
    assert kept and bare not in kept and all(len(one) == 64 for one in kept)
    assert len(key) == 64  # a random key per file: no table made in advance fits it


def test_a_state_file_others_could_read_is_made_its_owners_alone(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    Store(str(path)).close()
    os.chmod(path, 0o644)  # as an older sandbox left it, or a copy made by hand
    store = Store(str(path))
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        store.close()


def test_a_file_of_bare_token_hashes_is_migrated_and_its_traders_keep_their_names(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    with sqlite3.connect(path) as db:  # a state file as the sandbox wrote it before tokens were keyed
        db.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE orders (number INTEGER PRIMARY KEY, data TEXT NOT NULL);"
            "CREATE TABLE fills (number INTEGER PRIMARY KEY, data TEXT NOT NULL);"
            "CREATE TABLE traders (token_sha256 TEXT PRIMARY KEY, name TEXT NOT NULL);"
        )
        db.execute("INSERT INTO traders VALUES (?, 'carol')", (hashlib.sha256(b"carol-token").hexdigest(),))
    clock = ManualClock(START)
    exchange = Exchange(tokens=["carol-token"], clock=clock)
    sandbox = Sandbox(exchange, clock=clock, store=Store(path))
    try:
        with ServerThread(sandbox) as running:
            token = _access(running.base_url, "carol-token")
            assert plain_call(running.base_url, "POST", "/api/v1/orders", _order(), token)[0] == 200
            status, _, listed = plain_call(running.base_url, "GET", "/api/v1/orders", token=token)
        assert status == 200 and listed[0]["trader"] == "carol"
    finally:
        assert sandbox.store is not None
        sandbox.store.close()
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(traders)")]
        kept = [row[0] for row in db.execute("SELECT token_hmac FROM traders")]
    assert columns == ["token_hmac", "name"] and hashlib.sha256(b"carol-token").hexdigest() not in kept


# -- item 5: one server per state file ------------------------------------------------------------------------


def test_a_second_server_on_the_same_state_file_is_refused_naming_the_file_and_the_holder(tmp_path: Path) -> None:
    path = str(tmp_path / "same.db")
    with GameServe("--state", path, "--token", "alice-token", "--clock", "manual") as first:
        token = _access(first.base_url)
        assert plain_call(first.base_url, "POST", "/api/v1/orders", _order(), token)[0] == 200
        second = _game_serve("--state", path, "--token", "alice-token")
        assert second.returncode == 2, second.stdout + second.stderr
        assert path in second.stderr and "in use by another game serve" in second.stderr
        assert first._process is not None and f"pid {first._process.pid}" in second.stderr
        assert _listed(first.base_url, token) == [1]  # the first goes on as if nothing happened
    with GameServe("--state", path, "--token", "alice-token", "--clock", "manual") as again:  # the lock went with it
        assert _listed(again.base_url, _access(again.base_url)) == [1]


@pytest.mark.component  # a process killed with SIGKILL
def test_a_killed_server_lets_go_of_its_state_file(tmp_path: Path) -> None:
    path = str(tmp_path / "killed.db")
    first = GameServe("--state", path, "--clock", "manual", "--seed-market").start()
    first.kill()
    with GameServe("--state", path, "--clock", "manual") as again:
        assert any(f"state: {path} (restored)" in line for line in again.banner), again.banner


# -- items 6 and 7: files that are not the sandbox's, damaged ones -------------------------------------------------


def test_another_programs_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = str(tmp_path / "foreign.db")
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO customers VALUES (1, 'ada')")
    refused = _game_serve("--state", path)
    assert refused.returncode == 2
    assert path in refused.stderr and "another program's SQLite database" in refused.stderr
    assert "customers" in refused.stderr
    with sqlite3.connect(path) as db:
        assert [row[0] for row in db.execute("SELECT name FROM sqlite_master")] == ["customers"]
        assert db.execute("SELECT name FROM customers").fetchall() == [("ada",)]


def _damage(path: str, *statements: str) -> None:
    with sqlite3.connect(path) as db:
        for statement in statements:
            db.execute(statement)


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (("DELETE FROM meta WHERE key = 'clock'",), "its meta table has no 'clock'"),
        (("UPDATE meta SET value = 'soon' WHERE key = 'clock'",), "a value of its meta table cannot be read"),
        (("UPDATE orders SET data = '{not json' WHERE number = 1",), "order row 1 is not JSON"),
        (("UPDATE orders SET data = '{\"number\": 1}' WHERE number = 1",), "an order or a trade has no"),
        (("UPDATE meta SET value = '7' WHERE key = 'format'",), "its format is 7"),
        (("DROP TABLE meta", "CREATE TABLE meta (k TEXT, v TEXT)"), "its table meta has the columns (k, v)"),
    ],
)
def test_a_damaged_state_file_is_named_with_what_is_wrong(tmp_path: Path, damage: Tuple[str, ...], said: str) -> None:
    path = str(tmp_path / "damaged.db")
    sandbox = _sandbox(path)
    sandbox.exchange.desk.place(_order(), "alice", START)
    sandbox.changed()
    assert sandbox.store is not None
    sandbox.store.close()
    _damage(path, *damage)
    with pytest.raises(StateFileError) as refused:
        _sandbox(path)
    assert path in str(refused.value) and said in str(refused.value)
    assert "KeyError" not in str(refused.value)


def test_game_serve_names_a_damaged_or_foreign_file_and_exits_2(tmp_path: Path) -> None:
    damaged = str(tmp_path / "damaged.db")
    sandbox = _sandbox(damaged)
    sandbox.changed()
    assert sandbox.store is not None
    sandbox.store.close()
    _damage(damaged, "DELETE FROM meta WHERE key = 'clock'")
    text = tmp_path / "notes.db"
    text.write_text("not a database at all\n" * 10)
    for path, said in ((damaged, "is damaged: its meta table has no 'clock'"), (str(text), "is not a SQLite database")):
        refused = _game_serve("--state", path)
        assert refused.returncode == 2 and path in refused.stderr and said in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr


def test_a_scenario_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    scenario = tmp_path / "day.toml"
    scenario.write_bytes(b"horizon_hours = 2\n# caf\xe9\n")
    with pytest.raises(ScenarioError, match=r"day\.toml.* is not UTF-8 text"):
        load_scenario(str(scenario))
    (tmp_path / "prices.csv").write_bytes(b"time,price\n2030-03-01T00:00Z,40\xff\n")
    scenario.write_text('[price]\nreplay = "prices.csv"\n')
    with pytest.raises(ScenarioError, match=r"prices\.csv.* is not UTF-8 text"):
        load_scenario(str(scenario))


# -- item 6: a change that cannot be saved is not in force ---------------------------------------------------------


def _fail_saves(sandbox: Sandbox, how: str) -> None:
    assert sandbox.store is not None
    db = sandbox.store._db
    if how == "full":  # the disk full: the file may not grow by a page
        db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    else:  # the file read-only from now on
        db.execute("PRAGMA query_only = ON")


@pytest.mark.parametrize("how", ["full", "read-only"])
def test_a_change_that_cannot_be_saved_answers_an_error_and_is_not_in_force(tmp_path: Path, how: str) -> None:
    path = str(tmp_path / "sandbox.db")
    sandbox = _sandbox(path)
    assert sandbox.store is not None
    with ServerThread(sandbox) as running:
        url = running.base_url
        token = _access(url)
        assert plain_call(url, "POST", "/api/v1/orders", _order(40.0), token)[0] == 200
        _fail_saves(sandbox, how)
        kept = _listed(url, token)
        refused: List[Any] = []
        for attempt in range(400):  # the full file takes a few more rows in its last page, then no more
            status, _, body = plain_call(url, "POST", "/api/v1/orders", _order(41.0 + attempt / 100), token)
            if status != 200:
                refused = [status, body]
                break
            kept = _listed(url, token)
        assert refused and refused[0] == 503 and "nothing of it was done" in refused[1]["detail"], refused
        assert _listed(url, token) == kept
        bob = _access(url, "bob-token")  # nothing of the refused order trades either
        status, _, sold = plain_call(url, "POST", "/api/v1/orders", dict(_order(30.0, "sell"), volume=500.0), bob)
        assert status == 503 or sold["executed_volume"] == len(kept), (status, sold)
    sandbox.store.close()
    restarted = _sandbox(path)  # what the file has is what was answered 200
    assert restarted.store is not None
    try:
        assert [o["order_id"] for o in restarted.exchange.orders_of("alice", now=START)] == kept
    finally:
        restarted.store.close()


def test_a_cancel_that_cannot_be_saved_answers_an_error_and_the_order_stays(tmp_path: Path) -> None:
    path = str(tmp_path / "sandbox.db")
    sandbox = _sandbox(path)
    assert sandbox.store is not None
    with ServerThread(sandbox) as running:
        url = running.base_url
        token = _access(url)
        answers = [plain_call(url, "POST", "/api/v1/orders", _order(40.0 + n), token)[2] for n in range(2)]
        placed = _listed(url, token)
        assert len(placed) == 2
        _fail_saves(sandbox, "read-only")
        status, _, body = plain_call(url, "DELETE", f"/api/v1/orders/{answers[0]['order_id']}", token=token)
        assert status == 503 and "nothing of it was done" in body["detail"], (status, body)
        assert _listed(url, token) == placed  # still active, still in the book
        bob = _access(url, "bob-token")
        status = plain_call(url, "POST", "/api/v1/orders", _order(30.0, "sell"), bob)[0]
        assert status == 503  # a trade cannot be saved either: nothing of it is in force
        assert _listed(url, token) == placed
    sandbox.store.close()
    restarted = _sandbox(path)
    assert restarted.store is not None
    try:
        assert [o["order_id"] for o in restarted.exchange.orders_of("alice", now=START)] == placed
    finally:
        restarted.store.close()


def test_a_save_blocked_by_another_process_answers_503_and_the_order_is_not_listed(tmp_path: Path) -> None:
    path = str(tmp_path / "held.db")
    with GameServe("--state", path, "--token", "alice-token", "--clock", "manual") as served:
        token = _access(served.base_url)
        assert plain_call(served.base_url, "POST", "/api/v1/orders", _order(40.0), token)[0] == 200
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")  # a writer that never lets go (the sqlite3 shell, say)
            status, _, body = plain_call(served.base_url, "POST", "/api/v1/orders", _order(41.0), token)
            assert status == 503 and "nothing of it was done" in body["detail"]
            assert _listed(served.base_url, token) == [1]
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        status, _, body = plain_call(served.base_url, "POST", "/api/v1/orders", _order(42.0), token)
        assert status == 200
        placed = int(str(body["order_id"]).replace("ord_", ""))
        assert _listed(served.base_url, token) == [1, placed]
    with GameServe("--state", path, "--token", "alice-token", "--clock", "manual") as again:
        assert _listed(again.base_url, _access(again.base_url)) == [1, placed]


# -- item 10: refused requests write nothing ------------------------------------------------------------------------


def _file_state(path: str) -> Tuple[int, bytes]:
    """What a reader of the file sees: its data version and every row."""
    with sqlite3.connect(path) as db:
        rows = b"".join(
            repr(db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()).encode()
            for table in ("meta", "orders", "fills", "traders")
        )
        return os.stat(f"{path}-wal").st_size if os.path.exists(f"{path}-wal") else 0, rows


def test_refused_requests_commit_nothing_and_leave_the_view_as_it_was(served: Tuple[Sandbox, str, str]) -> None:
    sandbox, url, path = served
    token = _access(url)
    assert plain_call(url, "POST", "/api/v1/orders", _order(), token)[0] == 200
    before, key = _file_state(path), plain_call(url, "GET", "/_view")[2]["key"]
    version = sandbox.version
    for method, target, body, given in [
        ("POST", "/api/v1/orders", None, None),  # 401, no body: not screened by the server
        ("DELETE", "/api/v1/orders/1", None, None),  # 401
        ("DELETE", "/api/v1/orders/1", None, "wrong"),  # 401
        ("POST", "/api/v1/nowhere", None, None),  # 404
        ("PUT", "/api/v1/orders", None, None),  # 405
        ("DELETE", "/api/v1/orders/999", None, token),  # 404 of a trader
        ("POST", "/api/v1/orders", {"side": "up"}, token),  # 422
    ]:
        status, _, _ = plain_call(url, method, target, body, given)
        assert status in (401, 404, 405, 422), (method, target, status)
    sandbox.exchange.rate_limit_per_minute = 1
    assert plain_call(url, "POST", "/api/v1/orders", _order(), token)[0] == 429
    assert _file_state(path) == before
    assert sandbox.version == version
    assert plain_call(url, "GET", f"/_view?known={key}")[0] == 204


# -- item 9: a save costs what changed, not the history -------------------------------------------------------------


def test_a_save_writes_the_orders_that_changed_not_every_order_ever_placed(tmp_path: Path) -> None:
    path = str(tmp_path / "history.db")
    sandbox = _sandbox(path)
    desk, book = sandbox.exchange.desk, sandbox.exchange.ledger.book
    for number in range(300):  # a history: 300 orders that traded in full
        desk.place(_order(50.0 + number), "alice", START)
        desk.place(_order(40.0, "sell"), "bob", START)
    sandbox.changed()
    assert sandbox.store is not None
    written: List[str] = []
    sandbox.store._db.set_trace_callback(written.append)
    desk.place(_order(10.0), "alice", START)
    sandbox.changed()
    sandbox.store._db.set_trace_callback(None)
    orders = [statement for statement in written if "INTO orders" in statement]
    assert len(orders) == 1 and '"price":"10' in orders[0].replace(" ", "")  # one row: the new order
    assert not any("FROM orders" in statement for statement in written)
    assert sum(statement.startswith("COMMIT") for statement in written) == 1  # one transaction
    assert len(book.orders) == 601 and book.changed_orders == {}
    sandbox.store.close()
