"""The blocking client's bytes through the application's own ``requests.Session``.

The session's adapter (its pool, TLS and proxy settings) carries gameproto's
requests as gameproto built them: the session's headers, auth, cookies and
hooks never see them.
"""

from __future__ import annotations

from typing import Any, Union

import requests
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import EmptyPoolError, HTTPError, ReadTimeoutError

from gameproto import ClientSettings, InvalidArgumentError, Response, Send, TransportFailure
from gameproto._borrowing import TooLarge, refuse_header, refuse_own_settings

from ._borrowed import read_capped
from ._deadline import adopt, clear_deadline, set_deadline
from ._transport import _READ_SIZE, _failure

__all__ = ["SessionTransport", "refuse_session_settings"]


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
        self._session = session
        self._api_url = settings.api_url
        self._max_bytes = settings.max_response_bytes

    def send(self, action: Send) -> Union[Response, TransportFailure]:
        request, left, session = action.request, action.time_left, self._session
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
        set_deadline(left)
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
        finally:
            clear_deadline()
        return Response(answer.status_code, answer.headers, body)

    def close(self) -> None:
        """Nothing to close: the session is the application's, and stays open."""
