"""``GameAPI`` for blocking code, on a ``requests.Session``.

It runs the core's call flow and does nothing else: send a request, sleep,
take the token lock. Every decision (token, retries, errors, order rules)
lives in ``gameproto``.
"""

from __future__ import annotations

import threading
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Type, TypeVar, Union

import requests
from requests.structures import CaseInsensitiveDict

from gameproto import _calls, _constants
from gameproto._arguments import order_number
from gameproto._boundary import Response, TransportFailure
from gameproto._bulk import finish_bulk
from gameproto._calls import Call
from gameproto._errors import GameAPIError, NotFoundError
from gameproto._flow import Attempt, Flow, RefreshToken, Send, Sleep
from gameproto._market import best_offers, find_matching_orders, find_order, latest_ltp
from gameproto._market import sort_by_price as _sort_by_price
from gameproto._retry import RetryPolicy
from gameproto._settings import ClientState, settings_from_env
from gameproto._types import (
    BestOffers,
    BulkResult,
    DeleteResult,
    LatestLTP,
    LTPEntry,
    MarketRow,
    Order,
    SpotData,
    SpotStatus,
    Status,
    Trade,
)

from .deadline import DeadlineAdapter, set_deadline

__all__ = ["GameAPI"]

T = TypeVar("T")
_Self = TypeVar("_Self", bound="GameAPI")


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


