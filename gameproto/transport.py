"""What a driver tells the core when a request got no answer.

Drivers map their library's exceptions onto these kinds at one place; the
core decides from the kind alone whether the request may have been carried
out.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TransportFailure", "NOT_SENT_KINDS", "FAILURE_KINDS"]

#: Failures that happen before a single byte of the request left: the
#: exchange cannot have carried it out, so even an order may be sent again.
NOT_SENT_KINDS = frozenset({"connect", "connect_timeout", "tls", "pool_timeout"})
#: Failures after (part of) the request may have reached the exchange.
SENT_KINDS = frozenset({"write", "write_timeout", "read", "read_timeout", "closed", "protocol", "deadline"})
FAILURE_KINDS = NOT_SENT_KINDS | SENT_KINDS


@dataclass(frozen=True)
class TransportFailure:
    """A request that got no answer: ``kind`` says at which step, ``detail`` what happened.

    ``detail`` is the library's message with nothing secret in it (drivers
    never put headers in it).
    """

    kind: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FAILURE_KINDS:
            raise ValueError(f"unknown transport failure kind {self.kind!r}")

    @property
    def may_have_been_sent(self) -> bool:
        """Whether the exchange may have received, and carried out, the request."""
        return self.kind not in NOT_SENT_KINDS

    @property
    def is_timeout(self) -> bool:
        return self.kind.endswith("timeout") or self.kind == "deadline"
