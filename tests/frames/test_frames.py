"""Frames: every listing as a DataFrame in one call, indexed by delivery start (UTC), numbers as numbers."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gameproto import Contract, positions
from gameproto_sync import GameAPI
from tests.support.common import OTHER_TOKEN, TOKEN, future_order

pd = pytest.importorskip("pandas")
from gameproto_frames import frame  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DAY = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).date()


def at(side: str, price: Any, volume: Any, start: str = "10:00", end: str = "10:15") -> Any:
    return future_order(side, price, volume, day=DAY, start_time=start, end_time=end)


def test_every_listing_is_a_frame_indexed_by_delivery_start(server: Any) -> None:
    with GameAPI(TOKEN, server.base_url) as alice, GameAPI(OTHER_TOKEN, server.base_url) as bob:
        created = alice.create_order({"orders": [at("buy", 80, 2), at("sell", 99.5, 1, "11:00", "11:15")]})
        bob.create_order(at("sell", 80, 1))
        listings = {
            "orders": alice.get_orders(),
            "created": [entry["result"] for entry in created["created"]],
            "trades": alice.get_trades(),
            "market": alice.get_market_data(),
            "ltp": alice.get_latest_available_ltp(),
            "zone ltp": alice.get_market_ltp(),
            "latest ltp": alice.get_latest_ltp(),
            "spot": alice.get_spot_data(),
            "positions": alice.positions(),
        }
    first = Contract.from_order(at("buy", 80, 2))
    for name, listing in listings.items():
        table = frame(listing)
        assert len(table) > 0, name
        assert isinstance(table.index, pd.DatetimeIndex) and str(table.index.tz) == "UTC", name
        assert table.index.name == "delivery_start"
        assert table.index.is_monotonic_increasing
        if "price" in table.columns:
            assert pd.api.types.is_float_dtype(table["price"]) or pd.api.types.is_integer_dtype(table["price"]), name
    orders = frame(listings["orders"])
    assert orders.loc[pd.Timestamp(first.start), "remaining_volume"] == 1
    assert pd.api.types.is_numeric_dtype(orders["volume"]) and pd.api.types.is_datetime64_any_dtype(
        orders["created_at"]
    )
    assert list(orders["period"]) == [first.quarter_hour, first.quarter_hour + 4]
    assert list(orders["delivery_day"]) == [first.delivery_day] * 2
    held = frame(listings["positions"])
    assert list(held["net"]) == [1.0] and held["buy_vwap"].iloc[0] == 80.0
    assert held.index[0] == pd.Timestamp(first.start) and held["delivery_end"].iloc[0] == pd.Timestamp(first.end)


def test_an_empty_listing_and_a_bad_one() -> None:
    assert len(frame([])) == 0 and len(frame(positions([], ["alice"]))) == 0
    with pytest.raises(TypeError, match="entry 1 is int"):
        frame([{"contract": "2030-01-01T00:00:00Z/PT15M"}, 3])
    with pytest.raises(TypeError, match="got str"):
        frame("orders")
    unreadable = frame([{"contract": "soon", "price": "12.5"}])
    assert unreadable.index.isna().all() and unreadable["price"].iloc[0] == 12.5


def test_the_clients_import_neither_pandas_nor_matplotlib() -> None:
    code = (
        "import sys, gameproto, gameproto_sync, gameproto_async\n"
        "gameproto_sync.GameAPI('t', 'http://127.0.0.1:9').close()\n"
        "loaded = [name for name in ('pandas', 'matplotlib', 'gameproto_frames') if name in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT)}, timeout=60)


def test_market_data_is_one_frame_with_a_kind_and_best_offers_one_row_per_level(server: Any) -> None:
    with GameAPI(TOKEN, server.base_url) as alice:
        alice.create_order({"orders": [at("buy", 80, 2), at("buy", 79, 1), at("sell", 90, 3)]})
        market = frame(alice.get_market_data())
        offers = frame(alice.get_market_best_offers())
    assert list(market["kind"]) == ["summary", "level", "level", "level"]
    summary = market[market["kind"] == "summary"].iloc[0]
    assert (summary["bid"], summary["ask"]) == (80.0, 90.0)
    levels = market[market["kind"] == "level"]
    assert list(zip(levels["direction"], levels["price"], levels["volume"])) == [
        ("buy", 80.0, 2.0), ("buy", 79.0, 1.0), ("sell", 90.0, 3.0),
    ]  # fmt: skip
    contract = Contract.from_order(at("buy", 80, 2)).id
    assert list(offers.columns[:5]) == ["contract", "side", "rank", "price", "volume"]
    assert [tuple(row) for row in offers[["contract", "side", "rank", "price", "volume"]].itertuples(index=False)] == [
        (contract, "buy", 1, 80.0, 2.0), (contract, "buy", 2, 79.0, 1.0), (contract, "sell", 1, 90.0, 3.0),
    ]  # fmt: skip
    assert str(offers.index.tz) == "UTC" and (offers.index == pd.Timestamp(Contract.parse(contract).start)).all()


def test_only_market_rows_get_a_kind() -> None:
    trade = {"trade_id": 1, "contract": "2030-01-01T00:00:00Z/PT15M", "direction": "buy", "price": 1, "volume": 1}
    assert "kind" not in frame([trade]).columns
