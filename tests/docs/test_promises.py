"""What the README and the docs promise a first-time user, where no example shows it by running."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

import gameproto_async
import gameproto_sync
from gameproto.simulator.exchange import Exchange
from gameproto_exchange import ServerThread
from tests.support.common import OTHER_TOKEN, TOKEN, future_order

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _text(name: str) -> str:
    """A page, its lines joined: a phrase may be wrapped anywhere."""
    return " ".join((ROOT / name).read_text(encoding="utf-8").split())


@pytest.mark.parametrize("module", [gameproto_sync, gameproto_async], ids=lambda module: module.__name__)
def test_best_offers_give_every_level_by_default_as_published(module: Any) -> None:
    method = module.GameAPI.get_market_best_offers
    assert inspect.signature(method).parameters["top_n"].default is None


def test_best_offers_without_top_n_list_more_than_five_levels() -> None:
    exchange = Exchange(tokens={TOKEN: "alice", OTHER_TOKEN: "bob"})
    with ServerThread(exchange) as running, gameproto_sync.GameAPI(TOKEN, running.base_url) as api:
        for step in range(7):
            api.create_order(future_order("sell", 100.0 + step, 1.0))
        (sides,) = api.get_market_best_offers().values()
    assert [level["price"] for level in sides["sell"]] == [100.0 + step for step in range(7)]


def test_no_page_installs_a_distribution_that_is_not_published() -> None:
    for page in DOCS:
        assert not re.search(r"pip install \"?gameproto\b", page.read_text(encoding="utf-8")), page.name


def test_migrating_no_longer_documents_a_difference_in_best_offers() -> None:
    assert "keeps five levels" not in _text("docs/migrating.md")


def test_the_pages_agree_that_the_token_exchange_takes_no_slot() -> None:
    assert "retries and token exchanges" not in _text("docs/trading-loop.md")
    assert "takes no slot" in _text("docs/trading-loop.md") and "takes no slot" in _text("README.md")


def test_the_pages_agree_on_the_printed_demo_token() -> None:
    assert "no command ever prints a token" not in _text("docs/cli.md")
    assert "demo-token" in _text("docs/cli.md")


def test_the_redis_budget_has_a_section_with_an_example() -> None:
    page = _text("docs/trading-loop.md")
    section = page.split("## Sharing the budget through Redis", 1)[1].split(" ## ", 1)[0]
    assert "```python" in section and "budget_url=" in section  # run as printed by test_docs_examples
