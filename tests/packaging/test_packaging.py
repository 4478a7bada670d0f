"""The build metadata: the floors that .ci/lowest-constraints.txt pins are pyproject.toml's floors."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Dict, Tuple

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
LOWEST = ROOT / ".ci" / "lowest-constraints.txt"


def _release(version: str) -> Tuple[int, ...]:
    """``"0.16.0"`` and ``"0.16"`` alike: the numbers, trailing zeros dropped."""
    numbers = [int(part) for part in version.split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


def _pins() -> Dict[str, str]:
    pins: Dict[str, str] = {}
    for line in LOWEST.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip()] = version.strip()
    return pins


def test_each_pin_is_the_floor_of_every_requirement_that_names_it() -> None:
    text = PYPROJECT.read_text(encoding="utf-8")
    pins = _pins()
    assert set(pins) == {"h11", "httpcore", "anyio", "requests", "python-dotenv", "trio", "redis"}
    for name, version in pins.items():
        floors = re.findall(rf'"{re.escape(name)}>=([0-9][0-9.]*)', text)
        assert floors, f"{name} has no floor in pyproject.toml"
        found = {_release(floor) for floor in floors}
        assert found == {_release(version)}, f"{name}: pyproject.toml says >= {floors}, the constraints pin {version}"


def test_the_floors_avoid_the_known_defects() -> None:
    pins = _pins()

    def at_least(name: str, *least: int) -> bool:
        return tuple(int(part) for part in pins[name].split(".")) >= least

    assert at_least("h11", 0, 16)  # CVE-2025-43859
    assert at_least("httpcore", 1, 0, 9)  # TLS failures wrapped (1.0.6), and h11 0.16 accepted (1.0.9)
    assert at_least("requests", 2, 32, 4)  # CVE-2024-35195, CVE-2024-47081
    assert at_least("redis", 4, 5, 4)  # CVE-2023-28858, CVE-2023-28859


def test_the_build_backend_runs_on_python_3_8() -> None:
    text = PYPROJECT.read_text(encoding="utf-8")
    assert 'build-backend = "hatchling.build"' in text
    # 1.27: PEP 639 licence metadata, and the last hatchling that runs on 3.8.
    assert 'requires = ["hatchling>=1.27,<2"]' in text
    assert 'license = "MIT"' in text and 'license-files = ["LICENSE"]' in text


def _build_targets() -> Tuple[list, list]:  # type: ignore[type-arg]
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - tomli is a dependency before 3.11
        import tomli as tomllib
    targets = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["hatch"]["build"]["targets"]
    return list(targets["wheel"]["packages"]), list(targets["sdist"]["include"])


def test_every_package_of_the_wheel_is_in_the_source_archive() -> None:
    # A wheel built from the archive must hold what a wheel built from the
    # checkout holds: a package left out of the archive is missing for anyone
    # who installs from it (as the journal once was).
    wheel, sdist = _build_targets()
    missing = [package for package in wheel if f"/{package}" not in sdist]
    assert missing == [], f"in the wheel but not in the source archive: {missing}"
    on_disk = sorted(path.parent.name for path in ROOT.glob("gameproto*/__init__.py"))
    assert sorted(wheel) == on_disk, "every gameproto* package on disk is built into the wheel"


def test_what_the_tests_import_is_in_the_source_archive() -> None:
    # The suite runs from the unpacked archive: every top-level folder its
    # modules import (tools, examples, benchmarks) is shipped in it.
    _, sdist = _build_targets()
    imported = set()
    for path in (ROOT / "tests").rglob("*.py"):
        for match in re.finditer(r"^\s*(?:from|import) (\w+)", path.read_text(encoding="utf-8"), re.M):
            if (ROOT / match.group(1)).is_dir():
                imported.add(match.group(1))
    missing = sorted(name for name in imported if f"/{name}" not in sdist)
    assert missing == [], f"imported by the tests but not in the source archive: {missing}"
