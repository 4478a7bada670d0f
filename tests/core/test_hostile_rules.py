"""The core's rules behind the hostile-server fixes, without I/O: the environment, redaction,
tokens that cannot be sent, and the answers the flow cannot read."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any, Dict, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gameproto import _calls
from gameproto._auth import TokenState, unsendable
from gameproto._boundary import Response, TransportFailure
from gameproto._errors import (
    AuthenticationError,
    OrderOutcomeUnknownProtocolError,
    OutcomeUnknownError,
    ProtocolError,
    redact,
)
from gameproto._settings import ClientSettings, bypasses_proxy, ca_from_environment, proxy_from_environment
from tests.support.common import FakeClock, Script, drive, json_response, make_session

HTTPS = "https://exchange.example.com/api/v1"
HTTP = "http://exchange.example.com:8080/api/v1"

# -- the proxy the environment names ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "environ", "proxy"),
    [
        (HTTPS, {}, None),
        (HTTPS, {"HTTPS_PROXY": "http://corp:3128"}, "http://corp:3128"),
        (HTTPS, {"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"}, "http://lower:1"),
        (HTTPS, {"HTTP_PROXY": "http://corp:3128"}, None),  # an http proxy variable is for http URLs
        (HTTP, {"HTTP_PROXY": "http://corp:3128"}, "http://corp:3128"),
        (HTTP, {"HTTP_PROXY": "http://corp:3128", "REQUEST_METHOD": "GET"}, None),  # CGI: httpoxy
        (HTTP, {"http_proxy": "http://corp:3128", "REQUEST_METHOD": "GET"}, "http://corp:3128"),
        (HTTPS, {"ALL_PROXY": "http://all:1"}, "http://all:1"),
        (HTTPS, {"all_proxy": "http://all:1", "HTTPS_PROXY": "http://https:2"}, "http://https:2"),
        (HTTPS, {"HTTPS_PROXY": "corp:3128"}, "http://corp:3128"),  # no scheme: http, as curl reads it
        (HTTPS, {"HTTPS_PROXY": "https://u:p@corp:443"}, "https://u:p@corp:443"),
        (HTTPS, {"HTTPS_PROXY": "  "}, None),
        (HTTPS, {"HTTPS_PROXY": "http://corp:3128", "NO_PROXY": "*"}, None),
        (HTTPS, {"HTTPS_PROXY": "http://corp:3128", "no_proxy": "example.com"}, None),
        (HTTPS, {"HTTPS_PROXY": "http://corp:3128", "NO_PROXY": ".example.com"}, None),
        (HTTPS, {"HTTPS_PROXY": "http://corp:3128", "NO_PROXY": "other.com,ample.com"}, "http://corp:3128"),
        (HTTP, {"HTTP_PROXY": "http://corp:3128", "NO_PROXY": "exchange.example.com:8080"}, None),
        (HTTP, {"HTTP_PROXY": "http://corp:3128", "NO_PROXY": "exchange.example.com:9090"}, "http://corp:3128"),
    ],
)
def test_the_proxy_the_environment_names(url: str, environ: Dict[str, str], proxy: Optional[str]) -> None:
    assert proxy_from_environment(url, environ) == proxy


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypass"),
    [
        ("10.1.2.3", "10.0.0.0/8", True),
        ("11.1.2.3", "10.0.0.0/8", False),
        ("::1", "::1", True),
        ("::1", "[::1]", True),
        ("a.b.example.com", "example.com", True),
        ("notexample.com", "example.com", False),
        ("example.com", "*.example.com", True),
        ("x", "", False),
    ],
)
def test_no_proxy_entries(host: str, no_proxy: str, bypass: bool) -> None:
    assert bypasses_proxy(host, 443, no_proxy) is bypass


@pytest.mark.parametrize(
    ("name", "value"),
    [("HTTPS_PROXY", "socks5://corp:1080"), ("ALL_PROXY", "socks5h://corp:1080"), ("HTTPS_PROXY", "http://:3128")],
)
def test_a_proxy_the_clients_cannot_use_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        proxy_from_environment(HTTPS, {name: value})


def test_the_ca_bundle_the_environment_names(tmp_path: Path) -> None:
    bundle, other, directory = tmp_path / "a.pem", tmp_path / "b.pem", tmp_path / "certs"
    bundle.write_text("x")
    other.write_text("y")
    directory.mkdir()
    assert ca_from_environment({}) is None
    assert ca_from_environment({"SSL_CERT_DIR": str(directory)}) == str(directory)
    assert ca_from_environment({"SSL_CERT_FILE": str(other), "SSL_CERT_DIR": str(directory)}) == str(other)
    assert ca_from_environment({"REQUESTS_CA_BUNDLE": str(bundle), "SSL_CERT_FILE": str(other)}) == str(bundle)
    with pytest.raises(ValueError, match="SSL_CERT_FILE"):
        ca_from_environment({"SSL_CERT_FILE": str(tmp_path / "missing.pem")})


def test_settings_read_the_environment_once_unless_told_not_to(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    environ = {"HTTPS_PROXY": "http://user:secret@corp:3128", "SSL_CERT_FILE": str(bundle)}
    read = ClientSettings.from_arguments("personal", "https://exchange.example.com", environ=environ)
    assert read.proxy == "http://user:secret@corp:3128" and read.verify == str(bundle) and read.verify_ssl is True
    assert "secret" not in repr(read)
    ignored = ClientSettings.from_arguments(
        "personal", "https://exchange.example.com", trust_env=False, environ=environ
    )
    assert ignored.proxy is None and ignored.verify is True
    # An explicit choice of verification wins over the environment's CA.
    unverified = ClientSettings.from_arguments("personal", "https://x.example", verify_ssl=False, environ=environ)
    assert unverified.verify is False


# -- redaction ----------------------------------------------------------------------------------------

TOKEN_ALPHABET = string.ascii_letters + string.digits + "-._~+/="


@given(st.text(max_size=200), st.text(alphabet=TOKEN_ALPHABET, min_size=8, max_size=40))
@settings(derandomize=True)
def test_a_long_secret_never_survives_redaction(text: str, secret: str) -> None:
    for mixed in (text + secret, secret + text, text[:5] + secret + text[5:]):
        assert secret not in redact(mixed, [secret])


@given(
    st.lists(st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=12), min_size=1, max_size=20),
    st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=2),
)
@settings(derandomize=True)
def test_a_short_secret_is_redacted_only_where_it_stands_alone(words: Any, secret: str) -> None:
    text = " ".join(words)
    redacted = redact(text, [secret])
    assert redacted.split(" ") == ["***" if word == secret else word for word in words]


def test_redaction_of_short_secrets_keeps_texts_readable() -> None:
    assert redact("service temporarily unavailable", ["e"]) == "service temporarily unavailable"
    assert redact('{"token": "e"}', ["e"]) == '{"token": "***"}'
    assert redact("token=e&x=1", ["e"]) == "token=***&x=1"


# -- an access token the client cannot send ---------------------------------------------------------------


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=60))
@settings(derandomize=True)
def test_a_visible_ascii_token_can_be_sent(token: str) -> None:
    assert unsendable(token) is None


@given(st.text(min_size=1, max_size=30).filter(lambda t: any(not 0x21 <= ord(c) <= 0x7E for c in t)))
@settings(derandomize=True)
def test_any_other_token_is_refused_when_issued_and_never_kept(token: str) -> None:
    state = TokenState("personal")
    answer = Response(200, {}, json.dumps({"access_token": token, "expires_in": 60}).encode())
    with pytest.raises(AuthenticationError) as caught:
        state.accept(answer, now=0.0)
    assert "cannot be sent" in str(caught.value)
    if len(token.strip()) > 2:
        assert token not in str(caught.value)
    assert state.current(0.0) is None


# -- answers the flow cannot read ----------------------------------------------------------------------------

ORDER = {
    "side": "buy",
    "price": 10,
    "volume": 1,
    "date": "2030-01-01",
    "start_time": "10:00",
    "end_time": "10:15",
    "duration": "15m",
    "tz_offset_hours": 0,
}


def _outcome(call: Any, reply: Any) -> Any:
    clock = FakeClock()
    session = make_session(clock)
    script = Script([reply] * 3)
    try:
        return drive(session.run(call), script, clock), script
    except Exception as error:
        return error, script


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "x-anything", "gzip, identity"])
def test_an_encoded_answer_is_a_protocol_error(encoding: str) -> None:
    body = json_response(200, {"status": "healthy"})
    encoded = Response(200, {**body.headers, "Content-Encoding": encoding}, body.body)
    error, script = _outcome(_calls.get_status(), encoded)
    assert type(error) is ProtocolError and "Content-Encoding" in str(error)
    assert len(script.calls) == 1
    error, script = _outcome(_calls.create_order(ORDER), encoded)
    assert isinstance(error, OrderOutcomeUnknownProtocolError)
    assert len(script.calls) == 1


def test_an_identity_encoding_is_read() -> None:
    body = json_response(200, {"status": "healthy"})
    for encoding in ("identity", " Identity ", ""):
        value, _ = _outcome(
            _calls.get_status(), Response(200, {**body.headers, "content-encoding": encoding}, body.body)
        )
        assert value == {"status": "healthy"}


def test_too_long_an_answer_is_not_asked_for_again() -> None:
    failure = TransportFailure("too_large", "answer longer than max_response_bytes=10")
    error, script = _outcome(_calls.get_status(), failure)
    assert type(error) is ProtocolError and "max_response_bytes" in str(error)
    assert len(script.calls) == 1
    error, script = _outcome(_calls.create_order(ORDER), failure)
    assert isinstance(error, OutcomeUnknownError)
    assert len(script.calls) == 1


@pytest.mark.parametrize("status", [100, 103, 199, 301, 302, 303, 307, 308, 600])
def test_an_answer_neither_success_nor_refusal_leaves_an_order_unknown(status: int) -> None:
    error, script = _outcome(_calls.create_order(ORDER), Response(status, {"Location": "/elsewhere"}, b""))
    assert isinstance(error, OutcomeUnknownError)
    assert len(script.calls) == 1
    error, _ = _outcome(_calls.get_status(), Response(status, {"Location": "/elsewhere"}, b""))
    assert type(error) is ProtocolError


def test_an_exchange_answer_refused_for_its_lifetime_does_not_show_the_token() -> None:
    clock = FakeClock()
    session = make_session(clock)
    answer = json_response(200, {"access_token": "leaky-access-token-123", "expires_in": "soon"})
    script = Script([json_response(200, {"status": "healthy"})], token_replies=[answer])
    with pytest.raises(ProtocolError) as caught:
        drive(session.run(_calls.get_status()), script, clock)
    assert "expires_in" in str(caught.value)
    error: Any = caught.value
    while error is not None:
        assert "leaky-access-token-123" not in str(error) + getattr(error, "excerpt", "")
        assert "personal-secret" not in str(error) + getattr(error, "excerpt", "")
        error = error.__context__ or error.__cause__
