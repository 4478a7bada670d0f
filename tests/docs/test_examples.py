"""Every code example of the documentation runs as printed, against the sandbox.

The collector reads the fenced blocks of ``docs/*.md`` and ``README.md``:

- a ``python`` block runs alone, as printed (nothing in it is rewritten,
  nothing of another block is in scope: its imports are its own), in a fresh
  empty folder, twice in a row (a reader runs an example again: the second
  run finds the first one's files and orders), on a fresh sandbox per block:
  the embedded exchange with its seeded market, on
  ``http://127.0.0.1:8765`` with the token ``demo-token``, as ``game serve
  --seed-market`` serves it. The port is the printed one, so the blocks take
  turns (a lock file) across processes. A block that names Redis
  (``redis://127.0.0.1:6379``) runs against a real one on the printed port,
  in the component suite (``tox -e components``);
- a python block preceded by ``<!-- runs until stopped -->`` never ends on
  its own (a watch): it runs in its own process until its first line of
  output, which must be there and be no error, and is then stopped with
  Ctrl-C;
- a block preceded by ``<!-- uses: day.sqlite, bot.py -->`` works from files
  an earlier block of its page makes, as a reader who follows the page in
  one folder has them: the runner first makes each, in the same empty
  folder, by running the earlier block that says ``<!-- makes: day.sqlite
  -->`` (a python block alone, on a fresh sandbox; a shell block's lines as
  printed, in order, its ``game serve`` line then serving the block that
  uses the files, as the reader's other shell does) or by saving the
  earlier python block that says ``<!-- file: bot.py -->`` under that name
  (the block then imports it: ``from bot import bot``, with the folder
  first on ``sys.path`` as ``python block.py`` has it). A file no earlier
  block makes, or a maker that does not make it, fails the test;
- a python block preceded by ``<!-- not run: reason -->`` is skipped, with
  that reason shown by pytest; one preceded by ``<!-- needs: fastapi -->``
  runs where those packages are installed (the ``transports`` tox env) and
  is skipped, saying so, elsewhere; a block that names the real platform
  (``https://game.example.com``, ``your-personal-token``) must be marked so;
- a block in a language that is not Python (``bash``, ``text``, ``toml``,
  ...) is shown, and every ``game ...`` line of a shell block must parse with
  the command's own argument parser, and runs, as printed, in a shell that
  has done what the page said before it (its ``export`` lines); a block with
  no language at all fails the test, so that nothing is left undecided.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import importlib.util
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest

from gameproto.simulator.exchange import Exchange
from gameproto_cli.main import build_parser
from gameproto_exchange import ServerThread
from tests.support.redis_server import REDIS_SERVER, RedisServer

ROOT = Path(__file__).resolve().parents[2]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]

#: The sandbox the examples are printed for: ``game serve --seed-market``.
SANDBOX_PORT = 8765
SANDBOX_TOKEN = "demo-token"
#: What only the real platform answers to: a block that names it is not run, and says so.
REAL_PLATFORM = ("https://game.example.com", "your-personal-token")
#: The Redis the shared-budget examples are printed for.
REDIS_PORT = 6379
#: Pages take turns at the printed ports, across every process on this machine.
LOCK = Path(tempfile.gettempdir()) / "gameproto-docs-examples.lock"

#: Languages of blocks that are shown, never run (shell sessions, output, files).
NOT_PYTHON = frozenset({"bash", "console", "text", "toml", "ini", "dotenv", "json", "csv", "mermaid"})
RUN = frozenset({"python", "py"})

_FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<reason>.+?)\s*-->\s*$")
_UNTIL_STOPPED = re.compile(r"<!--\s*runs until stopped\s*-->\s*$")
_NEEDS = re.compile(r"<!--\s*needs:\s*(?P<packages>[\w., -]+?)\s*-->\s*$")
_MAKES = re.compile(r"<!--\s*makes:\s*(?P<files>[\w., -]+?)\s*-->\s*$")
_USES = re.compile(r"<!--\s*uses:\s*(?P<files>[\w., -]+?)\s*-->\s*$")
_FILE = re.compile(r"<!--\s*file:\s*(?P<name>[\w.-]+)\s*-->\s*$")
_COMMENT = re.compile(r"^\s*<!--.*-->\s*$")


def _missing(packages: str) -> Optional[str]:
    """Why a block that needs ``packages`` (comma-separated) is not run here; None when all are installed."""
    absent = [name.strip() for name in packages.split(",") if importlib.util.find_spec(name.strip()) is None]
    return f"needs {', '.join(absent)}, not installed here (tox -e transports-py313 runs it)" if absent else None


class Block(NamedTuple):
    page: Path
    line: int
    language: str
    code: str
    skip_reason: Optional[str]
    until_stopped: bool = False
    #: The files this block makes (``<!-- makes: ... -->``), for the blocks after it that use them.
    makes: Tuple[str, ...] = ()
    #: The files this block works from (``<!-- uses: ... -->``), made by blocks before it on its page.
    uses: Tuple[str, ...] = ()
    #: The name a reader saves this block under (``<!-- file: bot.py -->``), for the blocks that import it.
    file: Optional[str] = None


def _markers(text: str, end: int) -> List[str]:
    """The comment lines right above the fence that starts at ``end``: what the page says of the block."""
    lines = text[:end].rstrip("\n").split("\n")
    markers: List[str] = []
    while lines and _COMMENT.match(lines[-1]):
        markers.insert(0, lines.pop())
    return markers


def _named(pattern: re.Pattern[str], markers: List[str], group: str) -> Optional[str]:
    for marker in markers:
        found = pattern.search(marker)
        if found:
            return found.group(group)
    return None


def _files(listed: Optional[str]) -> Tuple[str, ...]:
    return tuple(name.strip() for name in listed.split(",") if name.strip()) if listed else ()


def blocks_of(page: Path) -> Iterator[Block]:
    """The fenced blocks of one page, with the line each starts on and what the comments above it say."""
    text = page.read_text(encoding="utf-8")
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        markers = _markers(text, match.start())
        not_run = _named(_NOT_RUN, markers, "reason")
        needs = _named(_NEEDS, markers, "packages")
        reason = not_run if not_run is not None else _missing(needs) if needs is not None else None
        language = match.group("info").strip().split(" ")[0].lower()
        yield Block(
            page, line, language, match.group("body"), reason,
            any(_UNTIL_STOPPED.search(marker) for marker in markers),
            _files(_named(_MAKES, markers, "files")), _files(_named(_USES, markers, "files")),
            _named(_FILE, markers, "name"),
        )  # fmt: skip


def _label(page: Path) -> str:
    # A page of the runner's own tests lives outside the project: its name says enough.
    return str(page.relative_to(ROOT)) if ROOT in page.parents else page.name


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


@contextlib.contextmanager
def _printed_ports() -> Iterator[None]:
    """The printed ports, ours for a while: other test processes wait their turn."""
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _wait_free(port: int) -> None:
    for _ in range(100):  # a port just closed by another page may linger a moment
        if _free(port):
            return
        time.sleep(0.1)
    pytest.fail(f"127.0.0.1:{port} is taken by something else: the examples are printed for it")


@contextlib.contextmanager
def _redis_if_named(code: str) -> Iterator[None]:
    """A real redis-server on the printed port, for a page whose examples name it."""
    if f"redis://127.0.0.1:{REDIS_PORT}" not in code:
        yield
        return
    if REDIS_SERVER is None:
        pytest.skip("the page's examples share the budget through Redis: needs a real redis-server")
    _wait_free(REDIS_PORT)
    server = RedisServer()
    server.port = REDIS_PORT
    server.start()
    try:
        yield
    finally:
        server.stop()


def sandbox() -> Exchange:
    """The exchange ``game serve --seed-market`` serves."""
    exchange = Exchange(tokens={SANDBOX_TOKEN: "trader-1"}, seed=7)
    exchange.seed_market()
    return exchange


#: What makes a block need a real component: it runs in the component suite.
COMPONENTS = (f"redis://127.0.0.1:{REDIS_PORT}",)


def _block_id(block: Block) -> str:
    return f"{_label(block.page)}:{block.line}"


def _run_alone(block: Block, folder: Optional[Path] = None) -> None:
    """The block, as printed, in a namespace of its own (as ``python block.py`` runs it); the environment kept.

    As ``python block.py`` in ``folder`` has it, the folder comes first on
    ``sys.path`` (a block imports the ``bot.py`` an earlier block is saved
    as); what it imported from there is forgotten afterwards.
    """
    where = _block_id(block)
    environment = dict(os.environ)
    here = str(folder.resolve()) if folder is not None else None
    if here is not None:
        sys.path.insert(0, here)
    with warnings.catch_warnings():
        # An example that leaves a client open is a bad example.
        warnings.simplefilter("error", ResourceWarning)
        try:
            exec(compile(block.code, where, "exec"), {"__name__": "__main__"})
        except Exception as error:
            raise AssertionError(f"the example at {where} failed: {error!r}") from error
        finally:
            os.environ.clear()
            os.environ.update(environment)
            if here is not None:
                sys.path.remove(here)
                for name, module in list(sys.modules.items()):
                    if str(getattr(module, "__file__", None) or "").startswith(here + os.sep):
                        del sys.modules[name]


def _run_until_first_output(block: Block, folder: Path) -> str:
    """A block that never ends on its own: its own process, until its first line of output; then Ctrl-C."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-c", block.code]
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # blocks until the line comes; an early end gives ""
        still_running = process.poll() is None
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert first.strip() and still_running, f"{_block_id(block)} ended or said nothing: {first!r} {err[-2000:]}"
    assert "Traceback" not in first and "Error" not in first, f"{_block_id(block)}: {first!r}"
    return first


