"""The embedded exchange's engine against a peer and a floor: ``python -m benchmarks.engine``.

Four races, each a median of alternating rounds in one process, so that the
machine's drift falls on all alike (CPU time per operation):

- the matching alone: our ``OrderBook`` and ``matching-engine`` 0.1.1 (pure
  Python, price-time, from PyPI) fed the same seeded flow, limit orders near
  the touch (about one in ten crossing) and a quarter of the commands cancels,
  each engine through its own API (the peer needs Python 3.12 or later; where
  it cannot be imported it is left out, with a message);
- the floor of an order request: ``json.loads`` of the order, ``validate_order``
  and ``json.dumps`` of its answer, standard library only;
- ``Exchange.handle``: routing, token, rate limit, JSON, validation, matching
  and the answer, one resting order a request, and in bulks of 100;
- ``validate_order`` against the same rules as a pydantic v2 model.

Figures are printed (and written as JSON with ``--out``), never asserted:
benchmarks are not tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from decimal import Decimal
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

__all__ = ["main", "order_flow", "run", "GOALS"]

#: Each race: (name, ours, anchor, limit, whether ours/anchor must stay at most (True) or at least the limit).
GOALS: Tuple[Tuple[str, str, str, float, bool], ...] = (
    ("the book vs matching-engine (commands/s)", "our book", "matching-engine 0.1.1", 0.5, False),
    ("Exchange.handle, single, vs the floor", "Exchange.handle, single", "floor", 1.7, True),
    ("Exchange.handle, bulk of 100, vs the floor", "Exchange.handle, bulk of 100", "floor", 1.25, True),
    ("validate_order vs pydantic v2", "validate_order", "pydantic v2 model", 0.40, True),
)

CANCEL_SHARE = 0.25
#: Prices land up to this many ticks through the touch on the passive side's far end: about one in ten crosses.
CROSS_TICKS = 5
DEPTH_TICKS = 50
MID = 100_000  # ticks of 0.01: a price of 1000.00

Command = Tuple[Any, ...]


def order_flow(seed: int, count: int, accounts: int = 1000) -> List[Command]:
    """``count`` commands: ``("new", id, account, side, price ticks, lots)`` or ``("cancel", id, account)``.

    Command ``i`` (from 1) that places an order gives it the id ``i``. Cancels
    aim at a random earlier order with its owner's account; some of those
    have filled or gone already, as in a real flow.
    """
    rng = random.Random(seed)
    placed: List[Tuple[int, int]] = []
    flow: List[Command] = []
    for number in range(1, count + 1):
        if rng.random() < CANCEL_SHARE and placed:
            victim, owner = placed[rng.randrange(len(placed))]
            flow.append(("cancel", victim, owner))
            continue
        side = "buy" if rng.random() < 0.5 else "sell"
        account = rng.randint(1, accounts)
        lots = rng.randint(1, 100)
        offset = rng.randint(-CROSS_TICKS, DEPTH_TICKS)
        price = MID - offset if side == "buy" else MID + offset
        placed.append((number, account))
        flow.append(("new", number, account, side, price, lots))
    return flow


Round = Callable[[], float]  # one round: the CPU seconds it took


def _cpu(body: Callable[[], None]) -> float:
    gc.collect()
    started = time.process_time()
    body()
    return time.process_time() - started


def our_book(flow: List[Command]) -> Round:
    """A round of our ``OrderBook`` over ``flow``: BookOrders with Decimal prices and volumes."""
    from gameproto.simulator.book import BookOrder, OrderBook

    hundredth = Decimal("0.01")
    tenth = Decimal("0.1")
    # The engine's input values, made before the clock starts (as the peer's ints are).
    inputs: List[Tuple[Any, ...]] = []
    for command in flow:
        if command[0] == "new":
            _, number, account, side, price, lots = command
            inputs.append((number, f"t{account}", side, Decimal(price) * hundredth, Decimal(lots) * tenth))
        else:
            inputs.append((command[1],))
    contract = "2030-01-01T10:00:00Z/PT15M"

    def once() -> None:
        book = OrderBook()
        submit, cancel = book.submit, book.cancel
        for entry in inputs:
            if len(entry) == 1:
                cancel(entry[0], 1.0)
            else:
                number, trader, side, price, volume = entry
                submit(BookOrder(number, trader, side, price, volume, contract, 15, False, 1.0), 1.0)

    return lambda: _cpu(once)


def peer_book(flow: List[Command]) -> Optional[Round]:
    """A round of ``matching-engine``'s ``MatchingEngine.process`` over ``flow``, or None without it."""
    try:
        from matching_engine.domain import CancelOrder, NewOrder, SequencedCommand, Side
        from matching_engine.engine import MatchingEngine
    except (ImportError, SyntaxError):
        return None
    sides = {"buy": Side.BUY, "sell": Side.SELL}

    def once() -> None:
        engine = MatchingEngine()
        process = engine.process
        for seq, command in enumerate(flow, 1):
            if command[0] == "new":
                _, number, account, side, price, lots = command
                process(SequencedCommand(seq, seq, NewOrder(number, account, sides[side], price, lots)))
            else:
                process(SequencedCommand(seq, seq, CancelOrder(command[1], command[2])))

    return lambda: _cpu(once)


