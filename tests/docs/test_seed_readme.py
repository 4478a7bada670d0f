"""The published client's README, run on ``gameproto_async`` against the embedded exchange.

Each code block of ``game-api-client``'s README (0.0.4) is copied here with
two changes only: ``from game_client import ...`` became
``from gameproto_async import ...``, and fixed dates in the past were moved
into the future. The exchange accepts the README's own placeholder tokens;
its placeholder URLs are swapped for the served exchange's. Each test checks
what the block prints. Where that differs from what the README says, the
test names the heading of ``docs/migrating.md`` that documents the
difference (and checks that the heading is there).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import io
import re
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import pytest

from gameproto.simulator.exchange import Exchange
from gameproto_async import GameAPI, GameAPIError, OrderValidationError
from gameproto_exchange import ServerThread

MIGRATING = Path(__file__).resolve().parents[2] / "docs" / "migrating.md"
SEED_URLS = ("https://your-game-api-url.com", "https://api.example.com")
SEED_TOKENS = {"your_authentik_token": "alice", "your_token": "alice", "token": "alice"}
#: The README's dates, all in the past by now, moved into the future.
FUTURE_DATE = (dt.date.today() + dt.timedelta(days=30)).isoformat()


def difference(heading: str) -> str:
    """``heading`` of docs/migrating.md, checked to be there: the documented difference."""
    headings = re.findall(r"^## (.+)$", MIGRATING.read_text(encoding="utf-8"), re.MULTILINE)
    assert heading in headings, f"docs/migrating.md has no heading {heading!r}"
    return f"documented in docs/migrating.md, '{heading}'"


@pytest.fixture
def seed_server() -> Iterator[Any]:
    exchange = Exchange(tokens=SEED_TOKENS, seed=7)
    exchange.seed_market()
    with ServerThread(exchange) as running:
        yield running


def run_seed(code: str, server: Any, **names: Any) -> Tuple[Dict[str, Any], str]:
    """Run a README block as it is written; its namespace and what it printed."""
    for url in SEED_URLS:
        code = code.replace(url, server.base_url)
    namespace: Dict[str, Any] = {"__name__": "__seed__", "GameAPI": GameAPI, "GameAPIError": GameAPIError}
    namespace.update(names)
    printed = io.StringIO()
    with warnings.catch_warnings():
        # The README never closes its clients. gameproto's clients keep
        # connections open and say so with a ResourceWarning (silent unless
        # enabled): documented in "The client is closed when you are done".
        warnings.simplefilter("ignore", ResourceWarning)
        with contextlib.redirect_stdout(printed):
            exec(compile(code, "<seed README>", "exec"), namespace)
        gc.collect()
    return namespace, printed.getvalue()


def test_the_differences_named_here_are_documented() -> None:
    difference("The client is closed when you are done")


# -- Quick Start -------------------------------------------------------------

QUICK_START = """
import asyncio
from gameproto_async import GameAPI
async def main():
    api = GameAPI(
        token="your_authentik_token",
        base_url="https://your-game-api-url.com"
    )
    # Test connection
    if await api.test_connection():
        print("Connected!")
    # Get data
    status = await api.get_status()
    trades = await api.get_trades()
    market = await api.get_market_data()
asyncio.run(main())
"""


def test_quick_start(seed_server: Any) -> None:
    _, printed = run_seed(QUICK_START, seed_server)
    assert printed == "Connected!\n"


# -- Usage Examples: Basic Usage ----------------------------------------------

BASIC_USAGE = """
import asyncio
from gameproto_async import GameAPI
async def main():
    api = GameAPI(
        token="your_authentik_token",
        base_url="https://your-game-api-url.com",
        verify_ssl=False # Set to True for production
    )
    # Test connection
    if await api.test_connection():
        print("✅ Connected to API!")
    # Get basic data
    status = await api.get_status()
    market_data = await api.get_market_data()
    print(f"API Status: {status['status']}")
    print(f"Market data points: {len(market_data)}")
