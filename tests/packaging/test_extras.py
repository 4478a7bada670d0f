"""The hints for a missing optional library: each names the library with its extra's requirement.

``pip install "gameproto[pandas]"`` fails where gameproto is not on an index
(it is installed from a checkout or an archive); ``pip install
"pandas>=2.0"`` works however gameproto was installed. Each feature is run
in a fresh interpreter where its library cannot be imported (nothing is
installed or uninstalled), and the hint it gives is held to pyproject.toml.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from gameproto._extras import OPTIONAL, install_hint

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
PACKAGES = sorted(path.parent for path in ROOT.glob("gameproto*/__init__.py"))


def _extras() -> Dict[str, List[str]]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - tomli is a dependency before 3.11
        import tomli as tomllib
    extras: Dict[str, List[str]] = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    return extras


@pytest.mark.parametrize("module", sorted(OPTIONAL))
def test_each_hint_is_its_extras_own_requirement(module: str) -> None:
    extra, requirement = OPTIONAL[module]
    assert _extras()[extra] == [requirement], f"the {extra} extra is {_extras()[extra]}, the hint says {requirement}"
    assert install_hint(module) == f'pip install "{requirement}"'


def test_every_extra_that_installs_a_library_has_its_hint() -> None:
    # The extras a feature of the package needs (the rest install tools for
    # the project's own work: tests, lint, docs, benchmarks). httpx and aiohttp
    # are the borrowed clients' extras: a client handed in is already installed,
    # so no code of the package ever needs to say how to install it.
    tooling = {"test", "lint", "docs", "components", "bench", "env", "httpx", "aiohttp"}
    assert set(_extras()) - tooling == {extra for extra, _ in OPTIONAL.values()}


def test_no_hint_names_the_package_with_an_extra() -> None:
    offenders = []
    for package in PACKAGES:
        for path in package.rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if path.name != "_extras.py" and ("gameproto[" in text or '".[' in text):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


#: The code that needs each library, run where the library cannot be imported; it must fail with the hint.
NEEDS = {
    "pandas": "import gameproto_frames",
    "redis": "import gameproto_redis",
    "psycopg": "from gameproto_journal._postgres import PostgresJournal\nPostgresJournal('dbname=none')",
    "matplotlib": "from gameproto_cli.plot import _pyplot\n_pyplot()",
    "trio": "from gameproto_cli.failures import require_backend\nrequire_backend('trio')",
}


@pytest.mark.parametrize("module", sorted(OPTIONAL))
def test_each_missing_library_is_reported_with_its_hint(module: str) -> None:
    code = f"import sys\nsys.modules[{module!r}] = None  # as if it were not installed\n{NEEDS[module]}\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert install_hint(module) in last, last


def test_the_docs_give_the_same_hints() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    extras = {extra for extra, _ in OPTIONAL.values()}
    offenders = []
    for page in pages:
        for line in page.read_text(encoding="utf-8").splitlines():
            for extra in extras:
                if f'pip install ".[{extra}]"' in line or f'pip install "gameproto[{extra}]"' in line:
                    offenders.append(f"{page.name}: {line.strip()}")
    assert offenders == []
