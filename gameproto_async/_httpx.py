"""The async client's bytes through the application's own ``httpx.AsyncClient`` (asyncio and trio)."""

from __future__ import annotations

import sys
from typing import Any, Dict, Union

import anyio

from gameproto import ClientSettings, InvalidArgumentError, Response, Send, TransportFailure
from gameproto.driver import TooLarge, refuse_header, refuse_own_settings

from ._borrowed import read_capped
from ._transport import _tls_cause

__all__ = ["HttpxTransport", "httpx_failure", "refuse_httpx_settings", "prepare"]

# httpx's exceptions by name (httpx and httpcore share them): the step they happened at.
_KINDS = {
    "ConnectTimeout": "connect_timeout",
    "PoolTimeout": "pool_timeout",
    "ConnectError": "connect",
    "ProxyError": "connect",
    "UnsupportedProtocol": "connect",
    "WriteTimeout": "write_timeout",
    "WriteError": "write",
    "ReadTimeout": "read_timeout",
    "ReadError": "read",
    "RemoteProtocolError": "closed",
    "LocalProtocolError": "protocol",
}


def httpx_failure(error: Exception) -> TransportFailure:
    """The core's name for an httpx error; one it does not know may have sent the request ("read")."""
    detail = f"{type(error).__name__}: {error}"
    tls = _tls_cause(error)
    if tls is not None:
        detail = f"{detail} ({type(tls).__name__}: {tls})"  # trio's wrapping leaves the outer text empty
        if type(error).__name__ == "ConnectError":
            return TransportFailure("tls", detail)  # the handshake is part of connecting: nothing was sent
    for kind in type(error).__mro__:
        if kind.__name__ in _KINDS:
            return TransportFailure(_KINDS[kind.__name__], detail)  # type: ignore[arg-type]
    return TransportFailure("read", detail)


def refuse_httpx_settings(client: Any, settings: ClientSettings) -> None:
    """An httpx client whose own settings would act on gameproto's requests is refused, naming the setting."""
    refuse_own_settings(settings)
    if client.is_closed:
        raise InvalidArgumentError("http_client: the httpx client is closed")
    if client.auth is not None:
        raise InvalidArgumentError("http_client: its auth would sign gameproto's requests; pass a client without auth")
    hooks = [name for name, each in client.event_hooks.items() if each]
    if hooks:
        raise InvalidArgumentError(f"http_client: its event_hooks ({', '.join(sorted(hooks))}) would act on every call")
    refuse_header(client.headers)


_CACHE_LIMIT = 256


def prepare(httpx: Any, api_url: str, action: Send, cache: Dict[Any, Any], trace: Any = None) -> Any:
    """The httpx request for ``action``; a bodiless one is built once and reused (``cache``).

    Building a request (its URL parsed, its headers checked) costs as much as
    the rest of the transport's work, and a process asks for the same few
    reads all day; httpx only reads a request it sends. The ``trace`` of a
    bodiless request is cached with it, so it must be the same every time.
    """
    request, left = action.request, action.time_left
    connect, read = min(action.connect_timeout, left), min(action.read_timeout, left)
    key = (request.method, request.target, request.headers, connect, read)
    if request.body is None:
        prepared = cache.get(key)
        if prepared is not None:
            return prepared
    extensions: Dict[str, Any] = {"timeout": {"connect": connect, "read": read, "write": read, "pool": connect}}
    if trace is not None:
        extensions["trace"] = trace
    prepared = httpx.Request(
        request.method, api_url + request.target, headers=request.headers, content=request.body, extensions=extensions
    )
    if request.body is None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = prepared
    return prepared


class _Progress:
    """httpcore's trace of one request: whether its bytes started to leave (before, a deadline sent nothing)."""

    __slots__ = ("sending",)

    def __init__(self) -> None:
        self.sending = False

    async def __call__(self, event: str, info: Any) -> None:
        if "send_request_headers" in event:
            self.sending = True


class HttpxTransport:
    """Each call a request of the borrowed client's pool, bounded by the call's deadline; the client left open."""

    def __init__(self, client: Any, settings: ClientSettings) -> None:
        refuse_httpx_settings(client, settings)
        self._client = client
        self._httpx = sys.modules["httpx"]
        self._api_url = settings.api_url
        self._max_bytes = settings.max_response_bytes
        self._prepared: Dict[Any, Any] = {}

    async def send(self, action: Send) -> Union[Response, TransportFailure]:
        httpx, left = self._httpx, action.time_left
        # Whether an order's bytes started to leave, should the deadline come first (a read's answer is the same).
        progress = _Progress() if action.request.body is not None else None
        prepared = prepare(httpx, self._api_url, action, self._prepared, progress)
        try:
            # httpx bounds each wait, not the whole call: a trickled answer ends here, its connection closed.
            with anyio.fail_after(left):
                answer = await self._client.send(prepared, stream=True, auth=None, follow_redirects=False)
                try:
                    body = await read_capped(answer.aiter_raw(), answer.headers.get("Content-Length"), self._max_bytes)
                finally:
                    await answer.aclose()
        except TimeoutError:
            if progress is not None and not progress.sending:  # still waiting for a connection: nothing was sent
                return TransportFailure("connect_timeout", "no connection within the call's deadline")
            return TransportFailure("read_timeout", "no whole answer within the call's deadline")
        except httpx.TransportError as error:
            return httpx_failure(error)
        except TooLarge as error:
            return TransportFailure("too_large", str(error))
        return Response(answer.status_code, answer.headers, body)

    async def aclose(self) -> None:
        """Nothing to close: the connections are the application's, and stay open."""
