"""The blocking client's bytes through the application's own ``httpx.Client``."""

from __future__ import annotations

import sys
from typing import Any, Dict, Mapping, Union

from gameproto import ClientSettings, Response, Send, TransportFailure
from gameproto.driver import TooLarge
from gameproto_async._httpx import httpx_failure, prepare, refuse_httpx_settings

from ._borrowed import read_capped
from ._deadline import adopt, clear_deadline, set_deadline

__all__ = ["HttpxTransport"]

_OPENED = ("connection.connect_tcp.complete", "connection.start_tls.complete")


def _adopt_opened(event: str, info: Mapping[str, Any]) -> None:
    # httpcore's trace hands over each connection it opens: its socket is made
    # to respect the deadline of whichever gameproto call uses it, so a slow
    # or trickled answer ends by the deadline (and waits of the application's
    # own requests on it stay unbounded, as they were).
    if event in _OPENED:
        adopt(info["return_value"].get_extra_info("socket"))


class HttpxTransport:
    """Each call a request of the borrowed client's pool, bounded by the call's deadline; the client left open."""

    def __init__(self, client: Any, settings: ClientSettings) -> None:
        refuse_httpx_settings(client, settings)
        self._client = client
        self._httpx = sys.modules["httpx"]
        self._api_url = settings.api_url
        self._max_bytes = settings.max_response_bytes
        self._prepared: Dict[Any, Any] = {}

    def send(self, action: Send) -> Union[Response, TransportFailure]:
        httpx, left = self._httpx, action.time_left
        prepared = prepare(httpx, self._api_url, action, self._prepared, _adopt_opened)
        set_deadline(left)
        try:
            answer = self._client.send(prepared, stream=True, auth=None, follow_redirects=False)
            try:
                adopt(answer.extensions["network_stream"].get_extra_info("socket"))  # a connection opened before
                body = read_capped(answer.iter_raw(), answer.headers.get("Content-Length"), self._max_bytes)
            finally:
                answer.close()
        except httpx.TransportError as error:
            return httpx_failure(error)
        except TooLarge as error:
            return TransportFailure("too_large", str(error))
        finally:
            clear_deadline()
        return Response(answer.status_code, answer.headers, body)

    def close(self) -> None:
        """Nothing to close: the connections are the application's, and stay open."""
