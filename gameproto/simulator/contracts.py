"""Delivery windows and their contract names, as the exchange keeps them: the core's ``Contract``.

The exchange names a contract exactly as the client reads it, so both go
through one ``Contract`` (``gameproto/_contract.py``); these two functions
only give the simulator the shapes it keeps (a start and a length, a name).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Mapping, Tuple

from .._arguments import duration_minutes
from .._contract import Contract

__all__ = ["delivery_window", "contract_name", "duration_minutes"]


def delivery_window(order: Mapping[str, Any]) -> Tuple[_dt.datetime, int]:
    """The delivery start in UTC and the length in minutes of a validated order (its offset taken as given)."""
    contract = Contract.from_order(order, check_offset=False)
    return contract.start, contract.minutes


def contract_name(start_utc: _dt.datetime, minutes: int) -> str:
    """The contract of a delivery window, e.g. ``2025-01-15T14:00:00Z/PT15M``."""
    return Contract(start_utc, minutes).id
