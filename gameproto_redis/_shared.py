"""The request budget of one account, shared by every process and host through Redis.

The rule (the local budget's, applied to every client of one key at once):

- A slot is granted at ``now`` when fewer than ``limit`` slots were granted
  in ``(now - window, now]`` to all the clients of the key together, and no
  pause runs: ``reserve()`` takes it and answers 0.0. Otherwise it takes
  nothing and answers the seconds to wait before asking again: until the
  pause ends, or until enough old grants leave the window for one slot to be
  free. So no window of ``window`` seconds ever holds more than ``limit``
  grants, and no caller is told to wait while a slot is free.
- ``limit="auto"`` starts at 1000 a minute and follows ``learn_limit(n)``
  (a ``/status`` answer's ``rate_limit.requests_per_minute``); the learnt
  limit is shared by every ``"auto"`` client of the key. A number fixes the
  limit of that client, and ``learn_limit`` leaves it as it is.
- ``pause(seconds)`` (a 429's ``Retry-After``) holds every client of the key
  until then; a pause already running longer stays.
- "now" is the Redis server's clock (``TIME``), so the hosts' clocks do not
  matter. One Lua script does the whole decision atomically: the grant times
  and the clients asking are sorted sets, the learnt limit and the pause end
  two small keys; every key expires when idle (the grants ``window`` after
  the last one, the learnt limit after ``idle_expiry``).

Every value read from Redis is untrusted: the script clamps a pause to at
most 5 minutes (``RETRY_AFTER_MAX``) and rewrites it to end by then, takes a
grant stamped in the future as granted now, and ignores a learnt limit that
is not a whole number from 1 to 2**31 - 1; a pause it cannot read is an error.
The client checks the script's answer too.

Each exchange with Redis ends by a deadline: ``connect_timeout`` plus
``read_timeout``, or the caller's ``time_left`` when that is sooner. Each
socket wait is bounded by what remains of it, and a watchdog thread shuts
the socket of an exchange still running at its deadline (a server that
dribbles a byte at a time never reaches a socket timeout).

When Redis does not answer (connection refused, a timeout, the deadline, any
error at all, an answer that is not the script's: something that is not
Redis), the client paces alone with the core's ``RequestBudget`` (one
warning on the ``gameproto`` logger per outage, the URL shown without its
password) and asks Redis again at most every ``retry_interval`` seconds; the
first answer puts it back on the shared window. So that the clients together
stay near the limit meanwhile, the local window allows each client its share:
the limit divided by the number of clients that asked Redis in the last window
(at least 1 a window), and it counts the slots this client took from the shared
window, so the switch does not burst. Back on the shared window, a client
first adds the slots it took alone (those still in the window) to it, so that
a Redis that restarted empty knows them too.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Deque, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit, urlunsplit

from redis.exceptions import NoScriptError

from gameproto import _constants
from gameproto._arguments import is_number
from gameproto._budget import RequestBudget

if TYPE_CHECKING:
    from gameproto._settings import ClientSettings

__all__ = ["Grant", "SharedBudget", "budget_for", "default_key", "redacted_url"]

from ._connections import _Connections

logger = logging.getLogger("gameproto")

#: The longest pause, in microseconds (the core's cap on what an answer may impose).
MAX_PAUSE_US = round(_constants.RETRY_AFTER_MAX * 1e6)
#: The largest limit the script takes from Redis.
LARGEST_LIMIT = 2**31 - 1

#: KEYS: 1 the grant times (sorted set, score = server microseconds), 2 the
#: learnt limit, 3 the pause's end (server microseconds), 4 the clients that
#: asked in the last window (sorted set of client ids, score = last ask).
#: ARGV: 1 op (reserve, learn, pause, replay), 2 window in microseconds, 3 the fixed
#: limit (0: "auto"), 4 the "auto" start, 5 the idle expiry of the learnt
#: limit in ms, 6 a member suffix unique to this grant, 7 the learnt limit or
#: the pause in microseconds, 8 (empty but in the rule's property test) the
#: time in microseconds to use instead of the server's clock, 9 the client's id,
#: 10 and on (replay only) the ages in microseconds of the slots this client
#: took alone while Redis did not answer.
#: Returns {wait in microseconds, grant time in microseconds (0: none),
#: limit in force, 1 when the wait is a pause, clients asking (reserve only)}.
SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end
local grants, learnt, paused, clients = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op = ARGV[1]
local window = tonumber(ARGV[2])
local fixed = tonumber(ARGV[3])
local idle = tonumber(ARGV[5])
local max_pause = MAX_PAUSE_US
local now = tonumber(ARGV[8])
if not now then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
end
local stamp = string.format('%.17g', now)
if op == 'learn' then
  redis.call('SET', learnt, ARGV[7], 'PX', idle)
  return {0, 0, tonumber(ARGV[7]), 0, 0}
end
local limit = fixed
if limit == 0 then
  -- Untrusted: a whole number from 1 to LARGEST_LIMIT, or the start.
  limit = tonumber(redis.call('GET', learnt) or ARGV[4])
  if not limit or limit ~= limit or limit < 1 or limit > LARGEST_LIMIT or limit % 1 ~= 0 then
    limit = tonumber(ARGV[4])
  end
end
local pause_end = 0
local told = redis.call('GET', paused)
if told then
  pause_end = tonumber(told)
  if not pause_end or pause_end ~= pause_end then return redis.error_reply('ERR unreadable pause in ' .. paused) end
  if pause_end > now + max_pause then
    -- Untrusted: no pause outlasts the cap from now; it is rewritten to end then.
    pause_end = now + max_pause
    redis.call('SET', paused, string.format('%.17g', pause_end), 'PX', math.ceil(max_pause / 1000) + 1)
  end
end
if op == 'replay' then
  for index = 10, #ARGV do
    local at = string.format('%.17g', now - tonumber(ARGV[index]))
    redis.call('ZADD', grants, at, at .. ':' .. ARGV[6] .. ':' .. index)
  end
  redis.call('PEXPIRE', grants, math.ceil(window / 1000))
  return {0, 0, limit, 0, 0}
end
if op == 'pause' then
  local seconds = math.min(tonumber(ARGV[7]), max_pause)
  local wanted = now + seconds
  if wanted > pause_end then
    redis.call('SET', paused, string.format('%.17g', wanted), 'PX', math.ceil(seconds / 1000) + 1)
  end
  return {0, 0, limit, 0, 0}
end
local horizon = string.format('%.17g', now - window)
redis.call('ZADD', clients, stamp, ARGV[9])
redis.call('ZREMRANGEBYSCORE', clients, '-inf', horizon)
redis.call('PEXPIRE', clients, math.ceil(window / 1000))
local asking = redis.call('ZCARD', clients)
if pause_end > now then return {pause_end - now, 0, limit, 1, asking} end
redis.call('ZREMRANGEBYSCORE', grants, '-inf', horizon)
if redis.call('ZCOUNT', grants, '(' .. stamp, '+inf') > 0 then
  -- Untrusted: a grant stamped after now (inf, 1e30, another server's clock) was granted now.
  local ahead = redis.call('ZRANGEBYSCORE', grants, '(' .. stamp, '+inf')
  redis.call('ZREMRANGEBYSCORE', grants, '(' .. stamp, '+inf')
  for _, member in ipairs(ahead) do redis.call('ZADD', grants, stamp, member) end
end
local taken = redis.call('ZCARD', grants)
if taken < limit then
  redis.call('ZADD', grants, stamp, stamp .. ':' .. ARGV[6])
  redis.call('PEXPIRE', grants, math.ceil(window / 1000))
  if fixed == 0 then redis.call('PEXPIRE', learnt, idle) end
  return {0, now, limit, 0, asking}
end
local blocking = redis.call('ZRANGE', grants, taken - limit, taken - limit, 'WITHSCORES')
return {tonumber(blocking[2]) + window - now, 0, limit, 0, asking}
""".replace("MAX_PAUSE_US", str(MAX_PAUSE_US)).replace("LARGEST_LIMIT", str(LARGEST_LIMIT))
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Grant:
    """A slot one client took: ``at`` is the Redis server's epoch time when ``shared``,
    else the client's own clock (its local fallback window)."""

    at: float
    shared: bool