asyncio.run(main())
"""


def test_basic_usage(seed_server: Any) -> None:
    _, printed = run_seed(BASIC_USAGE, seed_server)
    lines = printed.splitlines()
    assert lines[:2] == ["✅ Connected to API!", "API Status: healthy"]
    assert re.fullmatch(r"Market data points: [1-9][0-9]*", lines[2])


# -- Usage Examples: Order Management ------------------------------------------
# ``future_time`` was "now + 4 hours" with the window fixed at 14:00: past
# 10:00 that window lies in the past. Moved to tomorrow.

ORDER_MANAGEMENT = """
async def order_examples():
    api = GameAPI(token="your_token", base_url="https://api.example.com")
    # Get all orders
    orders = await api.get_orders()
    print(f"Found {len(orders)} orders")
    # Get only buy orders
    buy_orders = await api.get_orders(direction="buy")
    # Create a single displayed order
    from datetime import datetime, timedelta
    future_time = datetime.now() + timedelta(days=1)
    single_order = {
        "side": "buy",
        "price": 100.0,
        "volume": 1.0,
        "date": future_time.strftime("%Y-%m-%d"),
        "start_time": "14:00",
        "end_time": "15:00",
        "duration": "15m",
        "tz_offset_hours": 0,
        "state": "displayed" # Visible on the market (default)
    }
    result = await api.create_order(single_order)
    print(f"Created order: {result['order_id']}")
    # Create a hidden order (not visible to other participants)
    hidden_order = {
        "side": "buy",
        "price": 100.0,
        "volume": 1.0,
        "date": future_time.strftime("%Y-%m-%d"),
        "start_time": "14:00",
        "end_time": "15:00",
        "duration": "15m",
        "tz_offset_hours": 0,
        "state": "hidden" # Hidden from other participants
    }
    result = await api.create_order(hidden_order)
    print(f"Created hidden order: {result['order_id']}")
    # Create bulk orders with mixed states
    bulk_orders = {
        "orders": [
            {
                "side": "buy",
                "price": 100.0,
                "volume": 1.0,
                "date": future_time.strftime("%Y-%m-%d"),
                "start_time": "14:00",
                "end_time": "15:00",
                "duration": "15m",
                "tz_offset_hours": 0,
                "state": "displayed"
            },
            {
                "side": "sell",
                "price": 200.0,
                "volume": 0.5,
                "date": future_time.strftime("%Y-%m-%d"),
                "start_time": "14:00",
                "end_time": "15:00",
                "duration": "15m",
                "tz_offset_hours": 0,
                "state": "hidden"
            }
        ]
    }
    bulk_result = await api.create_order(bulk_orders)
    print(f"Created {len(bulk_result['created'])} orders")
    # Find specific order
    order = await api.find_order_by_id(result['order_id'])
    if order:
        print(f"Found order: {order['direction']} {order['volume']} @ {order['price']}")
    # Delete order
    delete_result = await api.delete_order(result['order_id'])
    print(f"Order deleted: {delete_result['status']}")
"""


def test_order_management_as_written(seed_server: Any) -> None:
    # The README's orders span 14:00-15:00 with "duration": "15m".
    namespace, _ = run_seed(ORDER_MANAGEMENT, seed_server)
    with pytest.raises(OrderValidationError) as refused:
        asyncio.run(namespace["order_examples"]())
    assert "duration: 15m does not match the window 14:00-15:00" in str(refused.value), difference(
        "The window must match the duration"
    )


def test_order_management_with_the_window_matching_the_duration(seed_server: Any) -> None:
    corrected = ORDER_MANAGEMENT.replace('"end_time": "15:00"', '"end_time": "14:15"')
    _, printed = run_seed(corrected + "\nimport asyncio\nasyncio.run(order_examples())\n", seed_server)
    lines = printed.splitlines()
    assert lines[0] == "Found 0 orders"
    assert re.fullmatch(r"Created order: ord_[0-9]+", lines[1])
    assert re.fullmatch(r"Created hidden order: ord_[0-9]+", lines[2])
    assert lines[3] == "Created 2 orders"
    # The creation answers "ord_<n>" and the listing <n>: found all the same
    # (the published client compared them as text and printed nothing here).
    assert lines[4] == "Found order: buy 1 @ 100", difference(
        "find_order_by_id finds ord_ ids and raises real failures"
    )
    assert lines[5] == "Order deleted: deleted"
    assert len(lines) == 6


# -- Usage Examples: Market Data with Filters -----------------------------------

MARKET_DATA = """
async def market_data_examples():
    api = GameAPI(token="your_token", base_url="https://api.example.com")
    # Get all trades
    all_trades = await api.get_trades()
    # Get only buy trades
    buy_trades = await api.get_trades(direction="buy")
    # Get trades with specific duration
    short_trades = await api.get_trades(duration="15m")
    # Get spot data
    spot_data = await api.get_spot_data()
    spot_status = await api.get_spot_status()
    print(f"Total trades: {len(all_trades)}")
    print(f"Buy trades: {len(buy_trades)}")
    print(f"Short duration trades: {len(short_trades)}")
    print(f"Spot data points: {len(spot_data)}")
    print(f"Spot status: {spot_status['status']}")
