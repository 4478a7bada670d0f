"""The day's position as a trader looks at it: a PNG of the net MW per quarter-hour (matplotlib).

Imported only by ``game positions --plot``: matplotlib is an optional
dependency (``pip install "matplotlib>=3.5"``, the ``plot`` extra).
"""

from __future__ import annotations

from typing import Any, List

from gameproto._extras import install_hint
from gameproto.risk import DayPosition

from .options import UsageError

__all__ = ["plot_day"]

LONG, SHORT, GRID = "#2e7d32", "#c62828", "#d0d0d0"


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # a file, never a window
        import matplotlib.pyplot as pyplot
    except ImportError:
        raise UsageError(f"--plot needs matplotlib: {install_hint('matplotlib')}") from None
    return pyplot


def plot_day(day: DayPosition, path: str) -> None:
    """Draw ``day``'s net position per quarter-hour into the PNG ``path``.

    One bar per quarter-hour of the local day (92, 96 or 100), green long,
    red short, labelled by local time each hour; hourly and block contracts
    count in each quarter-hour they cover. Below, the volume bought and
    sold per quarter-hour; the title carries the day's totals.
    """
    pyplot = _pyplot()
    quarters = day.quarter_hours()
    numbers = list(range(1, len(quarters) + 1))
    net = [float(value) for _, value in quarters]
    bought: List[float] = [0.0] * len(quarters)
    sold: List[float] = [0.0] * len(quarters)
    for position in day.periods:
        for place, (quarter, _) in enumerate(quarters):
            if position.contract.start <= quarter.start < position.contract.end:
                bought[place] += float(position.bought)
                sold[place] -= float(position.sold)

    figure, (top, bottom) = pyplot.subplots(
        2, 1, figsize=(12, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.4]}, dpi=110
    )
    colours = [LONG if value >= 0 else SHORT for value in net]
    top.bar(numbers, net, width=0.85, color=colours, edgecolor="none")
    top.axhline(0, color="#444444", linewidth=0.8)
    top.set_ylabel("net position (MW)")
    top.grid(axis="y", color=GRID, linewidth=0.6)
    top.set_axisbelow(True)
    title = (
        f"Position, delivery day {day.day.isoformat()} (Europe/Zurich, {len(quarters)} quarter-hours)\n"
        f"bought {float(day.bought_energy):.2f} MWh, sold {float(day.sold_energy):.2f} MWh, "
        f"net {float(day.energy):+.2f} MWh, "
        f"cash {float(day.cash):+,.2f} EUR"
    )
    top.set_title(title, fontsize=11, loc="left")
    if not any(bought) and not any(sold):
        top.text(0.5, 0.5, "no trades for this day", transform=top.transAxes, ha="center", color="#777777")
    if not any(net):  # no trades, or trades that net to zero: an axis around zero, not a collapsed one
        top.set_ylim(-1, 1)

    bottom.bar(numbers, bought, width=0.85, color=LONG, alpha=0.55, label="bought")
    bottom.bar(numbers, sold, width=0.85, color=SHORT, alpha=0.55, label="sold")
    bottom.axhline(0, color="#444444", linewidth=0.8)
    bottom.set_ylabel("traded (MW)")
    bottom.grid(axis="y", color=GRID, linewidth=0.6)
    bottom.set_axisbelow(True)
    bottom.legend(loc="upper right", fontsize=8, frameon=False, ncol=2)

    # One tick per local hour, labelled by the clock: 02:00 is missing in March, repeated in October.
    ticks = [number for number, (quarter, _) in zip(numbers, quarters) if quarter.local_start.minute == 0]
    labels = [quarters[number - 1][0].local_start.strftime("%H:%M") for number in ticks]
    bottom.set_xticks(ticks)
    bottom.set_xticklabels(labels, rotation=90, fontsize=8)
    bottom.set_xlim(0.3, len(quarters) + 0.7)
    bottom.set_xlabel("delivery period (local time, start of the quarter-hour)")
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
