"""Generate the blocking client from the async one: ``python -m tools.unasync [--check]``.

``gameproto_async/_client.py`` is the one place where the public surface is
written; ``gameproto_sync/_client.py`` is this script's output (as httpcore
keeps ``_sync/`` from ``_async/``). As httpcore's ``scripts/unasync.py`` does,
it rewrites one line at a time, so line N of a generated file comes from line
N of its source: a traceback or a review comment points at both. The mark
that a file is generated is a comment on its ``from __future__`` line, which
takes no line of its own.

It fails (exit 1) when a rule of ``SUBSTITUTIONS`` is used nowhere, since a
dead rule hides a rename that was missed, and with ``--check`` when a
generated file is stale. ``tests/drivers/test_surface.py`` runs the check
(``test_the_generated_client_is_fresh``), beside the tests that hold both
clients to the same names, signatures and docstrings.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
#: The async sources, each with its generated blocking twin.
FILES = [
    (ROOT / "gameproto_async" / "_client.py", ROOT / "gameproto_sync" / "_client.py"),
    (ROOT / "gameproto_async" / "__init__.py", ROOT / "gameproto_sync" / "__init__.py"),
]

#: Whole-word replacements, applied in order to each line; each must be used somewhere.
SUBSTITUTIONS: List[Tuple[str, str]] = [
    (r"\basync def\b", "def"),
    (r"\bawait ", ""),
    (r"\basync with\b", "with"),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\baclose\b", "close"),
    (r"\bAsyncTransport\b", "Transport"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bgameproto_async\b", "gameproto_sync"),
    (r"\basynccontextmanager\b", "contextmanager"),  # cancel_all_on_exit: ``async with`` / ``with``
    # The package docstring says which client it is.
    (
        r"the GAME client for asyncio and trio, on ``httpcore`` and ``anyio``",
        "the GAME client for blocking code, on ``requests``",
    ),
]

#: The line that carries the mark, and the mark.
MARKED_LINE = "from __future__ import annotations"
MARK = "  # GENERATED from {source} by tools/unasync.py: do not edit."


def generate(source: str, name: str, used: Dict[str, int]) -> str:
    """The blocking twin of an async source file, line for line; ``used`` counts each rule's replacements."""
    lines = []
    for line in source.splitlines(keepends=True):
        for pattern, replacement in SUBSTITUTIONS:
            line, count = re.subn(pattern, replacement, line)
            used[pattern] = used.get(pattern, 0) + count
        if line.rstrip("\n") == MARKED_LINE:
            line = MARKED_LINE + MARK.format(source=name) + "\n"
        lines.append(line)
    text = "".join(lines)
    if MARK.format(source=name) not in text:
        raise ValueError(f"{name} has no line {MARKED_LINE!r} to carry the mark that its twin is generated")
    assert text.count("\n") == source.count("\n"), f"{name}: the generated file is not line-aligned"
    return text


def main(argv: List[str]) -> int:
    stale = []
    used: Dict[str, int] = {}
    for source, target in FILES:
        expected = generate(source.read_text(encoding="utf-8"), source.relative_to(ROOT).as_posix(), used)
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current == expected:
            continue
        if "--check" in argv:
            stale.append(target.relative_to(ROOT).as_posix())
        else:
            target.write_text(expected, encoding="utf-8")
    unused = [pattern for pattern, _ in SUBSTITUTIONS if not used.get(pattern)]
    for pattern in unused:
        print(f"the rule {pattern!r} is used nowhere: remove it from SUBSTITUTIONS", file=sys.stderr)
    for name in stale:
        print(f"{name} is stale: run `python -m tools.unasync`", file=sys.stderr)
    return 1 if stale or unused else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
