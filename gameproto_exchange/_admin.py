"""A sandbox's admin endpoints (``/_sandbox/...``) called over HTTP: one way for the CLI and the recorder.

``game sandbox`` and the recorder's ``SandboxClock`` both send the admin
token, read the answer's JSON and turn a refusal into words; each then says
it in its own error (a usage error or a failed command; a recording error).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

__all__ = ["SandboxAdmin", "AdminRefused", "AdminUnreachable", "sandbox_root"]


def sandbox_root(base_url: str) -> str:
    """The sandbox's root (where ``/_sandbox`` is) from its root or API URL."""
    base = base_url.rstrip("/")
    return base[: -len("/api/v1")] if base.endswith("/api/v1") else base


class AdminUnreachable(Exception):
    """No answer: ``connection`` when nothing listens there (the error's words in ``detail``)."""

    def __init__(self, root: str, detail: str, connection: bool) -> None:
        super().__init__(detail)
        self.root, self.detail, self.connection = root, detail, connection


class AdminRefused(Exception):
    """An answer other than 200: its status, the sandbox's ``detail`` (or the reason), and its Retry-After."""

    def __init__(self, root: str, status: int, detail: str, retry_after: Optional[str]) -> None:
        message = f"the sandbox at {root} answered {status}: {detail}"
        if status == 429 and retry_after:
            message += f" (try again in {retry_after} s)"
        super().__init__(message)
        self.root, self.status, self.detail, self.retry_after = root, status, detail, retry_after


class SandboxAdmin:
    """Calls one sandbox's admin endpoints with its admin token, over one kept-alive connection."""

    def __init__(self, base_url: str, admin_token: str, timeout: float = 30.0, trust_env: bool = True) -> None:
        import requests  # only a command or a recording that drives a sandbox needs it

        self.root = sandbox_root(base_url)
        self._timeout = timeout
        self._http = requests.Session()
        # ``trust_env``: the environment's proxies and CA bundle (REQUESTS_CA_BUNDLE), as requests takes them.
        self._http.trust_env = trust_env
        self._http.headers["Authorization"] = f"Bearer {admin_token}"

    def call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """The JSON object a 200 answers; ``AdminRefused`` for any other answer, ``AdminUnreachable`` for none."""
        import requests

        try:
            answer = self._http.request(method, self.root + path, json=body, timeout=self._timeout)
        except requests.ConnectionError as error:
            raise AdminUnreachable(self.root, str(error), connection=True) from None
        except requests.RequestException as error:
            raise AdminUnreachable(self.root, type(error).__name__, connection=False) from None
        try:
            data = answer.json()
        except ValueError:
            data = None
        if answer.status_code != 200:
            detail = data.get("detail") if isinstance(data, dict) else None
            shown = detail if isinstance(detail, str) and detail else answer.reason or "no reason given"
            raise AdminRefused(self.root, answer.status_code, shown, answer.headers.get("Retry-After"))
        if not isinstance(data, dict):
            raise AdminRefused(self.root, answer.status_code, "an answer that is not a JSON object", None)
        return data

    def close(self) -> None:
        self._http.close()
