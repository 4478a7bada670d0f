"""``tools/docs_build.py``: the docs build fails whenever anything but the build itself prints a line.

The guard names no wording: it holds the output to mkdocs' own log lines.
It is shown failing on what Material 9.7.4 really printed on this project's
build (kept verbatim in ``data/``), and on a real build whose hook prints a
line; and passing on the theme as the docs extra pins it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.docs_build import foreign_lines, main

ROOT = Path(__file__).resolve().parents[2]
PRINTED_BY_9_7_4 = Path(__file__).with_name("data") / "material-9.7.4-build.txt"


def test_the_guard_fails_on_what_material_9_7_4_really_printed() -> None:
    printed = PRINTED_BY_9_7_4.read_text(encoding="utf-8")
    foreign = foreign_lines(printed)
    assert any("MkDocs 2.0 is incompatible" in line for line in foreign), foreign
    own = [line for line in printed.splitlines() if line not in foreign]
    assert own == [
        "INFO    -  Cleaning site directory",
        "INFO    -  Building documentation to directory: /tmp/site",
        "INFO    -  Documentation built in 3.76 seconds",
    ]


def _tiny_site(folder: Path, hook: str) -> Path:
    (folder / "docs").mkdir()
    (folder / "docs" / "index.md").write_text("# A page\n", encoding="utf-8")
    (folder / "hook.py").write_text(hook, encoding="utf-8")
    config = folder / "mkdocs.yml"
    config.write_text("site_name: t\ntheme: mkdocs\nhooks:\n  - hook.py\n", encoding="utf-8")
    return config


@pytest.mark.parametrize(("hook", "status"), [("", 0), ("import sys\nprint('a notice', file=sys.stderr)\n", 1)])
def test_a_real_build_that_prints_a_line_of_its_own_fails(tmp_path: Path, hook: str, status: int) -> None:
    pytest.importorskip("mkdocs")
    config = _tiny_site(tmp_path, hook)
    assert main([str(tmp_path / "site"), str(config)]) == status
    assert (tmp_path / "site" / "index.html").exists()


def test_the_theme_as_pinned_prints_nothing_of_its_own(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The project's own build, with the docs extra installed (tox -e docs): what mkdocs serve shows, too."""
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings")
    monkeypatch.chdir(ROOT)
    assert main([str(tmp_path / "site")]) == 0
