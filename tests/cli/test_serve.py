"""``game serve`` as a user runs it: a real process, a real port, Ctrl-C to stop."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, List, Tuple

import pytest

from gameproto_cli.main import main
from tests.support.common import future_order

ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"serving on (https?)://127\.0\.0\.1:(\d+) \(API at \S+/api/v1\)")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="sends POSIX signals")


class Served:
    """A running ``game serve`` process, its port, and the lines it printed so far."""

    def __init__(self, *flags: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gameproto_cli", "serve", "--port", "0", *flags],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        # Never hang the suite on a server that does not come up.
        self.watchdog = threading.Timer(15, self.process.kill)
        self.watchdog.start()
        self.lines: List[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.startswith("press Ctrl-C"):
                break
        match = next((URL.search(line) for line in self.lines if URL.search(line)), None)
        assert match, f"no URL in {self.lines!r}"
        self.port = int(match.group(2))

    def stop(self, signum: int = signal.SIGINT) -> Tuple[int, str, str]:
        """Signal the process; its exit status and everything it printed."""
        self.process.send_signal(signum)
        try:
            out, err = self.process.communicate(timeout=10)
        finally:
            self.watchdog.cancel()
        return self.process.returncode, "".join(self.lines) + out, err

    def kill(self) -> None:
        self.watchdog.cancel()
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    started: List[Served] = []

    def start(*flags: str) -> Served:
        started.append(Served(*flags))
        return started[-1]

    yield start
    for served in started:
        served.kill()


def call(port: int, method: str, path: str, body: Any = None, access: str = "") -> Tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {"content-type": "application/json"}
        if access:
            headers["authorization"] = f"Bearer {access}"
        connection.request(method, "/api/v1" + path, None if body is None else json.dumps(body), headers)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def test_serve_prints_its_url_and_the_demo_token_and_stops_on_ctrl_c(serve: Callable[..., Served]) -> None:
    served = serve("--seed-market")
    assert "personal token: demo-token\n" in served.lines
    status, token = call(served.port, "POST", "/auth/token", {"token": "demo-token"})
    assert status == 200
    status, health = call(served.port, "GET", "/status", access=token["access_token"])
    assert status == 200 and health["status"] == "healthy"
    assert call(served.port, "GET", "/market", access=token["access_token"])[1]  # --seed-market: a live book
    code, out, err = served.stop(signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err and "stopped" in out


def test_tokens_the_user_gave_are_never_printed(serve: Callable[..., Served], tmp_path: Path) -> None:
    secret_file = tmp_path / "tokens"
    secret_file.write_text("file-secret-token-one\n\nfile-secret-token-two\n", encoding="utf-8")
    served = serve("--token", "cli-secret-token-0123", "--token-file", str(secret_file), "--backend", "trio")
    assert "personal tokens: 3 configured (not shown)\n" in served.lines
    assert call(served.port, "POST", "/auth/token", {"token": "demo-token"})[0] != 200
    status, token = call(served.port, "POST", "/auth/token", {"token": "file-secret-token-two"})
    assert status == 200
    assert call(served.port, "GET", "/status", access=token["access_token"])[0] == 200
    code, out, err = served.stop(signal.SIGTERM)
    assert code == 0 and "Traceback" not in err
    for secret in ("cli-secret-token-0123", "file-secret-token-one", "file-secret-token-two", "demo-token"):
        assert secret not in out and secret not in err


def test_max_resting_orders_caps_each_trader_with_a_clear_422(serve: Callable[..., Served]) -> None:
    served = serve("--max-resting-orders", "2")
    access = call(served.port, "POST", "/auth/token", {"token": "demo-token"})[1]["access_token"]
    for price in (10, 11):
        assert call(served.port, "POST", "/orders", future_order("buy", price=price), access)[0] == 200
    status, refused = call(served.port, "POST", "/orders", future_order("buy", price=12), access)
    assert status == 422 and refused["detail"][0]["msg"].startswith("trader-1 has 2 resting orders, the most")
    served.stop()


def test_a_busy_port_is_one_line_and_status_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = subprocess.run(
            [sys.executable, "-m", "gameproto_cli", "serve", "--port", str(taken.getsockname()[1])],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=15,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot listen on 127.0.0.1:" in result.stderr


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--token-file" in text and "--seed-market" in text


@pytest.mark.parametrize(
    "flags",
    [
        ["--token-file", "/nonexistent/tokens"],
        ["--tls-key", "key.pem"],
        ["--port", "70000"],
        ["--rate-limit", "0"],
        ["--max-resting-orders", "0"],
        ["--allowed-host", "http://trading.example/"],
    ],
)
def test_bad_flags_are_status_2(flags: List[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(["serve", *flags])
    except SystemExit as exit_info:  # argparse's own refusals
        code = int(exit_info.code or 0)
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_allowed_host_names_a_host_the_server_answers_besides_loopback(serve: Callable[..., Served]) -> None:
    served = serve("--allowed-host", "trading.example")
    for host, status in [("trading.example:8080", 401), ("127.0.0.1", 401), ("rebound.example", 421)]:  # 401: no token
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
        try:
            connection.request("GET", "/api/v1/status", headers={"Host": host})
            answer = connection.getresponse()
            assert (answer.status, host) == (status, host)
            answer.read()
        finally:
            connection.close()
    served.stop()
