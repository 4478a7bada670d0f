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
_SERVED = re.compile(r"stopped after ([0-9]+) requests on ([0-9]+) connections")


class ServerProcess:
    """``game serve --port 0`` as a child process; ``base_url`` once it listens."""

    def __init__(self, extra: Optional[List[str]] = None) -> None:
        self.extra = extra or []
        self.base_url = ""
        #: Read from the server's last line once it has stopped.
        self.requests_served = -1
        self.connections_accepted = -1
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
        if self._process is None:
            return
        self._process.terminate()
        try:
            rest, _ = self._process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return
        found = _SERVED.search(rest or "")
        if found:
            self.requests_served, self.connections_accepted = int(found.group(1)), int(found.group(2))
