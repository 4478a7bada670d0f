"""Draw ``docs/positions.png``: ``game positions --plot`` on a day of made-up trades.

``python -m tools.positions_figure [PATH]``. The day is the last Sunday of
October 2030 (100 quarter-hours: 02:00-03:00 comes twice), traded in
quarter-hours and in hours, bought and sold; the trades are seeded, so the
picture is the same each time.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
from pathlib import Path
from typing import Any, Dict, List

from gameproto import Contract, positions
from gameproto_cli.plot import plot_day

ROOT = Path(__file__).resolve().parent.parent
DAY = dt.date(2030, 10, 27)


def sample_trades(seed: int = 23) -> List[Dict[str, Any]]:
    """A morning ramp bought in hours, an evening peak sold in quarter-hours, some trading back and forth."""
    chance = random.Random(seed)
    trades: List[Dict[str, Any]] = []

    def trade(contract: Contract, side: str, volume: float, price: float) -> None:
        buyer, seller = ("alice", "market") if side == "buy" else ("market", "alice")
        trades.append(
            {"trade_id": f"trd_{len(trades) + 1}", "contract": contract.id, "volume": volume, "price": price,
             "buyer": buyer, "seller": seller, "fees": 0}
        )  # fmt: skip

    for hour in Contract.day(DAY, 60)[5:10]:  # 04:00-09:00 local (hours 3 and 4 are the two 02:00s)
        trade(hour, "buy", 5, 70 + chance.randint(0, 15))
    for quarter in Contract.day(DAY)[28:96]:
        if chance.random() < 0.55:
            side = "sell" if 68 <= quarter.quarter_hour <= 84 else chance.choice(["buy", "sell"])
            trade(quarter, side, chance.choice([1, 2, 3, 5, 8]), 60 + chance.randint(0, 60))
        if chance.random() < 0.25:
            trade(quarter, chance.choice(["buy", "sell"]), chance.choice([1, 2]), 60 + chance.randint(0, 60))
    return trades


def main(argv: List[str]) -> int:
    path = Path(argv[0]) if argv else ROOT / "docs" / "positions.png"
    plot_day(positions(sample_trades(), ["alice"]).day(DAY), str(path))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
