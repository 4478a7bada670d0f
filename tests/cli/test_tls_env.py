"""``game`` against ``game serve --tls-cert``, with a throwaway CA (trustme), in real processes.

The command's own settings (``--ca-bundle``, ``GAME_API_VERIFY_SSL``,
``--insecure``) decide when given; otherwise the command passes the clients'
default and lets the client read ``SSL_CERT_FILE`` / ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.cli.test_serve import Served
from tests.cli.test_trader import one_line_error, run_game

trustme = pytest.importorskip("trustme")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="sends POSIX signals")


@pytest.fixture(scope="module")
def authority() -> Any:
    return trustme.CA()


@pytest.fixture
def ca_pem(authority: Any, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def tls_url(authority: Any, tmp_path: Path) -> Iterator[str]:
    """A ``game serve`` process speaking HTTPS with a certificate of ``authority``; its URL."""
    certificate = tmp_path / "server.pem"
    authority.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(str(certificate))
    served = Served("--tls-cert", str(certificate))
    try:
        assert "personal token: demo-token\n" in served.lines
        yield f"https://127.0.0.1:{served.port}"
    finally:
        served.kill()


def status(url: str, tmp_path: Path, *flags: str, **env: str) -> Any:
    return run_game("status", "--url", url, "--token", "demo-token", *flags, cwd=tmp_path, env=env)


def test_an_unknown_ca_is_one_line_naming_the_fix(tls_url: str, tmp_path: Path) -> None:
    line = one_line_error(status(tls_url, tmp_path), 1)
    assert line == (
        f"game: the TLS certificate of {tls_url} is not trusted; pass --ca-bundle PATH "
        "(or set SSL_CERT_FILE or REQUESTS_CA_BUNDLE to your CA bundle)"
    )


def test_ca_bundle_flag_and_game_api_verify_ssl(tls_url: str, ca_pem: Path, tmp_path: Path) -> None:
    by_flag = status(tls_url, tmp_path, "--ca-bundle", str(ca_pem), "--json")
    assert by_flag.returncode == 0, by_flag.stderr
    by_env = status(tls_url, tmp_path, "--json", GAME_API_VERIFY_SSL=str(ca_pem))
    assert by_env.returncode == 0, by_env.stderr
    assert '"status": "healthy"' in by_flag.stdout and '"status": "healthy"' in by_env.stdout


def test_insecure_connects_and_warns_in_one_line(tls_url: str, tmp_path: Path) -> None:
    done = status(tls_url, tmp_path, "--insecure", "--json")
    assert done.returncode == 0, done.stderr
    (warning,) = done.stderr.strip().splitlines()
    assert warning.startswith("game: warning: TLS certificate verification is OFF")


def test_https_to_a_plain_server_and_http_to_a_tls_one(server: Any, tls_url: str, tmp_path: Path) -> None:
    plain = server.base_url.replace("http://", "https://")
    assert "does not speak TLS; try http://" in one_line_error(status(plain, tmp_path), 1)
    hidden = tls_url.replace("https://", "http://")
    assert "if it serves HTTPS, try https://" in one_line_error(status(hidden, tmp_path, "--timeout", "5"), 1)


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_the_ca_from_the_environment_is_honoured(variable: str, tls_url: str, ca_pem: Path, tmp_path: Path) -> None:
    done = status(tls_url, tmp_path, "--json", **{variable: str(ca_pem)})
    assert done.returncode == 0, done.stderr
    assert '"status": "healthy"' in done.stdout


def test_game_api_verify_ssl_wins_over_the_environment(tls_url: str, ca_pem: Path, tmp_path: Path) -> None:
    # A bundle the command is given decides; the environment's CA stands in for the default only.
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    done = status(tls_url, tmp_path, GAME_API_VERIFY_SSL=str(other), SSL_CERT_FILE=str(ca_pem))
    assert "is not trusted" in one_line_error(done, 1)