def maker_of(name: str, block: Block) -> Block:
    """The block before ``block`` on its page that makes the file ``name`` (the nearest, if several do)."""
    makers = [
        earlier for earlier in blocks_of(block.page)
        if earlier.line < block.line and (name in earlier.makes or earlier.file == name)
    ]  # fmt: skip
    if not makers:
        raise AssertionError(
            f"{_block_id(block)} uses {name}, but no block before it on its page makes it: "
            f"mark the one that does <!-- makes: {name} --> (or <!-- file: {name} --> for a file saved as printed)"
        )
    return makers[-1]


def _said_before(block: Block) -> Shell:
    """What the shell lines of ``block``'s page did before it: its ``export`` and ``echo ... > FILE`` lines."""
    shell = Shell({}, ())
    for earlier in blocks_of(block.page):
        if earlier.line >= block.line:
            break
        if earlier.language in ("bash", "console"):
            for line in earlier.code.splitlines():
                shell = _said(shell, shlex.split(line, comments=True))
    return shell


class _Made:
    """What making a block's files left behind: a maker's ``game serve`` still serving, as in the reader's shell."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self.stack = stack
        self.blocks: List[Block] = []
        self.serving: Optional[Block] = None


def _reader_line(words: List[str]) -> List[str]:
    """A shell line a reader runs: ``python`` is the Python gameproto is installed in (this one)."""
    return [sys.executable, *words[1:]] if words[:1] in (["python"], ["python3"]) else words


def _run_shell_block(block: Block, folder: Path, made: _Made) -> None:
    """A shell block's lines as printed, in ``folder``, in order; its ``game serve`` line goes on serving.

    As in the reader's shell, the server a block starts ("in one shell") goes
    on serving after the block's other lines, for the blocks that use what
    it made (until they end); a block with no ``game serve`` line runs
    against a fresh sandbox of its own, or the server a block before it
    left serving. ``python`` is the Python this project is installed in.
    """
    commands = [(offset, shlex.split(line, comments=True)) for offset, line in enumerate(block.code.splitlines(), 1)]
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("GAME_API_", "GAME_ADMIN_"))}
    env = {**clean, "HOME": str(folder), "PYTHONPATH": str(ROOT), **_said_before(block).exports}
    with contextlib.ExitStack() as own:
        if made.serving is None and not any(words[:2] == ["game", "serve"] for _, words in commands):
            _wait_free(SANDBOX_PORT)
            own.enter_context(ServerThread(sandbox(), port=SANDBOX_PORT))
        for offset, words in commands:
            where = f"{_label(block.page)}:{block.line + offset}"
            if not words:
                continue
            if words[:2] == ["game", "serve"]:
                assert made.serving is None, f"{where}: {_block_id(made.serving)} serves already on the printed port"
                _wait_free(SANDBOX_PORT)
                made.stack.enter_context(_serving(words[1:], folder, env))
                made.serving = block
                continue
            if words[0] == "game":
                status, out, err = _game(words[1:], folder, env)
            else:
                line = _reader_line(words)
                done = subprocess.run(line, cwd=folder, env=env, capture_output=True, text=True, timeout=120)
                status, out, err = done.returncode, done.stdout, done.stderr
            assert status == 0, f"{where}: {' '.join(words)} ended with {status}: {out}{err}"


def make_what_it_uses(block: Block, folder: Path, made: _Made) -> None:
    """The files ``block`` uses, made in ``folder`` as the page makes them: each maker once, in the page's order."""
    for name in block.uses:
        maker = maker_of(name, block)
        if maker not in made.blocks:
            made.blocks.append(maker)
            make_what_it_uses(maker, folder, made)
            if maker.file is not None:
                (folder / maker.file).write_text(maker.code, encoding="utf-8")
            if maker.makes and maker.language in RUN:
                if made.serving is None:
                    _wait_free(SANDBOX_PORT)
                    with ServerThread(sandbox(), port=SANDBOX_PORT):
                        _run_alone(maker, folder)
                else:
                    _run_alone(maker, folder)
            elif maker.makes:
                _run_shell_block(maker, folder, made)
        assert (folder / name).exists(), f"{_block_id(maker)} says it makes {name}, but it did not"


