"""What a client says when it is left unclosed, and what it imports before a shared budget is asked for."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import gameproto_async
import gameproto_sync
from tests.support.common import TOKEN

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("client", "advice"),
    [
        (gameproto_async.GameAPI, "use it in a block: `async with GameAPI(...) as api:`"),
        (gameproto_sync.GameAPI, "use it in a block: `with GameAPI(...) as api:`"),
    ],
)
def test_an_unclosed_client_warns_at_the_line_that_made_it(client: type, advice: str) -> None:
    # Garbage left by earlier tests in this worker (an event loop's transport, say) is collected
    # first, so that only what this test made can warn inside the block.
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        made_at = sys._getframe().f_lineno + 1
        api = client(TOKEN, "http://127.0.0.1:9")
        del api
        gc.collect()
    unclosed = [
        warning
        for warning in caught
        if issubclass(warning.category, ResourceWarning) and str(warning.message).startswith("unclosed <gameproto")
    ]
    assert len(unclosed) == 1, [str(warning.message) for warning in caught]
    assert advice in str(unclosed[0].message)
    assert (unclosed[0].filename, unclosed[0].lineno) == (__file__, made_at)


def test_the_clients_import_redis_only_when_a_budget_url_is_given() -> None:
    pytest.importorskip("redis", reason="needs redis-py (the 'redis' extra)")
    script = (
        "import sys\n"
        "import gameproto_sync, gameproto_async\n"
        f"apis = [gameproto_sync.GameAPI({TOKEN!r}, 'http://127.0.0.1:9'), gameproto_async.GameAPI({TOKEN!r})]\n"
        "assert 'redis' not in sys.modules and 'gameproto_redis' not in sys.modules, 'imported without budget_url'\n"
        f"shared = gameproto_sync.GameAPI({TOKEN!r}, budget_url='redis://127.0.0.1:9/0')\n"
        "assert 'redis' in sys.modules and 'gameproto_redis' in sys.modules\n"
        "shared.close()\n"
        "apis[0].close()\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=environment
    )
    assert finished.returncode == 0, finished.stderr


def test_the_clients_import_httpx_and_aiohttp_only_when_given_one() -> None:
    pytest.importorskip("httpx", reason="needs httpx (the 'httpx' extra)")
    script = (
        "import sys\n"
        "import gameproto_sync, gameproto_async\n"
        f"apis = [gameproto_sync.GameAPI({TOKEN!r}, 'http://127.0.0.1:9'), gameproto_async.GameAPI({TOKEN!r})]\n"
        "apis[0].close()\n"
        "assert 'httpx' not in sys.modules and 'aiohttp' not in sys.modules, 'imported without http_client'\n"
        "import httpx\n"
        f"borrowed = gameproto_sync.GameAPI({TOKEN!r}, 'http://127.0.0.1:9', http_client=httpx.Client())\n"
        "borrowed.close()\n"
        "assert 'aiohttp' not in sys.modules, 'an httpx client loaded aiohttp'\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=environment
    )
    assert finished.returncode == 0, finished.stderr
