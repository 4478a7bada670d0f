"""``GameAPI`` for asyncio and trio, on ``httpcore`` and ``anyio``.

It runs the core's call flow and does nothing else: send a request, sleep,
take the token lock. Every decision (token, retries, errors, order rules)
lives in ``gameproto``. One client belongs to one event loop.
"""

from __future__ import annotations

import ssl
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Type, TypeVar, Union
from urllib.parse import urlsplit

import anyio
import httpcore

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

from .deadline import DeadlineBackend, set_deadline

__all__ = ["GameAPI"]

T = TypeVar("T")
_Self = TypeVar("_Self", bound="GameAPI")

# httpcore's exceptions, by the step they happened at; mapped at this one place.
_FAILURE_KINDS = (
    (httpcore.ConnectTimeout, "connect_timeout"),
    (httpcore.PoolTimeout, "pool_timeout"),
    (httpcore.ConnectError, "connect"),
    (httpcore.ProxyError, "connect"),
    (httpcore.WriteTimeout, "write_timeout"),
    (httpcore.WriteError, "write"),
    (httpcore.ReadTimeout, "read_timeout"),
    (httpcore.ReadError, "read"),
    (httpcore.RemoteProtocolError, "closed"),
    (httpcore.LocalProtocolError, "protocol"),
)


def _tls_cause(error: BaseException) -> Optional[ssl.SSLError]:
    """The TLS error behind ``error``, however deep (trio wraps it twice)."""
    seen = 0
    cause: Optional[BaseException] = error
    while cause is not None and seen < 10:
        if isinstance(cause, ssl.SSLError):
            return cause
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return None


def _failure(error: Exception) -> TransportFailure:
    detail = f"{type(error).__name__}: {error}"
    tls = _tls_cause(error)
    if tls is not None:
        detail = f"{detail} ({type(tls).__name__}: {tls})"
        if isinstance(error, httpcore.ConnectError):
            # The handshake is part of connecting: nothing was sent. A TLS
            # error later on keeps its kind (a read may follow a sent POST).
            return TransportFailure("tls", detail)
    for kind_of_error, kind in _FAILURE_KINDS:
        if isinstance(error, kind_of_error):
            return TransportFailure(kind, detail)
    return TransportFailure("read", detail)


def _ssl_context(verify: Union[bool, str]) -> Optional[ssl.SSLContext]:
    if verify is True:
        return None  # httpcore's default: verified, with certifi's CA bundle
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    import os

    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    try:
        return ssl.create_default_context(cafile=verify)
    except (OSError, ssl.SSLError) as error:
        raise ValueError(f"verify_ssl: cannot load the CA bundle {verify!r}: {error}") from None


_CACHE_LIMIT = 256
_TRANSPORT_ERRORS = (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError, httpcore.ProxyError)
_METHODS = {"GET": b"GET", "POST": b"POST", "DELETE": b"DELETE"}


