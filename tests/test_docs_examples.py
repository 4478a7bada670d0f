"""Every code example of the documentation runs, against the embedded exchange.

The collector reads the fenced blocks of ``docs/*.md`` and ``README.md``:

- a ``python`` block runs, in order with the page's other python blocks and
  sharing their names (a page reads top to bottom), on a fresh exchange per
  page served over a real loopback socket;
- a python block preceded by ``<!-- not run: reason -->`` is skipped, with
  that reason shown by pytest;
- a block in a language that is not Python (``bash``, ``text``, ``toml``,
  ...) is never run (though every ``game ...`` line of a shell block must
  parse with the command's own argument parser); a block with no language at all fails the test, so that
  nothing is left undecided.

The examples are written for a reader, with placeholders this test swaps
for the served exchange: ``https://game.example.com`` or ``game serve``'s
``http://127.0.0.1:8765`` (the exchange's URL), and ``your-personal-token``
or ``game serve``'s ``demo-token`` (a token it accepts). ``/path/to/ca-bundle.pem``
is left alone: examples that name it are not run.
"""

from __future__ import annotations

import re
import shlex
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest

from gameproto.simulator.exchange import Exchange
from gameproto_cli.main import build_parser
from gameproto_exchange import ServerThread

from .support import TOKEN

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]

PLACEHOLDER_URLS = ("https://game.example.com", "http://127.0.0.1:8765")
PLACEHOLDER_TOKENS = ("your-personal-token", "demo-token")

#: Languages of blocks that are shown, never run (shell sessions, output, files).
NOT_PYTHON = frozenset({"bash", "console", "text", "toml", "ini", "dotenv", "json", "csv", "mermaid"})
RUN = frozenset({"python", "py"})

_FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<reason>.+?)\s*-->\s*$")


class Block(NamedTuple):
    page: Path
    line: int
    language: str
    code: str
    skip_reason: Optional[str]


def blocks_of(page: Path) -> Iterator[Block]:
    """The fenced blocks of one page, with the line each starts on."""
    text = page.read_text(encoding="utf-8")
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _NOT_RUN.search(before)
        language = match.group("info").strip().split(" ")[0].lower()
        yield Block(page, line, language, match.group("body"), marker.group("reason") if marker else None)


def _label(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_the_collector_finds_the_pages() -> None:
    names = {_label(page) for page in PAGES}
    assert {"README.md", "docs/quickstart.md", "docs/migrating.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=_label)
def test_every_block_says_what_it_is(page: Path) -> None:
    for block in blocks_of(page):
        assert block.language in RUN | NOT_PYTHON, (
            f"{_label(page)}:{block.line}: a fenced block needs a language "
            f"(python runs; one of {sorted(NOT_PYTHON)} is shown only)"
        )


def _runnable(page: Path) -> List[Block]:
    return [block for block in blocks_of(page) if block.language in RUN]


PAGES_WITH_CODE = [page for page in PAGES if _runnable(page)]


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=_label)
def test_the_examples_of_a_page_run(page: Path, capsys: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)  # what an example writes (a journal's file) goes to a fresh folder
    exchange = Exchange(tokens={TOKEN: "alice"}, seed=7)
    exchange.seed_market()
    skipped: List[str] = []
    ran = 0
    with ServerThread(exchange) as running:
        namespace: Dict[str, Any] = {"__name__": "__docs__"}
        for block in _runnable(page):
            where = f"{_label(page)}:{block.line}"
            if block.skip_reason is not None:
                skipped.append(f"{where}: {block.skip_reason}")
                continue
            code = block.code
            for url in PLACEHOLDER_URLS:
                code = code.replace(url, running.base_url)
            for token in PLACEHOLDER_TOKENS:
                code = code.replace(token, TOKEN)
            with warnings.catch_warnings():
                # An example that leaves a client open is a bad example.
                warnings.simplefilter("error", ResourceWarning)
                try:
                    exec(compile(code, where, "exec"), namespace)
                except Exception as error:
                    raise AssertionError(f"the example at {where} failed: {error!r}") from error
            ran += 1
    capsys.readouterr()
    assert ran or skipped


SKIPPED = [block for page in PAGES for block in _runnable(page) if block.skip_reason is not None]


@pytest.mark.parametrize("block", SKIPPED, ids=lambda block: f"{_label(block.page)}:{block.line}")
def test_python_blocks_not_run_say_why(block: Block) -> None:
    """Each python block that is not run shows up as a skip, with the page's reason."""
    pytest.skip(f"not run: {block.skip_reason}")


def _game_command_lines() -> List[Tuple[str, List[str]]]:
    lines = []
    for page in PAGES:
        for block in blocks_of(page):
            if block.language not in ("bash", "console"):
                continue
            for offset, line in enumerate(block.code.splitlines(), start=1):
                words = shlex.split(line, comments=True)
                if words[:1] == ["game"]:
                    lines.append((f"{_label(page)}:{block.line + offset}", words[1:]))
    return lines


@pytest.mark.parametrize(("where", "argv"), _game_command_lines(), ids=lambda value: str(value))
def test_the_shell_examples_name_real_game_options(where: str, argv: List[str]) -> None:
    """Shell blocks are not run, but every ``game ...`` line in them must parse."""
    try:
        build_parser().parse_args(argv)
    except SystemExit as stopped:
        raise AssertionError(f"{where}: game {' '.join(argv)} does not parse") from stopped
