"""The third driver, on http.client (examples/stdlib_client.py), against the embedded exchange."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from gameproto import _calls, validate_order
from gameproto.simulator.exchange import Exchange
from gameproto_exchange import RunningServer

from .support import TOKEN, future_order

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "stdlib_client.py"


def _load() -> Any:
    spec = importlib.util.spec_from_file_location("stdlib_client", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_is_a_whole_driver_in_under_80_lines() -> None:
    assert len(EXAMPLE.read_text(encoding="utf-8").splitlines()) < 80


def test_the_stdlib_driver_trades_on_the_embedded_exchange(server: RunningServer[Exchange]) -> None:
    api = _load().StdlibGameAPI(TOKEN, server.base_url)
    assert api.call(_calls.get_status())["status"] == "healthy"
    created = api.call(_calls.create_order(validate_order(future_order(price=42.5))))
    assert created["order_id"].startswith("ord_")
    listed = api.call(_calls.get_orders())
    assert [order["price"] for order in listed] == [42.5]
    assert api.call(_calls.delete_order(created["order_id"]))["status"] == "deleted"
    assert api.call(_calls.get_orders()) == []
    assert server.exchange.exchanges == 1  # one token for every call
