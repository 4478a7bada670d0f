"""The shapes of the exchange's answers, as ``TypedDict``s: what the clients' methods return.

Every key is optional where the platform may leave it out; unknown keys are
kept. Annotate with them (``orders: List[Order] = api.get_orders()``).
"""

from __future__ import annotations

from ._types import *  # noqa: F403 - the shapes, listed once in _types.__all__
from ._types import __all__ as __all__
