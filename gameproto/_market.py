"""Views over market answers: the helpers' (best offers, latest prices, price order) and the limits' prices.

One reading of market rows and LTP entries: ``best_offers`` and
``latest_ltp`` answer the helpers, and ``best_prices``/``last_prices`` (the
same views, as exact decimals keyed by ``Contract``) are what the price band
of ``RiskLimits`` is judged against.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple, cast

from ._contract import Contract
from ._positions import decimal_of
from ._types import BestOffers, LatestLTP, LTPEntry, MarketRow

__all__ = ["best_offers", "latest_ltp", "sort_by_price", "best_prices", "last_prices"]


def _price_key(row: Any) -> float:
    price = row.get("price")
    try:
        return float(price)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer of 400 digits is no price
        return float("nan")


def best_offers(rows: Iterable[MarketRow], top_n: Optional[int] = None) -> Dict[str, BestOffers]:
    """Market rows grouped by contract and direction, best price first.

    Buy offers come highest price first, sell offers lowest first; at most
    ``top_n`` of each. A row without a ``direction`` (servers before 0.1.2
    answer one summary row per contract) stands for its ``bid`` and ``ask``.
    """
    grouped: Dict[str, BestOffers] = {}
    summaries: Dict[str, List[MarketRow]] = {}
    for row in rows:
        contract = str(row.get("contract", ""))
        sides = grouped.setdefault(contract, {"buy": [], "sell": []})
        direction = row.get("direction")
        if direction in ("buy", "sell"):
            sides[direction].append(row)  # type: ignore[literal-required]
        else:
            summaries.setdefault(contract, []).append(row)
    for contract, summary_rows in summaries.items():
        sides = grouped[contract]
        if sides["buy"] or sides["sell"]:
            continue  # the real levels are there: the summary would count them twice
        for row in summary_rows:
            if row.get("bid") is not None:
                sides["buy"].append(cast(MarketRow, dict(row, direction="buy", price=row["bid"])))
            if row.get("ask") is not None:
                sides["sell"].append(cast(MarketRow, dict(row, direction="sell", price=row["ask"])))
    for sides in grouped.values():
        sides["buy"] = [row for row in sides["buy"] if _price_key(row) == _price_key(row)]
        sides["sell"] = [row for row in sides["sell"] if _price_key(row) == _price_key(row)]
        sides["buy"].sort(key=_price_key, reverse=True)
        sides["sell"].sort(key=_price_key)
        if top_n is not None:
            del sides["buy"][top_n:]
            del sides["sell"][top_n:]
    return dict(sorted(grouped.items()))


def latest_ltp(entries: Iterable[LTPEntry]) -> Dict[str, LatestLTP]:
    """The newest traded price of each contract, with every zone it traded in.

    Keyed by contract, as the published client answers: ``price``,
    ``volume``, ``timestamp``, ``market_zones`` (sorted) and ``latest_zone``
    (the zone of the newest trade).
    """
    newest: Dict[str, LTPEntry] = {}
    zones: Dict[str, Set[str]] = {}
    for entry in entries:
        contract = entry.get("contract")
        if not contract:
            continue
        contract = str(contract)
        zone = entry.get("market_zone")
        if zone:
            zones.setdefault(contract, set()).add(str(zone))
        known = newest.get(contract)
        if known is None or str(entry.get("timestamp", "")) > str(known.get("timestamp", "")):
            newest[contract] = entry
    return {
        contract: {
            "price": entry.get("price"),
            "volume": entry.get("volume"),
            "timestamp": entry.get("timestamp", ""),
            "market_zones": sorted(zones.get(contract, ())),
            "latest_zone": entry.get("market_zone"),
        }
        for contract, entry in sorted(newest.items())
    }


def sort_by_price(rows: List[MarketRow]) -> List[MarketRow]:
    """Market rows by contract, then side, best price first (buy descending, sell ascending)."""

    def key(row: MarketRow) -> Tuple[str, str, float]:
        price = _price_key(row)
        if price != price:
            price = float("inf")
        return (
            str(row.get("contract") or row.get("timestamp") or ""),
            str(row.get("direction") or ""),
            price if row.get("direction") == "sell" else -price,
        )

    return sorted(rows, key=key)


def _price(value: Any) -> Optional[Decimal]:
    try:
        return decimal_of(value, "price")
    except ValueError:
        return None


def best_prices(rows: Iterable[MarketRow]) -> Dict[Contract, Dict[str, Decimal]]:
    """The best bid (``buy``) and ask (``sell``) of each contract of ``best_offers``, as exact decimals.

    Rows whose contract is not a contract id, or whose price is no number, are left out.
    """
    best: Dict[Contract, Dict[str, Decimal]] = {}
    for contract_id, sides in best_offers(rows).items():
        try:
            contract = Contract.parse(contract_id)
        except ValueError:
            continue
        for side in ("buy", "sell"):
            for row in sides[side]:
                price = _price(row.get("price"))
                if price is not None:
                    best.setdefault(contract, {})[side] = price
                    break
    return best


def last_prices(entries: Iterable[LTPEntry]) -> Dict[Contract, Decimal]:
    """The newest traded price of each contract of ``latest_ltp``, as an exact decimal."""
    newest: Dict[Contract, Decimal] = {}
    for contract_id, entry in latest_ltp(entries).items():
        price = _price(entry.get("price"))
        try:
            contract = Contract.parse(contract_id)
        except ValueError:
            continue
        if price is not None:
            newest[contract] = price
    return newest
