"""The values that cross the boundary between the core and a driver.

A driver receives ``Request`` values and answers each with a ``Response`` or
a ``TransportFailure`` (named by the step at which the request got no answer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generator, Iterable, Literal, Mapping, Optional, Tuple, TypeVar, Union, get_args

__all__ = [
    "Request",
    "Response",
    "FoldedHeaders",
    "TransportFailure",
    "FailureKind",
    "NOT_SENT_KINDS",
    "FAILURE_KINDS",
    "Send",
    "Sleep",
    "RunLocked",
    "Blocking",
    "RunAll",
    "Unanswered",
    "Action",
    "Flow",
    "Deliver",
    "WatchFlow",
    "one_action",
]

T = TypeVar("T")

Headers = Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class Request:
    """An HTTP request the core wants sent.

    ``path`` is relative to ``{base_url}/api/v1`` and already safe to put in a
    URL: every piece that came from a caller has been checked by the builder.
    ``query`` holds only the parameters that are set, in a stable order.
    """

    method: str
    path: str
    query: Tuple[Tuple[str, str], ...] = ()
    headers: Headers = ()
    body: Optional[bytes] = None
    _bearer: Optional[Tuple[str, Request]] = field(default=None, init=False, repr=False, compare=False, hash=False)

    @property
    def target(self) -> str:
        """The path with its encoded query string, as it goes on the wire."""
        if not self.query:
            return self.path
        from urllib.parse import urlencode

        return self.path + "?" + urlencode(self.query)

    def header(self, name: str) -> Optional[str]:
        """The first value of a header, matched without regard to case."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def with_bearer(self, access_token: str) -> Request:
        """This request with the ``Authorization`` header of ``access_token``.

        The last one made is kept: a client asks for the same few requests
        with the same token all day, and a driver can then reuse what it
        built for that very request.
        """
        made = self._bearer
        if made is not None and made[0] == access_token:
            return made[1]
        request = Request(
            self.method, self.path, self.query, (*self.headers, ("Authorization", "Bearer " + access_token)), self.body
        )
        object.__setattr__(self, "_bearer", (access_token, request))
        return request

    def __repr__(self) -> str:
        # Headers are left out on purpose: they carry the bearer token.
        return f"Request(method={self.method!r}, path={self.path!r}, query={self.query!r})"


class FoldedHeaders(Dict[str, str]):
    """An answer's headers as ``Response.header`` keeps them: lower-case names, a repeated one's values joined.

    A driver that reads the raw header lines folds them once into this, and
    ``Response.header`` then reads it as it is, without folding it again.
    """

    __slots__ = ()

    @classmethod
    def of_lines(cls, lines: Iterable[Tuple[bytes, bytes]]) -> FoldedHeaders:
        """The headers of raw ``(name, value)`` lines, decoded as HTTP does (latin-1)."""
        folded = cls()
        for raw_name, raw_value in lines:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            folded[name] = f"{folded[name]}, {value}" if name in folded else value
        return folded


@dataclass(frozen=True)
class Response:
    """An HTTP answer as a driver received it: status, headers and raw body.

    ``headers`` may be any mapping (a ``dict``, requests' case-insensitive
    one, a driver's own): ``header`` reads them all alike.
    """

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    _folded: Optional[Dict[str, str]] = field(default=None, init=False, repr=False, compare=False)

    def header(self, name: str) -> Optional[str]:
        """The value of a header, matched without regard to case; None when it is absent.

        A header given more than once (under one spelling or several) is its
        values joined by ", " in the order given, as RFC 9110 combines a
        repeated field and urllib3 hands it over.
        """
        folded = self._folded
        if folded is None:
            if isinstance(self.headers, FoldedHeaders):
                object.__setattr__(self, "_folded", self.headers)
                return self.headers.get(name.lower())
            folded = {key.lower(): value for key, value in self.headers.items()}
            if len(folded) != len(self.headers):  # one name under several spellings: rare, and joined
                folded = {}
                for key, value in self.headers.items():
                    lower = key.lower()
                    folded[lower] = f"{folded[lower]}, {value}" if lower in folded else value
            object.__setattr__(self, "_folded", folded)
        return folded.get(name.lower())


#: Failures that happen before a single byte of the request left: the
#: exchange cannot have carried it out, so even an order may be sent again.
NotSentKind = Literal["connect", "connect_timeout", "tls", "pool_timeout"]
#: Failures after (part of) the request may have reached the exchange.
#: "too_large": the answer came, but longer than ``max_response_bytes``, so
#: the driver stopped reading it; the request was carried out or not, and the
#: answer that would say which was not read.
SentKind = Literal["write", "write_timeout", "read", "read_timeout", "closed", "protocol", "deadline", "too_large"]
FailureKind = Literal[NotSentKind, SentKind]
"""The step at which a request got no answer, as a driver names it (``TransportFailure.kind``).

``connect``, ``connect_timeout``, ``tls``, ``pool_timeout``: nothing was
sent. ``write``, ``write_timeout``, ``read``, ``read_timeout``, ``closed``,
``protocol``, ``too_large``: the exchange may have carried the request out.
``deadline`` is the flow's own: no answer within the call's deadline.
"""
NOT_SENT_KINDS = frozenset(get_args(NotSentKind))
SENT_KINDS = frozenset(get_args(SentKind))
FAILURE_KINDS = NOT_SENT_KINDS | SENT_KINDS


