"""The chart of the engine and server goals: ``python -m benchmarks.speed_chart RESULTS_FOLDER PNG``.

Reads ``engine.json`` (``python -m benchmarks.engine --out``) and
``serve_load.json`` (``python -m benchmarks.serve_load --out``) from the
folder, and draws each goal as the share of its target reached: 1.0 means
the goal holds exactly, more is better. A goal "at most x the anchor" reaches
``limit / ratio``; a goal "at least x the anchor" reaches ``ratio / limit``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

__all__ = ["main", "chart"]


def _goals(folder: str) -> List[Dict[str, Any]]:
    goals: List[Dict[str, Any]] = []
    for name in ("engine.json", "serve_load.json"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with open(path, encoding="utf-8") as found:
                goals += json.load(found)["goals"]
    return goals


def chart(goals: List[Dict[str, Any]], path: str, title: str = "") -> Optional[str]:
    """Draw the goals as bars of the share of the target reached; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names, reached, labels = [], [], []
    for goal in goals:
        share = goal["limit"] / goal["ratio"] if goal["at_most"] else goal["ratio"] / goal["limit"]
        names.append(goal["name"])
        reached.append(share)
        bound = "<=" if goal["at_most"] else ">="
        labels.append(f"{goal['ratio']:.2f}x (goal {bound} {goal['limit']:.2f}x)")
    figure, axis = plt.subplots(figsize=(10, 0.7 * len(goals) + 1.6))
    colours = ["#2a9d8f" if share >= 1 else "#e76f51" for share in reached]
    bars = axis.barh(names, reached, color=colours)
    for bar, label in zip(bars, labels):
        axis.text(bar.get_width() + 0.02, bar.get_y() + bar.get_height() / 2, label, va="center", fontsize=9)
    axis.axvline(1.0, color="black", linewidth=1)
    axis.set_xlim(0, max([1.6, *[share + 0.6 for share in reached]]))
    axis.invert_yaxis()
    axis.set_xlabel("share of the goal reached (1 = the goal holds exactly; more is better)")
    if title:
        axis.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if len(arguments) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    goals = _goals(arguments[0])
    if not goals:
        print(f"no engine.json or serve_load.json with goals in {arguments[0]}", file=sys.stderr)
        return 1
    made = chart(goals, arguments[1], arguments[2] if len(arguments) == 3 else "")
    if made is None:
        print("matplotlib is not installed (pip install -e '.[bench]')", file=sys.stderr)
        return 1
    print(f"chart: {made}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