def _day(days_ahead: int = 2) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days_ahead)).date().isoformat()


def resting_order(index: int, day: str) -> Dict[str, Any]:
    """An order that rests: buys at 40-89.99, sells at 1040-1089.99, so nothing crosses."""
    quarter = 40 + index % 48
    side = "buy" if index % 2 else "sell"
    return {
        "side": side,
        "price": round(40 + index % 50 + (index % 100) / 100 + (0 if side == "buy" else 1000), 2),
        "volume": round(0.1 + index % 30 / 10, 1),
        "date": day,
        "start_time": f"{quarter // 4:02d}:{quarter % 4 * 15:02d}",
        "end_time": f"{(quarter + 1) // 4:02d}:{(quarter + 1) % 4 * 15:02d}",
        "duration": "15m",
        "tz_offset_hours": 1,
    }


def _exchange(now: float) -> Tuple[Any, Tuple[Tuple[str, str], ...]]:
    """A fresh exchange on a stopped clock, and the headers of a request with its access token."""
    from gameproto._boundary import Request
    from gameproto.simulator import Exchange

    exchange = Exchange(("bench-token",), clock=lambda: now, rate_limit_per_minute=10**9, max_resting_orders=10**9)
    answer = exchange.handle(Request("POST", "/auth/token", body=b'{"token": "bench-token"}'))
    token = json.loads(answer.body)["access_token"]
    headers = (
        ("host", "127.0.0.1:8000"),
        ("accept", "application/json"),
        ("content-type", "application/json"),
        ("authorization", f"Bearer {token}"),
        ("x-gameproto-client", "127.0.0.1"),
    )
    return exchange, headers


def floor_and_handle(orders: int, bulk: int) -> Dict[str, Round]:
    """Rounds of the floor, ``Exchange.handle`` one order a request, and in bulks of ``bulk``.

    Each round places ``orders`` orders on a fresh exchange.
    """
    from gameproto import validate_order
    from gameproto._boundary import Request

    now = time.time()
    day = _day()
    bodies = [json.dumps(resting_order(index, day)).encode() for index in range(orders)]
    bulks = [
        json.dumps({"orders": [resting_order(index + start, day) for index in range(bulk)]}).encode()
        for start in range(0, orders, bulk)
    ]
    exchange, headers = _exchange(now)
    probe = exchange.handle(Request("POST", "/orders", headers=headers, body=bodies[0]))
    if probe.status != 200:
        raise RuntimeError(f"the benchmark order was refused: {probe.body[:300]!r}")
    reply = json.loads(probe.body)  # the answer the floor writes: the exchange's own, as plain JSON values
    moment = dt.datetime.fromtimestamp(now, dt.timezone.utc)

    def floor() -> None:
        loads, dumps = json.loads, json.dumps
        for body in bodies:
            validate_order(loads(body), now=moment)
            dumps(reply)

    # Each round on a fresh exchange, made before its clock starts.
    def single() -> Round:
        made, headers = _exchange(now)

        def once() -> None:
            handle = made.handle
            for body in bodies:
                handle(Request("POST", "/orders", (), headers, body))

        return lambda: _cpu(once)

    def bulked() -> Round:
        made, headers = _exchange(now)

        def once() -> None:
            handle = made.handle
            for body in bulks:
                handle(Request("POST", "/orders/create-bulk", (), headers, body))

        return lambda: _cpu(once)

    def check() -> None:
        made, headers = _exchange(now)
        handle = made.handle
        answers = [handle(Request("POST", "/orders", (), headers, body)) for body in bodies[:3]]
        answers.append(handle(Request("POST", "/orders/create-bulk", (), headers, bulks[0])))
        for answer in answers:
            if answer.status != 200 or b'"failed":[{' in answer.body:
                raise RuntimeError(f"the benchmark order was refused: {answer.body[:300]!r}")

    check()
    return {
        "floor": lambda: _cpu(floor),
        "Exchange.handle, single": lambda: single()(),
        f"Exchange.handle, bulk of {bulk}": lambda: bulked()(),
    }