def redacted_url(url: str) -> str:
    """``url`` as it may be shown: no password, no query (which may carry one)."""
    try:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if ":" in netloc:
            netloc = f"[{netloc}]"
        if parts.port is not None:
            netloc += f":{parts.port}"
    except ValueError:
        return "<an unreadable Redis URL>"
    if parts.username:
        netloc = f"{parts.username}:***@{netloc}" if parts.password else f"{parts.username}@{netloc}"
    elif parts.password:
        netloc = f":***@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def default_key(base_url: str, personal_token: str, *, budget_key: Optional[str] = None) -> str:
    """The Redis key of an account's budget: ``budget_key`` when given, else one derived
    from the exchange's URL and a hash of the personal token (never the token itself),
    so that every client of one account on one exchange shares a budget unconfigured."""
    if budget_key is not None:
        if not isinstance(budget_key, str) or not budget_key.strip():
            raise ValueError(f"budget_key must be a non-empty string, got {type(budget_key).__name__}")
        return budget_key
    if not isinstance(base_url, str) or not base_url.strip():
        raise ValueError("base_url must be a non-empty string")
    if not isinstance(personal_token, str) or not personal_token:
        raise ValueError("the personal token must be a non-empty string")
    parts = urlsplit(base_url.strip())
    host = (parts.hostname or "").lower()
    if parts.port is not None:
        host += f":{parts.port}"
    # Only scheme, host, port and path: a user or password in the URL stays out of Redis.
    exchange = urlunsplit((parts.scheme.lower(), host, parts.path.rstrip("/"), "", ""))
    account = hashlib.sha256(b"gameproto request budget\0" + personal_token.encode("utf-8")).hexdigest()[:24]
    return f"gameproto:budget:{exchange}:{account}"