def run_block(block: Block, folder: Path) -> None:
    """The block, alone, twice in a row in ``folder``, on one fresh sandbox (a reader's second try).

    The files it uses are made first, in ``folder``, by the blocks before it
    that make them; where one of those is a shell block that starts ``game
    serve``, that server is the block's sandbox, as in the reader's other shell.
    """
    with _printed_ports(), contextlib.ExitStack() as stack:
        made = _Made(stack)
        make_what_it_uses(block, folder, made)
        if made.serving is None:
            _wait_free(SANDBOX_PORT)
            stack.enter_context(ServerThread(sandbox(), port=SANDBOX_PORT))
        stack.enter_context(_redis_if_named(block.code))
        for _ in range(2):
            if block.until_stopped:
                _run_until_first_output(block, folder)
            else:
                _run_alone(block, folder)


def _block_param(block: Block) -> Any:
    marks = [pytest.mark.component] if any(name in block.code for name in COMPONENTS) else []
    return pytest.param(block, id=_block_id(block), marks=marks)


RUN_BLOCKS = [
    _block_param(block) for page in PAGES for block in _runnable(page) if block.skip_reason is None
]  # fmt: skip


@pytest.mark.parametrize("block", RUN_BLOCKS)
def test_each_python_block_runs_alone_twice_in_a_fresh_folder(
    block: Block, capsys: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # a fresh, empty folder: what the block writes (a journal's bot.db) goes there
    run_block(block, tmp_path)
    capsys.readouterr()


def test_a_block_alone_has_only_its_own_names(tmp_path: Path, monkeypatch: Any) -> None:
    """The runner itself: a block that leans on a name of another block fails, as it would for a reader."""
    monkeypatch.chdir(tmp_path)
    leaning = Block(ROOT / "README.md", 1, "python", "print(GameAPI)\n", None)
    with pytest.raises(AssertionError, match="NameError"):
        _run_alone(leaning)


@pytest.mark.parametrize("page", PAGES, ids=_label)
def test_every_file_a_block_uses_is_made_before_it_on_its_page(page: Path) -> None:
    for block in blocks_of(page):
        for name in block.uses:
            maker = maker_of(name, block)  # fails, saying what to mark, when no block before it makes the file
            assert maker.file == name or maker.language in RUN | {"bash", "console"}, _block_id(maker)


_FOLLOWED = """\
<!-- makes: note.txt -->
```python
with open("note.txt", "a") as note:
    note.write("made\\n")
```

<!-- file: greeting.py -->
```python
WORD = "hello"
```

<!-- uses: note.txt, greeting.py -->
```python
from greeting import WORD

with open("note.txt") as note:
    print(WORD, note.read())
```

<!-- uses: missing.txt -->
```python
print(open("missing.txt").read())
```
"""


def test_a_block_that_uses_a_file_gets_it_from_the_block_that_makes_it(tmp_path: Path, monkeypatch: Any) -> None:
    """The runner itself: the maker runs first, once, in the same empty folder; the saved file is importable."""
    page = tmp_path / "page.md"
    page.write_text(_FOLLOWED, encoding="utf-8")
    maker, saved, user, orphan = blocks_of(page)
    assert (maker.makes, saved.file, user.uses) == (("note.txt",), "greeting.py", ("note.txt", "greeting.py"))
    assert orphan.uses == ("missing.txt",)
    folder = tmp_path / "reader"
    folder.mkdir()
    monkeypatch.chdir(folder)
    with pytest.raises(AssertionError, match="ModuleNotFoundError"):
        _run_alone(user, folder)  # alone in an empty folder, it has nothing to work from: as for a reader
    run_block(user, folder)
    assert (folder / "note.txt").read_text() == "made\n"  # the maker ran once, before the two runs of the user
    assert (folder / "greeting.py").read_text() == 'WORD = "hello"\n'
    assert "greeting" not in sys.modules  # imported from the folder, then forgotten
    with pytest.raises(AssertionError, match="no block before it on its page makes it"):
        run_block(orphan, folder)


def test_a_maker_that_does_not_make_its_file_fails(tmp_path: Path, monkeypatch: Any) -> None:
    page = tmp_path / "page.md"
    page.write_text('<!-- makes: day.sqlite -->\n```python\nprint("nothing")\n```\n\n'
                    '<!-- uses: day.sqlite -->\n```python\nprint(1)\n```\n', encoding="utf-8")  # fmt: skip
    monkeypatch.chdir(tmp_path)
    _, user = blocks_of(page)
    with pytest.raises(AssertionError, match=r"says it makes day\.sqlite, but it did not"):
        run_block(user, tmp_path)


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=_label)
def test_an_example_for_the_real_platform_is_marked_not_run(page: Path) -> None:
    for block in _runnable(page):
        if any(name in block.code for name in REAL_PLATFORM):
            assert block.skip_reason is not None, (
                f"{_label(page)}:{block.line} names the real platform: write it for the sandbox "
                "(http://127.0.0.1:8765, demo-token), or mark it <!-- not run: needs the real platform -->"
            )


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


