"""The embedded exchange in a separate process, so its CPU never counts as the client's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any, List, Optional

__all__ = ["ServerProcess"]

TOKEN = "bench-token"
_URL = re.compile(r"(https?://[0-9.]+:[0-9]+)")


class ServerProcess:
    """``game serve --port 0`` as a child process; ``base_url`` once it listens."""

    def __init__(self, extra: Optional[List[str]] = None) -> None:
        self.extra = extra or []
        self.base_url = ""
        self._process: Optional[subprocess.Popen[str]] = None

    def __enter__(self) -> ServerProcess:
        command = [
            sys.executable,
            "-m",
            "gameproto_cli",
            "serve",
            "--port",
            "0",
            "--token",
            TOKEN,
            "--rate-limit",
            "100000000",
            *self.extra,
        ]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert self._process.stdout is not None
        for line in self._process.stdout:
            found = _URL.search(line)
            if found:
                self.base_url = found.group(1)
                return self
        raise RuntimeError(f"the benchmark server did not start (exit {self._process.wait()})")

    def __exit__(self, *exc_info: Any) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
