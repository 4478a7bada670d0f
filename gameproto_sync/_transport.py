"""The blocking client's bytes: a ``Send`` in, a ``Response`` or a ``TransportFailure`` out.

Everything that knows requests and urllib3 is here: the connection pool, the
call's deadline on every socket wait, and the one place where their
exceptions are named in the core's terms.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager, nullcontext
from typing import Any, Dict, Iterator, Tuple, Union

import requests
from urllib3 import Timeout
from urllib3 import exceptions as urllib3_exceptions
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    EmptyPoolError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)

from gameproto import ClientSettings, Request, Response, Send, TransportFailure
from gameproto.driver import FoldedHeaders

from ._deadline import DeadlineAdapter, set_deadline

__all__ = ["Transport"]

_READ_SIZE = 65536
_ROUTES = 256  # targets (and timeout pairs) remembered; a trading process uses a handful


class _TooLarge(Exception):
    """The answer is longer than the client reads."""


def _as_requests_error(error: Exception) -> Exception:
    """What requests' ``HTTPAdapter.send`` raises for urllib3's ``error`` (``error`` itself where it lets it pass)."""
    if isinstance(error, (ProtocolError, OSError, ClosedPoolError)):
        return requests.exceptions.ConnectionError(error)
    if isinstance(error, MaxRetryError):
        reason = error.reason
        if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
            return requests.exceptions.ConnectTimeout(error)
        if isinstance(reason, ResponseError):
            return requests.exceptions.RetryError(error)
        if isinstance(reason, urllib3_exceptions.ProxyError):
            return requests.exceptions.ProxyError(error)
        if isinstance(reason, urllib3_exceptions.SSLError):
            return requests.exceptions.SSLError(error)
        return requests.exceptions.ConnectionError(error)
    if isinstance(error, urllib3_exceptions.ProxyError):
        return requests.exceptions.ProxyError(error)
    if isinstance(error, urllib3_exceptions.SSLError):
        return requests.exceptions.SSLError(error)
    if isinstance(error, ReadTimeoutError):
        return requests.exceptions.ReadTimeout(error)
    if isinstance(error, urllib3_exceptions.InvalidHeader):
        return requests.exceptions.InvalidHeader(error)
    return error


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
    """A pool of connections to one exchange, used by many threads at once.

    The pool holds at most ``max_connections``: a thread that finds them all
    busy waits for one (within its call's deadline) rather than opening more.
    """

    def __init__(self, settings: ClientSettings) -> None:
        self._api_url = settings.api_url
        self._verify = settings.verify
        self._quiet_tls = settings.verify_ssl is False
        self._max_bytes = settings.max_response_bytes
        self._max_connections = settings.max_connections
        self._http = requests.Session()
        # The environment was read once, by the core's settings; requests
        # must not read it again (trust_env would look up proxies and netrc
        # on every call, and honour variables the async client does not).
        self._http.trust_env = False
        scheme = settings.api_url.partition(":")[0]
        self._proxies = {scheme: settings.proxy} if settings.proxy else {}
        adapter = DeadlineAdapter(
            pool_connections=1, pool_maxsize=settings.max_connections, pool_block=True, max_retries=0
        )
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)
        self._adapter = adapter
        self._routes: Dict[str, Tuple[Any, str]] = {}
        self._timeouts: Dict[Tuple[float, float], Timeout] = {}

    def send(self, action: Send) -> Union[Response, TransportFailure]:
        """The answer to ``action.request``, or what kept it from coming."""
        request = action.request
        headers = dict(request.headers)
        if request.body is not None:
            headers["Content-Length"] = str(len(request.body))
        set_deadline(action.time_left)
        try:
            # We warned once when the client was made; urllib3 would on every call.
            with self._quiet() if self._quiet_tls else nullcontext():
                pool, url = self._route(request)
                try:
                    # What the adapter's send does with its pool, without what this client never needs
                    # again on each call: finding the pool and its TLS settings, the proxy, the URL, and
                    # making a requests.Response (cookies, encoding guess) that is read for its body alone.
                    raw = pool.urlopen(
                        method=request.method,
                        url=url,
                        body=request.body,
                        headers=headers,
                        redirect=False,
                        assert_same_host=False,
                        preload_content=False,
                        decode_content=False,
                        retries=self._adapter.max_retries,
                        timeout=self._timeout(action.connect_timeout, action.read_timeout),
                        chunked=False,
                    )
                except Exception as error:
                    converted = _as_requests_error(error)
                    if converted is error:
                        raise
                    raise converted from error
                body = self._read(raw)
        except requests.RequestException as error:
            return _failure(error)
        except EmptyPoolError:
            return TransportFailure(
                "pool_timeout", f"no free connection of the {self._max_connections} within the call's deadline"
            )
        except _TooLarge as error:
            return TransportFailure("too_large", str(error))
        except ReadTimeoutError as error:
            return TransportFailure("read_timeout", f"{type(error).__name__}: {error}")
        except (HTTPError, OSError) as error:
            return TransportFailure("read", f"{type(error).__name__}: {error}")
        folded = FoldedHeaders((name.lower(), value) for name, value in raw.headers.itermerged())
        return Response(raw.status, folded, body)

    def _route(self, request: Request) -> Tuple[Any, str]:
        """The adapter's pool for the exchange and the URL to ask it for, found once (per target)."""
        routed = self._routes.get(request.target)
        if routed is None:
            prepared = requests.PreparedRequest()
            prepared.prepare_url(self._api_url + request.target, None)
            pool = self._adapter.get_connection_with_tls_context(prepared, self._verify, proxies=self._proxies)
            self._adapter.cert_verify(pool, prepared.url, self._verify, None)  # type: ignore[no-untyped-call]
            routed = (pool, self._adapter.request_url(prepared, self._proxies))
            if len(self._routes) >= _ROUTES:
                self._routes.clear()
            self._routes[request.target] = routed
        return routed

    def _timeout(self, connect: float, read: float) -> Timeout:
        timeout = self._timeouts.get((connect, read))
        if timeout is None:
            if len(self._timeouts) >= _ROUTES:
                self._timeouts.clear()
            timeout = self._timeouts[(connect, read)] = Timeout(connect=connect, read=read)
        return timeout

    def _read(self, raw: Any) -> bytes:
        """The body as sent (no content decoding), stopped at ``max_response_bytes``."""
        done = False
        try:
            declared = raw.headers.get("Content-Length")
            if declared is not None and declared.strip().isdigit() and int(declared) > self._max_bytes:
                raise _TooLarge(f"answer of {int(declared)} bytes is longer than max_response_bytes={self._max_bytes}")
            chunks = []
            length = 0
            for chunk in raw.stream(_READ_SIZE, decode_content=False):
                length += len(chunk)
                if length > self._max_bytes:
                    raise _TooLarge(f"answer longer than max_response_bytes={self._max_bytes}; reading stopped there")
                chunks.append(chunk)
            done = True
            return b"".join(chunks)
        finally:
            if not done:
                # An answer left unread leaves the connection unusable.
                raw.close()
            # Back to the pool (a closed one too: the pool holds a fixed
            # number of places, and one never returned is lost for good).
            raw.release_conn()

    @staticmethod
    @contextmanager
    def _quiet() -> Iterator[None]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()
