"""The core is sans-I/O: importing it loads no networking or event-loop module."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = (
    "socket",
    "ssl",
    "asyncio",
    "requests",
    "httpcore",
    "anyio",
    "trio",
    "urllib3",
    "h11",
    "select",
    "subprocess",
    "sqlite3",
    "psycopg",
    "pandas",
    "matplotlib",
)


def test_importing_the_core_loads_no_io_module() -> None:
    code = (
        "import sys\n"
        "import gameproto, gameproto.simulator, gameproto._flow, gameproto._settings\n"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"gameproto loaded: {result.stdout.strip()}"


def test_the_clients_load_no_server_and_no_redis() -> None:
    code = (
        "import sys\n"
        "import gameproto_sync, gameproto_async\n"
        "apart = ('gameproto_exchange', 'gameproto_cli', 'gameproto_redis', 'redis')\n"
        "print(','.join(m for m in sys.modules if m.split('.')[0] in apart))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"a client loaded: {result.stdout.strip()}"


def test_every_package_has_an_explicit_all() -> None:
    import gameproto
    import gameproto_async
    import gameproto_exchange
    import gameproto_redis
    import gameproto_sync

    for package in (gameproto, gameproto_sync, gameproto_async, gameproto_exchange, gameproto_redis):
        assert isinstance(package.__all__, list)
        for name in package.__all__:
            assert hasattr(package, name), f"{package.__name__}.{name}"


def test_the_error_family() -> None:
    import gameproto as g

    for name in (
        "OrderValidationError",
        "AuthenticationError",
        "NotFoundError",
        "RateLimitError",
        "ServerError",
        "APIStatusError",
        "ProtocolError",
        "NetworkError",
        "OutcomeUnknownError",
        "NetworkTimeoutError",
        "InvalidArgumentError",
    ):
        assert issubclass(getattr(g, name), g.GameAPIError)
    # openai-python's shape: every error with a status under APIStatusError ...
    for name in ("AuthenticationError", "NotFoundError", "RateLimitError", "ServerError", "ServerValidationError"):
        assert issubclass(getattr(g, name), g.APIStatusError)
    assert issubclass(g.NetworkTimeoutError, g.NetworkError)
    # ... and an order whose outcome is unknown is never a network or server
    # error, so that a handler that retries those cannot place it twice.
    for name in (
        "OrderOutcomeUnknownNoAnswerError",
        "OrderOutcomeUnknownServerError",
        "OrderOutcomeUnknownProtocolError",
    ):
        error = getattr(g, name)
        assert issubclass(error, g.OutcomeUnknownError)
        assert not issubclass(error, (g.NetworkError, g.APIStatusError, g.ProtocolError))
    assert g.OutcomeUnknownError.__bases__ == (g.GameAPIError,)
    assert issubclass(g.OrderValidationError, ValueError) and issubclass(g.InvalidArgumentError, ValueError)