class GameAPI:
    """A blocking client of the GAME trading API.

    ``GameAPI(token, base_url)`` then every call of the protocol, or
    ``with GameAPI(...) as api:`` to close its connections at the end.
    ``verify_ssl`` is True by default; it also takes a CA bundle path.
    ``timeout`` is each call's overall deadline in seconds, retries included.
    """

    def __init__(
        self,
        token: str,
        base_url: str = _constants.DEFAULT_BASE_URL,
        verify_ssl: Union[bool, str] = True,
        timeout: float = _constants.DEFAULT_TIMEOUT,
        max_retries: int = _constants.DEFAULT_MAX_RETRIES,
        *,
        connect_timeout: float = _constants.DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = _constants.DEFAULT_READ_TIMEOUT,
        on_attempt: Optional[Callable[[Attempt], None]] = None,
        allow_non_positive_price: bool = False,
        max_connections: int = _constants.POOL_MAX_CONNECTIONS,
        retry_policy: Optional[RetryPolicy] = None,
    ) -> None:
        self._state = ClientState(
            token,
            base_url,
            verify_ssl,
            timeout,
            max_retries,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            on_attempt=on_attempt,
            allow_non_positive_price=allow_non_positive_price,
            retry_policy=retry_policy,
        )
        self._http = requests.Session()
        # Settings from the environment are read once here, not on every
        # call: trust_env makes requests look up proxies and netrc each time.
        self._proxies = requests.utils.get_environ_proxies(self._state.api_url)
        self._http.trust_env = False
        adapter = DeadlineAdapter(pool_connections=1, pool_maxsize=max_connections, max_retries=0)
        self._http.mount("http://", adapter)
        self._http.mount("https://", adapter)
        self._adapter = adapter
        self._token_lock = threading.RLock()
        self._closed = False

    @classmethod
    def from_env(cls: Type[_Self], dotenv_path: Optional[str] = ".env", **options: Any) -> _Self:
        """A client from ``GAME_API_TOKEN``, ``GAME_API_URL``, ``GAME_API_VERIFY_SSL`` and ``.env``."""
        settings = settings_from_env(dotenv_path=dotenv_path)
        if not settings.token:
            raise ValueError("GAME_API_TOKEN is not set (in the environment or the .env file)")
        options.setdefault("verify_ssl", settings.verify_ssl)
        return cls(settings.token, settings.base_url, **options)

    def __repr__(self) -> str:
        return self._state.describe("gameproto_sync.GameAPI")

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections. The client cannot be used afterwards."""
        self._closed = True
        self._http.close()

    # -- the driver: everything below moves bytes or waits ------------------

    def _send(self, action: Send) -> Union[Response, TransportFailure]:
        request = action.request
        prepared = requests.PreparedRequest()
        prepared.method = request.method
        prepared.url = self._state.api_url + request.target
        prepared.headers = CaseInsensitiveDict(request.headers)
        if request.body is not None:
            prepared.headers["Content-Length"] = str(len(request.body))
        prepared.body = request.body
        prepared.hooks = {"response": []}
        verify = self._state.verify
        set_deadline(action.time_left)
        try:
            if verify is False:
                with warnings.catch_warnings():
                    # We warned once when the client was made; urllib3 would on every call.
                    warnings.simplefilter("ignore")
                    answer = self._adapter.send(
                        prepared,
                        timeout=(action.connect_timeout, action.read_timeout),
                        verify=False,
                        proxies=self._proxies,
                    )
                    body = answer.content
            else:
                answer = self._adapter.send(
                    prepared,
                    timeout=(action.connect_timeout, action.read_timeout),
                    verify=verify,
                    proxies=self._proxies,
                )
                body = answer.content
        except requests.RequestException as error:
            return _failure(error)
        return Response(answer.status_code, answer.headers, body)

    def _drive(self, flow: Flow[T]) -> T:
        if self._closed:
            raise GameAPIError("the client is closed")
        reply: Any = None
        try:
            while True:
                action = flow.send(reply)
                if type(action) is Send:
                    reply = self._send(action)
                elif type(action) is Sleep:
                    time.sleep(action.seconds)
                    reply = None
                elif type(action) is RefreshToken:
                    session = self._state.session
                    # Wait for another thread's exchange no longer than this
                    # call may last; the flow then says the deadline passed.
                    if self._token_lock.acquire(timeout=max(0.0, min(action.deadline - session.clock(), 1e6))):
                        try:
                            # Threads that waited here find the token refreshed.
                            if session.tokens.is_generation(action.generation):
                                self._drive(session.exchange_token(action.deadline))
                        finally:
                            self._token_lock.release()
                    reply = None
                else:  # pragma: no cover - the flow yields nothing else
                    raise TypeError(f"unknown flow action {action!r}")
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _run(self, call: Call[T]) -> T:
        return self._drive(self._state.session.run(call))

    # -- the calls of the protocol ----------------------------------------

    def get_status(self) -> Status:
        """The exchange's health, version and the caller's rate limit."""
        return self._run(_calls.get_status())

    def get_trades(self, direction: Optional[str] = None, duration: Optional[str] = None) -> List[Trade]:
        """Market-wide trades, optionally of one side (``buy``/``sell``) or duration (``15m``)."""
        return self._run(_calls.get_trades(direction, duration))

    def get_orders(self, direction: Optional[str] = None) -> List[Order]:
        """The caller's own orders (numeric ``order_id``), optionally of one side."""
        return self._run(_calls.get_orders(direction))

    def create_order(self, order_data: Dict[str, Any]) -> Union[Order, BulkResult]:
        """Place one order, or ``{"orders": [...]}`` in bulk (split by 100, indices kept).

        Everything is validated before anything is sent. An error in a later
        part of a split bulk carries ``partial_result`` (see README).
        """
        plan = self._state.plan_orders(order_data)
        if plan.single is not None:
            return self._run(plan.single)
        outcomes: Dict[int, Any] = {offset: None for offset, _ in plan.parts}
        for offset, call in plan.parts:
            try:
                outcomes[offset] = self._run(call)
            except GameAPIError as error:
                outcomes[offset] = error
                break  # send nothing more: the caller must know where things stand
        return finish_bulk(plan, outcomes)

    def delete_order(self, order_id: Union[int, str]) -> DeleteResult:
        """Delete an order given as ``1234``, ``"1234"`` or ``"ord_1234"``."""
        return self._run(_calls.delete_order(order_id))

    def get_market_data(
        self, direction: Optional[str] = None, duration: Optional[str] = None, sort_by_price: bool = False
    ) -> List[MarketRow]:
        """Market rows (order-book levels with best bid and ask), optionally filtered.

        ``sort_by_price`` orders them by contract and side, best price first.
        """
        rows = self._run(_calls.get_market_data(direction, duration))
        return _sort_by_price(rows) if sort_by_price else rows

    def get_market_ltp(self, market_zone: Optional[str] = None) -> List[LTPEntry]:
        """Last traded prices in a market zone (EIC code, e.g. ``10YCH-SWISSGRIDZ``)."""
        return self._run(_calls.get_market_ltp(market_zone))

    def get_latest_available_ltp(self, duration: Optional[str] = None) -> List[LTPEntry]:
        """The latest traded price of each contract, optionally of one duration."""
        return self._run(_calls.get_latest_available_ltp(duration))

    def get_spot_data(
        self,
        area_name: Optional[str] = None,
        date_from: Any = None,
        date_to: Any = None,
        limit: Optional[int] = None,
    ) -> List[SpotData]:
        """Spot data, optionally for one area (``CH-SGD``), a date range and a count."""
        return self._run(_calls.get_spot_data(area_name, date_from, date_to, limit))

    def get_spot_status(self) -> SpotStatus:
        """The spot feed's state."""
        return self._run(_calls.get_spot_status())

    # -- helpers built on those calls ---------------------------------------

    def test_connection(self) -> bool:
        """True when the exchange answers ``/status`` to our token; never raises for that."""
        try:
            self.get_status()
        except GameAPIError:
            return False
        return True

    def find_order_by_id(self, order_id: Union[int, str]) -> Optional[Order]:
        """The caller's order with that id (``1234``, ``"1234"``, ``"ord_1234"``), or None."""
        number = order_number(order_id)
        try:
            return find_order(self.get_orders(), number)
        except NotFoundError:
            return None

    def find_matching_orders(self, order: Dict[str, Any]) -> List[Order]:
        """The caller's orders that match ``order`` as it was sent (reconcile after OutcomeUnknownError)."""
        return find_matching_orders(self.get_orders(), order)

    def get_market_best_offers(self, duration: Optional[str] = None, top_n: Optional[int] = 5) -> Dict[str, BestOffers]:
        """Market rows by contract and side, best price first, at most ``top_n`` each."""
        return best_offers(self.get_market_data(duration=duration), top_n)

    def get_latest_ltp(self) -> Dict[str, LatestLTP]:
        """The newest traded price of each contract (keyed by contract), with the zones it traded in."""
        return latest_ltp(self.get_market_ltp())