def test_the_shell_examples_use_delivery_dates_still_to_come() -> None:
    """A copied ``--date`` is a delivery day: one already past is refused by the exchange."""
    today = dt.date.today()
    for where, argv in _game_command_lines():
        for flag, value in zip(argv, argv[1:]):
            if flag == "--date":
                assert dt.date.fromisoformat(value) > today + dt.timedelta(days=365), f"{where}: --date {value}"


#: ``game`` lines that run until stopped: started, read until they say they are ready, then Ctrl-C.
LONG_RUNNING = {"serve": "personal token", "watch": "watching"}


def _shell_home(tmp: Path, said: Shell) -> Dict[str, str]:
    """A reader's machine that has done what the page said before the line (``said``), with the files it names.

    No ``GAME_API_*`` variable and no token file unless the page said so
    (``export GAME_API_TOKEN=demo-token``, ``echo demo-token >
    ~/.game-token``); the files the pages describe in words are there: the
    cli page's CSV file, the simulator page's token files and certificate.
    """
    (csv,) = [block.code for block in blocks_of(ROOT / "docs" / "cli.md") if block.language == "csv"]
    (tmp / "orders.csv").write_text(csv, encoding="utf-8")
    for name in ("alice", "bob"):  # the simulator page's own token files
        (tmp / f"{name}.token").write_text(f"personal-token-of-{name}\n", encoding="utf-8")
    (tmp / "admin.token").write_text("a+base64/admin&token%==\n", encoding="utf-8")  # the sandbox page's
    trustme = pytest.importorskip("trustme")
    certificate = trustme.CA().issue_cert("127.0.0.1", "localhost")  # the simulator page's cert.pem and key.pem
    certificate.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    certificate.private_key_pem.write_to_path(str(tmp / "key.pem"))
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("GAME_API_", "GAME_ADMIN_"))}
    env = {**clean, "HOME": str(tmp), "PYTHONPATH": str(ROOT), **said.exports}
    for path, text in said.files:
        target = Path(path.replace("~", str(tmp), 1) if path.startswith("~") else tmp / path)
        target.write_text(text + "\n", encoding="utf-8")
    return env


