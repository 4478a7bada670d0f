"""The order rules of GAME-API.md as a pydantic v2 model: the baseline ``validate_order`` is measured against.

Written the way a careful pydantic user would: strict types, regex patterns,
and one model validator for the time rules.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal
from typing import Any, Dict, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator, model_validator

_DURATION = re.compile(r"([1-9][0-9]*)([mh])")
Number = Union[StrictInt, StrictFloat, Decimal]


class Options(BaseModel):
    model_config = ConfigDict(extra="allow")
    trader_suffixe: Optional[str] = Field(default=None, max_length=50)


class PydanticOrder(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    side: Literal["buy", "sell"]
    price: Number
    volume: Number
    date: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    start_time: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    end_time: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    duration: str = Field(pattern=r"^[1-9][0-9]*[mh]$")
    tz_offset_hours: Optional[Literal[0, 1, 2]] = None
    state: Optional[Literal["displayed", "hidden"]] = None
    options: Optional[Options] = None

    @field_validator("price", "volume")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be finite")
        if isinstance(value, Decimal) and not value.is_finite():
            raise ValueError("must be finite")
        if not value > 0:
            raise ValueError("must be > 0")
        return value

    @field_validator("date")
    @classmethod
    def _calendar(cls, value: str) -> str:
        dt.date.fromisoformat(value)
        return value

    @model_validator(mode="after")
    def _window(self) -> PydanticOrder:
        start = int(self.start_time[:2]) * 60 + int(self.start_time[3:])
        end = int(self.end_time[:2]) * 60 + int(self.end_time[3:])
        if end == 0 and start > 0:
            end = 1440
        if end <= start:
            raise ValueError("end_time must be after start_time")
        match = _DURATION.fullmatch(self.duration)
        assert match is not None
        minutes = int(match.group(1)) * (60 if match.group(2) == "h" else 1)
        if end - start != minutes:
            raise ValueError("duration does not match the window")
        tz = 0 if self.tz_offset_hours is None else self.tz_offset_hours
        start_at = dt.datetime.fromisoformat(f"{self.date}T{self.start_time}:00+0{tz}:00")
        if start_at <= dt.datetime.now(dt.timezone.utc):
            raise ValueError("delivery start is not in the future")
        return self


def validate_with_pydantic(order: Dict[str, Any]) -> Dict[str, Any]:
    return PydanticOrder.model_validate(order).model_dump(exclude_none=True)
