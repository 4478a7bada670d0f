"""A scenario file (TOML) for the sandbox's market makers: who quotes, how, along which price path.

```toml
horizon_hours = 4          # quote this far ahead (default 4)
trades = true              # the first two makers trade once per nearest contract

[[makers]]
name = "maker-a"
spread = 1.5               # EUR/MWh between its bid and its ask
volume = 5                 # MW per quote (level n quotes n times that)
levels = 2                 # quotes per side

[price]
hourly = [62, 60, 58, 57, 58, 63, 75, 88, 92, 85, 78, 72,
          70, 68, 70, 74, 82, 95, 99, 90, 80, 72, 68, 64]   # UTC hours, repeated daily
# or: replay = "prices.csv"  (rows "time,price"; time ISO 8601, relative to this file)
noise = 1.5                # at most this much added, drawn from --seed and the quarter hour
```
Without a ``[price]`` table the mid follows the seed's spot curve.
"""

from __future__ import annotations

import csv
import os
import sys
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, List, Tuple

from gameproto.simulator.makers import Maker, PricePath, Scenario

from ._clock import ClockRefused, parse_moment

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.8 to 3.10
    import tomli as tomllib

__all__ = ["load_scenario", "ScenarioError"]


class ScenarioError(ValueError):
    """A scenario file that cannot be read or says something the makers cannot do."""


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ScenarioError(f"{where} must be a number, not {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ScenarioError(f"{where} must be a number, not {value!r}") from None
    if not number.is_finite():
        raise ScenarioError(f"{where} must be a finite number")
    return number


def _makers(table: Any) -> Tuple[Maker, ...]:
    if not isinstance(table, list) or not table:
        raise ScenarioError("[[makers]] must list at least one maker")
    found = []
    for number, entry in enumerate(table, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ScenarioError(f"maker {number} needs a name")
        levels = entry.get("levels", 1)
        if isinstance(levels, bool) or not isinstance(levels, int):
            raise ScenarioError(f"maker {entry['name']!r}: levels must be a whole number")
        found.append(
            Maker(
                entry["name"],
                _decimal(entry.get("spread", 1), f"maker {entry['name']!r} spread"),
                _decimal(entry.get("volume", 5), f"maker {entry['name']!r} volume"),
                levels,
            )
        )
    return tuple(found)


def _replay(path: str) -> Tuple[Tuple[float, Decimal], ...]:
    rows: List[Tuple[float, Decimal]] = []
    try:
        with open(path, newline="", encoding="utf-8") as source:
            for line, fields in enumerate(csv.reader(source), 1):
                if not fields or fields[0].strip().startswith("#") or fields[0].strip() in ("time", "timestamp"):
                    continue
                if len(fields) < 2:
                    raise ScenarioError(f"{path}:{line}: a row is time,price")
                try:
                    at = parse_moment(fields[0])
                except ClockRefused as refused:
                    raise ScenarioError(f"{path}:{line}: {refused}") from None
                rows.append((at, _decimal(fields[1].strip(), f"{path}:{line} price")))
    except OSError as failure:
        raise ScenarioError(f"cannot read the price file {path!r}: {failure.strerror or failure}") from None
    except UnicodeDecodeError as failure:
        raise ScenarioError(f"the price file {path!r} is not UTF-8 text (byte {failure.start})") from None
    if not rows:
        raise ScenarioError(f"the price file {path!r} holds no price")
    return tuple(sorted(rows, key=lambda row: row[0]))


def _path(table: Any, base: str) -> PricePath:
    if not isinstance(table, dict):
        raise ScenarioError("[price] must be a table")
    hourly = table.get("hourly", [])
    if not isinstance(hourly, list):
        raise ScenarioError("price.hourly must be a list of prices")
    replay = table.get("replay")
    if replay is not None and not isinstance(replay, str):
        raise ScenarioError("price.replay must be the path of a CSV file")
    return PricePath(
        hourly=tuple(_decimal(value, "price.hourly") for value in hourly),
        replay=_replay(os.path.join(base, replay)) if replay else (),
        noise=_decimal(table.get("noise", 0), "price.noise"),
    )


def load_scenario(path: str) -> Scenario:
    """The scenario a TOML file describes (a CSV it names is read relative to it)."""
    try:
        with open(path, "rb") as source:
            data: Dict[str, Any] = tomllib.load(source)
    except OSError as failure:
        raise ScenarioError(f"cannot read the scenario file {path!r}: {failure.strerror or failure}") from None
    except tomllib.TOMLDecodeError as failure:
        raise ScenarioError(f"the scenario file {path!r} is not TOML: {failure}") from None
    except UnicodeDecodeError as failure:
        raise ScenarioError(f"the scenario file {path!r} is not UTF-8 text (byte {failure.start})") from None
    known = {"makers", "price", "horizon_hours", "trades"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ScenarioError(f"the scenario file {path!r} has unknown keys: {', '.join(unknown)}")
    options: Dict[str, Any] = {}
    if "makers" in data:
        options["makers"] = _makers(data["makers"])
    if "price" in data:
        options["path"] = _path(data["price"], os.path.dirname(os.path.abspath(path)))
    if "horizon_hours" in data:
        options["horizon_hours"] = float(_decimal(data["horizon_hours"], "horizon_hours"))
    if "trades" in data:
        if not isinstance(data["trades"], bool):
            raise ScenarioError("trades must be true or false")
        options["trades"] = data["trades"]
    try:
        return Scenario(**options)
    except ValueError as problem:
        raise ScenarioError(f"the scenario file {path!r}: {problem}") from None