import asyncio
asyncio.run(market_data_examples())
"""


def test_market_data_with_filters(seed_server: Any) -> None:
    _, printed = run_seed(MARKET_DATA, seed_server)
    counts = dict(line.rsplit(": ", 1) for line in printed.splitlines())
    assert list(counts) == ["Total trades", "Buy trades", "Short duration trades", "Spot data points", "Spot status"]
    assert int(counts["Total trades"]) >= int(counts["Buy trades"]) >= 0
    assert int(counts["Total trades"]) >= int(counts["Short duration trades"]) >= 1
    assert int(counts["Spot data points"]) >= 1
    assert counts["Spot status"] == "operational"


# -- Usage Examples: Error Handling ---------------------------------------------

ERROR_HANDLING = """
async def error_handling_example():
    api = GameAPI(token="your_token", base_url="https://api.example.com")
    try:
        # This might fail if order data is invalid
        result = await api.create_order({"invalid": "data"})
    except GameAPIError as e:
        print(f"API Error: {e}")
    try:
        # This might fail if order doesn't exist
        await api.delete_order("non_existent_id")
    except GameAPIError as e:
        print(f"Delete failed: {e}")
    # Safe order lookup
    order = await api.find_order_by_id("some_id")
    if order is None:
        print("Order not found")
    else:
        print(f"Found order: {order}")
import asyncio
asyncio.run(error_handling_example())
"""


def test_error_handling(seed_server: Any) -> None:
    _, printed = run_seed(ERROR_HANDLING, seed_server)
    lines = printed.splitlines()
    # The README shows "API Error: Single order: Missing required field 'side'".
    assert lines[0].startswith("API Error: invalid order (8 problems): invalid: unknown field"), difference(
        "Every problem is reported, in a new text"
    )
    assert "side: is required" in lines[0]
    # Refused before sending, and still a GameAPIError.
    assert lines[1].startswith("Delete failed: ") and "'non_existent_id'" in lines[1], difference(
        "delete_order lists nothing and checks the id"
    )
    assert lines[2] == "Order not found"
    assert len(lines) == 3


def test_an_id_no_order_can_have_sends_nothing(seed_server: Any) -> None:
    async def lookup_and_delete() -> Tuple[Any, BaseException]:
        async with GameAPI("your_token", seed_server.base_url) as api:
            found = await api.find_order_by_id("some_id")
            try:
                await api.delete_order("non_existent_id")
            except BaseException as error:  # checked below: a GameAPIError and a ValueError
                return found, error
            raise AssertionError("delete_order sent an id no order can have")

    requests_before = seed_server.connections_accepted
    found, error = asyncio.run(lookup_and_delete())
    assert found is None
    assert isinstance(error, GameAPIError) and isinstance(error, ValueError)
    assert seed_server.connections_accepted == requests_before  # not even a token exchange


# -- Order Data Format: the complete examples, the bulk format ------------------

BUY_ORDER = """
buy_order = {
    "side": "buy",
    "price": 150.25,
    "volume": 2.5,
    "date": "2024-12-15",
    "start_time": "14:00",
    "end_time": "14:15",
    "duration": "15m",
    "tz_offset_hours": 1, # CET (UTC+1)
    "state": "displayed" # Visible on the market (default)
}
"""

SELL_ORDER = """
sell_order = {
    "side": "sell",
    "price": 200.0,
    "volume": 1.0,
    "date": "2024-12-15",
    "start_time": "15:30",
    "end_time": "16:00",
    "duration": "30m",
    "tz_offset_hours": 0, # UTC
    "state": "hidden" # Hidden from other participants
}
"""

BULK_ORDERS = """
bulk_orders = {
    "orders": [
        # Order 1 - displayed (default)
        {
            "side": "buy",
            "price": 100.0,
            "volume": 1.0,
            "date": "2024-12-15",
            "start_time": "14:00",
            "end_time": "14:15",
            "duration": "15m",
            "tz_offset_hours": 0
        },
        # Order 2 - hidden
        {
            "side": "sell",
            "price": 200.0,
            "volume": 0.5,
            "date": "2024-12-15",
            "start_time": "14:30",
            "end_time": "15:00",
            "duration": "30m",
            "tz_offset_hours": 0,
            "state": "hidden"
        },
        # ... more orders (up to API limits)
    ]
}
"""

BULK_OPERATIONS = """
async def bulk_operations(api):
    result = await api.create_order(bulk_orders)
    print(f"Created: {len(result['created'])}, Failed: {len(result['failed'])}")
