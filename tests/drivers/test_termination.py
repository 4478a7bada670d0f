"""``cancel_all_on_exit()`` on SIGTERM (what ``systemctl stop`` and ``docker stop`` send), with a real signal.

Each test starts a real bot process (the blocking client, or the async one
under asyncio and trio) against the test exchange, waits until it says its
orders rest, sends it SIGTERM and reads what happened: the orders cancelled,
then the signal handed to what was there before (by default the process
ends by the signal: the shell's status 143), and that handler put back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, List

import pytest

from gameproto._cancel_all import Termination
from gameproto.risk import Terminated, is_resting
from tests.support.common import TOKEN, future_order

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is a POSIX signal")

#: A generous bound on each wait for the bot: it ends far sooner when all is well.
PATIENCE = 60.0

BLOCKING = """
from gameproto_sync import GameAPI

def run(body):
    with GameAPI(TOKEN, URL) as api:
        body(api)

def place(api, *orders):
    for order in orders:
        api.create_order(order)

def block(api, **where):
    return api.cancel_all_on_exit(**where)

def rest(api):
    while True:
        time.sleep(3600)
"""

ASYNC = """
import anyio
from gameproto_async import GameAPI

# The same bot, its steps awaited: each step below is run to completion in the event loop.
def run(body):
    async def main():
        async with GameAPI(TOKEN, URL) as api:
            await body(api)
    anyio.run(main, backend=BACKEND)
"""

ASYNC_BODIES = {
    "plain": """
async def body(api):
    async with api.cancel_all_on_exit():
        for order in ORDERS:
            await api.create_order(order)
        say("placed")
        await anyio.sleep_forever()
""",
    "nested": """
async def body(api):
    async with api.cancel_all_on_exit():
        await api.create_order(ORDERS[0])
        async with api.cancel_all_on_exit(side="sell"):
            await api.create_order(ORDERS[1])
            await api.create_order(ORDERS[2])
            say("placed")
            await anyio.sleep_forever()
""",
    "elsewhere": """
async def body(api):
    async with api.cancel_all_on_exit():
        for order in ORDERS:
            await api.create_order(order)

        def other():  # the kernel may give the process's SIGTERM to any thread that does not block it
            time.sleep(0.2)  # most often once the loop waits with nothing due; either way it must end
            signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

        threading.Thread(target=other, daemon=True).start()
        say("placed")
        await anyio.sleep_forever()
""",
}

BLOCKING_BODIES = {
    "plain": """
def body(api):
    with block(api):
        place(api, *ORDERS)
        say("placed")
        rest(api)
""",
    "nested": """
def body(api):
    with block(api):
        place(api, ORDERS[0])
        with block(api, side="sell"):
            place(api, ORDERS[1], ORDERS[2])
            say("placed")
            rest(api)
""",
}

PRELUDE = """
import json, signal, sys, threading, time
TOKEN, URL, BACKEND = {token!r}, {url!r}, {backend!r}
ORDERS = json.loads({orders!r})

def say(line):
    print(line, flush=True)
"""

FRAMEWORK = """
def framework_shutdown(signum, frame):
    say("framework shutdown")
signal.signal(signal.SIGTERM, framework_shutdown)
"""

MAIN = """
try:
    run(body)
finally:
    say("handler back: " + str(signal.getsignal(signal.SIGTERM) is {expected}))
"""


def orders() -> List[Any]:
    return [future_order("buy", 50, 1), future_order("sell", 150, 1), future_order("sell", 151, 1, start_time="11:00",
                                                                                  end_time="11:15")]  # fmt: skip


def bot(server: Any, tmp_path: Path, driver: str, body: str, *, framework: bool = False) -> subprocess.Popen[str]:
    import json

    backend = driver if driver != "blocking" else ""
    parts = [PRELUDE.format(token=TOKEN, url=server.base_url, backend=backend, orders=json.dumps(orders()))]
    parts.append(BLOCKING if driver == "blocking" else ASYNC)
    parts.append((BLOCKING_BODIES if driver == "blocking" else ASYNC_BODIES)[body])
    if framework:
        parts.append(FRAMEWORK)
    parts.append(MAIN.format(expected="framework_shutdown" if framework else "signal.SIG_DFL"))
    script = tmp_path / "bot.py"
    script.write_text(textwrap.dedent("\n".join(parts)), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def wait_for_line(process: subprocess.Popen[str], expected: str) -> None:
    """Read the bot's stdout until ``expected`` (the read blocks until a line comes; PATIENCE bounds it)."""
    import threading

    seen: List[str] = []
    found = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line.rstrip("\n"))
            if line.rstrip("\n") == expected:
                found.set()
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not found.wait(PATIENCE):
        process.kill()
        _, err = process.communicate(timeout=PATIENCE)
        pytest.fail(f"the bot never said {expected!r}; it said {seen}, stderr: {err[-2000:]}")
    reader.join(PATIENCE)


