"""The optional libraries, each with the requirement its extra names in pyproject.toml.

A missing optional library's error says ``pip install "pandas>=2.0"``: the
library itself, which installs however gameproto was installed (from a
checkout, an archive or a wheel), where ``pip install "gameproto[pandas]"``
would look for gameproto on an index it is not on. The requirements are
written here once; tests/packaging/test_extras.py holds them to
pyproject.toml's extras.
"""

from __future__ import annotations

from typing import Dict, Tuple

__all__ = ["OPTIONAL", "install_hint"]

#: The module a feature imports -> (the extra that installs it, that extra's requirement).
OPTIONAL: Dict[str, Tuple[str, str]] = {
    "pandas": ("pandas", "pandas>=2.0"),
    "matplotlib": ("plot", "matplotlib>=3.5"),
    "redis": ("redis", "redis>=4.5.4"),
    "trio": ("trio", "trio>=0.26.1"),
    "psycopg": ("postgres", "psycopg[binary]>=3.1"),
}


def install_hint(module: str) -> str:
    """``pip install "<requirement>"`` for the optional library ``module`` (a key of ``OPTIONAL``)."""
    _extra, requirement = OPTIONAL[module]
    return f'pip install "{requirement}"'
