"""The ``game`` command: the GAME API from a shell, on the blocking client."""

from __future__ import annotations

from .main import build_parser, main

__all__ = ["build_parser", "main"]