def budget_for(settings: ClientSettings) -> SharedBudget:
    """The shared budget a client's settings name: ``budget_url``, ``budget_key`` (or the account's
    default key) and ``requests_per_minute``; what ``GameAPI(budget_url=...)`` uses."""
    if settings.budget_url is None:
        raise ValueError("budget_for needs settings with a budget_url")
    key = default_key(settings.base_url, settings.token, budget_key=settings.budget_key)
    limit = settings.requests_per_minute if settings.requests_per_minute is not None else "auto"
    return SharedBudget(settings.budget_url, key, limit=limit, window=_constants.BUDGET_WINDOW)


def _script_answer(reply: Any, window_us: int) -> Tuple[int, int, int, int, int]:
    """The script's five numbers, checked: anything else came from something that is not the script."""
    if not isinstance(reply, list) or len(reply) != 5 or any(type(value) is not int for value in reply):
        raise ValueError(f"not the budget script's answer: {reply!r:.80}")
    wait_us, granted_us, limit, paused, asking = reply
    if not (0 <= wait_us <= MAX_PAUSE_US + window_us and granted_us >= 0 and 1 <= limit and asking >= 0):
        raise ValueError(f"the budget script answered numbers out of bounds: {reply!r:.80}")
    return wait_us, granted_us, limit, paused, asking


