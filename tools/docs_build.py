"""Build the documentation site strictly and fail if anything but the build itself printed a line.

``python -m tools.docs_build SITE_DIR [CONFIG_FILE]``: runs ``mkdocs build
--strict`` with the environment as a reader has it (no variable set to hide
anything), shows what it printed, and fails when a line of it is not one of
the build's own log lines (``INFO    -  Building documentation ...``): a
theme or plugin that prints a banner, a notice or a blank line of its own
would print it on every ``mkdocs serve`` too. The rule names no wording, so
it holds whatever a new release prints. The docs extra pins a Material
release that prints nothing of its own, so plain ``mkdocs serve`` shows the
reader the build's lines and nothing else.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import List, Optional, Tuple

#: mkdocs' own log lines: the level, padded, then `` -  `` (its console format, as every plugin's log uses it).
_OWN_LINE = re.compile(r"(DEBUG|INFO|WARNING|ERROR|CRITICAL) +-  \S")


def foreign_lines(output: str) -> List[str]:
    """The lines of a build's output that are not the build's own log lines (a blank line counts)."""
    return [line for line in output.splitlines() if not _OWN_LINE.match(line)]


def build(site: str, config: Optional[str] = None) -> Tuple[int, str]:
    """``mkdocs build --strict`` into ``site``: its exit status and everything it printed (stdout, then stderr)."""
    env = {key: value for key, value in os.environ.items() if key != "NO_MKDOCS_2_WARNING"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", site]
    if config is not None:
        command += ["--config-file", config]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout + done.stderr


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    site = args[0] if args else "site"
    status, output = build(site, args[1] if len(args) > 1 else None)
    sys.stdout.write(output)
    foreign = foreign_lines(output)
    if foreign:
        print(
            f"the docs build printed {len(foreign)} line(s) that are not its own (first: {foreign[0]!r}):"
            " a theme or plugin speaks on every build and serve; pin a release that does not (pyproject's docs extra)"
        )
        return 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
