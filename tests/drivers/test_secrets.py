"""Neither the personal token nor the access token ever shows: repr, errors, logs, the CLI, ``game serve``.

The exchange is wrapped so that every access token it issues is known to the
test; faults make it echo both tokens back in error bodies, the worst a
server can do, and the clients must still keep them out of every text.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, List, Optional, Sequence, Type

import pytest

from gameproto._boundary import Request, Response
from gameproto._errors import (
    AuthenticationError,
    GameAPIError,
    NotFoundError,
    OutcomeUnknownError,
    ProtocolError,
    ServerError,
    ServerValidationError,
    error_from_response,
)
from gameproto._retry import RetryPolicy
from gameproto.simulator.exchange import Exchange
from gameproto.simulator.faults import Fault, Reaction
from gameproto_cli.main import main
from gameproto_exchange import RunningServer
from gameproto_sync import GameAPI as SyncGameAPI
from tests.support.common import TOKEN, future_order
from tests.support.harness import Harness, every_driver

ROOT = Path(__file__).resolve().parents[2]
LOGGERS = ("gameproto", "gameproto.server", "urllib3", "requests", "httpcore", "hpack", "h11", "")
#: Retries that do not make the suite wait.
QUICK = RetryPolicy(max_retries=2, backoff_initial=0.01, backoff_max=0.02)
#: A bearer token as RFC 6750 spells one, long enough to be a real one (``Bearer ***`` is fine).
BEARER = re.compile(r"Bearer\s+([A-Za-z0-9._~+/-]{16,}=*)")


ECHO = "@ECHO@"


class Issued:
    """Every access token the exchange hands out; and an exchange that quotes the caller's tokens.

    Wherever an answer's body holds ``@ECHO@`` (see ``echo_body``), it is replaced with the personal
    token and the bearer token of the request being answered: the worst a careless server can do.
    """

    def __init__(self, exchange: Exchange, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tokens: List[str] = []
        handle, react = exchange.handle, exchange.react

        def recording_handle(request: Request) -> Response:
            response = handle(request)
            if request.path == "/auth/token" and response.status == 200:
                self.tokens.append(str(json.loads(response.body)["access_token"]))
            return response

        def echoing_react(request: Request) -> Reaction:
            reaction = react(request)
            answer = reaction.response
            if answer is None or ECHO.encode() not in answer.body:
                return reaction
            bearer = (request.header("authorization") or "").partition(" ")[2]
            quoted = f"{TOKEN} Bearer {bearer}".encode()
            return Reaction(Response(answer.status, answer.headers, answer.body.replace(ECHO.encode(), quoted)))

        monkeypatch.setattr(exchange, "handle", recording_handle)
        monkeypatch.setattr(exchange, "react", echoing_react)

    @property
    def secrets(self) -> List[str]:
        return [TOKEN, *self.tokens]


@pytest.fixture
def issued(exchange: Exchange, monkeypatch: pytest.MonkeyPatch) -> Issued:
    return Issued(exchange, monkeypatch)


def assert_clean(text: str, secrets: Sequence[str]) -> None:
    for secret in secrets:
        assert secret not in text, f"a token leaked into: {text[:300]!r}"
    assert not BEARER.search(text), f"a bearer token shows: {text[:300]!r}"


def exception_texts(error: BaseException) -> List[str]:
    texts = [str(error), repr(error), "".join(traceback.format_exception(type(error), error, error.__traceback__))]
    # ``excerpt`` is left to its own (xfail) test below: a 2xx parse failure keeps it unredacted.
    for name in ("message", "detail", "args", "partial_result"):
        texts.append(repr(getattr(error, name, None)))
    return texts


def assert_error_clean(error: BaseException, secrets: Sequence[str]) -> None:
    for text in exception_texts(error):
        assert_clean(text, secrets)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[Sequence[str]], int]]:
    """Every logger involved at DEBUG; yields a checker of everything recorded so far."""
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)

    def check(secrets: Sequence[str]) -> int:
        for record in caplog.records:
            assert_clean(record.getMessage(), secrets)
            assert_clean(str(record.args), secrets)
            assert_clean(str(record.msg), secrets)
            if record.exc_info:
                assert_clean("".join(traceback.format_exception(*record.exc_info)), secrets)
        return len(caplog.records)

    yield check
    root.setLevel(previous)


def echo_body() -> bytes:
    """An error body that quotes the caller's tokens (filled in by ``Issued``), as a careless server might."""
    return json.dumps(
        {"detail": [{"loc": ["body", "token"], "msg": f"bad token {ECHO}", "type": "x"}, f"sent: {ECHO}"]}
    ).encode()