class SharedBudget:
    """A sliding-window request budget shared through Redis (see the module's rule).

    ``url`` is a redis-py URL (``redis://[:password@]host:6379/0``), ``key``
    the budget's name in it (``default_key``). Every method blocks for one
    exchange with Redis (or none, while it is down), which ends by
    ``connect_timeout + read_timeout`` or by the ``time_left`` given, sooner:
    call it from a worker thread in an event loop. Thread-safe; one instance
    per process is enough. Every client of one key must use the same
    ``window`` (each forgets the grants older than its own); the limit may
    differ (a fixed one is the client's own).
    ``on_grant`` is called with each ``Grant`` this client takes (metrics).
    """

    def __init__(
        self,
        url: str,
        key: str,
        limit: Union[int, str] = "auto",
        window: float = 60.0,
        *,
        connect_timeout: float = 0.5,
        read_timeout: float = 0.5,
        retry_interval: float = 5.0,
        idle_expiry: float = 3600.0,
        on_grant: Optional[Callable[[Grant], None]] = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ValueError("url must be a redis:// (or rediss://, unix://) URL")
        if not isinstance(key, str) or not key.strip():
            raise ValueError("key must be a non-empty string")
        if not is_number(window, above=0, below=math.inf):
            raise ValueError(f"window must be a number of seconds > 0, got {window!r}")
        try:
            # The core's rule, for pacing alone while Redis does not answer.
            self._local = RequestBudget(limit, window) if limit is not None else RequestBudget(0)
        except ValueError:
            raise ValueError(f'limit must be a whole number of requests >= 1 or "auto", got {limit!r}') from None
        self._fixed = None if self._local.auto else self._local.limit
        self._window = float(window)
        for name, value in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("retry_interval", retry_interval),
            ("idle_expiry", idle_expiry),
        ):
            if not is_number(value, above=0, below=math.inf):
                raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}")
        self._url = redacted_url(url)
        self._key = key
        # One hash tag for the keys: one slot, so the script also runs on a cluster.
        self._keys = (f"{{{key}}}:grants", f"{{{key}}}:limit", f"{{{key}}}:pause", f"{{{key}}}:clients")
        self._window_us = round(self._window * 1e6)
        self._fixed_args = (
            self._window_us,
            self._fixed or 0,
            _constants.RATE_LIMIT_PER_MINUTE,
            max(int(idle_expiry * 1000), int(self._window * 1000) + 1),
        )
        self._exchange_timeout = float(connect_timeout) + float(read_timeout)
        self._retry_interval = float(retry_interval)
        self._on_grant = on_grant
        self._clock = clock
        self._password = urlsplit(url).password if "@" in url else None
        try:
            self._redis = _Connections(url, float(connect_timeout), float(read_timeout))
        except ValueError as error:
            raise ValueError(f"Redis URL {self._url} is not usable: {self._redact(str(error))}") from None
        self._lock = threading.Lock()
        self._down: Optional[str] = None  # what went wrong, while Redis does not answer
        self._retry_at = 0.0
        self._grants = itertools.count()
        self._pid = -1
        self._client_id = ""
        self._alone: Deque[float] = deque()  # slots taken while Redis did not answer, in the window

    def __repr__(self) -> str:
        limit = "auto" if self._fixed is None else str(self._fixed)
        state = "shared" if self._down is None else "local (Redis down)"
        return f"<SharedBudget {self._url} key={self._key!r} limit={limit} window={self._window:g}s {state}>"

    def __enter__(self) -> SharedBudget:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def key(self) -> str:
        """The budget's name in Redis."""
        return self._key

    @property
    def shared(self) -> bool:
        """Whether the last answer came from Redis (False: pacing locally until it answers)."""
        return self._down is None

    @property
    def limit(self) -> int:
        """The limit in force as this client last saw it."""
        return self._local.limit or 0

    def close(self) -> None:
        """Close the connections to Redis."""
        self._redis.close()

    # -- the three operations ----------------------------------------------------

    def reserve(self, time_left: Optional[float] = None) -> float:
        """0.0: a slot is taken for a request sent now; > 0: the seconds to wait before asking again.

        ``time_left`` bounds the exchange with Redis (the caller's deadline):
        when Redis has not answered by then, this client paces alone.
        """
        deadline = self._deadline(time_left)
        if deadline is not None and self._may_ask_redis():
            try:
                self._rejoin(deadline)
                wait_us, granted_us, limit, paused, asking = self._run("reserve", 0, deadline)
            except Exception as error:  # whatever answers at the URL, a failure is an outage
                self._lost(error)
            else:
                with self._lock:
                    self._answered()
                    now = self._clock()
                    if self._fixed is None:
                        self._local.learn_limit(limit)
                    self._local.share(max(1, asking))
                    if granted_us:
                        self._local.record(now)
                    elif paused:
                        self._local.pause(wait_us / 1e6, now)
                if granted_us:
                    self._granted(Grant(granted_us / 1e6, True))
                    return 0.0
                return wait_us / 1e6
        with self._lock:
            now = self._clock()
            wait = self._local.reserve(now)
            if wait == 0.0:
                while self._alone and self._alone[0] <= now - self._window:
                    self._alone.popleft()
                self._alone.append(now)
        if wait == 0.0:
            self._granted(Grant(now, False))
        return wait

    def learn_limit(self, n: int, time_left: Optional[float] = None) -> None:
        """Follow the exchange's advertised requests per minute ("auto" only), for every client of the key."""
        if not is_number(n, whole=True, least=1):
            raise ValueError(f"a learnt limit must be a whole number of requests >= 1, got {n!r}")
        if self._fixed is not None:
            return
        self._local.learn_limit(n)
        self._tell_redis("learn", n, time_left)

    def pause(self, seconds: float, time_left: Optional[float] = None) -> None:
        """Hold every client of the key for ``seconds`` (a 429's Retry-After), at most ``RETRY_AFTER_MAX``."""
        if not is_number(seconds, least=0, below=math.inf):
            raise ValueError(f"a pause must be a number of seconds >= 0, got {seconds!r}")
        seconds = min(float(seconds), _constants.RETRY_AFTER_MAX)
        with self._lock:
            self._local.pause(seconds, self._clock())
        self._tell_redis("pause", math.ceil(seconds * 1e6), time_left)

    # -- Redis and its absence ------------------------------------------------------

    def _deadline(self, time_left: Optional[float]) -> Optional[float]:
        """The monotonic time an exchange with Redis must end by; None when there is no time for one."""
        bound = self._exchange_timeout
        if time_left is not None:
            if not time_left > 0:  # also NaN
                return None
            bound = min(bound, time_left)
        return time.monotonic() + bound

    def _run(
        self, op: str, amount: int, deadline: float, now_us: Optional[int] = None, ages_us: Sequence[int] = ()
    ) -> Tuple[int, int, int, int, int]:
        if self._pid != os.getpid():  # a forked child is a client of its own
            self._pid = os.getpid()
            self._client_id = f"{self._pid}-{os.urandom(6).hex()}"
        member = f"{self._client_id}-{next(self._grants)}"
        at = "" if now_us is None else now_us
        args: Sequence[Any] = (*self._keys, op, *self._fixed_args, member, amount, at, self._client_id, *ages_us)
        try:
            reply = self._redis.call(deadline, "EVALSHA", SCRIPT_SHA, 4, *args)
        except NoScriptError:  # a Redis that restarted, or never saw the script: EVAL loads it
            reply = self._redis.call(deadline, "EVAL", SCRIPT, 4, *args)
        return _script_answer(reply, self._window_us)

    def _tell_redis(self, op: str, amount: int, time_left: Optional[float]) -> None:
        deadline = self._deadline(time_left)
        if deadline is None or not self._may_ask_redis():
            return
        try:
            self._rejoin(deadline)
            self._run(op, amount, deadline)
        except Exception as error:  # whatever answers at the URL, a failure is an outage
            self._lost(error)
        else:
            with self._lock:
                self._answered()

    def _rejoin(self, deadline: float) -> None:
        """After an outage, put the slots this client took alone (still in the window) into the shared window.

        A Redis that restarted empty then knows them; one that kept its state
        never saw them. Raises when Redis still does not answer.
        """
        if self._down is None or not self._alone:
            return
        with self._lock:
            now = self._clock()
            ages = [round((now - at) * 1e6) for at in self._alone if now - at < self._window]
        if ages:
            self._run("replay", 0, deadline, ages_us=ages)
        with self._lock:
            self._alone.clear()

    def _may_ask_redis(self) -> bool:
        """True while Redis answers; while it does not, True for one caller every ``retry_interval``."""
        if self._down is None:
            return True
        with self._lock:
            if self._down is None:
                return True
            now = self._clock()
            if now < self._retry_at:
                return False
            # This caller tries; the others go on locally meanwhile.
            self._retry_at = now + self._retry_interval
            return True

    def _lost(self, error: Exception) -> None:
        detail = f"{type(error).__name__}: {self._redact(str(error))}"[:300]
        with self._lock:
            first = self._down is None
            self._down = detail
            self._retry_at = self._clock() + self._retry_interval
        if first:
            logger.warning(
                "shared request budget: Redis at %s does not answer (%s); pacing this process alone "
                "with a local window of %d requests per %g s, and asking Redis again every %g s",
                self._url,
                detail,
                self.limit,
                self._window,
                self._retry_interval,
            )

    def _answered(self) -> None:
        # Called with the lock held.
        if self._down is not None:
            self._down = None
            logger.info("shared request budget: Redis at %s answers again; back to the shared window", self._url)

    def _granted(self, grant: Grant) -> None:
        if self._on_grant is not None:
            try:
                self._on_grant(grant)
            except Exception:  # a metrics hook must never stop a request
                logger.exception("on_grant hook failed")

    def _redact(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text
