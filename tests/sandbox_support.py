"""Talking to a sandbox's own endpoints (``/_sandbox/``, ``/_view``) over plain HTTP, for the sandbox tests."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

__all__ = ["ADMIN", "admin_call", "plain_call", "Serving"]

#: The admin token the sandbox tests start ``game serve`` with.
ADMIN = "sandbox-admin-token-0123456789"
_URL = re.compile(r"serving on (http://\S+?) ")


def plain_call(
    base_url: str, method: str, path: str, body: Optional[Any] = None, token: Optional[str] = None
) -> Tuple[int, Dict[str, str], Any]:
    """One request to ``base_url``; (status, headers, JSON body or None)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request(method, path, json.dumps(body).encode() if body is not None else None, headers)
        answer = connection.getresponse()
        raw = answer.read()
        found = {name.lower(): value for name, value in answer.getheaders()}
    finally:
        connection.close()
    data = json.loads(raw) if raw and found.get("content-type", "").startswith("application/json") else None
    return answer.status, found, data


def admin_call(base_url: str, method: str, path: str, body: Optional[Any] = None) -> Any:
    """An admin endpoint's JSON answer; fails unless it is a 200."""
    status, _, data = plain_call(base_url, method, path, body, ADMIN)
    assert status == 200, (status, data)
    return data


class Serving:
    """``game serve`` in a child process that the test may stop with SIGKILL and start again."""

    def __init__(self, *flags: str) -> None:
        self.flags = list(flags)
        self.base_url = ""
        self.process: Optional[subprocess.Popen[str]] = None
        self.banner: List[str] = []

    def start(self) -> Serving:
        command = [sys.executable, "-m", "gameproto_cli", "serve", "--port", "0", *self.flags]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        assert self.process.stdout is not None
        self.banner = []
        for line in self.process.stdout:
            self.banner.append(line)
            found = _URL.search(line)
            if found:
                self.base_url = found.group(1)
            if line.startswith("press Ctrl-C"):
                return self
        raise RuntimeError(f"game serve did not start (exit {self.process.wait()}): {''.join(self.banner)}")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, nothing flushed on the way out."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.communicate(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck server
                self.process.kill()
                self.process.communicate()
            self.process = None

    def __enter__(self) -> Serving:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