"""


def _future(code: str) -> str:
    return code.replace("2024-12-15", FUTURE_DATE)


def test_the_complete_order_examples_are_placed(seed_server: Any) -> None:
    namespace, _ = run_seed(_future(BUY_ORDER + SELL_ORDER), seed_server)

    async def place() -> Tuple[Any, Any]:
        async with GameAPI("your_token", seed_server.base_url) as api:
            return await api.create_order(namespace["buy_order"]), await api.create_order(namespace["sell_order"])

    bought, sold = asyncio.run(place())
    assert (bought["direction"], bought["state"], bought["tz_offset_hours"]) == ("buy", "Displayed", 1)
    assert (sold["direction"], sold["state"], sold["duration"]) == ("sell", "Hidden", "30m")


def test_the_bulk_format_and_bulk_operations(seed_server: Any) -> None:
    namespace, _ = run_seed(_future(BULK_ORDERS) + BULK_OPERATIONS, seed_server)

    async def run() -> None:
        async with GameAPI("your_token", seed_server.base_url) as api:
            await namespace["bulk_operations"](api)

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        asyncio.run(run())
    assert printed.getvalue() == "Created: 2, Failed: 0\n"


# -- Common Validation Errors: each is refused before sending -------------------
# The README's fragments end in "..."; here the rest of the order is valid.

VALID = {
    "side": "buy",
    "price": 100.0,
    "volume": 1.0,
    "date": FUTURE_DATE,
    "start_time": "14:00",
    "end_time": "14:15",
    "duration": "15m",
}
COMMON_ERRORS = [
    ({"side": "buy", "price": 100}, None, "volume"),  # Missing volume, date, etc.
    ({"side": "invalid"}, VALID, "side"),
    ({"side": "buy", "price": -10, "volume": 1.0}, VALID, "price"),
    ({"side": "buy", "date": "2020-01-01"}, VALID, "date"),
    ({"side": "buy", "start_time": "2:00 PM"}, VALID, "start_time"),
    ({"side": "buy", "start_time": "15:00", "end_time": "14:00"}, VALID, "end_time"),
    ({"side": "buy", "state": "invisible"}, VALID, "state"),
]


@pytest.mark.parametrize(("fragment", "rest", "field"), COMMON_ERRORS)
def test_common_validation_errors_are_refused_before_sending(
    seed_server: Any, fragment: Dict[str, Any], rest: Any, field: str
) -> None:
    order = dict(rest or {}, **fragment)

    async def place() -> None:
        async with GameAPI("your_token", seed_server.base_url) as api:
            await api.create_order(order)

    with pytest.raises(OrderValidationError) as refused:
        asyncio.run(place())
    assert field in [problem.field for problem in refused.value.errors]


# -- Helper Function for Order Creation -----------------------------------------

HELPER = '''
from datetime import datetime, timedelta
def create_order_data(side, price, volume, hours_in_future=4):
    """Helper to create valid order data"""
    future_time = datetime.now() + timedelta(hours=hours_in_future)
    # Round to next quarter hour
    minutes = future_time.minute
    if minutes < 15:
        future_time = future_time.replace(minute=15, second=0, microsecond=0)
    elif minutes < 30:
        future_time = future_time.replace(minute=30, second=0, microsecond=0)
    elif minutes < 45:
        future_time = future_time.replace(minute=45, second=0, microsecond=0)
    else:
        future_time = future_time.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    future_end = future_time + timedelta(minutes=15)
    return {
        "side": side,
        "price": float(price),
        "volume": float(volume),
        "date": future_time.strftime("%Y-%m-%d"),
        "start_time": future_time.strftime("%H:%M"),
        "end_time": future_end.strftime("%H:%M"),
        "duration": "15m",
        "tz_offset_hours": 0,
        "state": "displayed" # or "hidden"
    }
# Usage
async def usage(api):
    order = create_order_data("buy", 100.0, 1.0)
    result = await api.create_order(order)
    return order, result
'''


def test_the_helper_function_makes_orders_that_are_placed(seed_server: Any) -> None:
    namespace, _ = run_seed(HELPER, seed_server)

    async def run() -> Tuple[Dict[str, Any], Any]:
        async with GameAPI("your_token", seed_server.base_url) as api:
            return await namespace["usage"](api)

    order, result = asyncio.run(run())
    assert result["order_id"].startswith("ord_")
    assert (result["start_time"], result["end_time"]) == (order["start_time"], order["end_time"])


def test_the_callers_dict_is_not_changed(seed_server: Any) -> None:
    namespace, _ = run_seed(HELPER, seed_server)
    order = namespace["create_order_data"]("sell", 120.0, 1.0)
    del order["tz_offset_hours"], order["state"]
    before = dict(order)

    async def run() -> Any:
        async with GameAPI("your_token", seed_server.base_url) as api:
            return await api.create_order(order)

    result = asyncio.run(run())
    # The published client filled the defaults into the caller's dict.
    assert order == before, difference("The caller's dict is no longer changed")
    assert result["state"] == "Displayed" and result["tz_offset_hours"] in (0, 1, 2)


# -- Error Handling: GameAPIError -----------------------------------------------

GAME_API_ERROR = """
from gameproto_async import GameAPI, GameAPIError
async def example():
    api = GameAPI(token="token", base_url="https://api.example.com")
    try:
        await api.create_order({"invalid": "data"})
    except GameAPIError as e:
        print(f"API Error: {e}")
        # Output: "API Error: Single order: Missing required field 'side'"
