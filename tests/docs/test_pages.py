"""The way into the docs: the home page links every page, the clients' calls table names every public name."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import gameproto_sync

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_home_page_links_every_page() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([\w./-]+\.md)\)", index))
    pages = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")} - {"index.md"}
    assert sorted(pages - linked) == []
    for method in (
        "watch_orders",
        "clock_offset",
        "reconcile()",
        "cancel_all_on_exit()",
        "positions()",
        "game sandbox",
    ):
        assert method in index, method


def _calls_table() -> str:
    text = (DOCS / "clients.md").read_text(encoding="utf-8")
    start = text.index("## The calls")
    return text[start : text.index("\n## ", start + 1)]


def test_the_calls_table_names_every_public_name_of_the_client() -> None:
    table = _calls_table()
    named = set()
    for row in re.findall(r"^\| (.+?) \|", table, re.MULTILINE):
        named.update(re.findall(r"`(\w+)", row))
    public = {name for name, _ in inspect.getmembers(gameproto_sync.GameAPI) if not name.startswith("_")}
    assert sorted(public - named) == []
    for page in ("trading-loop.md", "journal.md", "risk.md", "sandbox.md"):
        assert f"]({page})" in table, page
