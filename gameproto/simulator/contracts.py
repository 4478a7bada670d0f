"""Delivery windows and their contract names, as the exchange keeps them."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Mapping, Tuple

from .._arguments import duration_minutes

__all__ = ["delivery_window", "contract_name", "duration_minutes"]

_UTC = _dt.timezone.utc


def delivery_window(order: Mapping[str, Any]) -> Tuple[_dt.datetime, int]:
    """The delivery start in UTC and the length in minutes of a validated order."""
    year, month, day = (int(part) for part in str(order["date"]).split("-"))
    hours, minutes = (int(part) for part in str(order["start_time"]).split(":"))
    local = _dt.datetime(year, month, day, hours, minutes)
    start = local - _dt.timedelta(hours=int(order["tz_offset_hours"]))
    length = duration_minutes(str(order["duration"]))
    if length is None:
        raise ValueError(f"not a validated order: duration {order['duration']!r}")
    return start.replace(tzinfo=_UTC), length


def contract_name(start_utc: _dt.datetime, minutes: int) -> str:
    """The contract of a delivery window, e.g. ``2025-01-15T14:00:00Z/PT15M``."""
    hours, rest = divmod(minutes, 60)
    length = "PT" + (f"{hours}H" if hours else "") + (f"{rest}M" if rest or not hours else "")
    return start_utc.strftime("%Y-%m-%dT%H:%M:00Z") + "/" + length