import asyncio
asyncio.run(example())
"""


def test_game_api_error(seed_server: Any) -> None:
    _, printed = run_seed(GAME_API_ERROR, seed_server)
    assert printed.startswith("API Error: invalid order (8 problems)"), difference(
        "Every problem is reported, in a new text"
    )
    assert "side: is required" in printed


# -- Best Practices --------------------------------------------------------------
# The README's fragments, each wrapped in the function it implies.

BEST_PRACTICES = """
import logging
logger = logging.getLogger("seed")
async def always_handle_errors(api, order_data):
    try:
        result = await api.create_order(order_data)
    except GameAPIError as e:
        logger.error(f"Order creation failed: {e}")
        return None
    return result
async def test_connection_first(api):
    if not await api.test_connection():
        print("Cannot connect to API")
        return
    print("connected")
async def safe_lookup(api, order_id):
    order = await api.find_order_by_id(order_id)
    if order is None:
        print("Order not found")
    else:
        print(f"Found: {order['order_id']}")
"""


def test_best_practices(seed_server: Any) -> None:
    namespace, _ = run_seed(BEST_PRACTICES, seed_server)

    async def run() -> None:
        async with GameAPI("your_token", seed_server.base_url) as api:
            assert await namespace["always_handle_errors"](api, {"side": "buy"}) is None
            placed = await namespace["always_handle_errors"](api, dict(VALID))
            await namespace["test_connection_first"](api)
            await namespace["safe_lookup"](api, placed["order_id"])
            await namespace["safe_lookup"](api, 999_999)
        async with GameAPI("not-a-token-the-exchange-knows", seed_server.base_url) as stranger:
            await namespace["test_connection_first"](stranger)

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        asyncio.run(run())
    lines = printed.getvalue().splitlines()
    assert lines[0] == "connected"
    assert re.fullmatch(r"Found: [0-9]+", lines[1])
    assert lines[2:] == ["Order not found", "Cannot connect to API"]


# -- Advanced Usage: Custom Timeout and SSL --------------------------------------

CUSTOM_TIMEOUT = """
api = GameAPI(
    token="your_token",
    base_url="https://api.example.com",
    verify_ssl=True, # Enable SSL verification (production)
    timeout=60 # Custom timeout in seconds
)
"""


def test_custom_timeout_and_ssl(seed_server: Any) -> None:
    namespace, _ = run_seed(CUSTOM_TIMEOUT, seed_server)
    api = namespace["api"]
    try:
        assert (api.verify_ssl, api.timeout) == (True, 60.0)
        assert api.base_url == seed_server.base_url
    finally:
        asyncio.run(api.aclose())


# -- Advanced Usage: Rate Limiting -----------------------------------------------

RATE_LIMITING = '''
import asyncio
async def safe_bulk_create(api, orders_list, batch_size=10):
    """Create orders in batches to avoid rate limits"""
    results = []
    for i in range(0, len(orders_list), batch_size):
        batch = orders_list[i:i + batch_size]
        bulk_data = {"orders": batch}
        try:
            result = await api.create_order(bulk_data)
            results.extend(result.get('created', []))
            # Small delay between batches
            if i + batch_size < len(orders_list):
                await asyncio.sleep(1)
        except GameAPIError as e:
            print(f"Batch {i//batch_size + 1} failed: {e}")
    return results
'''


def test_rate_limiting_batches(seed_server: Any) -> None:
    # Still works; not needed any more: 429s are waited out and bulks split
    # (documented in "Retries, 429s and the outcome of an order").
    difference("Retries, 429s and the outcome of an order")
    namespace, _ = run_seed(RATE_LIMITING, seed_server)
    orders = [dict(VALID, price=90.0 + i) for i in range(12)]

    async def run() -> Any:
        async with GameAPI("your_token", seed_server.base_url) as api:
            return await namespace["safe_bulk_create"](api, orders)

    created = asyncio.run(run())
    assert len(created) == 12


# -- Quick Start and Environment Variables: the .env file ----------------------

SEED_DOTENV = """GAME_API_TOKEN=your_authentik_personal_token
GAME_API_URL=https://your-game-api-url.com
GAME_API_VERIFY_SSL=false
"""


def test_env_example_has_the_seed_variables() -> None:
    example = (MIGRATING.parent.parent / ".env.example").read_text(encoding="utf-8")
    names = re.findall(r"^([A-Z_]+)=", example, re.MULTILINE)
    assert names == ["GAME_API_TOKEN", "GAME_API_URL", "GAME_API_VERIFY_SSL"]


def test_the_seed_dotenv_file_is_read_by_from_env(tmp_path: Path, monkeypatch: Any) -> None:
    for name in ("GAME_API_TOKEN", "GAME_API_URL", "GAME_API_VERIFY_SSL"):
        monkeypatch.delenv(name, raising=False)
    dotenv = tmp_path / ".env"
    dotenv.write_text(SEED_DOTENV, encoding="utf-8")

    async def build() -> str:
        async with GameAPI.from_env(dotenv_path=str(dotenv)) as api:
            return repr(api)

    described = asyncio.run(build())
    assert "https://your-game-api-url.com/api/v1" in described
    assert "your_authentik_personal_token" not in described


# -- Order Data Format: Required Fields ------------------------------------------

REQUIRED_FIELDS = """
order = {
    "side": "buy", # REQUIRED: "buy" or "sell"
    "price": 100.0, # REQUIRED: Positive number (> 0)
    "volume": 1.0, # REQUIRED: Positive number (> 0)
    "date": "2024-01-15", # REQUIRED: Future date in YYYY-MM-DD format
    "start_time": "14:00", # REQUIRED: HH:MM format (future time)
    "end_time": "15:00", # REQUIRED: HH:MM format (after start_time)
    "duration": "15m", # REQUIRED: Time duration ("15m", "30m", "1h", etc.)
    "tz_offset_hours": 1, # OPTIONAL: Timezone offset (default: auto-detected from system)
    "state": "displayed" # OPTIONAL: "displayed" (default) or "hidden"
}
"""


def test_the_required_fields_example(seed_server: Any) -> None:
    namespace, _ = run_seed(REQUIRED_FIELDS.replace("2024-01-15", FUTURE_DATE), seed_server)
    order = namespace["order"]

    async def place(order: Dict[str, Any]) -> Any:
        async with GameAPI("your_token", seed_server.base_url) as api:
            return await api.create_order(order)

    # A one-hour window with a 15-minute duration: refused before sending.
    with pytest.raises(OrderValidationError) as refused:
        asyncio.run(place(order))
    assert [problem.field for problem in refused.value.errors] == ["duration"], difference(
        "The window must match the duration"
    )
    assert asyncio.run(place(dict(order, duration="1h")))["duration"] == "1h"


# -- Response Formats: every field the README lists is in the answers ------------

ORDER_FIELDS = {"order_id", "created_at", "direction", "volume", "price", "state", "contract", "trader", "date"} | {
    "start_time",
    "end_time",
    "duration",
    "tz_offset_hours",
    "updated_at",
}
LISTED_ORDER_FIELDS = ORDER_FIELDS | {
    "executed_volume",
    "remaining_volume",
    "average_price",
    "execution_count",
    "total_value",
    "fees",
    "metadata",
}
TRADE_FIELDS = {"trade_id", "contract", "direction", "volume", "price", "timestamp", "buyer", "seller", "fees"} | {
    "duration",
    "execution_time",
}
SPOT_FIELDS = {"contract", "price", "volume", "bid", "ask", "spread", "high_24h", "low_24h", "volume_24h"} | {
    "change_24h",
    "change_percent_24h",
    "timestamp",
    "order_book",
}
STATUS_FIELDS = {"status", "version", "timestamp", "services", "uptime", "response_time_ms", "rate_limit"}
SPOT_STATUS_FIELDS = {"status", "timestamp", "active_contracts", "market_open", "next_update", "last_update"}


def test_the_response_formats(seed_server: Any) -> None:
    async def collect() -> Dict[str, Any]:
        async with GameAPI("your_token", seed_server.base_url) as api:
            single = await api.create_order(dict(VALID))
            bulk = await api.create_order({"orders": [dict(VALID), dict(VALID, side="sell", price=200.0)]})
            return {
                "single": single,
                "bulk": bulk,
                "orders": await api.get_orders(),
                "trades": await api.get_trades(),
                "spot": await api.get_spot_data(),
                "status": await api.get_status(),
                "spot_status": await api.get_spot_status(),
            }

    answers = asyncio.run(collect())
    assert ORDER_FIELDS <= set(answers["single"]) and answers["single"]["order_id"].startswith("ord_")
    assert set(answers["bulk"]) == {"requested", "created", "failed"} and answers["bulk"]["requested"] == 2
    assert [entry["index"] for entry in answers["bulk"]["created"]] == [0, 1]
    assert all(LISTED_ORDER_FIELDS <= set(order) for order in answers["orders"])
    assert all(type(order["order_id"]) is int for order in answers["orders"])  # "Numeric ID for deletion"
    assert answers["trades"] and all(TRADE_FIELDS <= set(trade) for trade in answers["trades"])
    # The README shows one spot object; the client answers a list of them.
    assert type(answers["spot"]) is list, difference("get_spot_data always answers a list")
    assert all(SPOT_FIELDS <= set(spot) for spot in answers["spot"])
    assert set(answers["spot"][0]["order_book"]) == {"bids", "asks"}
    assert STATUS_FIELDS <= set(answers["status"]) and answers["status"]["status"] == "healthy"
    assert SPOT_STATUS_FIELDS <= set(answers["spot_status"])


# -- Best Practices: "Validate order data before sending" -------------------------

VALIDATE_BEFORE_SENDING = """
def pre_validate(order_data):
    # The client validates automatically, but you can pre-validate
    required_fields = ["side", "price", "volume", "date", "start_time", "end_time"]
    for field in required_fields:
        if field not in order_data:
            raise ValueError(f"Missing required field: {field}")
"""


def test_pre_validation_still_works_and_the_client_finds_more(seed_server: Any) -> None:
    namespace, _ = run_seed(VALIDATE_BEFORE_SENDING, seed_server)
    without_duration = {key: value for key, value in VALID.items() if key != "duration"}
    namespace["pre_validate"](without_duration)  # the README's list leaves duration out

    async def place() -> None:
        async with GameAPI("your_token", seed_server.base_url) as api:
            await api.create_order(without_duration)

    with pytest.raises(OrderValidationError) as refused:
        asyncio.run(place())
    assert [problem.field for problem in refused.value.errors] == ["duration"], difference(
        "The window must match the duration"
    )
