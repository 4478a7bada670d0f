"""Every default of the project, in one place."""

from __future__ import annotations

__all__ = [
    "API_PREFIX",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "BACKOFF_INITIAL",
    "BACKOFF_MAX",
    "RETRY_AFTER_CAP",
    "RETRY_AFTER_MAX",
    "TOKEN_REFRESH_MARGIN",
    "DEFAULT_TOKEN_LIFETIME",
    "BULK_LIMIT",
    "BULK_CONCURRENCY",
    "DELETE_RECORD_BUDGET",
    "LATE_REQUEST_GRACE",
    "POOL_MAX_CONNECTIONS",
    "KEEPALIVE_EXPIRY",
    "SERVER_IDLE_TIMEOUT",
    "SERVER_MAX_BODY",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "SERVER_HEAD_TIMEOUT",
    "SERVER_BODY_TIMEOUT",
    "SERVER_MIN_RATE",
    "SERVER_MAX_CONNECTIONS",
    "SERVER_MAX_CONNECTIONS_PER_ADDRESS",
    "SERVER_MAX_BUFFERED",
    "AUTH_REFUSALS_PER_MINUTE",
    "MAX_RESTING_ORDERS",
    "SERVER_CLIENT_HEADER",
    "ACCESS_TOKEN_PURGE_AFTER",
    "ORDER_UNKNOWN_FIELDS_LISTED",
    "ORDER_PROBLEMS_SHOWN",
    "RATE_LIMIT_PER_MINUTE",
    "BUDGET_WINDOW",
    "USER_AGENT",
    "VERSION",
]

VERSION = "0.1.0"
USER_AGENT = f"gameproto/{VERSION}"

#: Every path of the protocol lives under this prefix of the base URL.
API_PREFIX = "/api/v1"
#: The embedded exchange's address (``game serve``).
DEFAULT_BASE_URL = "http://127.0.0.1:8765"

#: Overall deadline of one call, retries and waits included, in seconds.
DEFAULT_TIMEOUT = 30.0
#: Time allowed to open a connection (TCP and TLS).
DEFAULT_CONNECT_TIMEOUT = 5.0
#: Time allowed between two reads of an answer.
DEFAULT_READ_TIMEOUT = 15.0

#: Retries after the first attempt, for the failures that are retried.
DEFAULT_MAX_RETRIES = 2
#: Capped exponential backoff: 0.5 s, 1 s, 2 s ... never more than 8 s.
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 8.0
#: The longest Retry-After we honour by sleeping; longer raises RateLimitError.
RETRY_AFTER_CAP = 60.0
#: The longest pause an answer's Retry-After imposes (on the call, on every
#: caller of the request budget, on a budget shared through Redis): 5 minutes.
#: A longer one (``Retry-After: 999999999``, a date in the year 9999) comes from
#: a broken or hostile server; it is taken as this, and logged once.
RETRY_AFTER_MAX = 300.0

#: Refresh the access token this many seconds before it expires.
TOKEN_REFRESH_MARGIN = 60.0
#: ``expires_in`` when the exchange does not say.
DEFAULT_TOKEN_LIFETIME = 3600.0

#: Orders in one ``/orders/create-bulk`` request.
BULK_LIMIT = 100
#: Parts of a split bulk the async client sends at once.
BULK_CONCURRENCY = 4
#: Seconds a deletion's journal record may take before the delete is sent anyway (the kill switch never
#: waits on the journal: a record that could not be written is logged, and the next reconcile completes it).
DELETE_RECORD_BUDGET = 0.5
#: Seconds after a call's deadline during which its request may still land on the exchange (``_order_life``).
LATE_REQUEST_GRACE = 5.0

#: Connections a client keeps open to the exchange.
POOL_MAX_CONNECTIONS = 10
#: A pooled connection idle this long is closed by the client. Shorter than
#: the server's idle timeout, so the client never reuses a connection the
#: server is about to close.
KEEPALIVE_EXPIRY = 4.0
#: The embedded server closes a connection idle this long.
SERVER_IDLE_TIMEOUT = 15.0
#: The embedded server refuses request bodies larger than this (413).
SERVER_MAX_BODY = 1024 * 1024
#: The whole request head must arrive within this many seconds of its first byte
#: (a deadline, not an idle timeout: a byte every few seconds does not extend it).
SERVER_HEAD_TIMEOUT = 10.0
#: The whole request body must arrive within this many seconds, however fast it trickles.
SERVER_BODY_TIMEOUT = 30.0
#: Bytes per second a body (and an answer) must move at, after a grace of one
#: head timeout: a 1 MB body gets min(30 s, 10 s + 64 s) at most, a small order 10 s.
SERVER_MIN_RATE = 16 * 1024
#: Connections the embedded server holds at once. Below ``ulimit -n 1024`` with
#: room to spare; when full, a new connection closes the stalest idle or
#: still-incomplete one rather than wait (attackers and traders share addresses).
SERVER_MAX_CONNECTIONS = 512
#: Connections one client address holds at once (the same eviction within the address).
SERVER_MAX_CONNECTIONS_PER_ADDRESS = 256
#: Request body bytes the embedded server holds across all connections at once
#: (64 bodies of the largest size); a body that would pass it is refused with 503.
SERVER_MAX_BUFFERED = 64 * 1024 * 1024
#: Refused token exchanges (wrong personal tokens) one client address may make a
#: minute before it is answered 429; valid exchanges are never limited.
AUTH_REFUSALS_PER_MINUTE = 30
#: Resting orders one trader may hold at once on the embedded exchange: enough for any
#: bot's quoting, and a bound on the book (and the market answers) one trader can cause.
MAX_RESTING_ORDERS = 10_000
#: The header in which the embedded server tells the exchange the client's address
#: (any such header the client sent is dropped first).
SERVER_CLIENT_HEADER = "x-gameproto-client"
#: An access token expired this many seconds ago is forgotten (until then a
#: client that presents it is told "Token expired", not "Not authenticated").
ACCESS_TOKEN_PURGE_AFTER = 300.0

#: Unknown fields of one order named in a validation error (each with a "did you
#: mean" suggestion); the rest are counted, so a hostile order costs one pass.
ORDER_UNKNOWN_FIELDS_LISTED = 10
#: Problems an order validation error (and the exchange's 422 answer) lists; the rest are counted.
ORDER_PROBLEMS_SHOWN = 20

#: The longest answer a client reads, in bytes. A listing of 100,000 orders
#: is about 30 MB; a longer answer is a broken or hostile server, and reading
#: it whole would exhaust the trader's memory.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024

#: Requests per minute and access token that the embedded exchange allows.
RATE_LIMIT_PER_MINUTE = 1000
#: The client's request budget counts a window one second longer than the
#: exchange's minute: requests leave at the client's times and arrive a
#: little later, and a strict sliding window on the exchange must never see
#: more than the limit.
BUDGET_WINDOW = 61.0
