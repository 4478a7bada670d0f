"""Talking to a sandbox's own endpoints (``/_sandbox/``, ``/_view``) over plain HTTP, for the sandbox tests."""

from __future__ import annotations

import http.client
import json
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

__all__ = ["ADMIN", "admin_call", "plain_call"]

#: The admin token the sandbox tests start ``game serve`` with.
ADMIN = "sandbox-admin-token-0123456789"


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