def validation_rounds(count: int) -> Optional[Dict[str, Round]]:
    """Rounds of ``validate_order`` and the pydantic v2 model of the same rules, or None without pydantic."""
    try:
        from .pydantic_order import validate_with_pydantic
    except ImportError:
        return None
    from gameproto import validate_order

    from .workloads import sample_order

    orders = [sample_order(index) for index in range(64)]

    def rounds(check: Callable[[Dict[str, Any]], Any]) -> Round:
        def once() -> None:
            for repeat in range(count):
                check(orders[repeat & 63])

        return lambda: _cpu(once)

    return {"validate_order": rounds(validate_order), "pydantic v2 model": rounds(validate_with_pydantic)}


def _medians(contenders: Dict[str, Round], rounds: int) -> Dict[str, float]:
    """The median CPU seconds of each contender's round, over alternating rounds after a warm-up."""
    for race in contenders.values():
        race()
    spent: Dict[str, List[float]] = {name: [] for name in contenders}
    for index in range(rounds):
        names = list(contenders) if index % 2 == 0 else list(reversed(contenders))
        for name in names:
            spent[name].append(contenders[name]())
    return {name: statistics.median(values) for name, values in spent.items()}


def run(commands: int, orders: int, validations: int, rounds: int, seed: int = 2024) -> Dict[str, Any]:
    """Every race; per-operation CPU seconds, operations per second, and the goals' ratios."""
    results: Dict[str, Any] = {
        "python": sys.version.split()[0],
        "machine": platform.platform(),
        "cores": os.cpu_count(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "rounds": rounds,
        "skipped": [],
    }
    per_op: Dict[str, float] = {}
    flow = order_flow(seed, commands)
    books: Dict[str, Round] = {"our book": our_book(flow)}
    peer = peer_book(flow)
    if peer is None:
        why = "it needs 3.12 or later" if sys.version_info < (3, 12) else "it is not installed"
        results["skipped"].append(
            f"matching-engine 0.1.1 is not importable on Python {results['python']} ({why}: "
            "pip install -e '.[bench]' in a 3.12+ environment)"
        )
    else:
        books["matching-engine 0.1.1"] = peer
    per_op.update({name: spent / commands for name, spent in _medians(books, rounds).items()})
    # The book race's flow and inputs (hundreds of thousands of objects) go before the next races:
    # the garbage collector's full passes in those would otherwise walk them, a cost of this run alone.
    del books, peer, flow
    bulk = 100
    requests = max(bulk, orders - orders % bulk)
    per_op.update(
        {name: spent / requests for name, spent in _medians(floor_and_handle(requests, bulk), rounds).items()}
    )
    checks = validation_rounds(validations)
    if checks is None:
        results["skipped"].append("pydantic is not installed: validate_order is not raced")
    else:
        per_op.update({name: spent / validations for name, spent in _medians(checks, rounds).items()})
    results["seconds_per_op"] = per_op
    results["per_second"] = {name: 1 / spent for name, spent in per_op.items()}
    goals = []
    for name, ours, anchor, limit, at_most in GOALS:
        if ours not in per_op or anchor not in per_op:
            continue
        if at_most:
            ratio = per_op[ours] / per_op[anchor]
            holds = ratio <= limit
        else:
            ratio = per_op[anchor] / per_op[ours]  # speed: ours over the peer's
            holds = ratio >= limit
        goals.append({"name": name, "ratio": ratio, "limit": limit, "at_most": at_most, "holds": holds})
    results["goals"] = goals
    return results


def report(results: Dict[str, Any]) -> str:
    lines = [
        f"benchmarks.engine, Python {results['python']} on {results['machine']} ({results['cores']} cores), "
        f"{results['date']}, median of {results['rounds']} rounds, CPU time",
        "",
    ]
    for name, spent in results["seconds_per_op"].items():
        lines.append(f"  {name:<32} {spent * 1e6:>9.2f} us   {1 / spent:>12,.0f} /s")
    lines += ["", f"  {'goal':<46} {'ratio':>7}  {'goal':>8}  verdict"]
    for goal in results["goals"]:
        bound = f"{'<=' if goal['at_most'] else '>='} {goal['limit']:.2f}"
        verdict = "holds" if goal["holds"] else "MISSED"
        lines.append(f"  {goal['name']:<46} {goal['ratio']:>7.3f}  {bound:>8}  {verdict}")
    for reason in results["skipped"]:
        lines.append(f"  skipped: {reason}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.engine", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commands", type=int, default=50_000, help="commands in the seeded flow (default 50,000)")
    parser.add_argument("--orders", type=int, default=5_000, help="orders a round of Exchange.handle places")
    parser.add_argument("--validations", type=int, default=20_000, help="orders a validation round checks")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per race (the median is shown)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", help="folder to write engine.json in")
    args = parser.parse_args(argv)
    results = run(args.commands, args.orders, args.validations, args.rounds, args.seed)
    print(report(results))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "engine.json"), "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
