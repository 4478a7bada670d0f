"""Client settings from the environment and a ``.env`` file.

``GAME_API_TOKEN``, ``GAME_API_URL`` and ``GAME_API_VERIFY_SSL``, as the
published client reads them. Variables already set win over the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Union

from . import constants

__all__ = ["Settings", "settings_from_env", "parse_verify", "read_dotenv"]


@dataclass(frozen=True)
class Settings:
    token: Optional[str]
    base_url: str
    verify_ssl: Union[bool, str]

    def __repr__(self) -> str:
        token = "***" if self.token else None
        return f"Settings(token={token}, base_url={self.base_url!r}, verify_ssl={self.verify_ssl!r})"


def parse_verify(value: Optional[str]) -> Union[bool, str]:
    """``GAME_API_VERIFY_SSL`` as the clients take it: a bool, or a CA bundle path."""
    if value is None or not value.strip():
        return True
    text = value.strip()
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    return text


def read_dotenv(path: str) -> Dict[str, str]:
    """The variables of a ``.env`` file (python-dotenv's reading when it is installed)."""
    if not os.path.isfile(path):
        return {}
    try:
        from dotenv import dotenv_values
    except ImportError:
        values: Dict[str, str] = {}
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                text = line.strip()
                if not text or text.startswith("#") or "=" not in text:
                    continue
                name, _, value = text.partition("=")
                name = name.strip()
                if name.startswith("export "):
                    name = name[len("export ") :].strip()
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                    value = value[1:-1]
                values[name] = value
        return values
    return {name: value for name, value in dotenv_values(path).items() if value is not None}


def settings_from_env(environ: Optional[Mapping[str, str]] = None, dotenv_path: Optional[str] = ".env") -> Settings:
    """The settings from ``environ`` (default ``os.environ``) over a ``.env`` file."""
    merged: Dict[str, str] = dict(read_dotenv(dotenv_path)) if dotenv_path else {}
    merged.update(os.environ if environ is None else environ)
    return Settings(
        token=merged.get("GAME_API_TOKEN") or None,
        base_url=merged.get("GAME_API_URL") or constants.DEFAULT_BASE_URL,
        verify_ssl=parse_verify(merged.get("GAME_API_VERIFY_SSL")),
    )