# --- repr and str of the clients ---------------------------------------------------------------


@every_driver()
async def test_client_repr_never_shows_a_token(h: Harness, issued: Issued) -> None:
    api = h.client()
    real = h.unwrapped(api)
    for text in (repr(api), str(api), repr(real._settings), repr(real._session)):
        assert_clean(text, [TOKEN])
    await api.get_status()
    assert issued.tokens
    for text in (repr(api), str(api), repr(real._session), repr(real._session.tokens)):
        assert_clean(text, issued.secrets)
    assert "fresh" in repr(api)  # the repr does say a token is held, just not which


# --- exceptions ----------------------------------------------------------------------------------


async def failures(h: Harness) -> List[GameAPIError]:
    """Every kind of failure a client meets, each asserted and returned."""
    exchange = h.exchange
    caught: List[GameAPIError] = []

    async def expect(kind: Type[GameAPIError], call: Callable[[], Awaitable[Any]]) -> None:
        with pytest.raises(kind) as info:
            await call()
        caught.append(info.value)

    wrong = h.client(token="personal-token-wrong-55555555", retry_policy=QUICK)
    await expect(AuthenticationError, wrong.get_status)
    api = h.client(retry_policy=QUICK, timeout=10)
    await api.get_status()
    # 422 from the exchange's own rules (a price the client allows but this exchange does not)
    await expect(ServerValidationError, lambda: api.create_order(future_order(price=10**10)))
    # 422, 503, 401 and 404 that quote both tokens back
    exchange.faults.add(Fault("status", status=422, body=echo_body()), path="/orders", method="POST")
    await expect(ServerValidationError, lambda: api.create_order(future_order()))
    exchange.faults.add(Fault("status", status=503), path="/status", times=99)
    await expect(ServerError, api.get_status)
    exchange.faults.clear()
    exchange.faults.add(Fault("status", status=503, body=echo_body()), path="/orders", times=99)
    await expect(OutcomeUnknownError, lambda: api.create_order(future_order()))
    await expect(ServerError, api.get_orders)
    exchange.faults.clear()
    exchange.faults.add(Fault("status", status=404, body=echo_body()), path="/trades")
    await expect(NotFoundError, api.get_trades)
    exchange.faults.add(Fault("status", status=401, body=echo_body()), path="/market", times=2)
    await expect(AuthenticationError, api.get_market_data)
    # the token exchange answering with the personal token in its error, or in an unusable 200
    exchange.expire_access_tokens()
    exchange.faults.add(Fault("status", status=400, body=echo_body()), path="/auth/token")
    await expect(AuthenticationError, api.get_status)
    exchange.faults.add(Fault("status", status=503, body=echo_body()), path="/auth/token", times=3)
    await expect(ServerError, api.get_status)
    exchange.faults.add(Fault("not_json", body=echo_body()), path="/auth/token")
    await expect(ProtocolError, api.get_status)
    # a 200 that is not JSON, quoting the tokens, on a call
    await api.get_status()
    exchange.faults.add(Fault("not_json", body=b"<html>" + echo_body()), path="/spot/status")
    await expect(ProtocolError, api.get_spot_status)
    # a connection dropped after a POST was carried out
    exchange.faults.add(Fault("drop_after"), path="/orders", method="POST")
    await expect(OutcomeUnknownError, lambda: api.create_order(future_order()))
    # the personal token revoked: every later exchange is a 401
    exchange.revoke(TOKEN)
    exchange.expire_access_tokens()
    await expect(AuthenticationError, api.get_status)
    return caught


