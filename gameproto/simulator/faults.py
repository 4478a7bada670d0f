"""Faults the embedded exchange can be told to inject, for tests and drills.

The plan is pure: it only decides. The server carries the decision out
(answer a status, close the connection, wait), so faults behave the same
however the exchange is served.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

from .._boundary import Request, Response

__all__ = ["Fault", "FaultRule", "FaultPlan", "FAULT_KINDS", "Reaction", "react"]

#: ``status``: answer ``status`` without carrying the request out.
#: ``drop_before``: close the connection without carrying the request out.
#: ``drop_after``: carry the request out, then close without answering.
#: ``delay``: carry the request out, answer after ``delay`` seconds.
#: ``not_json``: carry the request out, answer 200 with a body that is not JSON.
FAULT_KINDS = ("status", "drop_before", "drop_after", "delay", "not_json")


@dataclass(frozen=True)
class Fault:
    """One fault: what happens to one request."""

    kind: str
    status: int = 503
    headers: Tuple[Tuple[str, str], ...] = ()
    delay: float = 0.0
    body: bytes = b""

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")

    @property
    def carries_out(self) -> bool:
        """Whether the exchange carries the request out despite the fault."""
        return self.kind in ("drop_after", "delay", "not_json")


@dataclass
class FaultRule:
    """A fault for the next ``times`` requests that match ``method`` and ``path``."""

    fault: Fault
    method: Optional[str] = None
    path: Optional[str] = None
    times: int = 1

    def matches(self, request: Request) -> bool:
        return (self.method is None or self.method == request.method) and (
            self.path is None or self.path == request.path
        )


@dataclass
class FaultPlan:
    """The faults still to inject, first matching rule first, then random ones."""

    rules: List[FaultRule] = field(default_factory=list)
    rate: float = 0.0
    random_faults: Sequence[Fault] = ()
    seed: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def add(
        self,
        fault: Fault,
        *,
        method: Optional[str] = None,
        path: Optional[str] = None,
        times: int = 1,
    ) -> None:
        """Inject ``fault`` into the next ``times`` matching requests."""
        self.rules.append(FaultRule(fault, method, path, times))

    def randomly(self, rate: float, faults: Sequence[Fault], *, seed: int = 0) -> None:
        """Inject one of ``faults`` into a ``rate`` share of requests, reproducibly."""
        self.rate = rate
        self.random_faults = tuple(faults)
        self._random = random.Random(seed)

    def clear(self) -> None:
        self.rules.clear()
        self.rate = 0.0
        self.random_faults = ()

    def take(self, request: Request) -> Optional[Fault]:
        """The fault for this request, if any, using it up."""
        for rule in self.rules:
            if rule.times > 0 and rule.matches(request):
                rule.times -= 1
                if rule.times == 0:
                    self.rules.remove(rule)
                return rule.fault
        if self.random_faults and self._random.random() < self.rate:
            return self._random.choice(list(self.random_faults))
        return None


@dataclass(frozen=True)
class Reaction:
    """What a server does with one request: answer, or close without answering.

    ``response`` None means close the connection without a word; ``delay`` is
    how long to wait before answering (or closing).
    """

    response: Optional[Response]
    delay: float = 0.0


def react(handle: Callable[[Request], Response], plan: FaultPlan, request: Request) -> Reaction:
    """Carry ``request`` out through ``handle``, with the plan's fault if any."""
    fault = plan.take(request)
    if fault is None:
        return Reaction(handle(request))
    if fault.kind == "drop_before":
        return Reaction(None, fault.delay)
    if fault.kind == "status":
        body = fault.body or json.dumps({"detail": f"injected fault: HTTP {fault.status}"}).encode()
        headers = {"content-type": "application/json"}
        headers.update(dict(fault.headers))
        return Reaction(Response(fault.status, headers, body), fault.delay)
    response = handle(request)
    if fault.kind == "drop_after":
        return Reaction(None, fault.delay)
    if fault.kind == "not_json":
        body = fault.body or b"<html><body>502 Bad Gateway</body></html>"
        return Reaction(Response(200, {"content-type": "application/json"}, body), fault.delay)
    return Reaction(response, fault.delay)
