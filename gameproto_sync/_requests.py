"""The blocking client's bytes through the application's own ``requests.Session``.

The session's adapter (its pool, TLS and proxy settings) carries gameproto's
requests as gameproto built them: the session's headers, auth, cookies and
hooks never see them.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from typing import Any, List, Tuple, Union

import requests
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import EmptyPoolError, HTTPError, ReadTimeoutError

from gameproto import ClientSettings, InvalidArgumentError, Response, Send, TransportFailure
from gameproto.driver import TooLarge, refuse_header, refuse_own_settings

from ._borrowed import read_capped
from ._deadline import adopt, clear_deadline, set_deadline
from ._transport import _READ_SIZE, _failure

__all__ = ["SessionTransport", "refuse_session_settings"]


class _Watch(threading.local):
    """The connections this thread opens during its current call, each shut at the call's deadline."""

    at: float = 0.0
    active: bool = False
    watched: Tuple[Any, ...] = ()


_WATCH = _Watch()
_SHUTTING = threading.Lock()  # a watchdog never shuts a descriptor that the call is closing


class _Watchdog:
    """Shuts one new connection at the call's deadline.

    A socket urllib3 makes during the call is new to gameproto until the
    answer's headers come: a server trickling them on a new connection would
    otherwise hold the call past its deadline. ``shutdown`` on a duplicate
    descriptor ends the connection itself (TLS wrapped around it too); the
    session's pool then discards it, and stays usable.
    """

    def __init__(self, sock: socket.socket, left: float) -> None:
        self._sock = sock
        self._done = False
        self.fired = False
        self._timer = threading.Timer(max(0.0, left), self._shut)
        self._timer.daemon = True
        self._timer.start()

    def _shut(self) -> None:
        with _SHUTTING:
            if not self._done:
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)
                    self.fired = True
                except OSError:
                    pass  # not connected yet, or already closed: nothing left to end

    def stop(self) -> bool:
        """Whether the connection was shut (the call's deadline came first); the duplicate closed."""
        self._timer.cancel()
        with _SHUTTING:
            self._done = True
            self._sock.close()
        return self.fired


def _on_audit(event: str, args: Tuple[Any, ...]) -> None:
    # Called for every audit event of the process: only a connect during a watched call does anything.
    if event != "socket.connect" or not _WATCH.active:
        return
    try:
        duplicate = args[0].dup()
    except (OSError, AttributeError):
        return
    _WATCH.watched += (_Watchdog(duplicate, _WATCH.at - time.monotonic()),)


_HOOKED: List[bool] = []


def _hook_once() -> None:
    """The audit hook that sees the sockets urllib3 connects (installed once, for the process's life)."""
    with _SHUTTING:
        if not _HOOKED:
            sys.addaudithook(_on_audit)
            _HOOKED.append(True)


def _resends(retry: Any) -> bool:
    """Whether urllib3's ``Retry`` would send a request again (a POST included, after a dropped connection)."""
    if retry is None or retry.total == 0:  # False == 0: no retry at all
        return False
    counts = (retry.connect, retry.read, retry.other, retry.status)
    return any(count is None or count != 0 for count in counts) and bool(retry.total is None or retry.total)


def refuse_session_settings(session: Any, settings: ClientSettings) -> None:
    """A session whose own settings would act on gameproto's requests is refused, naming the setting."""
    refuse_own_settings(settings)
    if session.auth is not None:
        raise InvalidArgumentError("http_client: its auth would sign gameproto's requests; pass a session without auth")
    if any(session.hooks.values()):
        raise InvalidArgumentError("http_client: its response hooks would act on every call")
    refuse_header(session.headers)
    adapter = session.get_adapter(settings.api_url)
    if getattr(adapter, "_pool_block", False):
        # urllib3 would wait for a free connection without any bound: past the call's deadline.
        raise InvalidArgumentError(
            "http_client: its adapter waits for a free connection without a bound (pool_block=True), "
            "which no call's deadline could end; mount one with pool_block=False"
        )
    retry = getattr(adapter, "max_retries", None)
    if _resends(retry):
        raise InvalidArgumentError(
            f"http_client: the adapter for {settings.api_url.partition(':')[0]}:// has max_retries={retry!r}, "
            "which would send an order again by itself; mount an adapter with max_retries=0 (gameproto retries)"
        )


class SessionTransport:
    """Each call a request of the borrowed session's adapter, bounded by the call's deadline; the session left open."""

    def __init__(self, session: Any, settings: ClientSettings) -> None:
        refuse_session_settings(session, settings)
        _hook_once()
        self._session = session
        self._api_url = settings.api_url
        self._max_bytes = settings.max_response_bytes

    def send(self, action: Send) -> Union[Response, TransportFailure]:
        left = action.time_left
        set_deadline(left)
        _WATCH.at, _WATCH.active = time.monotonic() + left, True
        try:
            outcome = self._send(action, left)
        finally:
            clear_deadline()
            _WATCH.active = False
            watched, _WATCH.watched = _WATCH.watched, ()
            shut = [each.stop() for each in watched]
        if any(shut):
            # Even an answer: http.client reads a connection shut mid-headers as their end, so whatever
            # came is cut short, and a POST's outcome is unknown.
            return TransportFailure("read_timeout", "no whole answer within the call's deadline")
        return outcome

    def _send(self, action: Send, left: float) -> Union[Response, TransportFailure]:
        request, session = action.request, self._session
        prepared = requests.PreparedRequest()
        prepared.method = request.method
        prepared.url = url = self._api_url + request.target
        prepared.headers = CaseInsensitiveDict(request.headers)
        if request.body is not None:
            prepared.headers["Content-Length"] = str(len(request.body))
        prepared.body = request.body
        prepared.hooks = {"response": []}
        # The session's TLS and proxies, and those of the environment when it trusts it (as session.get would).
        chosen = session.merge_environment_settings(url, {}, True, None, None)
        try:
            answer = session.get_adapter(url).send(
                prepared,
                stream=True,
                timeout=(min(action.connect_timeout, left), min(action.read_timeout, left)),
                verify=chosen["verify"],
                cert=chosen["cert"],
                proxies=chosen["proxies"],
            )
            raw, done = answer.raw, False
            try:
                # From here on its socket respects the call's deadline (and the next call's on it).
                adopt(getattr(getattr(raw, "connection", None), "sock", None))
                chunks = raw.stream(_READ_SIZE, decode_content=False)
                body = read_capped(chunks, raw.headers.get("Content-Length"), self._max_bytes)
                done = True
            finally:
                if not done:
                    raw.close()  # an answer left unread leaves its connection unusable
                raw.release_conn()
        except requests.RequestException as error:
            return _failure(error)
        except EmptyPoolError:
            return TransportFailure("pool_timeout", "no free connection of the session's within the call's deadline")
        except TooLarge as error:
            return TransportFailure("too_large", str(error))
        except ReadTimeoutError as error:
            return TransportFailure("read_timeout", f"{type(error).__name__}: {error}")
        except (HTTPError, OSError) as error:
            return TransportFailure("read", f"{type(error).__name__}: {error}")
        return Response(answer.status_code, answer.headers, body)

    def close(self) -> None:
        """Nothing to close: the session is the application's, and stays open."""
