"""The clients with a request budget shared through a real redis-server (``budget_url``), on every driver."""

from __future__ import annotations

import logging
from typing import List

import pytest

from gameproto import RateLimitError
from tests.support.common import OTHER_TOKEN, TOKEN
from tests.support.harness import Harness, every_driver
from tests.support.redis_server import RedisServer, free_port


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@every_driver()
async def test_two_clients_of_one_account_share_one_window(h: Harness, redis_url: str) -> None:
    # Two clients of one account (one default key) get five calls in all;
    # their token exchanges take no slot (the exchange counts per access token).
    first = h.client(budget_url=redis_url, requests_per_minute=5, timeout=2.0)
    second = h.client(budget_url=redis_url, requests_per_minute=5, timeout=2.0)
    outcomes: List[object] = []
    for api in (first, second, first, second, first, second):
        try:
            outcomes.append(await api.get_status())
        except RateLimitError as error:
            outcomes.append(error)
    assert h.requests() == 7  # 2 token exchanges and 5 calls
    refused = [outcome for outcome in outcomes if isinstance(outcome, RateLimitError)]
    assert len(refused) == 1 and all("nothing was sent" in str(error) for error in refused)


@every_driver()
async def test_each_account_has_its_own_budget_by_default(h: Harness, redis_url: str) -> None:
    alice = h.client(budget_url=redis_url, requests_per_minute=2, timeout=2.0)
    bob = h.client(token=OTHER_TOKEN, budget_url=redis_url, requests_per_minute=2, timeout=2.0)
    for _ in range(2):
        assert (await alice.get_status())["status"] == "healthy"  # alice's 2
        assert (await bob.get_status())["status"] == "healthy"  # bob's own 2
    with pytest.raises(RateLimitError):
        await alice.get_status()


@every_driver()
async def test_an_unreachable_redis_paces_locally_with_one_warning(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gameproto")
    api = h.client(budget_url=f"redis://127.0.0.1:{free_port()}/0", requests_per_minute=4, timeout=2.0)
    for _ in range(4):
        assert (await api.get_status())["status"] == "healthy"
    with pytest.raises(RateLimitError):
        await api.get_status()  # the local window holds the limit while Redis is away
    assert h.requests() == 5  # the token exchange and 4 calls
    warnings = [record for record in caplog.records if "redis" in record.getMessage().lower()]
    assert len(warnings) == 1, [record.getMessage() for record in warnings]
    assert TOKEN not in caplog.text


@every_driver()
async def test_shared_budget_settings_that_cannot_work_are_refused(h: Harness) -> None:
    for options, named in (
        ({"budget_url": "http://127.0.0.1:6379"}, "budget_url"),
        ({"budget_key": "desk-1"}, "budget_key"),
        ({"budget_url": "redis://127.0.0.1:6379/0", "requests_per_minute": None}, "requests_per_minute"),
        ({"budget_url": "redis://127.0.0.1:6379/0", "budget_key": ""}, "budget_key"),
    ):
        with pytest.raises(ValueError, match=named):
            h.client(**options)
