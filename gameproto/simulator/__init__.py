"""The embedded GAME exchange as a pure state machine, and the faults it can inject."""

from __future__ import annotations

from .exchange import EXPIRED_LISTED_FOR, MARKET_MAKERS, Exchange
from .faults import FAULT_KINDS, Fault, FaultPlan, FaultRule, Reaction, react

__all__ = [
    "Exchange",
    "MARKET_MAKERS",
    "EXPIRED_LISTED_FOR",
    "Fault",
    "FaultPlan",
    "FaultRule",
    "FAULT_KINDS",
    "Reaction",
    "react",
]