class _RawHeaders(Mapping[str, str]):
    """An answer's headers as the core reads them, decoded only when asked for.

    Most answers are read for their body alone; decoding every header of
    every answer would be wasted work on the hot path.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: List[Tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def __getitem__(self, name: str) -> str:
        wanted = name.lower().encode("latin-1")
        for key, value in self._raw:
            if key.lower() == wanted:
                return value.decode("latin-1")
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (key.decode("latin-1").lower() for key, _ in self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class GameAPI:
    """An async client of the GAME trading API, for asyncio and trio.

    ``GameAPI(token, base_url)`` then ``await`` every call of the protocol,
    or ``async with GameAPI(...) as api:`` to close its connections at the
    end. ``verify_ssl`` is True by default; it also takes a CA bundle path.
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
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(self._state.verify) if self._state.is_https else None,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=_constants.KEEPALIVE_EXPIRY,
            retries=0,
            network_backend=DeadlineBackend(),
        )
        self._token_lock: Optional[anyio.Lock] = None
        self._closed = False
        self._prepared: Dict[Any, httpcore.Request] = {}
        self._host = urlsplit(self._state.api_url).netloc.rpartition("@")[2].encode("idna")

    @classmethod
    def from_env(cls: Type[_Self], dotenv_path: Optional[str] = ".env", **options: Any) -> _Self:
        """A client from ``GAME_API_TOKEN``, ``GAME_API_URL``, ``GAME_API_VERIFY_SSL`` and ``.env``."""
        settings = settings_from_env(dotenv_path=dotenv_path)
        if not settings.token:
            raise ValueError("GAME_API_TOKEN is not set (in the environment or the .env file)")
        options.setdefault("verify_ssl", settings.verify_ssl)
        return cls(settings.token, settings.base_url, **options)

    def __repr__(self) -> str:
        return self._state.describe("gameproto_async.GameAPI")

    async def __aenter__(self: _Self) -> _Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections. The client cannot be used afterwards."""
        self._closed = True
        await self._pool.aclose()

    # -- the driver: everything below moves bytes or waits ------------------

    def _prepare(self, action: Send) -> httpcore.Request:
        """The httpcore request for ``action``; a bodiless one is built once and reused.

        Building a request (URL parsing, header checks) costs as much as the
        rest of a call's bookkeeping, and a trading process asks for the same
        few reads all day with the same token and timeouts. httpcore only
        reads a request, so one object can serve calls in turn or at once.
        """
        request = action.request
        key = (request.method, request.target, request.headers, action.connect_timeout, action.read_timeout)
        if request.body is None:
            prepared = self._prepared.get(key)
            if prepared is not None:
                return prepared
        headers = [(b"Host", self._host)]
        headers += [(name.encode("ascii"), value.encode("latin-1")) for name, value in request.headers]
        if request.body is not None:
            headers.append((b"Content-Length", str(len(request.body)).encode("ascii")))
        prepared = httpcore.Request(
            _METHODS.get(request.method) or request.method.encode("ascii"),
            self._state.api_url + request.target,
            headers=headers,
            content=request.body,
            extensions={
                "timeout": {
                    "connect": action.connect_timeout,
                    "read": action.read_timeout,
                    "write": action.read_timeout,
                    "pool": action.connect_timeout,
                }
            },
        )
        if request.body is None:
            if len(self._prepared) >= _CACHE_LIMIT:
                self._prepared.clear()
            self._prepared[key] = prepared
        return prepared

    async def _exchange(self, prepared: httpcore.Request) -> httpcore.Response:
        # What AsyncConnectionPool.request does, for a request we built ourselves.
        answer = await self._pool.handle_async_request(prepared)
        try:
            await answer.aread()
        finally:
            await answer.aclose()
        return answer

    async def _drive(self, flow: Flow[T]) -> T:
        # One coroutine level for the whole call: every extra ``await`` layer
        # costs about a microsecond on each call of a hot trading loop.
        if self._closed:
            raise GameAPIError("the client is closed")
        reply: Any = None
        try:
            while True:
                action = flow.send(reply)
                if type(action) is Send:
                    # The overall deadline bounds every socket wait, even against
                    # a server that trickles bytes just fast enough to beat the
                    # read timeout (see deadline.py).
                    set_deadline(action.time_left)
                    try:
                        answer = await self._exchange(self._prepare(action))
                    except _TRANSPORT_ERRORS as error:
                        reply = _failure(error)
                        continue
                    reply = Response(answer.status, _RawHeaders(answer.headers), answer.content)
                elif type(action) is Sleep:
                    await anyio.sleep(action.seconds)
                    reply = None
                elif type(action) is RefreshToken:
                    if self._token_lock is None:
                        self._token_lock = anyio.Lock()
                    session = self._state.session
                    # Wait for another call's exchange no longer than this call
                    # may last; the flow then says the deadline passed.
                    acquired = False
                    with anyio.move_on_after(max(0.0, min(action.deadline - session.clock(), 1e6))):
                        await self._token_lock.acquire()
                        acquired = True
                    if acquired:
                        try:
                            # Calls that waited here find the token refreshed.
                            if session.tokens.is_generation(action.generation):
                                await self._drive(session.exchange_token(action.deadline))
                        finally:
                            self._token_lock.release()
                    reply = None
                else:  # pragma: no cover - the flow yields nothing else
                    raise TypeError(f"unknown flow action {action!r}")
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    # -- the calls of the protocol ----------------------------------------

    async def get_status(self) -> Status:
        """The exchange's health, version and the caller's rate limit."""
        return await self._drive(self._state.session.run(_calls.get_status()))

    async def get_trades(self, direction: Optional[str] = None, duration: Optional[str] = None) -> List[Trade]:
        """Market-wide trades, optionally of one side (``buy``/``sell``) or duration (``15m``)."""
        return await self._drive(self._state.session.run(_calls.get_trades(direction, duration)))

    async def get_orders(self, direction: Optional[str] = None) -> List[Order]:
        """The caller's own orders (numeric ``order_id``), optionally of one side."""
        return await self._drive(self._state.session.run(_calls.get_orders(direction)))

    async def create_order(self, order_data: Dict[str, Any]) -> Union[Order, BulkResult]:
        """Place one order, or ``{"orders": [...]}`` in bulk (split by 100, indices kept).

        Everything is validated before anything is sent; the parts of a large
        bulk go out concurrently (at most ``BULK_CONCURRENCY`` at once). An
        error in one part carries ``partial_result`` (see README).
        """
        plan = self._state.plan_orders(order_data)
        if plan.single is not None:
            return await self._drive(self._state.session.run(plan.single))
        outcomes: Dict[int, Any] = {offset: None for offset, _ in plan.parts}
        limiter = anyio.CapacityLimiter(_constants.BULK_CONCURRENCY)
        stopped = False

        async def send_part(offset: int, call: Call[BulkResult]) -> None:
            nonlocal stopped
            async with limiter:
                if stopped:
                    return  # a part failed: send nothing more
                try:
                    outcomes[offset] = await self._drive(self._state.session.run(call))
                except GameAPIError as error:
                    # Kept, not raised: raising would cancel the other parts
                    # mid-flight and leave their outcome unknown.
                    outcomes[offset] = error
                    stopped = True

        async with anyio.create_task_group() as group:
            for offset, call in plan.parts:
                group.start_soon(send_part, offset, call)
        return finish_bulk(plan, outcomes)

    async def delete_order(self, order_id: Union[int, str]) -> DeleteResult:
        """Delete an order given as ``1234``, ``"1234"`` or ``"ord_1234"``."""
        return await self._drive(self._state.session.run(_calls.delete_order(order_id)))

    async def get_market_data(
        self, direction: Optional[str] = None, duration: Optional[str] = None, sort_by_price: bool = False
    ) -> List[MarketRow]:
        """Market rows (order-book levels with best bid and ask), optionally filtered.

        ``sort_by_price`` orders them by contract and side, best price first.
        """
        rows = await self._drive(self._state.session.run(_calls.get_market_data(direction, duration)))
        return _sort_by_price(rows) if sort_by_price else rows

    async def get_market_ltp(self, market_zone: Optional[str] = None) -> List[LTPEntry]:
        """Last traded prices in a market zone (EIC code, e.g. ``10YCH-SWISSGRIDZ``)."""
        return await self._drive(self._state.session.run(_calls.get_market_ltp(market_zone)))

    async def get_latest_available_ltp(self, duration: Optional[str] = None) -> List[LTPEntry]:
        """The latest traded price of each contract, optionally of one duration."""
        return await self._drive(self._state.session.run(_calls.get_latest_available_ltp(duration)))

    async def get_spot_data(
        self,
        area_name: Optional[str] = None,
        date_from: Any = None,
        date_to: Any = None,
        limit: Optional[int] = None,
    ) -> List[SpotData]:
        """Spot data, optionally for one area (``CH-SGD``), a date range and a count."""
        return await self._drive(self._state.session.run(_calls.get_spot_data(area_name, date_from, date_to, limit)))

    async def get_spot_status(self) -> SpotStatus:
        """The spot feed's state."""
        return await self._drive(self._state.session.run(_calls.get_spot_status()))

    # -- helpers built on those calls ---------------------------------------

    async def test_connection(self) -> bool:
        """True when the exchange answers ``/status`` to our token; never raises for that."""
        try:
            await self.get_status()
        except GameAPIError:
            return False
        return True

    async def find_order_by_id(self, order_id: Union[int, str]) -> Optional[Order]:
        """The caller's order with that id (``1234``, ``"1234"``, ``"ord_1234"``), or None."""
        number = order_number(order_id)
        try:
            return find_order(await self.get_orders(), number)
        except NotFoundError:
            return None

    async def find_matching_orders(self, order: Dict[str, Any]) -> List[Order]:
        """The caller's orders that match ``order`` as it was sent (reconcile after OutcomeUnknownError)."""
        return find_matching_orders(await self.get_orders(), order)

    async def get_market_best_offers(
        self, duration: Optional[str] = None, top_n: Optional[int] = 5
    ) -> Dict[str, BestOffers]:
        """Market rows by contract and side, best price first, at most ``top_n`` each."""
        return best_offers(await self.get_market_data(duration=duration), top_n)

    async def get_latest_ltp(self) -> Dict[str, LatestLTP]:
        """The newest traded price of each contract (keyed by contract), with the zones it traded in."""
        return latest_ltp(await self.get_market_ltp())
