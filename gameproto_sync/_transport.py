"""The blocking client's bytes: a ``Send`` in, a ``Response`` or a ``TransportFailure`` out.

Everything that knows requests and urllib3 is here: the connection pool, the
call's deadline on every socket wait, and the one place where their
exceptions are named in the core's terms.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager, nullcontext
from typing import Iterator, Union

import requests
from requests.structures import CaseInsensitiveDict

from gameproto._boundary import Response, Send, TransportFailure
from gameproto._settings import ClientSettings

from ._deadline import DeadlineAdapter, set_deadline

__all__ = ["Transport"]


def _failure(error: requests.RequestException) -> TransportFailure:
    """The core's name for what went wrong, mapped at this one place."""
    detail = f"{type(error).__name__}: {error}"
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return TransportFailure("connect_timeout", detail)
    if isinstance(error, requests.exceptions.SSLError):
        # urllib3 reports TLS errors of the handshake and of a later read
        # alike; only a refused certificate surely came before the request.
        if "CERTIFICATE_VERIFY_FAILED" in detail or "certificate verify failed" in detail:
            return TransportFailure("tls", detail)
        return TransportFailure("read", detail)
    if isinstance(error, requests.exceptions.ReadTimeout):
        return TransportFailure("read_timeout", detail)
    if isinstance(error, requests.exceptions.ConnectionError):
        # urllib3 wraps the cause; a failure to connect means nothing was sent.
        reason = getattr(error.args[0], "reason", None) if error.args else None
        from urllib3.exceptions import NewConnectionError, ProxyError, ReadTimeoutError

        if isinstance(reason, (NewConnectionError, ProxyError)):
            return TransportFailure("connect", detail)
        if isinstance(reason, ReadTimeoutError):
            return TransportFailure("read_timeout", detail)
        return TransportFailure("read", detail)
    return TransportFailure("read", detail)


class Transport:
    """A pool of connections to one exchange, used by many threads at once."""

    def __init__(self, settings: ClientSettings) -> None:
        self._api_url = settings.api_url
        self._verify = settings.verify_ssl
        self._http = requests.Session()
        # Settings from the environment are read once here, not on every
        # call: trust_env makes requests look up proxies and netrc each time.
        self._proxies = requests.utils.get_environ_proxies(settings.api_url)
        self._http.trust_env = False
        adapter = DeadlineAdapter(pool_connections=1, pool_maxsize=settings.max_connections, max_retries=0)
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)
        self._adapter = adapter

    def send(self, action: Send) -> Union[Response, TransportFailure]:
        """The answer to ``action.request``, or what kept it from coming."""
        request = action.request
        prepared = requests.PreparedRequest()
        prepared.method = request.method
        prepared.url = self._api_url + request.target
        prepared.headers = CaseInsensitiveDict(request.headers)
        if request.body is not None:
            prepared.headers["Content-Length"] = str(len(request.body))
        prepared.body = request.body
        prepared.hooks = {"response": []}
        set_deadline(action.time_left)
        try:
            # We warned once when the client was made; urllib3 would on every call.
            with self._quiet() if self._verify is False else nullcontext():
                answer = self._adapter.send(
                    prepared,
                    timeout=(action.connect_timeout, action.read_timeout),
                    verify=self._verify,
                    proxies=self._proxies,
                )
                body = answer.content
        except requests.RequestException as error:
            return _failure(error)
        return Response(answer.status_code, answer.headers, body)

    @staticmethod
    @contextmanager
    def _quiet() -> Iterator[None]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()
