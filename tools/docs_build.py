"""Build the documentation site strictly and fail if the theme printed its banner.

``python -m tools.docs_build SITE_DIR``: runs ``mkdocs build --strict`` with
the environment as a reader has it (no variable set to hide anything), shows
what it printed, and fails when Material's banner about MkDocs 2.0 is among
it: the docs extra pins a Material release that prints none, so plain
``mkdocs serve`` shows the reader nothing but the site.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import List, Optional

BANNER = "Warning from the Material for MkDocs team"


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    site = args[0] if args else "site"
    env = {key: value for key, value in os.environ.items() if key != "NO_MKDOCS_2_WARNING"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", site],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    if BANNER in done.stdout + done.stderr:
        print("the docs theme printed its banner: pin a Material release without it (pyproject's docs extra)")
        return 1
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