@every_driver()
async def test_errors_and_debug_logs_never_show_a_token(
    h: Harness, issued: Issued, debug_logs: Callable[[Sequence[str]], int]
) -> None:
    caught = await failures(h)
    assert len(caught) == 14
    for error in caught:
        assert_error_clean(error, issued.secrets)
    # the redaction left a mark where the server had quoted a token
    assert any("***" in str(error) for error in caught)
    assert debug_logs(issued.secrets) > 20
    assert logging.getLogger("urllib3").isEnabledFor(logging.DEBUG)


# --- the CLI --------------------------------------------------------------------------------------


@pytest.fixture
def no_configuration(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("GAME_API_URL", "GAME_API_TOKEN", "GAME_API_VERIFY_SSL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("no_configuration")
@pytest.mark.parametrize("how", ["--token", "--token-file"])
def test_cli_output_never_shows_a_token(
    server: RunningServer[Exchange],
    issued: Issued,
    how: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    debug_logs: Callable[[Sequence[str]], int],
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    connection = ["--url", server.base_url, how, TOKEN if how == "--token" else str(token_file)]
    outputs: List[str] = []

    def game(*argv: str, expect: int = 0) -> None:
        code = main([*argv, *connection])
        out, err = capsys.readouterr()
        outputs.append(out + err)
        assert code == expect, out + err

    for verbose in ([], ["--verbose"]):
        game("status", *verbose)
        game("status", "--json", *verbose)
        game("orders", *verbose)
        game("order", "delete", "4242", *verbose, expect=1)  # 404
        server.exchange.faults.add(Fault("status", status=422, body=echo_body()), path="/orders")
        game("orders", *verbose, expect=2)
        server.exchange.faults.add(
            Fault("status", status=503, headers=(("Retry-After", "0"),), body=echo_body()),
            path="/trades",
            times=9,
        )
        game("trades", "--timeout", "3", *verbose, expect=1)
        server.exchange.faults.clear()
    wrong = ["--url", server.base_url, "--token", "personal-token-wrong-55555555", "--verbose"]
    assert main(["status", *wrong]) == 1
    out, err = capsys.readouterr()
    outputs.append(out + err)
    assert "AuthenticationError" in err
    secrets = [*issued.secrets, "personal-token-wrong-55555555"]
    for output in outputs:
        assert_clean(output, secrets)
    assert any("server detail" in output and "***" in output for output in outputs)
    debug_logs(secrets)


def run_cli(*argv: str, env: Optional[dict] = None) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    clean = {key: value for key, value in os.environ.items() if not key.startswith("GAME_API_")}
    return subprocess.run(
        [sys.executable, "-m", "gameproto_cli", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
    )


@pytest.mark.skipif(sys.platform == "win32", reason="runs the CLI in a subprocess with POSIX paths")
def test_cli_verbose_logging_in_a_real_process_never_shows_a_token(
    server: RunningServer[Exchange], issued: Issued, tmp_path: Path
) -> None:
    # In-process, pytest's own log handlers keep basicConfig from printing; a real process shows the log.
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    done = run_cli("status", "--url", server.base_url, "--token", TOKEN, "--verbose")
    assert done.returncode == 0, done.stderr
    assert "gameproto:" in done.stderr or "urllib3" in done.stderr  # the debug log is there
    server.exchange.faults.add(Fault("status", status=422, body=echo_body()), path="/orders")
    failed = run_cli("orders", "--url", server.base_url, "--token-file", str(token_file), "--verbose")
    assert failed.returncode == 2 and "server detail" in failed.stderr
    from_env = run_cli("orders", "--verbose", env={"GAME_API_URL": server.base_url, "GAME_API_TOKEN": TOKEN})
    assert from_env.returncode == 0, from_env.stderr
    for done_process in (done, failed, from_env):
        assert_clean(done_process.stdout + done_process.stderr, issued.secrets)


# --- game serve -----------------------------------------------------------------------------------


def _http(port: int, method: str, path: str, body: Any = None, headers: Optional[dict] = None) -> Any:  # type: ignore[type-arg]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        sent = {"content-type": "application/json", **(headers or {})}
        connection.request(method, "/api/v1" + path, None if body is None else json.dumps(body), sent)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


@pytest.mark.skipif(sys.platform == "win32", reason="sends POSIX signals")
def test_game_serve_never_prints_the_users_token() -> None:
    secret = "serve-secret-token-31415926"
    process = subprocess.Popen(
        [sys.executable, "-m", "gameproto_cli", "serve", "--port", "0", "--token", secret, "--verbose"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    watchdog = threading.Timer(20, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        lines: List[str] = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("press Ctrl-C"):
                break
        found = next((re.search(r"127\.0\.0\.1:(\d+)", line) for line in lines if "serving on" in line), None)
        assert found, lines
        port = int(found.group(1))
        status, body = _http(port, "POST", "/auth/token", {"token": secret})
        assert status == 200
        access = json.loads(body)["access_token"]
        assert _http(port, "GET", "/status", headers={"authorization": f"Bearer {access}"})[0] == 200
        # a malformed request that carries both tokens: the server may log the failure, never the bytes
        import socket

        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(f"GET /api/v1/status HTTP/1.1\r\nBad Header {secret}: Bearer {access}\r\n\r\n".encode())
            raw.recv(4096)
        assert _http(port, "GET", "/status", headers={"authorization": f"Bearer {access}x"})[0] == 401
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.communicate()
    printed = "".join(lines) + out + err
    assert process.returncode == 0, err
    assert "personal tokens: 1 configured (not shown)" in printed
    assert_clean(printed, [secret, access])


# --- leaks found by these tests: regression tests, and the ones still open (xfail) ---------------------


def test_a_2xx_protocol_error_excerpt_holds_no_token(server: RunningServer[Exchange], issued: Issued) -> None:
    with SyncGameAPI(TOKEN, server.base_url) as api:
        api.get_status()
        server.exchange.faults.add(Fault("not_json", body=b"<html>" + echo_body()), path="/spot/status")
        with pytest.raises(ProtocolError) as caught:
            api.get_spot_status()
    assert_clean(str(caught.value), issued.secrets)  # the text is clean...
    assert_clean(caught.value.excerpt, issued.secrets)  # ...the attribute is not


@pytest.mark.parametrize("cut", [200, 800])
def test_a_token_at_an_early_cut_is_not_half_shown(cut: int) -> None:
    body = b" " * (cut - len(TOKEN) + 1) + TOKEN.encode() + b" and more"
    error = error_from_response(Response(401, {}, body), method="GET", path="/status", secrets=[TOKEN])
    assert isinstance(error, AuthenticationError)
    assert TOKEN[:8] not in str(error)


def test_a_token_at_the_64k_cut_is_not_half_shown() -> None:
    body = b" " * (65536 - len(TOKEN) + 1) + TOKEN.encode() + b" and more"
    error = error_from_response(Response(401, {}, body), method="GET", path="/status", secrets=[TOKEN])
    assert isinstance(error, AuthenticationError)
    assert TOKEN[:8] not in str(error)


def test_a_token_at_the_detail_cut_is_not_half_shown() -> None:
    body = json.dumps({"detail": {"x": "a" * 185 + TOKEN}}).encode()
    error = error_from_response(Response(422, {}, body), method="POST", path="/orders", secrets=[TOKEN])
    assert isinstance(error, ServerValidationError)
    assert TOKEN[:8] not in str(error) and TOKEN[:8] not in error.detail