@dataclass(frozen=True)
class TransportFailure:
    """A request that got no answer: ``kind`` says at which step, ``detail`` what happened.

    ``detail`` is the library's message with nothing secret in it (drivers
    never put headers in it).
    """

    kind: FailureKind
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FAILURE_KINDS:
            raise ValueError(f"unknown transport failure kind {self.kind!r}")

    @property
    def may_have_been_sent(self) -> bool:
        """Whether the exchange may have received, and carried out, the request."""
        return self.kind not in NOT_SENT_KINDS

    @property
    def timed_out(self) -> bool:
        """Whether the step failed for want of time rather than for an error."""
        return self.kind.endswith("timeout") or self.kind == "deadline"


# -- what a flow asks of its driver --------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send ``request``; resume the flow with the ``Response`` or a ``TransportFailure``.

    ``connect_timeout`` and ``read_timeout`` bound each step; ``time_left``
    is what remains of the call's overall deadline, which the driver
    enforces around the whole exchange of bytes.
    """

    request: Request
    connect_timeout: float
    read_timeout: float
    time_left: float


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds``, then resume the flow with None."""

    seconds: float


@dataclass(frozen=True)
class RunLocked:
    """Run ``flow`` while holding the client's one token lock; resume with what it returned.

    Wait for the lock at most ``wait`` seconds, and resume with None when it
    could not be had by then. ``flow`` is a complete core flow that never
    raises a ``GameAPIError`` (it returns its outcome, so that every call
    that waited for the same token exchange shares it): the driver runs it
    as it runs any flow and does nothing else.
    """

    flow: Flow[Any]
    wait: float


@dataclass(frozen=True)
class Blocking:
    """Call ``function(time_left)`` where blocking I/O is allowed; resume the flow with what it returned.

    ``time_left`` is what remains of the call's deadline, in seconds: the
    function bounds its own I/O by it (a store's socket timeouts) and returns
    by then, so the call keeps its deadline. The blocking client calls it in
    the caller's thread. The async client runs it in a worker thread so that
    the event loop never waits on it; a cancellation abandons that thread
    (its late result is dropped), and when ``time_left`` passes without an
    answer the driver resumes the flow with ``Unanswered``. The core hands
    drivers functions that never raise (a failure is returned as
    ``Unanswered``), so a driver passes on whatever comes back.

    A budget shared with other processes asks for this (its Redis round
    trip), and so may any other store the core writes to or reads from.
    """

    function: Callable[[float], Any]
    time_left: float


@dataclass(frozen=True)
class RunAll:
    """Run every flow of ``flows``, at most ``limit`` at once where the driver can (one after another
    otherwise); resume with the list of what each returned, in the order given.

    The flows are complete core flows that return their outcome (a
    ``GameAPIError`` included) rather than raise it, and each decides at its
    start whether it still has anything to do (a bulk stops after a failed
    part): a driver runs them as it runs any flow and decides nothing. The
    kill switch's deletes and a split bulk's parts ask for this.
    """

    flows: Tuple[Flow[Any], ...]
    limit: int


@dataclass(frozen=True)
class Unanswered:
    """What a ``Blocking`` function gave instead of an answer: it failed, or did not return in time."""

    detail: str


Action = Union[Send, Sleep, RunLocked, Blocking, RunAll]
"""What a flow asks of its driver."""
Flow = Generator[Action, Any, T]
"""A flow: yields ``Action``s, is resumed with their outcome, returns the answer (or raises a ``GameAPIError``)."""


@dataclass(frozen=True)
class Deliver:
    """Hand ``event`` to the caller of a watch; resume the watch's flow with None when the next one is asked for.

    Only a watch's flow (``WatchFlow``) yields it, after the event is marked
    in the journal: a caller that stops, or a process that dies, once it has
    the event never gets it again, and never misses one it did not get.
    """

    event: Any


WatchFlow = Generator[Union[Action, Deliver], Any, None]
"""A watch's flow: the actions of any flow, and a ``Deliver`` for each event; it ends only by an error."""


def one_action(action: Action) -> Flow[Any]:
    """A flow of the one ``action``: a driver runs a watch's actions one by one as it runs any flow."""
    return (yield action)