def resting(server: Any) -> int:
    return sum(1 for order in server.exchange.orders_of("alice") if is_resting(order))


DRIVERS = ["blocking", "asyncio", "trio"]


@pytest.mark.parametrize("driver", DRIVERS)
def test_sigterm_cancels_the_orders_then_ends_the_process_as_the_default_would(
    server: Any, tmp_path: Path, driver: str
) -> None:
    if driver == "trio":
        pytest.importorskip("trio")
    process = bot(server, tmp_path, driver, "plain")
    wait_for_line(process, "placed")
    assert resting(server) == 3
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=PATIENCE)
    assert process.returncode == -signal.SIGTERM, err  # ended by the signal: a shell says 143
    assert resting(server) == 0
    assert "handler back" not in out  # the default ended it at once, as it would have without the block


@pytest.mark.parametrize("driver", DRIVERS)
def test_sigterm_goes_to_the_framework_handler_that_was_there_before(server: Any, tmp_path: Path, driver: str) -> None:
    if driver == "trio":
        pytest.importorskip("trio")
    process = bot(server, tmp_path, driver, "plain", framework=True)
    wait_for_line(process, "placed")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=PATIENCE)
    assert resting(server) == 0
    # After "placed": the framework's own shutdown ran once, after the cancel; its handler is back; the
    # block ended with Terminated, a SystemExit with the shell's status for SIGTERM.
    assert out.splitlines() == ["framework shutdown", "handler back: True"], err
    assert process.returncode == 143, err


@pytest.mark.parametrize("driver", ["asyncio", "trio"])
def test_a_sigterm_given_to_another_thread_still_cancels_and_ends(server: Any, tmp_path: Path, driver: str) -> None:
    # Python runs the handler in the main thread; an event loop waiting with nothing due must be woken.
    if driver == "trio":
        pytest.importorskip("trio")
    process = bot(server, tmp_path, driver, "elsewhere")
    wait_for_line(process, "placed")
    _, err = process.communicate(timeout=PATIENCE)
    assert process.returncode == -signal.SIGTERM, err
    assert resting(server) == 0


@pytest.mark.parametrize("driver", DRIVERS)
def test_nested_blocks_each_cancel_theirs_on_one_sigterm(server: Any, tmp_path: Path, driver: str) -> None:
    if driver == "trio":
        pytest.importorskip("trio")
    process = bot(server, tmp_path, driver, "nested")
    wait_for_line(process, "placed")
    assert resting(server) == 3
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=PATIENCE)
    assert process.returncode == -signal.SIGTERM, err
    assert resting(server) == 0  # the inner block's sells, then the outer block's buy


CHECKS = """
import signal, threading, warnings
from gameproto_sync import GameAPI

def framework(signum, frame):
    pass

signal.signal(signal.SIGTERM, framework)
api = GameAPI(TOKEN, "http://127.0.0.1:9")
with api.cancel_all_on_exit():
    inside = signal.getsignal(signal.SIGTERM)
print("covered:", inside is not framework, "restored:", signal.getsignal(signal.SIGTERM) is framework)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
with api.cancel_all_on_exit():
    print("ignored stays ignored:", signal.getsignal(signal.SIGTERM) == signal.SIG_IGN)

caught = []
def in_a_thread():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with api.cancel_all_on_exit():
            pass
    caught.extend(str(warning.message) for warning in seen)
worker = threading.Thread(target=in_a_thread)
worker.start()
worker.join()
print("thread:", caught)
"""


def test_the_handler_is_put_back_an_ignored_signal_stays_ignored_and_a_thread_is_warned(tmp_path: Path) -> None:
    code = f"TOKEN = {TOKEN!r}\n" + textwrap.dedent(CHECKS)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=PATIENCE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["covered: True restored: True", "ignored stays ignored: True"]
    assert lines[2].startswith("thread: ['cancel_all_on_exit() outside the main thread covers exceptions only: SIGTERM")


def test_the_core_decides_once_and_hands_the_signal_over() -> None:
    term = Termination("default", in_main_thread=True)
    assert term.covers and term.warning is None and term.hand_over() == ""  # no signal: nothing to hand over
    assert term.signalled() and not term.signalled()  # a second signal does not stop the cancelling
    assert term.hand_over() == "default"
    framework = Termination("handler", in_main_thread=True)
    framework.signalled()
    assert framework.hand_over() == "handler"
    assert not Termination("ignored", in_main_thread=True).covers
    unknown = Termination("unknown", in_main_thread=True)
    assert not unknown.covers and unknown.warning and "could not be put back" in unknown.warning
    elsewhere = Termination("default", in_main_thread=False)
    assert not elsewhere.covers and elsewhere.warning and "main thread" in elsewhere.warning
    with pytest.raises(ValueError, match="previous"):
        Termination("sometimes", in_main_thread=True)
    assert Terminated(signal.SIGTERM).code == 143 and isinstance(Terminated(15), SystemExit)