class Shell(NamedTuple):
    """What a page's shell lines did before a line: the variables exported, the files written with echo."""

    exports: Dict[str, str]
    files: Tuple[Tuple[str, str], ...]


def _said(shell: Shell, words: List[str]) -> Shell:
    """``shell`` after one line: ``export NAME=VALUE`` and ``echo TEXT > FILE`` are followed, the rest is not."""
    if words[:1] == ["export"]:
        exports = dict(shell.exports)
        for word in words[1:]:
            name, _, value = word.partition("=")
            exports[name] = value
        return Shell(exports, shell.files)
    if words[:1] == ["echo"] and len(words) >= 4 and words[-2] == ">":
        return Shell(shell.exports, (*shell.files, (words[-1], " ".join(words[1:-2]))))
    return shell


def _game(argv: List[str], cwd: Path, env: Dict[str, str]) -> Tuple[int, str, str]:
    command = [sys.executable, "-m", "gameproto_cli", *argv]
    ready = LONG_RUNNING.get(argv[0]) if argv else None
    if ready is None and argv[:1] and argv[0] in ASKS:
        import pty

        controller, terminal = pty.openpty()
        try:
            os.write(controller, ASKS[argv[0]].encode())  # the terminal keeps the answer until the prompt reads it
            done = subprocess.run(
                command, cwd=cwd, env=env, stdin=terminal, capture_output=True, text=True, timeout=120
            )
        finally:
            os.close(terminal)
            os.close(controller)
        return done.returncode, done.stdout, done.stderr
    if ready is None:
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout, done.stderr
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    said: List[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            said.append(line)
            if ready in line:
                break
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, "".join(said) + rest, ""


def _shell_lines() -> List[Tuple[str, List[str], Optional[List[str]], Shell, Block]]:
    """Every ``game`` line of a shell block, with the block's own ``game serve`` line (its sandbox), if any,
    what the page's shell lines before it did, and the block (for the files it uses)."""
    lines = []
    for page in PAGES:
        shell = Shell({}, ())
        for block in blocks_of(page):
            if block.language not in ("bash", "console"):
                continue
            if block.makes:  # run whole, in order: its later lines need the files its first ones make
                for line in block.code.splitlines():
                    shell = _said(shell, shlex.split(line, comments=True))
                continue
            commands = [
                (offset, shlex.split(line, comments=True)) for offset, line in enumerate(block.code.splitlines(), 1)
            ]
            serve = next((words[1:] for _, words in commands if words[:2] == ["game", "serve"]), None)
            for offset, words in commands:
                if words[:1] == ["game"]:
                    lines.append((f"{_label(page)}:{block.line + offset}", words[1:], serve, shell, block))
                shell = _said(shell, words)
    return lines


#: Commands that ask before they act: run on a terminal, where the reader answers no.
ASKS = {"cancel-all": "n\n"}


def _shell_line_id(value: Any) -> str:
    return "" if isinstance(value, Block) else str(value)  # the line's place says which block it is in


@pytest.mark.parametrize(("where", "argv", "serve", "said", "block"), _shell_lines(), ids=_shell_line_id)
def test_the_shell_examples_run_as_printed(
    where: str, argv: List[str], serve: Optional[List[str]], said: Shell, block: Block, tmp_path: Path
) -> None:
    """Every ``game`` line of a shell block, as printed, on a reader's machine with the sandbox running.

    The shell has done what the page said before the line (its ``export``
    and ``echo ... > FILE`` lines), and nothing else: a line that needs a
    token finds one only where the page gave it. The sandbox is the block's
    own ``game serve`` line where it has one (run as printed, then stopped
    with Ctrl-C), else the embedded exchange as ``game serve --seed-market``
    serves it; both on the printed port. ``game order delete ord_1234``
    deletes the order it names, placed first. A command that asks first is
    answered no on a terminal. The other lines of shell blocks (``pip
    install``, ``tox``, ``mkdocs``) install or build, and run in ``.ci/run``.
    A block that uses files an earlier block makes (``<!-- uses: ... -->``)
    has them made first, in the same folder, as a python block has; a server
    the maker left serving is then the sandbox.
    """
    env = _shell_home(tmp_path, said)
    with _printed_ports(), contextlib.ExitStack() as stack:
        made = _Made(stack)
        make_what_it_uses(block, tmp_path, made)
        if made.serving is None:
            _wait_free(SANDBOX_PORT)
        if argv[:1] == ["serve"]:
            status, out, err = _game(argv, tmp_path, env)
        elif serve is not None:
            with _serving(serve, tmp_path, env):
                if argv[:2] == ["order", "delete"]:
                    _place_until(f"http://127.0.0.1:{SANDBOX_PORT}", argv[2])
                status, out, err = _game(argv, tmp_path, env)
        else:
            if made.serving is None:
                stack.enter_context(ServerThread(sandbox(), port=SANDBOX_PORT))
            if argv[:2] == ["order", "delete"]:
                _place_until(f"http://127.0.0.1:{SANDBOX_PORT}", argv[2])
            status, out, err = _game(argv, tmp_path, env)
    assert status == 0, f"{where}: game {' '.join(argv)} ended with {status}: {out}{err}"
    assert "Traceback" not in out + err


SHELL_MAKERS = [
    block for page in PAGES for block in blocks_of(page) if block.makes and block.language in ("bash", "console")
]  # fmt: skip


@pytest.mark.parametrize("block", SHELL_MAKERS, ids=_block_id)
def test_each_shell_block_that_makes_files_runs_as_printed_and_makes_them(block: Block, tmp_path: Path) -> None:
    """A shell block the page's later blocks work from: its lines, in order, in an empty folder, make its files."""
    with _printed_ports(), contextlib.ExitStack() as stack:
        _run_shell_block(block, tmp_path, _Made(stack))
    assert sorted(name for name in block.makes if not (tmp_path / name).exists()) == []


def test_a_line_the_page_gave_no_token_fails(tmp_path: Path) -> None:
    """The runner itself: without the page's export, a line that needs the token fails, as for a reader."""
    env = _shell_home(tmp_path, Shell({}, ()))
    with _printed_ports():
        _wait_free(SANDBOX_PORT)
        with ServerThread(sandbox(), port=SANDBOX_PORT):
            status, _, err = _game(["orders", "--direction", "buy"], tmp_path, env)
    assert status == 2 and "token" in err
    said = _said(_said(Shell({}, ()), ["export", "GAME_API_TOKEN=demo-token"]), ["echo", "x", ">", "~/.t"])
    assert said == Shell({"GAME_API_TOKEN": "demo-token"}, (("~/.t", "x"),))


@contextlib.contextmanager
def _serving(serve: List[str], cwd: Path, env: Dict[str, str]) -> Iterator[None]:
    """The block's ``game serve`` line, running until the block's other line is done."""
    command = [sys.executable, "-m", "gameproto_cli", *serve]
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        said = []
        for line in process.stdout:
            said.append(line)
            if LONG_RUNNING["serve"] in line:
                break
        else:
            pytest.fail(f"game {' '.join(serve)} ended: {''.join(said)}")
        yield
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def _place_until(url: str, name: str) -> None:
    """Orders in the sandbox until one has the id a printed ``game order delete`` names."""
    from gameproto_sync import GameAPI

    order = {"side": "buy", "price": 1.0, "volume": 1.0, "date": "2030-01-15",
             "start_time": "10:00", "end_time": "10:15", "duration": "15m"}  # fmt: skip
    with GameAPI(SANDBOX_TOKEN, url) as api:
        while api.find_order_by_id(name) is None:
            api.create_order({"orders": [order] * 100})
            assert len(api.get_orders()) < 20_000
